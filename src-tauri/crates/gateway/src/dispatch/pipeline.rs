//! One path for every proxied client request, whatever its protocol, run top to bottom: read
//! the head, resolve the model, check the key may use it, run the failover loop with a request
//! prepared per candidate (native or converted), and shape the answer for the client's
//! protocol. It returns a neutral [`Reply`] that the HTTP edge renders; the request's record
//! travels with it.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;

use super::failover::{self, Success};
use super::prepare::Prepare;
use super::{BodyMode, Framing, OnEnd, ProxyBody, Transform};
use crate::catalog::{Candidate, ClientKey, Pin, Provider, Route, Snapshot};
use crate::config::Protocol;
use crate::engine::Engine;
use crate::error::GatewayError;
use crate::protocol::Api;
use crate::protocol::convert::{self, ClientStream, SseToJsonArray, StreamConverter};
use crate::protocol::ir::{self, Notes};
use crate::protocol::openai::RequestHead;
use crate::protocol::usage::HiddenUsage;
use crate::requestlog::Recorder;

/// What the client called.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Inbound<'a> {
    pub api: Api,
    /// For the request log.
    pub endpoint: &'static str,
    /// Gemini: the model and whether to stream come from the path.
    pub path: Option<(&'a str, bool)>,
    /// Gemini: the client did not ask for `alt=sse`, so it reads one JSON array.
    pub json_array: bool,
}

/// A client's request, read and admitted by the edge.
pub(crate) struct ClientRequest<'a> {
    pub inbound: Inbound<'a>,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
    pub client: Option<Arc<ClientKey>>,
}

/// Where a request went: the routing headers' values.
#[derive(Clone, Debug)]
pub(crate) struct Routed {
    pub provider: Arc<str>,
    pub model: Arc<str>,
    pub attempts: usize,
    /// A tiered model's request: the tier it took (`x-switchboard-tier`).
    pub tier: Option<Arc<str>>,
}

impl Routed {
    fn to(c: &Candidate, attempts: usize, tier: Option<Arc<str>>) -> Self {
        Self {
            provider: c.provider.name.clone(),
            model: c.model.clone(),
            attempts,
            tier,
        }
    }
}

/// The answer, in the client's protocol, for the edge to render.
#[expect(
    clippy::large_enum_variant,
    reason = "made and moved once per request; boxing the record would cost an allocation each"
)]
pub(crate) enum Reply {
    /// A JSON body, whole.
    Whole {
        status: StatusCode,
        body: Bytes,
        routed: Option<Routed>,
        /// What a conversion left out (`x-switchboard-dropped`), empty if nothing.
        dropped: String,
        record: Recorder,
    },
    /// A body that streams from the upstream (the record ends with it).
    Stream {
        status: StatusCode,
        content_type: HeaderValue,
        /// Server-sent events (never cached); else a plain body, of `length` when known.
        sse: bool,
        length: Option<u64>,
        body: Box<ProxyBody>,
        routed: Routed,
        dropped: String,
    },
}

/// A request that ends in an error, in whatever way: the edge renders it in the client's
/// protocol.
pub(crate) struct Refusal {
    pub error: GatewayError,
    pub routed: Option<Routed>,
    pub record: Recorder,
}

type Refused = Result<Reply, Box<Refusal>>;

fn refuse(error: GatewayError, routed: Option<Routed>, record: Recorder) -> Box<Refusal> {
    Box::new(Refusal {
        error,
        routed,
        record,
    })
}

/// The session a prompt-caching client names, so that it keeps hitting the same cache.
fn session_id<'a>(headers: &'a HeaderMap, head: &'a RequestHead<'_>) -> Option<Cow<'a, str>> {
    for name in ["x-session-id", "x-claude-code-session-id"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok())
            && !v.is_empty()
        {
            return Some(Cow::Borrowed(v));
        }
    }
    head.body
        .get("prompt_cache_key")
        .and_then(|raw| serde_json::from_str::<Cow<'_, str>>(raw.get()).ok())
        .filter(|k| !k.is_empty())
}

