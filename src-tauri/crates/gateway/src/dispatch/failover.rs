//! The failover loop: pick a candidate, send, classify the outcome, feed the breakers, and try
//! the next candidate (never the one that just failed) until one answers, `max_attempts` is
//! reached or the request's deadline passes. Retries happen only before anything reached the
//! client: for a stream, the preamble is held until its first content arrives.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::HeaderMap;

use super::{Upstream, error_chain, post_json};
use std::sync::atomic::Ordering;

use crate::balance;
use crate::breaker::Admission;
use crate::catalog::{Candidate, Provider, Route, Snapshot};
use crate::config::Strategy;
use crate::engine::Engine;
use crate::error::GatewayError;
use crate::health::failure_kind;
use crate::protocol::Api;
use crate::protocol::first_content::{Scan, first_content as scan_first_content};
use crate::requestlog::AttemptRecord;

/// How much of a stream is held while waiting for its first content.
const MAX_PREAMBLE: usize = 256 * 1024;
/// The largest plain reply read whole (to look for retry keywords, or to convert it).
const MAX_WHOLE_REPLY: usize = 64 << 20;

pub type UpstreamStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

pub struct Success {
    pub candidate: Candidate,
    /// The API the upstream was called with, and whether the request was converted to it.
    pub api: Api,
    pub converted: bool,
    pub status: http::StatusCode,
    pub content_type: Option<http::HeaderValue>,
    /// The upstream's body length, when it sent one: passing it on spares the client chunked
    /// framing (and the gateway a write per response).
    pub content_length: Option<u64>,
    /// Bytes already read from the upstream (a stream's preamble and first content, or a whole
    /// body checked for retry keywords), to send before the rest.
    pub held: Vec<Bytes>,
    pub rest: UpstreamStream,
    pub ttfb: Option<Duration>,
    /// When a stream's first content came (its preamble held until then).
    pub first_content: Option<Instant>,
}

pub struct Failure {
    pub error: GatewayError,
    pub candidate: Option<Candidate>,
}

pub struct Call<'a> {
    pub route: &'a Route,
    pub client: Arc<str>,
    pub session: Option<&'a str>,
    pub stream: bool,
    pub headers: &'a HeaderMap,
    /// Whether a provider can serve this request at all (natively or converted).
    pub accepts: &'a (dyn Fn(&Provider) -> bool + Sync),
    /// What the request needs of a model (images, tools, a context window).
    pub needs: crate::capabilities::Needs,
    /// The request for one candidate; `as_chat`: converted to chat even where the provider
    /// would take the client's API natively (a Responses request to a chat-only relay).
    pub prepare: &'a (dyn Fn(&Candidate, bool) -> Result<Upstream, GatewayError> + Sync),
}

/// The candidates' measures at `tick` (`balance::ticks`), each an atomic read from a slot.
pub(crate) struct Slots<'a> {
    pub candidates: &'a [Candidate],
    pub tick: u32,
    pub by_price: Option<arc_swap::Guard<Arc<Vec<u32>>>>,
    /// The route's `sort` factors, and the quotas when one of them is `quota`.
    pub sort: &'a [switchboard_api::sort::SortKey],
    pub quotas: Option<(&'a crate::budget::SpendBook, i64)>,
}

impl<'a> Slots<'a> {
    pub fn of(
        route: &'a crate::catalog::Route,
        tick: u32,
        quotas: &'a crate::budget::SpendBook,
        now_ms: i64,
    ) -> Self {
        let wants_quota = route.strategy == Strategy::Sort
            && route
                .sort
                .iter()
                .any(|k| k.by == switchboard_api::sort::SortBy::Quota)
            && !quotas.is_empty();
        Slots {
            candidates: &route.candidates,
            tick,
            by_price: (route.strategy == Strategy::Cost).then(|| route.by_price.load()),
            sort: &route.sort,
            quotas: wants_quota.then_some((quotas, now_ms)),
        }
    }
}

