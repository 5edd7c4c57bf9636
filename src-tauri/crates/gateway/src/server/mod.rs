//! The axum routers. Handlers are thin: parse, call the engine, render in the client's protocol.

mod admin;
mod anthropic;
mod cross_site;
mod gemini;
mod intake;
mod metrics;
mod openai;
mod proxy;
mod responses_ws;
pub mod ui;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::middleware;
use axum::routing::{get, post};
use bytes::Bytes;

use crate::engine::Engine;

pub const H_PROVIDER: &str = "x-switchboard-provider";
pub const H_MODEL: &str = "x-switchboard-model";
pub const H_ATTEMPTS: &str = "x-switchboard-attempts";
pub const H_DROPPED: &str = "x-switchboard-dropped";
/// A tiered model's request: the tier it took.
pub const H_TIER: &str = "x-switchboard-tier";
/// A client key past its budget's warning share: which limit, how far, when it resets.
pub const H_BUDGET: &str = "x-switchboard-budget";

/// The whole HTTP surface; `ui_files` is the admin UI served at `/admin`.
pub fn router(engine: Arc<Engine>, ui_files: &'static [ui::UiFile]) -> Router {
    let v1 = Router::new()
        .route("/chat/completions", post(openai::chat_completions))
        .route(
            "/responses",
            post(openai::responses).get(responses_ws::upgrade),
        )
        .route("/embeddings", post(openai::embeddings))
        .route("/images/generations", post(openai::image_generations))
        .route("/messages", post(anthropic::messages))
        .route("/messages/count_tokens", post(anthropic::count_tokens))
        .route("/models", get(openai::list_models))
        // Gemini's SDK calls `/v1/models/{model}:generateContent` too.
        .route(
            "/models/{target}",
            get(openai::get_model).post(gemini::model_action),
        )
        .fallback(openai::unknown_endpoint)
        .method_not_allowed_fallback(openai::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            engine.clone(),
            cross_site::guard,
        ))
        .layer(middleware::map_response(fill_route_headers));
    let v1beta = Router::new()
        .route("/models", get(gemini::list_models))
        .route(
            "/models/{target}",
            get(gemini::get_model).post(gemini::model_action),
        )
        .fallback(openai::unknown_endpoint)
        .method_not_allowed_fallback(openai::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            engine.clone(),
            cross_site::guard,
        ))
        .layer(middleware::map_response(fill_route_headers));
    let api = Router::new()
        .route("/login", post(admin::login))
        .route("/setup", get(admin::setup_status).post(admin::setup))
        .route("/clients", get(admin::agent_clients))
        .route("/clients/{id}/connect", post(admin::connect_client))
        .route("/clients/{id}/disconnect", post(admin::disconnect_client))
        .route("/clients/{id}/keep", post(admin::keep_client))
        .route("/logout", post(admin::logout))
        .route("/providers", get(admin::providers))
        .route(
            "/providers/{name}",
            axum::routing::put(admin::put_provider).delete(admin::delete_provider),
        )
        .route("/models", get(admin::models))
        .route(
            "/models/{name}",
            axum::routing::put(admin::put_model).delete(admin::delete_model),
        )
        .route(
            "/client-keys",
            get(admin::client_keys).post(admin::create_client_key),
        )
        .route(
            "/client-keys/{name}",
            axum::routing::delete(admin::revoke_client_key),
        )
        .route(
            "/client-keys/{name}/budget",
            axum::routing::put(admin::put_budget),
        )
        .route("/settings", get(admin::settings).put(admin::patch_settings))
        .route("/export", get(admin::export))
        .route("/prices", get(admin::prices).put(admin::put_prices))
        .route(
            "/capabilities",
            get(admin::capabilities).put(admin::put_capabilities),
        )
        .route("/logs", get(admin::logs))
        .route("/logs/daily", get(admin::daily))
        .route("/logs/export", get(admin::export_logs))
        .route("/logs/live", get(admin::live_logs))
        .route("/stats", get(admin::stats))
        .route("/logs/{id}", get(admin::log))
        .route("/providers/{name}/rename", post(admin::rename_provider))
        .route("/providers/{name}/pause", post(admin::pause))
        .route("/providers/{name}/resume", post(admin::resume))
        .route("/providers/{name}/sync", post(admin::sync))
        .route("/status", get(admin::status))
        .route("/quotas", get(admin::quotas).put(admin::put_quotas))
        .route("/whatif", post(admin::whatif))
        .route("/groups", get(admin::groups))
        .route("/summary", get(admin::summary))
        .route("/breakers/reset", post(admin::reset))
        .route("/models/preview", post(admin::preview))
        .route("/route/preview", post(admin::route_preview))
        .route("/events", get(admin::events))
        .layer(middleware::from_fn_with_state(engine.clone(), admin::guard));
    let admin_ui = Router::new()
        .route("/admin", get(ui::redirect))
        .route("/admin/", get(ui::page))
        .route("/admin/{*path}", get(ui::page))
        .with_state(ui_files);
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics::metrics))
        .merge(admin_ui)
        .nest("/v1", v1)
        .nest("/v1beta", v1beta)
        .nest("/api", api)
        .with_state(engine)
}

async fn health() -> Response<Body> {
    json_response(StatusCode::OK, Bytes::from_static(br#"{"status":"ok"}"#))
}

/// Every client-API answer carries the routing headers; where no provider was involved (the
/// request was refused first) they say `-` and 0 attempts.
async fn fill_route_headers(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    for (name, default) in [(H_PROVIDER, "-"), (H_MODEL, "-"), (H_ATTEMPTS, "0")] {
        if !h.contains_key(name) {
            h.insert(name, HeaderValue::from_static(default));
        }
    }
    resp
}

pub fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