/// A `provider/model` name no unified model takes: that provider's model, for a caller with no
/// key (the gateway is open on loopback) or a key allowed to pin providers.
pub(crate) fn pin(
    engine: &Engine,
    snap: &Snapshot,
    client: Option<&ClientKey>,
    name: &str,
) -> Result<Arc<Route>, GatewayError> {
    let pin = snap.pin(name, &engine.breakers);
    if matches!(pin, Pin::NoProvider) {
        return Err(GatewayError::unknown_model(name));
    }
    if let Some(c) = client
        && !c.pin_providers
    {
        return Err(GatewayError::Forbidden(format!(
            "The client key '{}' may not name a provider ('{}'); allow it with \
             pin_providers = true on the key, or use a unified model.",
            c.name,
            crate::outside::clip(name, crate::outside::MAX_NAME)
        )));
    }
    match pin {
        Pin::Route(route) => Ok(route),
        Pin::Unlisted { provider, listed } => Err(GatewayError::NotFound(format!(
            "The provider '{provider}' lists no model '{}' ({listed} listed; GET \
             /api/providers shows them, and a sync refreshes them).",
            crate::outside::clip(
                name.get(provider.len() + 1..).unwrap_or_default(),
                crate::outside::MAX_NAME
            )
        ))),
        Pin::NoProvider => Err(GatewayError::unknown_model(name)),
    }
}

