//! The upstream's body on its way to the client: forwarded chunk by chunk as it arrives, with an
//! idle timeout, and a request-log record sent when it ends, however it ends.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use tokio::time::Sleep;

use crate::dispatch::error_chain;
use crate::error::GatewayError;
use crate::protocol::openai;
use crate::requestlog::{RequestLog, RequestRecord};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyMode {
    /// Server-sent events: a failure becomes a final error event, then the stream ends.
    EventStream,
    /// A plain body: a failure aborts the connection, so the client cannot mistake a truncated
    /// body for a whole one.
    Plain,
}

type Upstream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

pub struct ProxyBody {
    upstream: Upstream,
    mode: BodyMode,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    provider: Arc<str>,
    /// The last two bytes sent, to know whether an error event needs a blank line first.
    tail: [u8; 2],
    done: bool,
    started: Instant,
    log: RequestLog,
    record: Option<RequestRecord>,
}

impl ProxyBody {
    pub fn new(
        resp: reqwest::Response,
        mode: BodyMode,
        idle: Duration,
        provider: Arc<str>,
        started: Instant,
        log: RequestLog,
        record: RequestRecord,
    ) -> Self {
        Self {
            upstream: Box::pin(resp.bytes_stream()),
            mode,
            idle,
            idle_timer: Box::pin(tokio::time::sleep(idle)),
            provider,
            tail: *b"\n\n",
            done: false,
            started,
            log,
            record: Some(record),
        }
    }

    fn finish(&mut self, error: Option<String>) {
        self.done = true;
        if let Some(mut r) = self.record.take() {
            r.latency = self.started.elapsed();
            if error.is_some() {
                r.error = error;
            }
            self.log.record(r);
        }
    }

    fn fail(&mut self, e: GatewayError) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        let message = e.to_string();
        tracing::warn!(provider = %self.provider, "upstream stream failed: {message}");
        self.finish(Some(message.clone()));
        match self.mode {
            BodyMode::EventStream => {
                let separator = self.tail != *b"\n\n";
                Poll::Ready(Some(Ok(openai::stream_error_event(&e, separator))))
            }
            BodyMode::Plain => Poll::Ready(Some(Err(std::io::Error::other(message)))),
        }
    }
}

impl Stream for ProxyBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match this.upstream.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(r) = this.record.as_mut() {
                    if r.ttfb.is_none() {
                        r.ttfb = Some(this.started.elapsed());
                    }
                    r.bytes_out += chunk.len() as u64;
                }
                match chunk.len() {
                    0 => {}
                    1 => this.tail = [this.tail[1], chunk[0]],
                    n => this.tail = [chunk[n - 2], chunk[n - 1]],
                }
                let deadline = tokio::time::Instant::now() + this.idle;
                this.idle_timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                let e = GatewayError::UpstreamUnreachable {
                    provider: this.provider.to_string(),
                    detail: format!("the stream broke off: {}", error_chain(&e)),
                };
                this.fail(e)
            }
            Poll::Ready(None) => {
                this.finish(None);
                Poll::Ready(None)
            }
            Poll::Pending => match this.idle_timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    let e = GatewayError::UpstreamTimeout {
                        provider: this.provider.to_string(),
                        after: this.idle,
                    };
                    this.fail(e)
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        if !self.done {
            self.finish(Some("the client went away before the end".into()));
        }
    }
}
