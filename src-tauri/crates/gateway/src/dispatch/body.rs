//! The upstream's body on its way to the client: forwarded chunk by chunk as it arrives, with an
//! idle timeout, and a request-log record sent when it ends, however it ends.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use tokio::time::Sleep;

use crate::breaker::FailureKind;
use crate::dispatch::error_chain;
use crate::dispatch::failover::UpstreamStream;
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

/// Told how the body ended after it started: `None` for a clean end, else why it failed, so the
/// breakers and health records see failures after the first byte too.
pub type OnEnd = Box<dyn FnOnce(Option<(FailureKind, String)>) + Send>;

pub struct ProxyBody {
    held: std::vec::IntoIter<Bytes>,
    upstream: UpstreamStream,
    on_end: Option<OnEnd>,
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
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        held: Vec<Bytes>,
        upstream: UpstreamStream,
        on_end: OnEnd,
        mode: BodyMode,
        idle: Duration,
        provider: Arc<str>,
        started: Instant,
        log: RequestLog,
        record: RequestRecord,
    ) -> Self {
        Self {
            held: held.into_iter(),
            upstream,
            on_end: Some(on_end),
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

    fn finish(&mut self, error: Option<String>, kind: Option<FailureKind>) {
        self.done = true;
        if let Some(on_end) = self.on_end.take() {
            on_end(kind.zip(error.clone()));
        }
        if let Some(mut r) = self.record.take() {
            r.latency = self.started.elapsed();
            if error.is_some() {
                r.error = error;
            }
            self.log.record(r);
        }
    }

    fn fail(
        &mut self,
        e: GatewayError,
        kind: FailureKind,
    ) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        let message = e.to_string();
        tracing::warn!(provider = %self.provider, "upstream stream failed: {message}");
        self.finish(Some(message.clone()), Some(kind));
        match self.mode {
            BodyMode::EventStream => {
                let separator = self.tail != *b"\n\n";
                Poll::Ready(Some(Ok(openai::stream_error_event(&e, separator))))
            }
            BodyMode::Plain => Poll::Ready(Some(Err(std::io::Error::other(message)))),
        }
    }
}

impl ProxyBody {
    fn note(&mut self, chunk: &Bytes) {
        if let Some(r) = self.record.as_mut() {
            if r.ttfb.is_none() {
                r.ttfb = Some(self.started.elapsed());
            }
            r.bytes_out += chunk.len() as u64;
        }
        match chunk.len() {
            0 => {}
            1 => self.tail = [self.tail[1], chunk[0]],
            n => self.tail = [chunk[n - 2], chunk[n - 1]],
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
        if let Some(chunk) = this.held.next() {
            this.note(&chunk);
            return Poll::Ready(Some(Ok(chunk)));
        }
        match this.upstream.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.note(&chunk);
                let deadline = tokio::time::Instant::now() + this.idle;
                this.idle_timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                let e = GatewayError::UpstreamUnreachable {
                    provider: this.provider.to_string(),
                    detail: format!("the stream broke off: {}", error_chain(&e)),
                };
                this.fail(e, FailureKind::Network)
            }
            Poll::Ready(None) => {
                this.finish(None, None);
                Poll::Ready(None)
            }
            Poll::Pending => match this.idle_timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    let e = GatewayError::UpstreamTimeout {
                        provider: this.provider.to_string(),
                        after: this.idle,
                        setting: "routing.stream_idle_timeout_s",
                    };
                    this.fail(e, FailureKind::Timeout)
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        if !self.done {
            // The client left: not the upstream's failure, so no failure kind.
            self.finish(Some("the client went away before the end".into()), None);
        }
    }
}