pub(crate) async fn run(
    engine: &Arc<Engine>,
    snap: &Snapshot,
    req: ClientRequest<'_>,
    mut record: Recorder,
) -> Refused {
    let ClientRequest {
        inbound,
        headers,
        body: bytes,
        client,
    } = req;
    let api = inbound.api;
    let head = match RequestHead::parse(api, &bytes, inbound.path) {
        Ok(h) => h,
        Err(e) => return Err(refuse(e, None, record)),
    };
    record.model = Some(crate::outside::clip(&head.model, crate::outside::MAX_NAME).into_owned());
    record.stream = head.stream;
    record.keep_request(&bytes);
    let logs = &snap.settings.logs;
    let capture = client
        .as_ref()
        .and_then(|k| k.capture_bodies)
        .unwrap_or(logs.logs_capture_bodies);
    if logs.logs_enabled && capture {
        record.capture_bodies(api, &bytes, logs.logs_body_max_kb);
    }

    let mut pinned = None;
    let tiered = snap.tiered(&head.model);
    let asked_for = match (tiered, snap.route(&head.model)) {
        (Some(t), _) => t.name.clone(),
        (None, Some(r)) => r.name.clone(),
        (None, None) => match pin(engine, snap, client.as_deref(), &head.model) {
            Ok(r) => {
                let name = r.name.clone();
                pinned = Some(r);
                name
            }
            Err(e) => return Err(refuse(e, None, record)),
        },
    };
    if let Some(c) = &client
        && !c.allows(&asked_for)
    {
        let e = GatewayError::Forbidden(format!(
            "The client key '{}' may not use model '{}'.",
            c.name, asked_for
        ));
        return Err(refuse(e, None, record));
    }
    // A tiered model: its classifier picks the tier, whose target is the route.
    let mut tier = None;
    let route = match tiered {
        Some(t) => {
            let asked = super::classify::Asked {
                api,
                head: &head,
                body: &bytes,
                name: &head.model,
            };
            let p = super::classify::pick(engine, snap, t, asked).await;
            let name: Arc<str> = t.tier_name(p.tier).into();
            record.tier = Some(name.clone());
            record.tier_reason = Some(p.reason.to_string());
            tier = Some(name);
            match snap.route(t.target(p.tier)) {
                Some(r) => r,
                None => {
                    let e = GatewayError::NoProvider {
                        model: t.name.to_string(),
                        why: format!(
                            "its tier '{}' points at '{}', which is no unified model or group \
                             with candidates",
                            t.tier_name(p.tier),
                            t.target(p.tier)
                        ),
                    };
                    return Err(refuse(e, None, record));
                }
            }
        }
        None => match snap.route(&head.model).or(pinned.as_ref()) {
            Some(r) => r,
            None => {
                let e = GatewayError::unknown_model(&head.model);
                return Err(refuse(e, None, record));
            }
        },
    };
    record.unified_model = Some(route.name.clone());
    if api == Api::CountTokens
        && !route
            .candidates
            .iter()
            .any(|c| c.provider.speaks(Protocol::Anthropic))
    {
        return match estimate(api, &bytes) {
            Ok(count) => Ok(Reply::Whole {
                status: StatusCode::OK,
                body: Bytes::from(serde_json::json!({ "input_tokens": count }).to_string()),
                routed: None,
                dropped: String::new(),
                record,
            }),
            Err(e) => Err(refuse(e, None, record)),
        };
    }
    let session = session_id(headers, &head);
    record.session = session
        .as_deref()
        .map(|s| crate::outside::clip(s, crate::outside::MAX_NAME).into_owned());
    let client_usage = head
        .body
        .get("stream_options")
        .and_then(|o| serde_json::from_str::<Value>(o.get()).ok())
        .and_then(|o| o.get("include_usage").and_then(Value::as_bool))
        .unwrap_or(false);
    // A chat stream reports usage only when asked: asked for here, hidden again on the way back.
    let ask_usage =
        api == Api::Chat && head.stream && !client_usage && snap.settings.logs.logs_ask_usage;
    let prepare = Prepare::new(api, &head, route, &bytes, ask_usage);
    let accepts = |p: &Provider| p.speaks(api.family()) || api.convertible();
    let has_tools = head
        .body
        .get("tools")
        .is_some_and(|t| crate::capabilities::declares_tools(t.get()));
    let needs = crate::capabilities::Needs::of(&bytes, has_tools, &route.limits.load());
    let call = failover::Call {
        needs,
        route,
        client: record.client.clone().unwrap_or_else(|| Arc::from("-")),
        session: session.as_deref(),
        stream: head.stream,
        headers,
        accepts: &accepts,
        prepare: &|c, as_chat| prepare.upstream(c, as_chat),
    };
    let mut attempts = Vec::new();
    let result = failover::run(engine, snap, call, &mut attempts).await;
    record.attempts = attempts.len() as u32;
    let tried = attempts.len();
    record.attempt_log = attempts;
    let success = match result {
        Ok(s) => s,
        Err(f) => {
            let routed = f.candidate.as_ref().map(|c| Routed::to(c, tried, tier));
            return Err(refuse(f.error, routed, record));
        }
    };
    let candidate = success.candidate.clone();
    let routed = Routed::to(&candidate, tried, tier);
    record.provider = Some(candidate.provider.name.clone());
    record.upstream_model = Some(candidate.model.clone());
    record.upstream_protocol = Some(success.api.family());
    record.converted = success.converted;
    record.status = success.status.as_u16();
    record.ttfc = success
        .first_content
        .map(|t| t.saturating_duration_since(record.started()));
    record.chosen_by = record.attempt_log.last().map(|a| a.chosen_by);

    // What the conversion needs to answer: the client's tool names, and what it left out.
    let (aliases, dropped) = match success.converted.then(|| prepare.neutral()) {
        Some(Ok(n)) => (n.aliases.clone(), n.dropped_tools.join(", ")),
        _ => Default::default(),
    };
    if success.converted && !head.stream {
        return converted_reply(engine, api, success, routed, dropped, record, &aliases);
    }
    let how = ClientStream {
        include_usage: client_usage,
        json_array: inbound.json_array,
        aliases,
    };
    let upstream_sse = success
        .content_type
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let transform = if success.converted {
        Some(Transform::Convert(Box::new(StreamConverter::new(
            success.api.family(),
            api,
            how,
        ))))
    } else if api == Api::Gemini && head.stream && inbound.json_array {
        Some(Transform::JsonArray(SseToJsonArray::default()))
    } else if ask_usage && upstream_sse {
        Some(Transform::HideUsage(HiddenUsage::default()))
    } else {
        None
    };
    let sse = head.stream || upstream_sse;
    let content_type = match (&transform, success.converted) {
        (Some(_), _) if inbound.json_array => HeaderValue::from_static("application/json"),
        (Some(_), true) => HeaderValue::from_static("text/event-stream"),
        _ => success
            .content_type
            .clone()
            .unwrap_or_else(|| HeaderValue::from_static("application/json")),
    };
    let length = success.content_length.filter(|_| transform.is_none());
    let framing = Framing {
        mode: if sse {
            BodyMode::EventStream
        } else {
            BodyMode::Plain
        },
        shape: api.error_shape(),
        // A native stream must end as its protocol ends one; converted, the converter knows.
        end_markers: if sse && !success.converted {
            super::end_markers(success.api)
        } else {
            &[]
        },
        transform,
        length,
        upstream: success.api,
    };
    let status = success.status;
    let started = record.started();
    let body = ProxyBody::new(
        success.held,
        success.rest,
        on_end(engine, &candidate, started),
        framing,
        snap.settings.routing.stream_idle_timeout(),
        candidate.provider.name.clone(),
        record,
        engine.cut_streams.subscribe(),
    );
    Ok(Reply::Stream {
        status,
        content_type,
        sse,
        length,
        body: Box::new(body),
        routed,
        dropped,
    })
}

