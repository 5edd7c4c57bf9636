//! The upstream's body on its way to the client: forwarded chunk by chunk as it arrives, with an
//! idle timeout, and a request-log record sent when it ends, however it ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::time::Sleep;

use crate::breaker::FailureKind;
use crate::dispatch::error_chain;
use crate::dispatch::failover::UpstreamStream;
use crate::error::GatewayError;
use crate::protocol::ErrorShape;
use crate::protocol::convert::{SseToJsonArray, StreamConverter};
use crate::protocol::errors;
use crate::protocol::usage::{HiddenUsage, UsageScan};
use crate::requestlog::Recorder;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyMode {
    /// Server-sent events: a failure becomes a final error event, then the stream ends.
    EventStream,
    /// A plain body: a failure aborts the connection, so the client cannot mistake a truncated
    /// body for a whole one.
    Plain,
}

/// What the body becomes on its way: passed through, or converted for the client.
pub enum Transform {
    /// Another protocol's stream, converted event by event.
    Convert(Box<StreamConverter>),
    /// A Gemini stream re-framed as one JSON array.
    JsonArray(SseToJsonArray),
    /// An OpenAI chat stream with the usage the gateway asked for taken out again.
    HideUsage(HiddenUsage),
}

impl Transform {
    fn feed(&mut self, bytes: &[u8], out: &mut BytesMut) {
        match self {
            Self::Convert(c) => c.feed(bytes, out),
            Self::JsonArray(a) => a.feed(bytes, out),
            Self::HideUsage(h) => h.feed(bytes, out),
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        match self {
            Self::Convert(c) => c.finish(out),
            Self::JsonArray(a) => a.finish(out),
            Self::HideUsage(h) => h.finish(out),
        }
    }

    fn fail(&mut self, e: &GatewayError, out: &mut BytesMut) {
        match self {
            Self::Convert(c) => c.fail(e, out),
            Self::JsonArray(a) => a.fail(e, out),
            // The stream stays the upstream's: its error event is written as for one passed
            // through.
            Self::HideUsage(_) => {}
        }
    }

    /// Whether the upstream stream ended with its own end marker.
    fn complete(&self) -> bool {
        match self {
            Self::Convert(c) => c.complete(),
            Self::JsonArray(_) | Self::HideUsage(_) => true,
        }
    }

    /// The upstream's own events reach the client (watched for their end marker).
    fn passes_events(&self) -> bool {
        matches!(self, Self::HideUsage(_))
    }
}

/// How the body is framed for the client.
pub struct Framing {
    pub mode: BodyMode,
    /// The client's protocol, for the error event that ends a failed stream.
    pub shape: ErrorShape,
    pub transform: Option<Transform>,
    /// The length the client was told: once it is sent the body is whole, since the server
    /// stops asking for more (and would otherwise log a complete answer as abandoned).
    pub length: Option<u64>,
    /// A native stream's end markers (`[DONE]`, `message_stop`, ...): one that ends without
    /// any of them broke off, however cleanly the connection closed.
    pub end_markers: &'static [&'static [u8]],
    /// The upstream's protocol, whose usage the body reports.
    pub upstream: crate::protocol::Api,
}

/// What a stream of each API ends with, when it ends as it should: its end event, or the
/// finish reason that comes just before it (some relays leave `[DONE]` out; the converted
/// path accepts the same). A Gemini stream has no end event: its last chunk carries the finish
/// reason. Written compact and with a space, as upstreams serialize both ways.
pub fn end_markers(api: crate::protocol::Api) -> &'static [&'static [u8]] {
    use crate::protocol::Api;
    match api {
        Api::Chat => &[b"[DONE]", b"\"finish_reason\":\"", b"\"finish_reason\": \""],
        Api::Responses => &[
            b"response.completed",
            b"response.incomplete",
            b"response.failed",
        ],
        Api::Messages => &[
            b"message_stop",
            b"\"stop_reason\":\"",
            b"\"stop_reason\": \"",
        ],
        Api::Gemini => &[b"finishReason"],
        Api::Embeddings | Api::Images | Api::CountTokens => &[],
    }
}

