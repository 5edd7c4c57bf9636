//! The load generator: `c` keep-alive connections, each sending requests back to back for a
//! fixed time, every latency recorded as measured (no coordinated-omission correction, which
//! would distort a direct-versus-gateway comparison).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Stream,
    /// An Anthropic client streaming from the OpenAI upstream: every chunk converted. (Direct,
    /// the same stream in OpenAI's form: the mock speaks nothing else.)
    Converted,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Stream => "stream (20 chunks)",
            Self::Converted => "anthropic <- openai stream",
        }
    }
}

/// What one or more load steps measured.
#[derive(Default)]
pub struct Phase {
    pub latencies: Vec<f64>,
    pub ttfbs: Vec<f64>,
    pub errors: u64,
    pub seconds: f64,
    pub cpu_ticks: u64,
}

impl Phase {
    pub fn merge(&mut self, o: Phase) {
        self.latencies.extend(o.latencies);
        self.ttfbs.extend(o.ttfbs);
        self.errors += o.errors;
        self.seconds += o.seconds;
        self.cpu_ticks += o.cpu_ticks;
    }

    pub fn count(&self) -> usize {
        self.latencies.len()
    }

    pub fn rps(&self) -> f64 {
        self.count() as f64 / self.seconds.max(1e-9)
    }

    fn pct(v: &[f64], p: f64) -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        s[((s.len() - 1) as f64 * p).round() as usize]
    }

    pub fn latency_pct(&self, p: f64) -> f64 {
        Self::pct(&self.latencies, p)
    }

    pub fn ttfb_pct(&self, p: f64) -> f64 {
        Self::pct(&self.ttfbs, p)
    }
}

/// The request: path, extra headers and body.
fn request(
    mode: Mode,
    through_gateway: bool,
) -> (&'static str, Vec<(&'static str, &'static str)>, Bytes) {
    if mode == Mode::Converted && through_gateway {
        return (
            "/v1/messages",
            vec![("anthropic-version", "2023-06-01")],
            Bytes::from_static(b"{\"model\":\"bench-model\",\"max_tokens\":256,\"stream\":true,\"system\":\"You are a helpful assistant.\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello there, how are you?\"}]}"),
        );
    }
    ("/v1/chat/completions", Vec::new(), body(mode))
}

fn body(mode: Mode) -> Bytes {
    let stream = if mode != Mode::Plain {
        ",\"stream\":true"
    } else {
        ""
    };
    Bytes::from(format!(
        "{{\"model\":\"bench-model\",\"messages\":[{{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"}},{{\"role\":\"user\",\"content\":\"Hello there, how are you?\"}}]{stream}}}"
    ))
}

pub async fn wait_healthy(addr: SocketAddr) -> anyhow::Result<()> {
    for _ in 0..500 {
        if let Ok(tcp) = tokio::net::TcpStream::connect(addr).await {
            let (mut send, conn) = http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(conn);
            let req = Request::get("/health")
                .header("host", addr.to_string())
                .body(Full::new(Bytes::new()))?;
            if send
                .send_request(req)
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    anyhow::bail!("the gateway never became healthy")
}

pub async fn run(
    addr: SocketAddr,
    key: Option<&str>,
    mode: Mode,
    concurrency: usize,
    seconds: f64,
) -> anyhow::Result<Phase> {
    let (path, headers, body) = request(mode, key.is_some());
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let body = body.clone();
        let headers = headers.clone();
        let auth = key.map(|k| format!("Bearer {k}"));
        tasks.push(tokio::spawn(async move {
            worker(addr, path, headers, auth, body, deadline).await
        }));
    }
    let mut total = Phase::default();
    for t in tasks {
        let s = t.await.context("worker panicked")??;
        total.latencies.extend(s.latencies);
        total.ttfbs.extend(s.ttfbs);
        total.errors += s.errors;
    }
    total.seconds = started.elapsed().as_secs_f64();
    Ok(total)
}

async fn worker(
    addr: SocketAddr,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    auth: Option<String>,
    body: Bytes,
    deadline: Instant,
) -> anyhow::Result<Phase> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (mut send, conn) = http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let mut s = Phase::default();
    let host = addr.to_string();
    while Instant::now() < deadline {
        let mut req = Request::post(path)
            .header("host", &host)
            .header("content-type", "application/json");
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let req = req.body(Full::new(body.clone()))?;
        // The previous response may still be settling on the connection.
        if send.ready().await.is_err() {
            s.errors += 1;
            break;
        }
        let t0 = Instant::now();
        let resp = match send.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!(
                    "request {} failed on {addr}: {e} ({:?} before the deadline)",
                    s.latencies.len(),
                    deadline.saturating_duration_since(Instant::now())
                );
                s.errors += 1;
                break;
            }
        };
        let status = resp.status();
        let ok = status == 200;
        if !ok {
            eprintln!("{addr} answered {status}");
        }
        let mut b = resp.into_body();
        let mut first = None;
        while let Some(frame) = b.frame().await {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("body failed on {addr}: {e}");
                    s.errors += 1;
                    break;
                }
            };
            if first.is_none() && frame.data_ref().is_some_and(|d| !d.is_empty()) {
                first = Some(t0.elapsed());
            }
        }
        let total = t0.elapsed();
        if ok {
            s.latencies.push(total.as_secs_f64());
            s.ttfbs.push(first.unwrap_or(total).as_secs_f64());
        } else {
            s.errors += 1;
        }
    }
    Ok(s)
}
