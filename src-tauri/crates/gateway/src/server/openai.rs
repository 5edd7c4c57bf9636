//! OpenAI-compatible client endpoints.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use bytes::Bytes;
use serde_json::value::RawValue;

use super::{H_ATTEMPTS, H_MODEL, H_PROVIDER, json_response, read_body};
use crate::auth::{KeyHash, client_key_from};
use crate::catalog::{Candidate, ClientKey, Snapshot};
use crate::config::Protocol;
use crate::dispatch::{BodyMode, OnEnd, ProxyBody, failover};
use crate::engine::Engine;
use crate::error::GatewayError;
use crate::protocol::openai::{ChatRequest, error_json};
use crate::requestlog::RequestRecord;

pub fn error_response(e: &GatewayError) -> Response<Body> {
    let mut resp = json_response(e.status(), Bytes::from(error_json(e).to_string()));
    if let GatewayError::Upstream(u) = e
        && let Some(v) = &u.retry_after
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v.clone());
    }
    resp
}

/// Who is calling: a known client key, or nobody when the gateway is open (no keys exist and it
/// listens on loopback only).
fn authenticate(
    snap: &Snapshot,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<Arc<ClientKey>>, GatewayError> {
    let Some(key) = client_key_from(headers, query) else {
        if snap.open_access {
            return Ok(None);
        }
        return Err(GatewayError::Unauthorized(
            "Missing API key. Send your Switchboard client key as 'Authorization: Bearer sk-sb-...'."
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

pub async fn list_models(State(engine): State<Arc<Engine>>, req: Request) -> Response<Body> {
    let snap = engine.snapshot();
    let mut record = RequestRecord::new(Protocol::OpenAi, "models");
    let resp = match authenticate(&snap, req.headers(), req.uri().query()) {
        Ok(client) => {
            record.client = client.map(|c| c.name.clone());
            json_response(StatusCode::OK, snap.openai_models_body.clone())
        }
        Err(e) => {
            record.error = Some(e.to_string());
            error_response(&e)
        }
    };
    record.status = resp.status().as_u16();
    engine.log.record(record);
    resp
}

pub async fn unknown_endpoint(
    State(engine): State<Arc<Engine>>,
    uri: OriginalUri,
    req: Request,
) -> Response<Body> {
    let e = GatewayError::NotFound(format!(
        "Unknown endpoint: {} {}. Switchboard serves POST /v1/chat/completions and GET /v1/models.",
        req.method(),
        uri.path()
    ));
    let mut record = RequestRecord::new(Protocol::OpenAi, "unknown");
    record.status = 404;
    record.error = Some(e.to_string());
    engine.log.record(record);
    error_response(&e)
}

pub async fn method_not_allowed(uri: OriginalUri, req: Request) -> Response<Body> {
    error_response(&GatewayError::MethodNotAllowed(format!(
        "Method {} is not allowed on {}.",
        req.method(),
        uri.path()
    )))
}

pub async fn chat_completions(State(engine): State<Arc<Engine>>, req: Request) -> Response<Body> {
    let started = Instant::now();
    let mut record = RequestRecord::new(Protocol::OpenAi, "chat/completions");
    match chat(&engine, req, started, &mut record).await {
        Ok(resp) => resp,
        Err((e, attempted)) => {
            record.status = e.status().as_u16();
            record.latency = started.elapsed();
            record.error = Some(e.to_string());
            let mut resp = error_response(&e);
            if let Some(c) = attempted {
                set_route_headers(resp.headers_mut(), &c, record.attempt_log.len());
            }
            engine.log.record(record);
            resp
        }
    }
}

fn set_route_headers(h: &mut HeaderMap, c: &Candidate, attempts: usize) {
    if let Ok(v) = HeaderValue::from_str(&c.provider.name) {
        h.insert(H_PROVIDER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&c.model) {
        h.insert(H_MODEL, v);
    }
    h.insert(H_ATTEMPTS, HeaderValue::from(attempts));
}

/// The session a prompt-caching client names, so that it keeps hitting the same cache.
fn session_id<'a>(headers: &'a HeaderMap, chat: &'a ChatRequest<'_>) -> Option<Cow<'a, str>> {
    for name in ["x-session-id", "x-claude-code-session-id"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok())
            && !v.is_empty()
        {
            return Some(Cow::Borrowed(v));
        }
    }
    chat.body
        .get("prompt_cache_key")
        .and_then(|raw| serde_json::from_str::<Cow<'_, str>>(raw.get()).ok())
        .filter(|k| !k.is_empty())
}

type ChatError = (GatewayError, Option<Candidate>);

async fn chat(
    engine: &Arc<Engine>,
    req: Request,
    started: Instant,
    record: &mut RequestRecord,
) -> Result<Response<Body>, ChatError> {
    // One snapshot for the whole request: a config change mid-request cannot mix two routings.
    let snap = engine.snapshot();
    let (parts, body) = req.into_parts();
    let client = authenticate(&snap, &parts.headers, parts.uri.query()).map_err(|e| (e, None))?;
    record.client = client.as_ref().map(|c| c.name.clone());

    let settings = &snap.settings;
    let bytes = read_body(body, settings.max_body_bytes(), settings.max_body_mb)
        .await
        .map_err(|e| (e, None))?;
    let chat = ChatRequest::parse(&bytes).map_err(|e| (e, None))?;
    record.model = Some(chat.model.to_string());
    record.stream = chat.stream;

    let route = snap
        .routes
        .get(&*chat.model)
        .ok_or_else(|| (GatewayError::UnknownModel(chat.model.to_string()), None))?;
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
    let session = session_id(&parts.headers, &chat);
    let body_for = |c: &Candidate| upstream_body(&chat, route, c, &bytes);
    let call = failover::Call {
        route,
        protocol: Protocol::OpenAi,
        client: record.client.clone().unwrap_or_else(|| Arc::from("-")),
        session: session.as_deref(),
        stream: chat.stream,
        headers: &parts.headers,
        body_for: &body_for,
    };
    let mut attempts = Vec::new();
    let result = failover::run(engine, &snap, call, &mut attempts).await;
    record.attempts = attempts.len() as u32;
    record.attempt_log = attempts;
    let success = result.map_err(|f| (f.error, f.candidate))?;
    let candidate = success.candidate;
    record.provider = Some(candidate.provider.name.clone());
    record.upstream_model = Some(candidate.model.clone());
    record.status = success.status.as_u16();

    let is_sse = chat.stream
        || success
            .content_type
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
    let mode = if is_sse {
        BodyMode::EventStream
    } else {
        BodyMode::Plain
    };
    let attempts = record.attempt_log.len();
    let on_end: OnEnd = {
        let engine = engine.clone();
        let candidate = candidate.clone();
        Box::new(move |failure| {
            if let Some((kind, error)) = failure {
                engine.on_failure(&candidate, &kind, &error, started.elapsed());
            }
        })
    };
    let body = ProxyBody::new(
        success.held,
        success.rest,
        on_end,
        mode,
        settings.stream_idle_timeout(),
        candidate.provider.name.clone(),
        started,
        engine.log.clone(),
        std::mem::replace(
            record,
            RequestRecord::new(Protocol::OpenAi, "chat/completions"),
        ),
    );
    let mut out = Response::new(Body::from_stream(body));
    *out.status_mut() = success.status;
    let h = out.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        success
            .content_type
            .unwrap_or_else(|| HeaderValue::from_static("application/json")),
    );
    if is_sse {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    } else if let Some(len) = success.content_length {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    set_route_headers(h, &candidate, attempts);
    Ok(out)
}

/// The body for the upstream: the client's bytes untouched when nothing changes (the common
/// case), else the same object with the model and mapped parameters rewritten.
fn upstream_body(
    chat: &ChatRequest<'_>,
    route: &crate::catalog::Route,
    candidate: &Candidate,
    original: &Bytes,
) -> Result<Bytes, GatewayError> {
    let same_model = *candidate.model == *chat.model;
    if same_model && route.default_params.is_empty() && route.override_params.is_empty() {
        return Ok(original.clone());
    }
    let model = to_raw(&*candidate.model)?;
    let mut replace: Vec<(&str, Box<RawValue>)> = Vec::new();
    if !same_model {
        replace.push(("model", model));
    }
    for (k, v) in &route.default_params {
        if chat.body.get(k).is_none() {
            replace.push((k, to_raw(v)?));
        }
    }
    for (k, v) in &route.override_params {
        replace.retain(|(rk, _)| rk != k);
        replace.push((k, to_raw(v)?));
    }
    let refs: Vec<(&str, &RawValue)> = replace.iter().map(|(k, v)| (*k, &**v)).collect();
    Ok(Bytes::from(chat.body.to_vec_with(&refs)))
}

fn to_raw<T: serde::Serialize + ?Sized>(v: &T) -> Result<Box<RawValue>, GatewayError> {
    serde_json::value::to_raw_value(v).map_err(|e| GatewayError::Internal(e.to_string()))
}
