//! The Responses API's WebSocket mode, which Codex's OpenAI provider asks for first: one
//! connection, many turns. Each `response.create` message becomes an ordinary streamed
//! `POST /v1/responses` through the path HTTP clients take (routing, failover, conversion, the
//! request log), and its events go back as messages. A turn that names the previous response
//! (`previous_response_id`) sends only its new input: the connection keeps the last turn's
//! input and output, and sends the whole history upstream, which HTTP providers need.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, header};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::proxy::{self, Inbound, error_response};
use crate::engine::Engine;
use crate::error::GatewayError;
use crate::protocol::{Api, sse};

/// A connection with no turn for this long is closed; Codex opens a new one when it needs it.
const IDLE: Duration = Duration::from_secs(300);
/// The most of an error answer read to pass its message on.
const MAX_ERROR: usize = 64 << 10;

/// `GET /v1/responses`: a WebSocket upgrade from a local client, else 405.
pub async fn upgrade(State(engine): State<Arc<Engine>>, req: Request) -> Response<Body> {
    let (mut parts, _) = req.into_parts();
    let snap = engine.snapshot();
    // Any web page may open a WebSocket to any host, with no CORS in the way: the client API's
    // guard has refused a foreign Host; a browser's socket (it always sends an Origin) is taken
    // only from an origin the user allowed.
    if parts.headers.get(header::ORIGIN).is_some_and(|o| {
        !o.to_str()
            .is_ok_and(|o| crate::origins::allowed(o, &snap.settings.server.allowed_origins))
    }) {
        return error_response(
            Api::Responses,
            &GatewayError::CrossSite(
                "WebSocket connections are for local clients: a browser's Origin is refused \
                 unless it is listed in server.allowed_origins."
                    .into(),
            ),
        );
    }
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws,
        Err(_) => {
            return error_response(
                Api::Responses,
                &GatewayError::MethodNotAllowed(
                    "Method GET is not allowed on /v1/responses; POST a request, or open a WebSocket."
                        .into(),
                ),
            );
        }
    };
    // A wrong or expired key is a plain 401 at the upgrade, which clients show as such.
    if let Err(e) = crate::access::authenticate(&engine, &snap, &parts.headers, parts.uri.query()) {
        return error_response(Api::Responses, &e);
    }
    // Each turn goes as an ordinary request: a key given as `?key=` goes with it.
    let uri = match parts.uri.query() {
        Some(q) => format!("/v1/responses?{q}"),
        None => "/v1/responses".to_owned(),
    };
    let uri: axum::http::Uri = uri
        .parse()
        .unwrap_or_else(|_| axum::http::Uri::from_static("/v1/responses"));
    let mut headers = parts.headers;
    // The WebSocket beta means nothing to an HTTP upstream.
    if headers
        .get("openai-beta")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("responses_websockets"))
    {
        headers.remove("openai-beta");
    }
    for h in [
        header::CONNECTION,
        header::UPGRADE,
        header::HOST,
        header::CONTENT_LENGTH,
        header::SEC_WEBSOCKET_KEY,
        header::SEC_WEBSOCKET_VERSION,
        header::SEC_WEBSOCKET_EXTENSIONS,
        header::SEC_WEBSOCKET_PROTOCOL,
    ] {
        headers.remove(h);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let max = snap.settings.server.max_body_bytes();
    ws.max_message_size(max)
        .on_upgrade(move |socket| session(engine, socket, uri, headers))
}

/// What the connection remembers of its last turn.
struct Turn {
    id: String,
    input: Vec<Value>,
    output: Vec<Value>,
}

async fn session(
    engine: Arc<Engine>,
    mut socket: WebSocket,
    uri: axum::http::Uri,
    headers: HeaderMap,
) {
    let mut last: Option<Turn> = None;
    loop {
        let text = match tokio::time::timeout(IDLE, socket.recv()).await {
            Ok(Some(Ok(Message::Text(t)))) => t.to_string(),
            Ok(Some(Ok(Message::Binary(b)))) => String::from_utf8_lossy(&b).into_owned(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            // Closed, broken or idle.
            _ => break,
        };
        if turn(&engine, &mut socket, (&uri, &headers), &text, &mut last)
            .await
            .is_err()
        {
            break;
        }
    }
}

/// A response's output as input for the next turn, the way a client sends it over HTTP: no
/// server ids (with `store: false` the server keeps no items, and refuses ids it does not
/// know; another provider after a failover never knew them), and reasoning only with the
/// encrypted content that lets a provider read it back.
fn replayable(output: &Value) -> Vec<Value> {
    output
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| {
            item["type"] != "reasoning"
                || item
                    .get("encrypted_content")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
        })
        .map(|item| {
            let mut item = item.clone();
            if let Some(o) = item.as_object_mut() {
                o.remove("id");
            }
            item
        })
        .collect()
}