/// Told how the body ended after it started: `None` for a clean end, else why it failed, so the
/// breakers and health records see failures after the first byte too.
pub type OnEnd = Box<dyn FnOnce(Option<(FailureKind, String)>) + Send>;

pub struct ProxyBody {
    held: std::vec::IntoIter<Bytes>,
    upstream: UpstreamStream,
    on_end: Option<OnEnd>,
    mode: BodyMode,
    shape: ErrorShape,
    transform: Option<Transform>,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    provider: Arc<str>,
    /// The last two bytes sent, to know whether an error event needs a blank line first.
    tail: [u8; 2],
    length: Option<u64>,
    sent: u64,
    end: EndWatch,
    /// A Gemini stream's error object, held to go out as a read of its own.
    pending: Option<Bytes>,
    done: bool,
    started: Instant,
    /// The request's record: recorded (dropped) when the body ends, however it ends.
    record: Option<Recorder>,
    /// Ready when the shutdown grace period is over: the stream ends with an error event.
    cut: Pin<Box<dyn Future<Output = ()> + Send>>,
    usage: UsageScan,
    /// The upstream body's first bytes (shared, not copied), for an estimate of its tokens
    /// should it report none; and its length.
    sample: Vec<Bytes>,
    sampled: usize,
    upstream_len: u64,
    responses_stream: bool,
}

/// Resolves once `flag` turns true (never, if its sender is gone without that).
fn cut_signal(
    mut flag: tokio::sync::watch::Receiver<bool>,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        if flag.wait_for(|cut| *cut).await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}

impl ProxyBody {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        held: Vec<Bytes>,
        upstream: UpstreamStream,
        on_end: OnEnd,
        framing: Framing,
        idle: Duration,
        provider: Arc<str>,
        record: Recorder,
        cut: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self {
            held: held.into_iter(),
            upstream,
            on_end: Some(on_end),
            mode: framing.mode,
            shape: framing.shape,
            transform: framing.transform,
            idle,
            idle_timer: Box::pin(tokio::time::sleep(idle)),
            provider,
            tail: *b"\n\n",
            length: framing.length,
            sent: 0,
            end: EndWatch::new(if framing.mode == BodyMode::Plain {
                &[]
            } else {
                framing.end_markers
            }),
            pending: None,
            done: false,
            started: record.started(),
            record: Some(record),
            cut: cut_signal(cut),
            usage: UsageScan::new(framing.upstream.family()),
            sample: Vec::new(),
            sampled: 0,
            upstream_len: 0,
            responses_stream: framing.upstream == crate::protocol::Api::Responses
                && framing.mode == BodyMode::EventStream,
        }
    }

    /// A chunk as the upstream sent it: its usage read, its start kept for an estimate.
    fn watch(&mut self, chunk: &Bytes) {
        self.usage.feed(chunk);
        self.upstream_len += chunk.len() as u64;
        if self.sampled < crate::tokens::KEEP_ANSWER {
            let take = chunk.len().min(crate::tokens::KEEP_ANSWER - self.sampled);
            self.sample.push(chunk.slice(..take));
            self.sampled += take;
        }
    }

    fn finish(&mut self, error: Option<&GatewayError>, kind: Option<FailureKind>) {
        self.done = true;
        if let Some(on_end) = self.on_end.take() {
            on_end(kind.zip(error.map(|e| e.to_string())));
        }
        // Recorded as it drops, here.
        if let Some(mut r) = self.record.take() {
            r.settle_tokens(
                self.usage.tokens(),
                std::mem::take(&mut self.sample),
                self.upstream_len,
                self.responses_stream,
            );
            if let Some(e) = error {
                r.errored(e);
            }
        }
    }

    fn fail(
        &mut self,
        e: GatewayError,
        kind: FailureKind,
    ) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        tracing::warn!(provider = %self.provider, "upstream stream failed: {e}");
        self.finish(Some(&e), Some(kind));
        match (self.mode, self.transform.as_mut()) {
            (BodyMode::EventStream, Some(t)) if !t.passes_events() => {
                let mut out = BytesMut::new();
                t.fail(&e, &mut out);
                let out = self.split_error(out.freeze());
                Poll::Ready(Some(Ok(out)))
            }
            (BodyMode::EventStream, _) => {
                let separator = self.tail != *b"\n\n";
                Poll::Ready(Some(Ok(errors::stream_event(self.shape, &e, separator))))
            }
            (BodyMode::Plain, _) => Poll::Ready(Some(Err(std::io::Error::other(e.to_string())))),
        }
    }
}

