//! The chaos soak: three providers for one model, two of them injecting faults (429 with
//! Retry-After, 5xx, answers later than the first-byte timeout, connection resets, streams cut
//! before and after content), one always healthy; thousands of requests, half streamed, at
//! concurrency 32, through the gateway (a release build, as a child process).
//!
//! It reports what a client would call lost: answers that are not 200, streams that end with
//! neither their end marker nor an error event, duplicated content, requests never answered;
//! and the gateway's RSS and open descriptors before, during and after.
//!
//! Requests are paced (`--rate`, per second over all workers) so that the run lasts long
//! enough for breakers to open, cool down and close again many times.
//!
//! Usage: soak --gateway PATH [--requests N] [--concurrency C] [--rate R] [--seed S]

#[path = "../gateway.rs"]
mod gateway;
#[path = "../proc_stats.rs"]
#[allow(dead_code)] // the benchmark uses the rest
mod proc_stats;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

const CLIENT_KEY: &str = "sk-sb-soak-key-0123456789abcdef";
const WORDS: usize = 10;

struct Args {
    gateway: String,
    requests: usize,
    concurrency: usize,
    rate: f64,
    seed: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        gateway: String::new(),
        requests: 6000,
        concurrency: 32,
        rate: 200.0,
        seed: 7,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().context("missing value");
        match a.as_str() {
            "--gateway" => args.gateway = value()?,
            "--requests" => args.requests = value()?.parse()?,
            "--concurrency" => args.concurrency = value()?.parse()?,
            "--rate" => args.rate = value()?.parse()?,
            "--seed" => args.seed = value()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    if args.gateway.is_empty() {
        bail!("usage: soak --gateway PATH [--requests N] [--concurrency C] [--rate R] [--seed S]");
    }
    Ok(args)
}

/// What a faulty upstream does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    RateLimited,
    ServerError,
    /// Answers after the gateway's first-byte timeout.
    Late,
    /// Closes the connection without an answer.
    Reset,
    /// A stream's head and role chunk, then the connection breaks.
    CutBeforeContent,
    /// Three words, then the connection breaks.
    CutAfterContent,
}

const FAULTS: [Fault; 7] = [
    Fault::None,
    Fault::RateLimited,
    Fault::ServerError,
    Fault::Late,
    Fault::Reset,
    Fault::CutBeforeContent,
    Fault::CutAfterContent,
];

/// A deterministic xorshift, so a run can be repeated with its seed.
struct Rng(AtomicU64);

impl Rng {
    fn next(&self) -> u64 {
        let mut x = self.0.load(Ordering::Relaxed);
        loop {
            let mut y = x;
            y ^= y << 13;
            y ^= y >> 7;
            y ^= y << 17;
            match self
                .0
                .compare_exchange_weak(x, y, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return y,
                Err(now) => x = now,
            }
        }
    }

    /// 78% healthy; the rest spread over the faults.
    fn fault(&self) -> Fault {
        match self.next() % 100 {
            0..78 => Fault::None,
            78..84 => Fault::RateLimited,
            84..89 => Fault::ServerError,
            89..91 => Fault::Late,
            91..95 => Fault::Reset,
            95..98 => Fault::CutBeforeContent,
            _ => Fault::CutAfterContent,
        }
    }
}

struct Upstream {
    faulty: bool,
    rng: Rng,
    injected: [AtomicUsize; 7],
}

type Body = BoxBody<Bytes, std::io::Error>;

fn chunk(content: &str) -> Bytes {
    Bytes::from(format!(
        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"soak\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}},\"finish_reason\":null}}]}}\n\n"
    ))
}

fn words() -> String {
    (0..WORDS).map(|i| format!("w{i} ")).collect()
}

