//! The edge of every proxied client request: admit the caller, read the body within its
//! bounds, hand the request to the pipeline (`dispatch::pipeline`), and render its neutral
//! reply or refusal as HTTP in the client's protocol.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Response, header};
use bytes::Bytes;

use super::{H_ATTEMPTS, H_DROPPED, H_MODEL, H_PROVIDER, H_TIER, intake, json_response};
use crate::access::authenticate;
use crate::config::Protocol;
use crate::dispatch::pipeline::{self, ClientRequest, Refusal, Reply, Routed};
use crate::engine::Engine;
use crate::error::GatewayError;
use crate::protocol::{Api, errors};
use crate::requestlog::Recorder;

pub(crate) use crate::dispatch::pipeline::Inbound;

pub fn error_response(api: Api, e: &GatewayError) -> Response<Body> {
    error_response_of(e, error_body(api, e))
}

/// The JSON of [`error_response`].
fn error_body(api: Api, e: &GatewayError) -> Bytes {
    Bytes::from(errors::body(api.error_shape(), e).to_string())
}

fn error_response_of(e: &GatewayError, body: Bytes) -> Response<Body> {
    let mut resp = json_response(e.status(), body);
    let retry_after = match e {
        GatewayError::Upstream(u) => u.retry_after.clone(),
        GatewayError::ClientRateLimited { retry_after_s, .. }
        | GatewayError::BudgetExceeded { retry_after_s, .. } => {
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

fn set_route_headers(h: &mut HeaderMap, routed: &Routed) {
    if let Ok(v) = HeaderValue::from_str(&routed.provider) {
        h.insert(H_PROVIDER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&routed.model) {
        h.insert(H_MODEL, v);
    }
    h.insert(H_ATTEMPTS, HeaderValue::from(routed.attempts));
    if let Some(v) = routed
        .tier
        .as_deref()
        .and_then(|t| HeaderValue::from_str(t).ok())
    {
        h.insert(H_TIER, v);
    }
}

/// Names what a conversion left out, so the client can tell (`x-switchboard-dropped`).
fn set_dropped(h: &mut HeaderMap, dropped: &str) {
    if dropped.is_empty() {
        return;
    }
    let bounded: String = dropped.chars().take(512).collect();
    if let Ok(v) = HeaderValue::from_str(&bounded) {
        h.insert(H_DROPPED, v);
    }
}

/// An error in the client's protocol; the record takes its status and message, and is
/// recorded as it drops here.
fn refused(
    api: Api,
    e: &GatewayError,
    routed: Option<&Routed>,
    mut record: Recorder,
) -> Response<Body> {
    record.failed(e);
    // The gateway's own answer is the answer the client got: captured like an upstream's.
    let body = error_body(api, e);
    record.keep_answer(&body);
    let mut resp = error_response_of(e, body);
    if let Some(r) = routed {
        set_route_headers(resp.headers_mut(), r);
    }
    resp
}

fn render(api: Api, reply: Result<Reply, Box<Refusal>>) -> Response<Body> {
    match reply {
        Err(refusal) => {
            let Refusal {
                error,
                routed,
                record,
            } = *refusal;
            refused(api, &error, routed.as_ref(), record)
        }
        Ok(Reply::Whole {
            status,
            body,
            routed,
            dropped,
            mut record,
        }) => {
            record.answered(status.as_u16());
            record.keep_answer(&body);
            let mut resp = json_response(status, body);
            if let Some(r) = &routed {
                set_route_headers(resp.headers_mut(), r);
            }
            set_dropped(resp.headers_mut(), &dropped);
            resp
        }
        Ok(Reply::Stream {
            status,
            content_type,
            sse,
            length,
            body,
            routed,
            dropped,
        }) => {
            let mut out = Response::new(Body::from_stream(*body));
            *out.status_mut() = status;
            let h = out.headers_mut();
            h.insert(header::CONTENT_TYPE, content_type);
            if sse {
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            } else if let Some(len) = length {
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            }
            set_route_headers(h, &routed);
            set_dropped(h, &dropped);
            out
        }
    }
}

pub async fn handle(engine: Arc<Engine>, inbound: Inbound<'_>, req: Request) -> Response<Body> {
    let api = inbound.api;
    let mut record = Recorder::new(&engine.log, api.family(), inbound.endpoint);
    // One snapshot for the whole request: a config change mid-request cannot mix two routings.
    let snap = engine.snapshot();
    let (parts, body) = req.into_parts();
    record.caller(&parts);
    if crate::dispatch::came_from_here(&parts.headers) {
        return refused(api, &GatewayError::Loop, None, record);
    }
    let client = match authenticate(&engine, &snap, &parts.headers, parts.uri.query()) {
        Ok(c) => c,
        Err(e) => return refused(api, &e, None, record),
    };
    record.client = client.as_ref().map(|c| c.name.clone());
    let budget_note = match crate::access::budget(&engine, client.as_deref()) {
        Ok(note) => note,
        Err(e) => return refused(api, &e, None, record),
    };
    // The body's room in the budget is held until the reply is ready.
    let (bytes, _held) =
        match intake::read(&engine.body_budget, &parts.headers, body, &snap.settings).await {
            Ok(read) => read,
            Err(e) => return refused(api, &e, None, record),
        };
    record.bytes_in = bytes.len() as u64;
    let req = ClientRequest {
        inbound,
        headers: &parts.headers,
        body: bytes,
        client,
    };
    let mut out = render(api, pipeline::run(&engine, &snap, req, record).await);
    if let Some(v) = budget_note.and_then(|n| HeaderValue::from_str(&n).ok()) {
        out.headers_mut().insert(super::H_BUDGET, v);
    }
    out
}

/// Gemini's `:countTokens`, estimated here: `{"totalTokens"}`.
pub async fn estimate_gemini_tokens(engine: Arc<Engine>, req: Request) -> Response<Body> {
    let snap = engine.snapshot();
    let mut record = Recorder::new(&engine.log, Protocol::Gemini, "countTokens");
    let result = async {
        let client = authenticate(&engine, &snap, req.headers(), req.uri().query())?;
        record.client = client.map(|c| c.name.clone());
        let (parts, body) = req.into_parts();
        let (bytes, _held) =
            intake::read(&engine.body_budget, &parts.headers, body, &snap.settings).await?;
        pipeline::estimate_gemini_tokens(&bytes)
    }
    .await;
    match result {
        Ok(n) => {
            record.answered(200);
            json_response(
                http::StatusCode::OK,
                Bytes::from(serde_json::json!({ "totalTokens": n }).to_string()),
            )
        }
        Err(e) => refused(Api::Gemini, &e, None, record),
    }
}