impl ProxyBody {
    fn split_error(&mut self, chunk: Bytes) -> Bytes {
        if self.shape != ErrorShape::Gemini {
            return chunk;
        }
        let (first, rest) = split_error_object(chunk);
        self.pending = rest;
        first
    }

    fn note(&mut self, chunk: &Bytes) {
        if let Some(r) = self.record.as_mut() {
            if r.ttfb.is_none() {
                r.ttfb = Some(self.started.elapsed());
            }
            r.bytes_out += chunk.len() as u64;
            r.keep_answer(chunk);
        }
        match chunk.len() {
            0 => {}
            1 => self.tail = [self.tail[1], chunk[0]],
            n => self.tail = [chunk[n - 2], chunk[n - 1]],
        }
    }
}

/// Watches a passed-through stream for its end marker, also one cut across two chunks.
struct EndWatch {
    markers: &'static [&'static [u8]],
    /// A marker went by (or none is expected).
    seen: bool,
    /// The last bytes of the previous chunk.
    carry: Vec<u8>,
}

impl EndWatch {
    fn new(markers: &'static [&'static [u8]]) -> Self {
        Self {
            markers,
            seen: markers.is_empty(),
            carry: Vec::new(),
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        if self.seen {
            return;
        }
        let found = |hay: &[u8]| {
            self.markers
                .iter()
                .any(|m| memchr::memmem::find(hay, m).is_some())
        };
        if found(chunk) {
            self.seen = true;
            return;
        }
        // The carry and the chunk's head, where a cut marker would be; then the carry becomes
        // the last bytes of both (fewer than the longest marker).
        let keep = self.markers.iter().map(|m| m.len()).max().unwrap_or(1) - 1;
        let mut seam = std::mem::take(&mut self.carry);
        seam.extend_from_slice(&chunk[..chunk.len().min(keep)]);
        if found(&seam) {
            self.seen = true;
            return;
        }
        if chunk.len() >= keep {
            seam.clear();
            seam.extend_from_slice(&chunk[chunk.len() - keep..]);
        } else {
            let drop = seam.len().saturating_sub(keep);
            seam.drain(..drop);
        }
        self.carry = seam;
    }
}

/// Google's SDKs raise on a stream error only when the error object is a network read of its
/// own (`@google/genai` parses each read whole): one that conversion wrote after other events
/// is split off, to be sent next. A data frame ends with a blank line and an error object with
/// one newline, so every other chunk costs two byte comparisons.
fn split_error_object(chunk: Bytes) -> (Bytes, Option<Bytes>) {
    if !chunk.ends_with(b"}\n") || chunk.ends_with(b"\n\n") {
        return (chunk, None);
    }
    // The object is one line (JSON as serialized here has no newline in it).
    match chunk[..chunk.len() - 1].iter().rposition(|b| *b == b'\n') {
        Some(i) if chunk.get(i + 1) == Some(&b'{') => {
            let rest = chunk.slice(i + 1..);
            (chunk.slice(..i + 1), Some(rest))
        }
        _ => (chunk, None),
    }
}