fn stream_body(fault: Fault) -> Body {
    let mut frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![Ok(Frame::data(Bytes::from_static(
        b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"soak\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    )))];
    let cut = || Err(std::io::Error::other("injected cut"));
    match fault {
        Fault::CutBeforeContent => frames.push(cut()),
        Fault::CutAfterContent => {
            for i in 0..3 {
                frames.push(Ok(Frame::data(chunk(&format!("w{i} ")))));
            }
            frames.push(cut());
        }
        _ => {
            for i in 0..WORDS {
                frames.push(Ok(Frame::data(chunk(&format!("w{i} ")))));
            }
            frames.push(Ok(Frame::data(Bytes::from_static(
                b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"soak\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
            ))));
        }
    }
    StreamBody::new(ready_frames(frames)).boxed()
}

/// The frames, each its own poll; a break waits a moment first, so that what came before it
/// is on the wire (a connection that breaks with its last writes still buffered would look like
/// a cut before content).
fn ready_frames(
    frames: Vec<Result<Frame<Bytes>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send {
    struct S {
        frames: std::iter::Peekable<std::vec::IntoIter<Result<Frame<Bytes>, std::io::Error>>>,
        pause: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    }
    impl futures_core::Stream for S {
        type Item = Result<Frame<Bytes>, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            if matches!(self.frames.peek(), Some(Err(_))) {
                let pause = self
                    .pause
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(20))));
                if pause.as_mut().poll(cx).is_pending() {
                    return std::task::Poll::Pending;
                }
            }
            std::task::Poll::Ready(self.frames.next())
        }
    }
    S {
        frames: frames.into_iter().peekable(),
        pause: None,
    }
}

async fn serve_one(
    up: Arc<Upstream>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let stream = body.windows(13).any(|w| w == b"\"stream\":true");
    let fault = if up.faulty {
        up.rng.fault()
    } else {
        Fault::None
    };
    let index = FAULTS.iter().position(|f| *f == fault).unwrap_or(0);
    up.injected[index].fetch_add(1, Ordering::Relaxed);
    let json = |status: u16, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed())
            .map_err(std::io::Error::other)
    };
    match fault {
        Fault::RateLimited => {
            let mut r = json(429, r#"{"error":{"message":"slow down"}}"#.into())?;
            r.headers_mut()
                .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
            return Ok(r);
        }
        Fault::ServerError => return json(500, r#"{"error":{"message":"injected"}}"#.into()),
        Fault::Reset => return Err(std::io::Error::other("injected reset")),
        Fault::Late => tokio::time::sleep(Duration::from_millis(1500)).await,
        _ => {}
    }
    if stream {
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(stream_body(fault))
            .map_err(std::io::Error::other);
    }
    json(
        200,
        format!(
            r#"{{"id":"c","object":"chat.completion","created":1,"model":"soak","choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"finish_reason":"stop"}}]}}"#,
            words()
        ),
    )
}

async fn start_upstream(faulty: bool, seed: u64) -> anyhow::Result<(SocketAddr, Arc<Upstream>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let up = Arc::new(Upstream {
        faulty,
        rng: Rng(AtomicU64::new(seed | 1)),
        injected: Default::default(),
    });
    let shared = up.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let up = shared.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| serve_one(up.clone(), req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Ok((addr, up))
}

#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    not_200: AtomicUsize,
    unanswered: AtomicUsize,
    /// Whole streams, and those that ended in an error event after content.
    streams_whole: AtomicUsize,
    streams_error_event: AtomicUsize,
    /// Ended with neither `[DONE]` nor an error event.
    streams_silent_cut: AtomicUsize,
    duplicated: AtomicUsize,
    wrong_content: AtomicUsize,
}

/// The content of a chat stream's deltas, in order.
fn stream_content(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let Some(at) = data.find("\"content\":\"") else {
            continue;
        };
        let rest = &data[at + 11..];
        if let Some(end) = rest.find('"') {
            out.push_str(&rest[..end]);
        }
    }
    out
}