/// `count_tokens` for a route with no Anthropic provider: estimated here.
fn estimate(api: Api, bytes: &[u8]) -> Result<u64, GatewayError> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| GatewayError::BadRequest(e.to_string()))?;
    let req = convert::decode_request(api, &v, &mut Notes::default())
        .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
    Ok(ir::estimate_tokens(&req))
}

/// Gemini's `:countTokens`, estimated here: the body is `{"contents": [...]}` or
/// `{"generateContentRequest": {...}}`.
pub(crate) fn estimate_gemini_tokens(bytes: &[u8]) -> Result<u64, GatewayError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        GatewayError::BadRequest(format!("The request body is not valid JSON ({e})."))
    })?;
    let inner = v.get("generateContentRequest").unwrap_or(&v);
    let req = convert::decode_request(Api::Gemini, inner, &mut Notes::default())
        .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
    Ok(ir::estimate_tokens(&req))
}

fn on_end(engine: &Arc<Engine>, candidate: &Candidate, started: std::time::Instant) -> OnEnd {
    let engine = engine.clone();
    let candidate = candidate.clone();
    Box::new(move |failure| {
        if let Some((kind, error)) = failure {
            engine.on_failure(&candidate, &kind, &error, started.elapsed());
        }
    })
}

/// A converted plain reply: read whole by the failover loop, converted here in one go.
fn converted_reply(
    engine: &Arc<Engine>,
    api: Api,
    success: Success,
    routed: Routed,
    dropped: String,
    mut record: Recorder,
    aliases: &ir::ToolAliases,
) -> Refused {
    let candidate = success.candidate;
    let mut whole = BytesMut::new();
    for chunk in &success.held {
        whole.extend_from_slice(chunk);
    }
    let upstream = success.api.family();
    let mut usage = crate::protocol::usage::UsageScan::new(upstream);
    usage.feed(&whole);
    let whole = whole.freeze();
    let kept = whole.slice(..whole.len().min(crate::tokens::KEEP_ANSWER));
    let out = match convert::convert_reply(upstream, api, &whole, aliases) {
        Ok(out) => out,
        Err(detail) => {
            let e = GatewayError::UpstreamBrokeOff {
                provider: candidate.provider.name.to_string(),
                detail,
            };
            engine.on_failure(
                &candidate,
                &crate::breaker::FailureKind::ServerError,
                &e.to_string(),
                record.started().elapsed(),
            );
            return Err(refuse(e, Some(routed), record));
        }
    };
    record.bytes_out = out.len() as u64;
    record.settle_tokens(usage.tokens(), vec![kept], whole.len() as u64, false);
    Ok(Reply::Whole {
        status: success.status,
        body: Bytes::from(out),
        routed: Some(routed),
        dropped,
        record,
    })
}
