//! One path for every proxied client request, whatever its protocol: authenticate, read and
//! check the body, resolve the model, run the failover loop with a request prepared per
//! candidate (native or converted), and answer in the client's protocol.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Response, header};
use bytes::{Bytes, BytesMut};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{H_ATTEMPTS, H_MODEL, H_PROVIDER, json_response};
use crate::auth::{KeyHash, client_key_from};
use crate::catalog::{Candidate, ClientKey, Provider, Route, Snapshot};
use crate::config::Protocol;
use crate::dispatch::failover::{self, Success};
use crate::dispatch::{BodyMode, Framing, OnEnd, ProxyBody, Transform, Upstream};
use crate::engine::Engine;
use crate::error::GatewayError;
use crate::protocol::convert::{self, ClientStream, SseToJsonArray, StreamConverter};
use crate::protocol::ir::{self, Notes};
use crate::protocol::openai::RequestHead;
use crate::protocol::{Api, errors};
use crate::requestlog::RequestRecord;

/// What the client called.
#[derive(Clone, Copy, Debug)]
pub struct Inbound<'a> {
    pub api: Api,
    /// For the request log.
    pub endpoint: &'static str,
    /// Gemini: the model and whether to stream come from the path.
    pub path: Option<(&'a str, bool)>,
    /// Gemini: the client did not ask for `alt=sse`, so it reads one JSON array.
    pub json_array: bool,
}

