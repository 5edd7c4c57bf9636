//! OpenAI-compatible client endpoints.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::{Response, StatusCode};

use super::proxy::{self, Inbound, error_response};
use super::{gemini, json_response};
use crate::access::authenticate;
use crate::config::Protocol;
use crate::engine::Engine;
use crate::error::GatewayError;
use crate::protocol::Api;
use crate::requestlog::Recorder;

/// Whether a request on `/v1` comes from a Gemini client (its SDK uses `/v1` as well as
/// `/v1beta`): it authenticates the Gemini way.
fn from_gemini(req: &Request) -> bool {
    req.headers().contains_key("x-goog-api-key")
        || req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p.starts_with("key=")))
}

/// `GET /v1/models/{model}`: OpenAI's model object, or Gemini's for a Gemini client.
pub async fn get_model(
    State(engine): State<Arc<Engine>>,
    Path(model): Path<String>,
    req: Request,
) -> Response<Body> {
    if from_gemini(&req) {
        return gemini::get_model(State(engine), Path(model), req).await;
    }
    let snap = engine.snapshot();
    if let Err(e) = authenticate(&engine, &snap, req.headers(), req.uri().query()) {
        return error_response(Api::Chat, &e);
    }
    if snap.route(&model).is_none() {
        return error_response(Api::Chat, &GatewayError::unknown_model(&model));
    }
    let body = serde_json::json!({"id": model, "object": "model", "created": 0, "owned_by": "switchboard"});
    json_response(StatusCode::OK, bytes::Bytes::from(body.to_string()))
}

/// OpenAI's model list; Anthropic's when the client sends `anthropic-version` (the Anthropic
/// SDK does); Gemini's for a Gemini client.
pub async fn list_models(State(engine): State<Arc<Engine>>, req: Request) -> Response<Body> {
    if from_gemini(&req) {
        return gemini::list_models(State(engine), req).await;
    }
    let snap = engine.snapshot();
    let anthropic = req.headers().contains_key("anthropic-version");
    let (protocol, api) = if anthropic {
        (Protocol::Anthropic, Api::Messages)
    } else {
        (Protocol::OpenAi, Api::Chat)
    };
    let mut record = Recorder::new(&engine.log, protocol, "models");
    let resp = match authenticate(&engine, &snap, req.headers(), req.uri().query()) {
        Ok(client) => {
            record.client = client.map(|c| c.name.clone());
            let body = if anthropic {
                snap.anthropic_models_body.clone()
            } else {
                snap.openai_models_body.clone()
            };
            json_response(StatusCode::OK, body)
        }
        Err(e) => {
            record.failed(&e);
            error_response(api, &e)
        }
    };
    record.status = resp.status().as_u16();
    resp
}

pub async fn unknown_endpoint(
    State(engine): State<Arc<Engine>>,
    uri: OriginalUri,
    req: Request,
) -> Response<Body> {
    let api = api_of_path(uri.path());
    let serves = if api == Api::Gemini {
        "GET /v1beta/models and POST /v1beta/models/{model}:generateContent, :streamGenerateContent and :countTokens"
    } else {
        "POST /v1/chat/completions, /v1/responses, /v1/embeddings, /v1/images/generations, /v1/messages and /v1/messages/count_tokens, and GET /v1/models"
    };
    let e = GatewayError::NotFound(format!(
        "Unknown endpoint: {} {}. Switchboard serves {serves}.",
        req.method(),
        uri.path()
    ));
    let mut record = Recorder::new(&engine.log, api.family(), "unknown");
    record.failed(&e);
    drop(record);
    error_response(api, &e)
}

/// The protocol a path belongs to, for the shape of its errors.
pub(super) fn api_of_path(path: &str) -> Api {
    if path.starts_with("/v1beta") {
        Api::Gemini
    } else if path.starts_with("/v1/messages") {
        Api::Messages
    } else {
        Api::Chat
    }
}

pub async fn method_not_allowed(uri: OriginalUri, req: Request) -> Response<Body> {
    error_response(
        api_of_path(uri.path()),
        &GatewayError::MethodNotAllowed(format!(
            "Method {} is not allowed on {}.",
            req.method(),
            uri.path()
        )),
    )
}

pub async fn chat_completions(State(engine): State<Arc<Engine>>, req: Request) -> Response<Body> {
    proxy::handle(engine, native(Api::Chat, "chat/completions"), req).await
}

pub async fn responses(State(engine): State<Arc<Engine>>, req: Request) -> Response<Body> {
    proxy::handle(engine, native(Api::Responses, "responses"), req).await
}

pub async fn embeddings(State(engine): State<Arc<Engine>>, req: Request) -> Response<Body> {
    proxy::handle(engine, native(Api::Embeddings, "embeddings"), req).await
}

pub async fn image_generations(State(engine): State<Arc<Engine>>, req: Request) -> Response<Body> {
    proxy::handle(engine, native(Api::Images, "images/generations"), req).await
}

fn native(api: Api, endpoint: &'static str) -> Inbound<'static> {
    Inbound {
        api,
        endpoint,
        path: None,
        json_array: false,
    }
}