impl balance::Measures for Slots<'_> {
    fn latency_ms(&self, i: usize) -> Option<f64> {
        self.candidates[i].breaker.live.latency_ms()
    }
    fn in_flight(&self, i: usize) -> u32 {
        self.candidates[i].breaker.live.in_flight()
    }
    fn price(&self, i: usize) -> Option<f64> {
        self.candidates[i].breaker.live.price()
    }
    fn health(&self, i: usize) -> f64 {
        self.candidates[i].breaker.live.health.at(self.tick)
    }
    fn provider_health(&self, i: usize) -> f64 {
        self.candidates[i]
            .provider
            .breaker
            .live
            .health
            .at(self.tick)
    }
    fn by_price(&self) -> Option<&[u32]> {
        self.by_price.as_deref().map(|o| o.as_slice())
    }
    fn quota_left(&self, i: usize) -> f64 {
        match self.quotas {
            Some((book, now)) => {
                let c = &self.candidates[i];
                book.left(&c.provider.name, &c.model, now)
            }
            None => 1.0,
        }
    }
    fn sort_keys(&self) -> &[switchboard_api::sort::SortKey] {
        self.sort
    }
}

pub async fn run(
    engine: &Arc<Engine>,
    snap: &Snapshot,
    call: Call<'_>,
    attempts: &mut Vec<AttemptRecord>,
) -> Result<Success, Failure> {
    let settings = &snap.settings;
    let started = Instant::now();
    let deadline = started + settings.server.request_timeout();
    let candidates = &call.route.candidates;
    let mut tried: Vec<usize> = Vec::new();
    let mut last: Option<Failure> = None;
    let mut rng = fastrand::Rng::new();
    // With active probes on, a cooled-down breaker's trial is the prober's to take, not a
    // user's request.
    let probes = engine.probes_active(settings);
    let now_ms = crate::protocol::unix_now_ms();
    let quotas = engine.log.quotas();
    // A candidate at its quota is skipped like a paused one (not even a last resort: it would
    // only be refused again).
    let open = |c: &Candidate| {
        c.provider.enabled
            && !c.provider.paused
            && (call.accepts)(&c.provider)
            && !quotas.blocked(&c.provider.name, &c.model, now_ms)
    };
    let lacks = |c: &Candidate| {
        if call.needs.any() {
            crate::capabilities::missing(&c.breaker.live.caps.load(), &call.needs)
        } else {
            None
        }
    };
    // A request no open candidate can take is the client's to change: say what it needs,
    // rather than send it where it would fail.
    if call.needs.any()
        && candidates.iter().any(open)
        && !candidates.iter().any(|c| open(c) && lacks(c).is_none())
    {
        let why: Vec<String> = candidates
            .iter()
            .filter(|c| open(c))
            .filter_map(|c| Some(format!("{}/{} {}", c.provider.name, c.model, lacks(c)?)))
            .take(5)
            .collect();
        return Err(Failure {
            error: GatewayError::BadRequest(format!(
                "No provider of '{}' can serve this request: {}.",
                call.route.name,
                why.join("; ")
            )),
            candidate: None,
        });
    }
    let eligible = |c: &Candidate| open(c) && lacks(c).is_none();

    for _ in 0..settings.routing.max_attempts.max(1) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let usable = |i: usize| {
            let c = &candidates[i];
            !tried.contains(&i)
                && eligible(c)
                && if probes {
                    engine.breakers.closed(&c.provider.breaker, &c.breaker)
                } else {
                    engine
                        .breakers
                        .available(&c.provider.breaker, &c.breaker, now)
                }
        };
        let pinned = call
            .session
            .and_then(|id| engine.sticky.session(id))
            .and_then(|pin| {
                (0..candidates.len()).find(|&i| {
                    candidates[i].provider.uid == pin.provider
                        && candidates[i].model == pin.model
                        && usable(i)
                })
            });
        // The sticky model the choice was offered, to tell a sticky pick from a weighted one.
        let offered = std::cell::RefCell::new(None);
        let strategy = call.route.strategy;
        let tick = balance::ticks(now);
        let picked = pinned.map(|i| (i, "session")).or_else(|| {
            let i = balance::pick(
                strategy,
                candidates,
                &call.route.groups,
                usable,
                Slots::of(call.route, tick, quotas, now_ms),
                |uid| {
                    let m = engine.sticky.model(&call.client, uid);
                    offered.replace(m.clone());
                    m
                },
                call.route.turn.fetch_add(1, Ordering::Relaxed),
                &mut rng,
            )?;
            let sticky = offered.borrow().as_ref() == Some(&candidates[i].model);
            Some((i, if sticky { "sticky" } else { strategy.as_str() }))
        });
        let (index, last_resort, chosen_by) = match picked {
            Some((i, why)) => (i, false, why),
            // Everything is cooling down: rather than fail at once, try the highest-weight
            // provider's first candidate (routes keep that order), once; never one whose key
            // was refused, which would only be refused again.
            None if tried.is_empty() => match candidates
                .iter()
                .position(|c| eligible(c) && !c.provider.breaker.until_reset())
            {
                Some(i) => (i, true, "last_resort"),
                None => break,
            },
            None => break,
        };
        let candidate = &candidates[index];
        let (uid, model) = (&candidate.provider.uid, &candidate.model);
        let admission = if last_resort {
            Admission::Allowed
        } else {
            engine.admit(candidate, now)
        };
        if admission == Admission::Refused {
            // Another request took the half-open trial between the check and now.
            tried.push(index);
            continue;
        }
        tried.push(index);
        let _trial = (admission == Admission::Trial).then(|| TrialGuard {
            engine,
            candidate,
            started: now,
        });

        let attempt_started = Instant::now();
        let remaining = deadline.saturating_duration_since(attempt_started);
        // A plain answer's head comes only when the whole answer is ready (a reasoning model
        // may think for minutes): only a stream is held to the first-byte timeout.
        let limit = if call.stream && settings.routing.first_byte_timeout() < remaining {
            (
                settings.routing.first_byte_timeout(),
                "routing.first_byte_timeout_s",
            )
        } else {
            (remaining, "server.request_timeout_s")
        };
        let breaker = match admission {
            _ if last_resort => "open",
            Admission::Trial => "half_open",
            _ => "closed",
        };
        let mut ttfb = None;
        let busy = balance::Busy::enter(&candidate.breaker);
        let outcome = attempt(engine, snap, &call, candidate, limit, &mut ttfb).await;
        let latency = attempt_started.elapsed();
        match outcome {
            Ok(mut success) => {
                // What `latency` compares: time to first content for a stream.
                let measured = success
                    .first_content
                    .map_or(latency, |t| t.saturating_duration_since(attempt_started));
                candidate.breaker.live.observe(measured);
                // In flight until the client has the whole body.
                let rest =
                    std::mem::replace(&mut success.rest, Box::pin(futures_util::stream::empty()));
                success.rest = Box::pin(rest.map(move |chunk| {
                    let _in_flight = &busy;
                    chunk
                }));
                attempts.push(
                    AttemptRecord::ok(candidate, latency, success.status.as_u16())
                        .how(chosen_by, breaker, ttfb),
                );
                if last_resort {
                    engine.reset_breakers(Some(uid), Some(model));
                }
                engine.on_success(candidate, latency, success.ttfb);
                engine
                    .sticky
                    .succeeded(&call.client, call.session, uid, model, Instant::now());
                return Ok(success);
            }
            Err(error) => {
                let message = error.to_string();
                attempts.push(
                    AttemptRecord::failed(candidate, latency, &error).how(chosen_by, breaker, ttfb),
                );
                let Some(kind) = failure_kind(&error) else {
                    // The client's own mistake: every provider would say the same.
                    return Err(Failure {
                        error,
                        candidate: Some(candidate.clone()),
                    });
                };
                engine.on_failure(candidate, &kind, &message, latency);
                engine.sticky.failed(&call.client, call.session, uid, model);
                last = Some(Failure {
                    error,
                    candidate: Some(candidate.clone()),
                });
            }
        }
    }
    Err(last.unwrap_or_else(|| Failure {
        error: GatewayError::NoProvider {
            model: call.route.name.to_string(),
            why: if candidates.is_empty() {
                "no provider lists a model that its rules match".into()
            } else if candidates.iter().any(eligible) {
                "every candidate is cooling down after failures (see GET /api/status)".into()
            } else if let Some(why) = candidates
                .iter()
                .find_map(|c| quotas.why(&c.provider.name, &c.model, now_ms))
            {
                format!("every candidate is at its quota or unavailable ({why})")
            } else {
                "every provider that has it is paused, disabled or does not speak this protocol"
                    .into()
            },
        },
        candidate: None,
    }))
}