fn error_event(status: u16, kind: &str, message: &str) -> String {
    json!({"type": "error", "status": status,
        "error": {"type": kind, "code": kind, "message": message}})
    .to_string()
}

/// One `response.create`: its events sent as they come. `Err` when the client is gone.
async fn turn(
    engine: &Arc<Engine>,
    socket: &mut WebSocket,
    (uri, headers): (&axum::http::Uri, &HeaderMap),
    text: &str,
    last: &mut Option<Turn>,
) -> Result<(), axum::Error> {
    let send = |s: String| Message::Text(s.into());
    let mut body = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o))
            if o.get("type").and_then(Value::as_str) == Some("response.create") =>
        {
            o
        }
        _ => {
            let m = "Each message must be a JSON object of type \"response.create\".";
            return socket
                .send(send(error_event(400, "invalid_request_error", m)))
                .await;
        }
    };
    body.remove("type");
    let mut input = match body.remove("input") {
        Some(Value::Array(items)) => items,
        Some(Value::String(s)) => vec![json!({"role": "user", "content": s})],
        _ => Vec::new(),
    };
    if let Some(prev) = body.remove("previous_response_id").filter(|v| !v.is_null()) {
        // Kept until this turn completes: a failed turn leaves the last good one to go on from.
        match last.as_ref() {
            Some(t) if prev.as_str() == Some(t.id.as_str()) => {
                let mut whole = Vec::with_capacity(t.input.len() + t.output.len() + input.len());
                whole.extend(t.input.iter().cloned());
                whole.extend(t.output.iter().cloned());
                whole.append(&mut input);
                input = whole;
            }
            _ => {
                let m = format!(
                    "previous_response_id {prev} is not this connection's last response; send the whole input"
                );
                return socket
                    .send(send(error_event(400, "previous_response_not_found", &m)))
                    .await;
            }
        }
    }
    // A warm-up (`generate: false`) asks for nothing: answered here, remembered for the next.
    if body.remove("generate") == Some(Value::Bool(false)) {
        let id = format!("resp_ws_{:x}", fastrand::u64(..));
        let r = json!({"id": id, "object": "response", "status": "completed", "output": [],
            "model": body.get("model").cloned().unwrap_or(Value::Null)});
        socket
            .send(send(
                json!({"type": "response.created", "response": r}).to_string(),
            ))
            .await?;
        socket
            .send(send(
                json!({"type": "response.completed", "response": r}).to_string(),
            ))
            .await?;
        *last = Some(Turn {
            id,
            input,
            output: Vec::new(),
        });
        return Ok(());
    }
    body.insert("input".into(), Value::Array(input.clone()));
    body.insert("stream".into(), Value::Bool(true));
    let mut req = Request::new(Body::from(Value::Object(body).to_string()));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri.clone();
    *req.headers_mut() = headers.clone();
    let inbound = Inbound {
        api: Api::Responses,
        endpoint: "responses (websocket)",
        path: None,
        json_array: false,
    };
    let resp = proxy::handle(engine.clone(), inbound, req).await;
    let status = resp.status();
    let mut stream = resp.into_body().into_data_stream();
    if !status.is_success() {
        let mut bytes = Vec::new();
        while let Some(Ok(chunk)) = stream.next().await {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_ERROR {
                break;
            }
        }
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let e = &v["error"];
        let ev = json!({"type": "error", "status": status.as_u16(), "error": e});
        return socket.send(send(ev.to_string())).await;
    }
    let mut reader = sse::Reader::default();
    let mut frames = Vec::new();
    let mut done: Option<Turn> = None;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        reader.feed(&chunk, |f| frames.push(f.data));
        for data in frames.drain(..) {
            if data.trim().is_empty() || data == "[DONE]" {
                continue;
            }
            if let Ok(v) = serde_json::from_str::<Value>(&data)
                && matches!(
                    v["type"].as_str(),
                    Some("response.completed" | "response.incomplete")
                )
            {
                done = Some(Turn {
                    id: v["response"]["id"].as_str().unwrap_or("").to_owned(),
                    input: Vec::new(),
                    output: replayable(&v["response"]["output"]),
                });
            }
            socket.send(send(data)).await?;
        }
    }
    if let Some(t) = done {
        *last = Some(Turn { input, ..t });
    }
    Ok(())
}