async fn one(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    gateway: SocketAddr,
    stream: bool,
    tally: &Tally,
) {
    let body = format!(
        r#"{{"model":"soak","messages":[{{"role":"user","content":"hi"}}]{}}}"#,
        if stream { r#","stream":true"# } else { "" }
    );
    let req = Request::post(format!("http://{gateway}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .body(Full::new(Bytes::from(body)));
    let Ok(req) = req else { return };
    let answer = tokio::time::timeout(Duration::from_secs(60), async {
        let resp = client.request(req).await.ok()?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await.ok()?.to_bytes();
        Some((status, bytes))
    })
    .await;
    let Ok(Some((status, bytes))) = answer else {
        tally.unanswered.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if status != 200 {
        tally.not_200.fetch_add(1, Ordering::Relaxed);
        return;
    }
    tally.ok.fetch_add(1, Ordering::Relaxed);
    let text = String::from_utf8_lossy(&bytes);
    let want = words();
    if stream {
        let content = stream_content(&text);
        if text.trim_end().ends_with("data: [DONE]") {
            tally.streams_whole.fetch_add(1, Ordering::Relaxed);
            if content != want {
                if content.len() > want.len() {
                    tally.duplicated.fetch_add(1, Ordering::Relaxed);
                } else {
                    tally.wrong_content.fetch_add(1, Ordering::Relaxed);
                }
            }
        } else if text.contains("data: {\"error\"") {
            tally.streams_error_event.fetch_add(1, Ordering::Relaxed);
            if !want.starts_with(&content) {
                tally.duplicated.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            tally.streams_silent_cut.fetch_add(1, Ordering::Relaxed);
        }
    } else if text.matches("w0 ").count() != 1 || !text.contains(&want) {
        tally.wrong_content.fetch_add(1, Ordering::Relaxed);
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (a, up_a) = start_upstream(true, args.seed).await?;
    let (b, up_b) = start_upstream(true, args.seed.wrapping_mul(31)).await?;
    let (c, up_c) = start_upstream(false, 1).await?;
    let dir = std::env::temp_dir().join(format!("switchboard-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("soak.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
request_timeout_s = 20

[routing]
first_byte_timeout_s = 1
max_attempts = 4
network_failure_threshold = 2

[cooldown]
rate_limited = 2
server_error = 2
timeout = 2
network_error = 2

[[providers]]
name = "flaky-a"
base_url = "http://{a}"
weight = 45
models = ["soak"]

[[providers]]
name = "flaky-b"
base_url = "http://{b}"
weight = 45
models = ["soak"]

[[providers]]
name = "healthy"
base_url = "http://{c}"
weight = 10
models = ["soak"]

[[models]]
name = "soak"

[[client_keys]]
name = "soak"
key = "{CLIENT_KEY}"
"#
        ),
    )?;
    let (mut child, gateway) =
        gateway::spawn(&args.gateway, &config, &dir, &[("RUST_LOG", "warn")])?;
    let pid = child.id();
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency)
        .build_http::<Full<Bytes>>();
    let tally = Arc::new(Tally::default());
    // A short warm-up, so "before" is the gateway at work, not just started.
    for i in 0..64 {
        one(&client, gateway, i % 2 == 0, &Tally::default()).await;
    }
    let rss_before = proc_stats::rss_kib(pid)?;
    let fds_before = open_fds(pid);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let peak = Arc::new((AtomicU64::new(0), AtomicUsize::new(0)));
    // RSS at the end of each minute of load: flat, or growing with the requests served.
    let by_minute = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let sampler = {
        let (peak, by_minute) = (peak.clone(), by_minute.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(rss) = proc_stats::rss_kib(pid) {
                    peak.0.fetch_max(rss, Ordering::Relaxed);
                    if let Ok(mut m) = by_minute.lock()
                        && started.elapsed() >= Duration::from_secs(60 * (m.len() as u64 + 1))
                    {
                        m.push(rss);
                    }
                }
                peak.1.fetch_max(open_fds(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, tally, next) = (client.clone(), tally.clone(), next.clone());
        let total = args.requests;
        // Each worker's share of the rate: one request per `pace` at most.
        let pace = Duration::from_secs_f64(args.concurrency as f64 / args.rate.max(1.0));
        workers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(pace);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                one(&client, gateway, i % 2 == 0, &tally).await;
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let took = started.elapsed();
    sampler.abort();
    drop(client);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = proc_stats::rss_kib(pid)?;
    let fds_after = open_fds(pid);
    let _ = child.kill();
    let _ = child.wait();

    let n = |a: &AtomicUsize| a.load(Ordering::Relaxed);
    let injected: Vec<String> = FAULTS
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, f)| format!("{f:?} {}", n(&up_a.injected[i]) + n(&up_b.injected[i])))
        .collect();
    let faults: usize = (1..FAULTS.len())
        .map(|i| n(&up_a.injected[i]) + n(&up_b.injected[i]))
        .sum();
    let upstream_requests: usize = [&up_a, &up_b, &up_c]
        .iter()
        .map(|u| u.injected.iter().map(n).sum::<usize>())
        .sum();
    println!(
        "# Switchboard soak: {} requests (half streamed) at concurrency {}, {} a second, seed {}\n",
        args.requests, args.concurrency, args.rate, args.seed
    );
    println!("| measure | value |\n|---|---:|");
    println!("| time | {:.1} s |", took.as_secs_f64());
    println!("| upstream requests (attempts) | {upstream_requests} |");
    println!("| faults injected | {faults} ({}) |", injected.join(", "));
    println!("| answered 200 | {} |", n(&tally.ok));
    println!("| answers not 200 | {} |", n(&tally.not_200));
    println!("| never answered | {} |", n(&tally.unanswered));
    println!("| streams whole | {} |", n(&tally.streams_whole));
    println!(
        "| streams ended by an error event (cut after content) | {} |",
        n(&tally.streams_error_event)
    );
    println!(
        "| streams ended with neither end marker nor error event | {} |",
        n(&tally.streams_silent_cut)
    );
    println!("| duplicated content | {} |", n(&tally.duplicated));
    println!("| wrong content | {} |", n(&tally.wrong_content));
    println!(
        "| RSS before / peak / after | {:.1} / {:.1} / {:.1} MB |",
        rss_before as f64 / 1024.0,
        peak.0.load(Ordering::Relaxed) as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    if let Ok(m) = by_minute.lock()
        && !m.is_empty()
    {
        let mb: Vec<String> = m
            .iter()
            .map(|k| format!("{:.1}", *k as f64 / 1024.0))
            .collect();
        println!("| RSS after each minute | {} MB |", mb.join(", "));
    }
    println!(
        "| open descriptors before / peak / after | {fds_before} / {} / {fds_after} |",
        peak.1.load(Ordering::Relaxed)
    );
    let lost = n(&tally.not_200)
        + n(&tally.unanswered)
        + n(&tally.streams_silent_cut)
        + n(&tally.duplicated)
        + n(&tally.wrong_content);
    let _ = std::fs::remove_dir_all(&dir);
    if lost > 0 {
        bail!("{lost} requests lost or damaged while a healthy provider was there");
    }
    Ok(())
}
