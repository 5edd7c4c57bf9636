//! Gemini's client endpoints: `models/{model}:{action}` and the model list.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::{Response, StatusCode};
use bytes::Bytes;

use super::json_response;
use super::proxy::{self, Inbound, error_response};
use crate::access::authenticate;
use crate::catalog::gemini_model;
use crate::config::Protocol;
use crate::engine::Engine;
use crate::error::GatewayError;
use crate::protocol::Api;
use crate::requestlog::Recorder;

pub async fn list_models(State(engine): State<Arc<Engine>>, req: Request) -> Response<Body> {
    let snap = engine.snapshot();
    let mut record = Recorder::new(&engine.log, Protocol::Gemini, "models");
    let resp = match authenticate(&engine, &snap, req.headers(), req.uri().query()) {
        Ok(client) => {
            record.client = client.map(|c| c.name.clone());
            json_response(StatusCode::OK, snap.gemini_models_body.clone())
        }
        Err(e) => {
            record.failed(&e);
            error_response(Api::Gemini, &e)
        }
    };
    record.status = resp.status().as_u16();
    resp
}

/// `GET /v1beta/models/{model}`: one model, as the Gemini SDK asks before some calls.
pub async fn get_model(
    State(engine): State<Arc<Engine>>,
    Path(model): Path<String>,
    req: Request,
) -> Response<Body> {
    let snap = engine.snapshot();
    if let Err(e) = authenticate(&engine, &snap, req.headers(), req.uri().query()) {
        return error_response(Api::Gemini, &e);
    }
    let name = model.strip_prefix("models/").unwrap_or(&model);
    if snap.route(name).is_some() {
        json_response(StatusCode::OK, Bytes::from(gemini_model(name).to_string()))
    } else {
        error_response(Api::Gemini, &GatewayError::unknown_model(name))
    }
}

/// `POST /v1beta/models/{model}:{action}`.
pub async fn model_action(
    State(engine): State<Arc<Engine>>,
    Path(target): Path<String>,
    uri: OriginalUri,
    req: Request,
) -> Response<Body> {
    let Some((model, action)) = target.rsplit_once(':') else {
        return error_response(
            Api::Gemini,
            &GatewayError::NotFound(format!(
                "Unknown endpoint: POST {}. Use models/{{model}}:generateContent or :streamGenerateContent.",
                uri.path()
            )),
        );
    };
    let sse = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "alt=sse"));
    let (stream, endpoint, api) = match action {
        "generateContent" => (false, "generateContent", Api::Gemini),
        "streamGenerateContent" => (true, "streamGenerateContent", Api::Gemini),
        "countTokens" => (false, "countTokens", Api::CountTokens),
        other => {
            return error_response(
                Api::Gemini,
                &GatewayError::NotFound(format!(
                    "Unknown action ':{other}'. Switchboard serves :generateContent, :streamGenerateContent and :countTokens."
                )),
            );
        }
    };
    if api == Api::CountTokens {
        return proxy::estimate_gemini_tokens(engine, req).await;
    }
    let inbound = Inbound {
        api,
        endpoint,
        path: Some((model, stream)),
        json_array: stream && !sse,
    };
    proxy::handle(engine, inbound, req).await
}
