//! Anthropic's client endpoints.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Response;

use super::proxy::{self, Inbound};
use crate::engine::Engine;
use crate::protocol::Api;

pub async fn messages(State(engine): State<Arc<Engine>>, req: Request) -> Response<Body> {
    let inbound = Inbound {
        api: Api::Messages,
        endpoint: "messages",
        path: None,
        json_array: false,
    };
    proxy::handle(engine, inbound, req).await
}

/// Passed to an Anthropic provider when the model has one; otherwise estimated here, since no
/// other protocol counts tokens the same way.
pub async fn count_tokens(State(engine): State<Arc<Engine>>, req: Request) -> Response<Body> {
    let inbound = Inbound {
        api: Api::CountTokens,
        endpoint: "messages/count_tokens",
        path: None,
        json_array: false,
    };
    proxy::handle(engine, inbound, req).await
}
