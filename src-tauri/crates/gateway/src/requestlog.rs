//! The request log's writer seam: handlers hand a record to a bounded channel and move on; a
//! background task does the writing. Until the log database lands, the task writes an access
//! line through `tracing` (target `switchboard::access`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::Protocol;

#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub at: SystemTime,
    pub client: Option<Arc<str>>,
    pub protocol: Protocol,
    pub endpoint: &'static str,
    pub model: Option<String>,
    pub provider: Option<Arc<str>>,
    pub upstream_model: Option<Arc<str>>,
    pub status: u16,
    pub attempts: u32,
    pub stream: bool,
    pub latency: Duration,
    pub ttfb: Option<Duration>,
    pub bytes_out: u64,
    pub error: Option<String>,
}

impl RequestRecord {
    pub fn new(protocol: Protocol, endpoint: &'static str) -> Self {
        Self {
            at: SystemTime::now(),
            client: None,
            protocol,
            endpoint,
            model: None,
            provider: None,
            upstream_model: None,
            status: 0,
            attempts: 0,
            stream: false,
            latency: Duration::ZERO,
            ttfb: None,
            bytes_out: 0,
            error: None,
        }
    }
}

#[derive(Clone)]
pub struct RequestLog {
    tx: mpsc::Sender<RequestRecord>,
    dropped: Arc<AtomicU64>,
}

const CAPACITY: usize = 8192;

impl RequestLog {
    pub fn spawn() -> (Self, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<RequestRecord>(CAPACITY);
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(256);
            while rx.recv_many(&mut batch, 256).await > 0 {
                for r in batch.drain(..) {
                    write_access_line(&r);
                }
            }
        });
        (
            Self {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
            },
            task,
        )
    }

    /// Never waits: when the writer falls this far behind, the record is counted and dropped
    /// rather than slowing every request down.
    pub fn record(&self, r: RequestRecord) {
        if self.tx.try_send(r).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn write_access_line(r: &RequestRecord) {
    tracing::info!(
        target: "switchboard::access",
        endpoint = r.endpoint,
        client = r.client.as_deref().unwrap_or("-"),
        model = r.model.as_deref().unwrap_or("-"),
        provider = r.provider.as_deref().unwrap_or("-"),
        upstream_model = r.upstream_model.as_deref().unwrap_or("-"),
        status = r.status,
        attempts = r.attempts,
        stream = r.stream,
        latency_us = r.latency.as_micros() as u64,
        ttfb_us = r.ttfb.map_or(0, |t| t.as_micros() as u64),
        bytes = r.bytes_out,
        error = r.error.as_deref().unwrap_or(""),
        "request"
    );
}