pub fn error_response(api: Api, e: &GatewayError) -> Response<Body> {
    let body = errors::body(api.error_shape(), e);
    let mut resp = json_response(e.status(), Bytes::from(body.to_string()));
    let retry_after = match e {
        GatewayError::Upstream(u) => u.retry_after.clone(),
        GatewayError::ClientRateLimited { retry_after_s, .. } => {
            Some(HeaderValue::from(*retry_after_s))
        }
        GatewayError::Busy(_) => Some(HeaderValue::from_static("1")),
        _ => None,
    };
    if let Some(v) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Who is calling: a known client key, or nobody when the gateway is open (no keys exist and it
/// listens on loopback only). An expired key is refused; a key over its requests-per-minute
/// limit is told when to come back. Each use is counted in memory (no database write here).
pub fn authenticate(
    engine: &Engine,
    snap: &Snapshot,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<Arc<ClientKey>>, GatewayError> {
    let client = identify(snap, headers, query)?;
    if let Some(k) = &client {
        let unix = crate::protocol::unix_now();
        if let Some(at) = k.expires_at
            && at <= unix
        {
            return Err(GatewayError::Unauthorized(format!(
                "The client key '{}' has expired. Create a new one in Switchboard.",
                k.name
            )));
        }
        engine
            .key_usage
            .admit(k.hash, k.rpm, std::time::Instant::now(), unix)
            .map_err(|wait| GatewayError::ClientRateLimited {
                name: k.name.to_string(),
                rpm: k.rpm.unwrap_or(0),
                retry_after_s: wait.as_secs().max(1),
            })?;
    }
    Ok(client)
}

pub(crate) fn identify(
    snap: &Snapshot,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<Arc<ClientKey>>, GatewayError> {
    let Some(key) = client_key_from(headers, query) else {
        if snap.open_access {
            return Ok(None);
        }
        return Err(GatewayError::Unauthorized(
            "Missing API key. Send your Switchboard client key as 'Authorization: Bearer sk-sb-...' (or x-api-key, x-goog-api-key)."
                .into(),
        ));
    };
    match snap.client_keys.get(&KeyHash::of(&key)) {
        Some(k) => Ok(Some(k.clone())),
        None if snap.open_access => Ok(None),
        None => Err(GatewayError::Unauthorized(
            "Invalid API key. Use a client key created in Switchboard ([[client_keys]] in the config file)."
                .into(),
        )),
    }
}

pub fn set_route_headers(h: &mut HeaderMap, c: &Candidate, attempts: usize) {
    if let Ok(v) = HeaderValue::from_str(&c.provider.name) {
        h.insert(H_PROVIDER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&c.model) {
        h.insert(H_MODEL, v);
    }
    h.insert(H_ATTEMPTS, HeaderValue::from(attempts));
}

pub async fn handle(engine: Arc<Engine>, inbound: Inbound<'_>, req: Request) -> Response<Body> {
    let started = Instant::now();
    let mut record = RequestRecord::new(inbound.api.family(), inbound.endpoint);
    match run(&engine, inbound, req, started, &mut record).await {
        Ok(resp) => resp,
        Err((e, attempted)) => {
            record.status = e.status().as_u16();
            record.latency = started.elapsed();
            record.error = Some(e.to_string());
            let mut resp = error_response(inbound.api, &e);
            if let Some(c) = attempted {
                set_route_headers(resp.headers_mut(), &c, record.attempt_log.len());
            }
            engine.log.record(record);
            resp
        }
    }
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

type Failed = (GatewayError, Option<Candidate>);

fn log_notes(notes: &Notes, provider: &str, model: &str) {
    let model = crate::outside::Clip(model, crate::outside::MAX_NAME);
    for n in &notes.0 {
        let n = crate::outside::Clip(n, 2000);
        tracing::warn!(provider, %model, "conversion: {n}");
    }
}

async fn run(
    engine: &Arc<Engine>,
    inbound: Inbound<'_>,
    req: Request,
    started: Instant,
    record: &mut RequestRecord,
) -> Result<Response<Body>, Failed> {
    let api = inbound.api;
    // One snapshot for the whole request: a config change mid-request cannot mix two routings.
    let snap = engine.snapshot();
    let (parts, body) = req.into_parts();
    let client =
        authenticate(engine, &snap, &parts.headers, parts.uri.query()).map_err(|e| (e, None))?;
    record.client = client.as_ref().map(|c| c.name.clone());

    let settings = &snap.settings;
    let (bytes, _held) = engine
        .body_budget
        .read(&parts.headers, body, settings)
        .await
        .map_err(|e| (e, None))?;
    let head = RequestHead::parse(api, &bytes, inbound.path).map_err(|e| (e, None))?;
    record.model = Some(crate::outside::clip(&head.model, crate::outside::MAX_NAME).into_owned());
    record.stream = head.stream;

    let route = snap
        .route(&head.model)
        .ok_or_else(|| (GatewayError::unknown_model(&head.model), None))?;
    if let Some(c) = &client
        && !c.allows(&route.name)
    {
        return Err((
            GatewayError::Forbidden(format!(
                "The client key '{}' may not use model '{}'.",
                c.name, route.name
            )),
            None,
        ));
    }
    if api == Api::CountTokens
        && !route
            .candidates
            .iter()
            .any(|c| c.provider.speaks(Protocol::Anthropic))
    {
        let count = estimate(api, &bytes).map_err(|e| (e, None))?;
        let body = serde_json::json!({ "input_tokens": count }).to_string();
        record.status = 200;
        record.latency = started.elapsed();
        engine.log.record(std::mem::replace(
            record,
            RequestRecord::new(api.family(), inbound.endpoint),
        ));
        return Ok(json_response(http::StatusCode::OK, Bytes::from(body)));
    }
    let session = session_id(&parts.headers, &head);
    // Decoded into the neutral form only when a candidate needs conversion, and then once.
    let neutral: OnceLock<Result<ir::ChatRequest, GatewayError>> = OnceLock::new();
    let neutral_request = || {
        neutral
            .get_or_init(|| {
                let v: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
                let mut notes = Notes::default();
                let mut req = convert::decode_request(api, &v, &mut notes)
                    .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
                // Gemini says it in the path, not the body.
                req.stream = head.stream;
                log_notes(&notes, "-", &head.model);
                Ok(req)
            })
            .as_ref()
            .map_err(|e| GatewayError::BadRequest(e.to_string()))
    };
    let prepare = |c: &Candidate, as_chat: bool| -> Result<Upstream, GatewayError> {
        let p = &c.provider;
        if !as_chat && p.serves_natively(api) {
            return Ok(Upstream {
                url: p.url(api, &c.model, head.stream),
                api,
                body: native_body(api, &head, route, c, &bytes)?,
                converted: false,
                stream: head.stream,
            });
        }
        let target = p.chat_protocol(route.protocol);
        let mut notes = Notes::default();
        let neutral = neutral_request()?;
        let mut v = convert::encode_request(target, neutral, &c.model, &mut notes);
        log_notes(&notes, &p.name, &c.model);
        // Anthropic's required max_tokens gets a stand-in when the client sent none; the
        // model's own default beats that stand-in.
        let invented: &[&str] = if target == Protocol::Anthropic && neutral.max_tokens.is_none() {
            &["max_tokens"]
        } else {
            &[]
        };
        apply_params(target, &mut v, route, invented);
        let up_api = Api::chat_of(target);
        Ok(Upstream {
            url: p.url(up_api, &c.model, head.stream),
            api: up_api,
            body: Bytes::from(v.to_string()),
            converted: true,
            stream: head.stream,
        })
    };
    let accepts = |p: &Provider| p.speaks(api.family()) || api.convertible();
    let call = failover::Call {
        route,
        client: record.client.clone().unwrap_or_else(|| Arc::from("-")),
        session: session.as_deref(),
        stream: head.stream,
        headers: &parts.headers,
        accepts: &accepts,
        prepare: &prepare,
    };
    let mut attempts = Vec::new();
    let result = failover::run(engine, &snap, call, &mut attempts).await;
    record.attempts = attempts.len() as u32;
    record.attempt_log = attempts;
    let success = result.map_err(|f| (f.error, f.candidate))?;
    let candidate = success.candidate.clone();
    record.provider = Some(candidate.provider.name.clone());
    record.upstream_model = Some(candidate.model.clone());
    record.status = success.status.as_u16();

    // What the conversion needs to answer: the client's tool names, and what it left out.
    let (aliases, dropped) = match success.converted.then(neutral_request) {
        Some(Ok(n)) => (n.aliases.clone(), n.dropped_tools.join(", ")),
        _ => Default::default(),
    };
    if success.converted && !head.stream {
        let mut resp = converted_reply(engine, api, success, started, record, &aliases)?;
        set_dropped(resp.headers_mut(), &dropped);
        return Ok(resp);
    }
    let how = ClientStream {
        include_usage: head
            .body
            .get("stream_options")
            .and_then(|o| serde_json::from_str::<Value>(o.get()).ok())
            .and_then(|o| o.get("include_usage").and_then(Value::as_bool))
            .unwrap_or(false),
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
    } else {
        None
    };
    let is_sse = head.stream || upstream_sse;
    let content_type = match (&transform, success.converted) {
        (Some(_), _) if inbound.json_array => HeaderValue::from_static("application/json"),
        (Some(_), true) => HeaderValue::from_static("text/event-stream"),
        _ => success
            .content_type
            .clone()
            .unwrap_or_else(|| HeaderValue::from_static("application/json")),
    };
    let content_length = success.content_length.filter(|_| transform.is_none());
    let framing = Framing {
        mode: if is_sse {
            BodyMode::EventStream
        } else {
            BodyMode::Plain
        },
        shape: api.error_shape(),
        // A native stream must end as its protocol ends one; converted, the converter knows.
        end_markers: if is_sse && !success.converted {
            crate::dispatch::end_markers(success.api)
        } else {
            &[]
        },
        transform,
        length: content_length,
    };
    let attempts = record.attempt_log.len();
    let status = success.status;
    let body = ProxyBody::new(
        success.held,
        success.rest,
        on_end(engine, &candidate, started),
        framing,
        settings.stream_idle_timeout(),
        candidate.provider.name.clone(),
        started,
        engine.log.clone(),
        std::mem::replace(record, RequestRecord::new(api.family(), inbound.endpoint)),
        engine.cut_streams.subscribe(),
    );
    let mut out = Response::new(Body::from_stream(body));
    *out.status_mut() = status;
    let h = out.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    if is_sse {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    } else if let Some(len) = content_length {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    set_route_headers(h, &candidate, attempts);
    set_dropped(h, &dropped);
    Ok(out)
}

/// Names what a conversion left out, so the client can tell (`x-switchboard-dropped`).
fn set_dropped(h: &mut HeaderMap, dropped: &str) {
    if dropped.is_empty() {
        return;
    }
    let bounded: String = dropped.chars().take(512).collect();
    if let Ok(v) = HeaderValue::from_str(&bounded) {
        h.insert(super::H_DROPPED, v);
    }
}

fn estimate(api: Api, bytes: &[u8]) -> Result<u64, GatewayError> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| GatewayError::BadRequest(e.to_string()))?;
    let req = convert::decode_request(api, &v, &mut Notes::default())
        .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
    Ok(ir::estimate_tokens(&req))
}

/// Gemini's `:countTokens`, estimated here: `{"totalTokens"}`.
pub async fn estimate_gemini_tokens(engine: Arc<Engine>, req: Request) -> Response<Body> {
    let snap = engine.snapshot();
    let mut record = RequestRecord::new(Protocol::Gemini, "countTokens");
    let result = async {
        let client = authenticate(&engine, &snap, req.headers(), req.uri().query())?;
        record.client = client.map(|c| c.name.clone());
        let settings = &snap.settings;
        let (parts, body) = req.into_parts();
        let (bytes, _held) = engine
            .body_budget
            .read(&parts.headers, body, settings)
            .await?;
        // `{"contents": [...]}` or `{"generateContentRequest": {...}}`.
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            GatewayError::BadRequest(format!("The request body is not valid JSON ({e})."))
        })?;
        let inner = v.get("generateContentRequest").unwrap_or(&v);
        let req = convert::decode_request(Api::Gemini, inner, &mut Notes::default())
            .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
        Ok::<_, GatewayError>(ir::estimate_tokens(&req))
    }
    .await;
    let resp = match result {
        Ok(n) => json_response(
            http::StatusCode::OK,
            Bytes::from(serde_json::json!({ "totalTokens": n }).to_string()),
        ),
        Err(e) => {
            record.error = Some(e.to_string());
            error_response(Api::Gemini, &e)
        }
    };
    record.status = resp.status().as_u16();
    engine.log.record(record);
    resp
}

fn on_end(engine: &Arc<Engine>, candidate: &Candidate, started: Instant) -> OnEnd {
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
    started: Instant,
    record: &mut RequestRecord,
    aliases: &ir::ToolAliases,
) -> Result<Response<Body>, Failed> {
    let candidate = success.candidate;
    let mut whole = BytesMut::new();
    for chunk in &success.held {
        whole.extend_from_slice(chunk);
    }
    let upstream = success.api.family();
    let out = convert::convert_reply(upstream, api, &whole, aliases).map_err(|detail| {
        let e = GatewayError::UpstreamBrokeOff {
            provider: candidate.provider.name.to_string(),
            detail,
        };
        engine.on_failure(
            &candidate,
            &crate::breaker::FailureKind::ServerError,
            &e.to_string(),
            started.elapsed(),
        );
        (e, Some(candidate.clone()))
    })?;
    record.latency = started.elapsed();
    record.bytes_out = out.len() as u64;
    let mut resp = json_response(success.status, Bytes::from(out));
    set_route_headers(resp.headers_mut(), &candidate, record.attempt_log.len());
    engine.log.record(std::mem::replace(
        record,
        RequestRecord::new(api.family(), "-"),
    ));
    Ok(resp)
}

/// The body for a native upstream: the client's bytes untouched when nothing changes (the
/// common case), else the same object with the model and mapped parameters rewritten.
fn native_body(
    api: Api,
    head: &RequestHead<'_>,
    route: &Route,
    candidate: &Candidate,
    original: &Bytes,
) -> Result<Bytes, GatewayError> {
    let params = !route.default_params.is_empty() || !route.override_params.is_empty();
    // Gemini names the model in the path; its parameters live in `generationConfig`.
    if api == Api::Gemini {
        if !params {
            return Ok(original.clone());
        }
        let mut v: Value = serde_json::from_slice(original)
            .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
        apply_params(Protocol::Gemini, &mut v, route, &[]);
        return Ok(Bytes::from(v.to_string()));
    }
    let same_model = *candidate.model == *head.model;
    if same_model && !params {
        return Ok(original.clone());
    }
    let model = to_raw(&*candidate.model)?;
    let mut replace: Vec<(&str, Box<RawValue>)> = Vec::new();
    if !same_model {
        replace.push(("model", model));
    }
    for (k, v) in &route.default_params {
        if head.body.get(k).is_none() {
            replace.push((k, to_raw(v)?));
        }
    }
    for (k, v) in &route.override_params {
        replace.retain(|(rk, _)| rk != k);
        replace.push((k, to_raw(v)?));
    }
    let refs: Vec<(&str, &RawValue)> = replace.iter().map(|(k, v)| (*k, &**v)).collect();
    Ok(Bytes::from(head.body.to_vec_with(&refs)))
}

/// The unified model's parameters on a converted (or Gemini) body. Gemini takes sampling
/// parameters in `generationConfig` under its own names; the common names are mapped there.
/// Defaults fill what is absent, and replace the values in `invented` (put there by the
/// conversion, not by the client).
fn apply_params(target: Protocol, v: &mut Value, route: &Route, invented: &[&str]) {
    let Some(obj) = v.as_object_mut() else {
        return;
    };
    let gemini_name = |k: &str| -> Option<&'static str> {
        Some(match k {
            "temperature" => "temperature",
            "top_p" | "topP" => "topP",
            "top_k" | "topK" => "topK",
            "max_tokens" | "maxOutputTokens" => "maxOutputTokens",
            "stop" | "stopSequences" => "stopSequences",
            "seed" => "seed",
            _ => return None,
        })
    };
    for (overwrite, params) in [
        (false, &route.default_params),
        (true, &route.override_params),
    ] {
        for (k, val) in params {
            let (map, key) = match (target, gemini_name(k)) {
                (Protocol::Gemini, Some(name)) => {
                    let config = obj
                        .entry("generationConfig")
                        .or_insert_with(|| Value::Object(Default::default()));
                    let Some(config) = config.as_object_mut() else {
                        continue;
                    };
                    (config, name.to_owned())
                }
                _ => (&mut *obj, k.clone()),
            };
            if overwrite || !map.contains_key(&key) || invented.contains(&key.as_str()) {
                map.insert(key, val.clone());
            }
        }
    }
}

fn to_raw<T: serde::Serialize + ?Sized>(v: &T) -> Result<Box<RawValue>, GatewayError> {
    serde_json::value::to_raw_value(v).map_err(|e| GatewayError::Internal(e.to_string()))
}