/// Frees a half-open trial on the way out, however the attempt ended (its future dropped
/// when the client went away included); a no-op once its outcome was recorded.
pub(crate) struct TrialGuard<'a> {
    pub engine: &'a Engine,
    pub candidate: &'a Candidate,
    pub started: Instant,
}

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        self.engine.release_trial(self.candidate, self.started);
    }
}

/// A 404 that says the route is missing (`Invalid URL`, `Not Found`), not something in it: a
/// Responses server's own 404s name what is missing (a previous response, a stored item, the
/// model) with a `param` or a `code`, and must not teach that it has no Responses API.
fn no_such_route(u: &crate::error::UpstreamError) -> bool {
    if u.status != http::StatusCode::NOT_FOUND || u.param.is_some() {
        return false;
    }
    if u.code.as_ref().is_some_and(|c| !c.is_null()) {
        return false;
    }
    let m = u.message.to_ascii_lowercase();
    ![
        "model",
        "item with id",
        "previous response",
        "not persisted",
    ]
    .iter()
    .any(|w| m.contains(w))
}

async fn attempt(
    engine: &Arc<Engine>,
    snap: &Snapshot,
    call: &Call<'_>,
    candidate: &Candidate,
    (limit, setting): (Duration, &'static str),
    ttfb: &mut Option<Duration>,
) -> Result<Success, GatewayError> {
    let started = Instant::now();
    let up = (call.prepare)(candidate, false)?;
    let (mut api, mut converted, stream) = (up.api, up.converted, up.stream);
    let native_responses = api == Api::Responses && !converted;
    let sent = post_json(&engine.http, candidate, up, call.headers, limit, setting).await;
    // An error status is an answer too: its head came.
    if let Err(GatewayError::Upstream(_)) = &sent {
        ttfb.get_or_insert_with(|| started.elapsed());
    }
    let resp = match sent {
        // Most OpenAI-compatible relays have chat completions only: the same request, as
        // chat, to the same candidate, before anything reached the client. Learned only once
        // chat has answered, so a request that cannot go as chat changes nothing.
        Err(GatewayError::Upstream(u)) if native_responses && no_such_route(&u) => {
            let Ok(up) = (call.prepare)(candidate, true) else {
                return Err(GatewayError::Upstream(u));
            };
            (api, converted) = (up.api, up.converted);
            let r = post_json(&engine.http, candidate, up, call.headers, limit, setting).await?;
            candidate
                .provider
                .responses
                .store(false, std::sync::atomic::Ordering::Relaxed);
            engine.learned_chat_only(&candidate.provider);
            r
        }
        r => r?,
    };
    // The response head is the upstream's first byte.
    ttfb.get_or_insert_with(|| started.elapsed());
    // A converted plain reply is converted whole, so it is read whole.
    let read_whole = converted && !stream;
    let status = resp.status();
    let content_type = resp.headers().get(http::header::CONTENT_TYPE).cloned();
    let content_length = resp.content_length();
    let is_sse = content_type
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let mut rest: UpstreamStream = Box::pin(resp.bytes_stream());
    let keywords = &snap.settings.routing.retry_on_keywords;
    let provider = candidate.provider.name.to_string();
    let until = tokio::time::Instant::from_std(started + limit);

    let mut held = Vec::new();
    let mut first_content = None;
    if call.stream || is_sse {
        // Hold the preamble (the role-only first chunk) until content arrives, so that an
        // upstream failing right after it can still be failed over.
        let mut buf = BytesMut::new();
        loop {
            let next = match tokio::time::timeout_at(until, rest.next()).await {
                Err(_) => {
                    return Err(GatewayError::UpstreamTimeout {
                        provider,
                        after: limit,
                        setting,
                    });
                }
                Ok(n) => n,
            };
            match next {
                Some(Ok(chunk)) => {
                    ttfb.get_or_insert_with(|| started.elapsed());
                    buf.extend_from_slice(&chunk);
                    held.push(chunk);
                    // A preamble is a few hundred bytes: past a bound, stop holding (and
                    // re-scanning) and let the stream go.
                    if buf.len() > MAX_PREAMBLE {
                        first_content = Some(Instant::now());
                        break;
                    }
                    match scan_first_content(api, &buf) {
                        Scan::NeedMore => continue,
                        Scan::Content => {
                            first_content = Some(Instant::now());
                            break;
                        }
                        Scan::Error(message) => {
                            return Err(GatewayError::UpstreamBrokeOff {
                                provider,
                                detail: message,
                            });
                        }
                    }
                }
                Some(Err(e)) => {
                    return Err(GatewayError::UpstreamBrokeOff {
                        provider,
                        detail: error_chain(&e),
                    });
                }
                None => {
                    return Err(GatewayError::UpstreamBrokeOff {
                        provider,
                        detail: "the stream ended before any content".into(),
                    });
                }
            }
        }
        if let Some(k) = keyword_in(&buf, keywords) {
            return Err(GatewayError::RetryKeyword {
                provider,
                keyword: k,
            });
        }
    } else if !keywords.is_empty() || read_whole {
        // Only with retry keywords set (or for conversion) is a plain body read whole before
        // it is passed on.
        let mut buf = BytesMut::new();
        loop {
            match tokio::time::timeout_at(until, rest.next()).await {
                Err(_) => {
                    return Err(GatewayError::UpstreamTimeout {
                        provider,
                        after: limit,
                        setting,
                    });
                }
                Ok(Some(Ok(chunk))) => {
                    ttfb.get_or_insert_with(|| started.elapsed());
                    buf.extend_from_slice(&chunk);
                    if buf.len() > MAX_WHOLE_REPLY {
                        return Err(GatewayError::UpstreamBrokeOff {
                            provider,
                            detail: format!(
                                "the reply is larger than {} MiB, more than the gateway reads whole",
                                MAX_WHOLE_REPLY >> 20
                            ),
                        });
                    }
                }
                Ok(Some(Err(e))) => {
                    return Err(GatewayError::UpstreamBrokeOff {
                        provider,
                        detail: error_chain(&e),
                    });
                }
                Ok(None) => break,
            }
        }
        if let Some(k) = keyword_in(&buf, keywords) {
            return Err(GatewayError::RetryKeyword {
                provider,
                keyword: k,
            });
        }
        held.push(buf.freeze());
    }
    Ok(Success {
        candidate: candidate.clone(),
        api,
        converted,
        status,
        content_type,
        content_length,
        held,
        rest,
        ttfb: *ttfb,
        first_content,
    })
}

fn keyword_in(buf: &[u8], keywords: &[String]) -> Option<String> {
    if keywords.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(buf).to_lowercase();
    keywords
        .iter()
        .find(|k| text.contains(&k.to_lowercase()))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a missing route teaches that a provider has no Responses API; the Responses
    /// server's own 404s (a previous response, a stored item, the model) do not.
    #[test]
    fn only_a_missing_route_is_no_responses_api() {
        let e = |body: &str| match crate::protocol::openai::upstream_error(
            http::StatusCode::NOT_FOUND,
            body.as_bytes(),
            None,
        ) {
            GatewayError::Upstream(u) => u,
            other => panic!("{other:?}"),
        };
        for route in [
            r#"{"error":{"message":"Invalid URL (POST /v1/responses)","type":"invalid_request_error"}}"#,
            "404 page not found",
            r#"{"detail":"Not Found"}"#,
        ] {
            assert!(no_such_route(&e(route)), "{route}");
        }
        for own in [
            r#"{"error":{"message":"Previous response with id 'resp_1' not found.","type":"invalid_request_error","param":"previous_response_id","code":"previous_response_not_found"}}"#,
            r#"{"error":{"message":"Item with id 'rs_1' not found. Items are not persisted when `store` is set to false.","type":"invalid_request_error"}}"#,
            r#"{"error":{"message":"The model `gpt-x` does not exist","type":"invalid_request_error","code":"model_not_found"}}"#,
        ] {
            assert!(!no_such_route(&e(own)), "{own}");
        }
    }

    #[test]
    fn keywords_ignore_case() {
        let k = vec!["Rate Limit".to_owned()];
        assert_eq!(
            keyword_in(b"{\"content\":\"rate limit reached\"}", &k).as_deref(),
            Some("Rate Limit")
        );
        assert_eq!(keyword_in(b"fine", &k), None);
        assert_eq!(keyword_in(b"rate limit", &[]), None);
    }
}