impl Stream for ProxyBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(p) = this.pending.take() {
            this.note(&p);
            return Poll::Ready(Some(Ok(p)));
        }
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let chunk = if let Some(chunk) = this.held.next() {
                chunk
            } else {
                match this.upstream.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Ok(chunk))) => {
                        let deadline = tokio::time::Instant::now() + this.idle;
                        this.idle_timer.as_mut().reset(deadline);
                        chunk
                    }
                    Poll::Ready(Some(Err(e))) => {
                        let e = GatewayError::UpstreamUnreachable {
                            provider: this.provider.to_string(),
                            detail: format!("the stream broke off: {}", error_chain(&e)),
                        };
                        return this.fail(e, FailureKind::Network);
                    }
                    Poll::Ready(None) => {
                        let passed = this.transform.as_ref().is_none_or(Transform::passes_events);
                        if passed && !this.end.seen {
                            // Passed through, it would end as if whole.
                            let e = GatewayError::UpstreamUnreachable {
                                provider: this.provider.to_string(),
                                detail: "the stream ended without its end marker".into(),
                            };
                            return this.fail(e, FailureKind::ServerError);
                        }
                        if this.transform.as_ref().is_some_and(|t| !t.complete()) {
                            // Converted, the client would see an invented clean ending.
                            let e = GatewayError::UpstreamUnreachable {
                                provider: this.provider.to_string(),
                                detail: "the stream ended without its end marker".into(),
                            };
                            return this.fail(e, FailureKind::ServerError);
                        }
                        let mut out = BytesMut::new();
                        if let Some(t) = this.transform.as_mut() {
                            t.finish(&mut out);
                        }
                        this.finish(None, None);
                        if out.is_empty() {
                            return Poll::Ready(None);
                        }
                        let out = out.freeze();
                        this.note(&out);
                        return Poll::Ready(Some(Ok(out)));
                    }
                    Poll::Pending => {
                        if this.cut.as_mut().poll(cx).is_ready() {
                            // Not the provider's doing: nothing for its breaker.
                            this.on_end = None;
                            return this.fail(GatewayError::ShuttingDown, FailureKind::Network);
                        }
                        return match this.idle_timer.as_mut().poll(cx) {
                            Poll::Ready(()) => {
                                let e = GatewayError::UpstreamTimeout {
                                    provider: this.provider.to_string(),
                                    after: this.idle,
                                    setting: "routing.stream_idle_timeout_s",
                                };
                                this.fail(e, FailureKind::Timeout)
                            }
                            Poll::Pending => Poll::Pending,
                        };
                    }
                }
            };
            this.watch(&chunk);
            let chunk = match this.transform.as_mut() {
                None => {
                    this.end.feed(&chunk);
                    chunk
                }
                Some(t) => {
                    if t.passes_events() {
                        this.end.feed(&chunk);
                    }
                    let mut out = BytesMut::with_capacity(chunk.len() + 64);
                    t.feed(&chunk, &mut out);
                    if out.is_empty() {
                        // Half an event: nothing for the client yet.
                        continue;
                    }
                    this.split_error(out.freeze())
                }
            };
            this.note(&chunk);
            this.sent += chunk.len() as u64;
            if this.length.is_some_and(|len| this.sent >= len) {
                this.finish(None, None);
            }
            return Poll::Ready(Some(Ok(chunk)));
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        if !self.done {
            // The client left: not the upstream's failure, so no failure kind.
            self.finish(Some(&GatewayError::ClientClosed), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_marker_is_seen_even_cut_in_two() {
        let markers = end_markers(crate::protocol::Api::Chat);
        let mut w = EndWatch::new(markers);
        w.feed(b"data: {\"x\":1}\n\n");
        assert!(!w.seen);
        w.feed(b"data: [DO");
        w.feed(b"NE]\n\n");
        assert!(w.seen);
        let mut w = EndWatch::new(end_markers(crate::protocol::Api::Messages));
        for b in b"event: message_stop\n" {
            w.feed(std::slice::from_ref(b));
        }
        assert!(w.seen, "fed a byte at a time");
        assert!(EndWatch::new(&[]).seen, "nothing to wait for");
    }

    #[test]
    fn a_gemini_error_object_after_events_goes_on_its_own() {
        let both =
            Bytes::from_static(b"data: {\"candidates\":[]}\r\n\r\n{\"error\":{\"code\":502}}\n");
        let (first, rest) = split_error_object(both);
        assert_eq!(&first[..], b"data: {\"candidates\":[]}\r\n\r\n");
        assert_eq!(rest.as_deref(), Some(&b"{\"error\":{\"code\":502}}\n"[..]));
        for whole in [
            &b"data: {\"candidates\":[]}\r\n\r\n"[..],
            b"{\"error\":{\"code\":502}}\n",
            b"[{\"a\":1},\r\n{\"error\":{}}]",
        ] {
            let (first, rest) = split_error_object(Bytes::copy_from_slice(whole));
            assert_eq!(&first[..], whole);
            assert!(rest.is_none());
        }
    }
}
