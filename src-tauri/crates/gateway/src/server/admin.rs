//! The admin API under `/api`: JSON, bearer token on every call but login, loopback Host and
//! same-machine Origin only, never cached.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use bytes::Bytes;
use futures_util::Stream;
use switchboard_api::{ApiError, ApiErrorBody, LoginRequest, ResetRequest, SyncResponse};
use tokio::sync::broadcast::error::RecvError;

use crate::engine::Engine;
use crate::origins;
use crate::outside::{Clip, MAX_NAME};
use crate::service::login::LoginError;
use crate::service::{self, ServiceError};

fn api_error(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    let body = ApiError {
        error: ApiErrorBody {
            message: message.into(),
        },
    };
    (status, Json(body)).into_response()
}

fn service_error(e: ServiceError) -> Response<Body> {
    let status = match &e {
        ServiceError::UnknownProvider(_)
        | ServiceError::UnknownModel { .. }
        | ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
        ServiceError::Conflict(_) => StatusCode::CONFLICT,
        ServiceError::Sync(_) => StatusCode::BAD_GATEWAY,
        ServiceError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ServiceError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    api_error(status, e.to_string())
}

/// Refuses what a web page could send: a foreign Host (DNS rebinding) or Origin (a form post or
/// fetch from another site, another local server's page included); then checks the token.
pub async fn guard(State(engine): State<Arc<Engine>>, req: Request, next: Next) -> Response<Body> {
    let snap = engine.snapshot();
    let configured = snap.settings.server.host.as_str();
    let headers = req.headers();
    let authority = origins::authority_of(headers, req.uri());
    let host = origins::host_of(authority);
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    // An Origin that is not text is nobody's page: foreign.
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned());
    let app_origin = headers
        .get(header::ORIGIN)
        .filter(|o| {
            origins::APP_ORIGINS
                .iter()
                .any(|a| o.as_bytes() == a.as_bytes())
        })
        .cloned();
    let mut resp = if !origins::allowed_host(host, configured) {
        api_error(
            StatusCode::FORBIDDEN,
            format!("Host '{}' is not allowed", Clip(host, MAX_NAME)),
        )
    } else if let Some(origin) = origin.as_deref()
        && !origins::APP_ORIGINS.contains(&origin)
        && !origins::same_origin(origin, authority)
    {
        api_error(
            StatusCode::FORBIDDEN,
            format!(
                "Origin '{}' is not allowed: the admin API answers only the admin UI's own pages",
                Clip(origin, MAX_NAME)
            ),
        )
    } else if req.method() == axum::http::Method::OPTIONS {
        // A CORS preflight from the desktop window's page carries no token by design.
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, DELETE"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        resp
    } else if !matches!(req.uri().path(), "/login" | "/setup") && !authorized(&engine, headers) {
        api_error(
            StatusCode::UNAUTHORIZED,
            "Missing or expired admin token: POST /api/login with the admin password",
        )
    } else {
        next.run(req).await
    };
    tracing::debug!(
        target: "switchboard::admin",
        method = %method,
        path = %path,
        origin = origin.as_deref().unwrap_or("-"),
        status = resp.status().as_u16(),
        "admin call"
    );
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Only the desktop page is cross-origin; every other allowed caller is same-origin, so no
    // other origin is ever echoed.
    if let Some(origin) = app_origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}

fn authorized(engine: &Engine, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| engine.admin_sessions.valid(t.trim()))
}

/// The body of a login or of the first password's choice.
fn password_request(body: &[u8]) -> Result<LoginRequest, Box<Response<Body>>> {
    serde_json::from_slice::<LoginRequest>(body).map_err(|_| {
        Box::new(api_error(
            StatusCode::BAD_REQUEST,
            "Send {\"password\": \"...\"}",
        ))
    })
}

pub async fn login(
    State(engine): State<Arc<Engine>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    body: Bytes,
) -> Response<Body> {
    let req = match password_request(&body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    match service::login::login(&engine, req, peer).await {
        Ok(ok) => Json(ok).into_response(),
        Err(e) => {
            let status = match &e {
                LoginError::NoPassword => StatusCode::FORBIDDEN,
                LoginError::Refused { .. } => StatusCode::TOO_MANY_REQUESTS,
                LoginError::WrongPassword | LoginError::WrongCode => StatusCode::UNAUTHORIZED,
                LoginError::Store(_) | LoginError::Token(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let mut resp = api_error(status, e.to_string());
            if let LoginError::Refused { retry_after, .. } = e
                && let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string())
            {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
    }
}

/// `GET /api/setup`: is there an admin password yet, may this caller choose it.
pub async fn setup_status(
    State(engine): State<Arc<Engine>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
) -> Response<Body> {
    match service::login::setup_status(&engine, peer).await {
        Ok(s) => Json(s).into_response(),
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `POST /api/setup {"password"}`: the first admin password, from this machine; answers a
/// session as login does.
pub async fn setup(
    State(engine): State<Arc<Engine>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    body: Bytes,
) -> Response<Body> {
    let req = match password_request(&body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    match service::login::setup(&engine, req, peer).await {
        Ok(ok) => Json(ok).into_response(),
        Err(e) => {
            use service::login::SetupError;
            let status = match &e {
                SetupError::NotHere => StatusCode::FORBIDDEN,
                SetupError::AlreadySet | SetupError::Busy => StatusCode::CONFLICT,
                SetupError::Password(crate::admin_auth::PasswordError::TooShort) => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                SetupError::Login(LoginError::WrongCode) => StatusCode::UNAUTHORIZED,
                SetupError::Password(_) | SetupError::Login(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            api_error(status, e.to_string())
        }
    }
}

/// `POST /api/logout`: the caller's token stops working.
pub async fn logout(State(engine): State<Arc<Engine>>, headers: HeaderMap) -> Response<Body> {
    if let Some(t) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        engine.admin_sessions.revoke(t.trim());
    }
    StatusCode::NO_CONTENT.into_response()
}

pub async fn providers(State(engine): State<Arc<Engine>>) -> Response<Body> {
    match service::providers(&engine).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => service_error(e),
    }
}

pub async fn summary(State(engine): State<Arc<Engine>>) -> Response<Body> {
    Json(service::summary(&engine)).into_response()
}

pub async fn status(State(engine): State<Arc<Engine>>) -> Response<Body> {
    Json(service::status(&engine)).into_response()
}

pub async fn pause(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response<Body> {
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        switchboard_api::PauseRequest::default()
    } else {
        match serde_json::from_slice::<switchboard_api::PauseRequest>(&body) {
            Ok(r) => r,
            Err(e) => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    format!("Send {{\"minutes\"?}}: {e}"),
                );
            }
        }
    };
    let seconds = match (req.minutes, req.seconds) {
        (Some(_), Some(_)) => {
            return api_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "give minutes or seconds, not both",
            );
        }
        (Some(m), None) if !(1..=1440).contains(&m) => {
            return api_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "minutes: must be between 1 and 1440",
            );
        }
        (None, Some(s)) if !(1..=86_400).contains(&s) => {
            return api_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "seconds: must be between 1 and 86400",
            );
        }
        (m, s) => m.map(|m| u64::from(m) * 60).or(s.map(u64::from)),
    };
    let duration = seconds.map(std::time::Duration::from_secs);
    match service::set_paused(&engine, &name, true, duration).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => service_error(e),
    }
}

pub async fn resume(State(engine): State<Arc<Engine>>, Path(name): Path<String>) -> Response<Body> {
    match service::set_paused(&engine, &name, false, None).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => service_error(e),
    }
}

pub async fn sync(State(engine): State<Arc<Engine>>, Path(name): Path<String>) -> Response<Body> {
    match service::sync(&engine, &name).await {
        Ok(models) => Json(SyncResponse {
            provider: name,
            models,
        })
        .into_response(),
        Err(e) => service_error(e),
    }
}

pub async fn reset(State(engine): State<Arc<Engine>>, body: Bytes) -> Response<Body> {
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        ResetRequest::default()
    } else {
        match serde_json::from_slice::<ResetRequest>(&body) {
            Ok(r) => r,
            Err(e) => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    format!("Send {{\"provider\"?, \"model\"?}}: {e}"),
                );
            }
        }
    };
    match service::reset_breakers(&engine, req.provider.as_deref(), req.model.as_deref()) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => service_error(e),
    }
}

pub async fn preview(State(engine): State<Arc<Engine>>, body: Bytes) -> Response<Body> {
    let req = match serde_json::from_slice::<switchboard_api::ModelPreviewRequest>(&body) {
        Ok(r) => r,
        Err(e) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                format!("Send {{\"name\", \"rules\"?, \"include\"?, \"exclude_providers\"?}}: {e}"),
            );
        }
    };
    match service::preview(&engine, &req) {
        Ok(r) => Json(r).into_response(),
        Err(e) => service_error(e),
    }
}

/// `POST /api/route/preview {"request", "model"?, "client_key"?}`: what routing would do.
pub async fn route_preview(State(engine): State<Arc<Engine>>, body: Bytes) -> Response<Body> {
    match serde_json::from_slice::<switchboard_api::RoutePreviewRequest>(&body) {
        Ok(req) => match service::route_preview(&engine, &req).await {
            Ok(r) => Json(r).into_response(),
            Err(e) => service_error(e),
        },
        Err(e) => api_error(
            StatusCode::BAD_REQUEST,
            format!("Send {{\"request\", \"model\"?, \"client_key\"?}}: {e}"),
        ),
    }
}

/// The body as JSON, or why not (for a 400).
fn json_body(body: &Bytes) -> Result<serde_json::Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))
}

fn no_content(r: Result<(), ServiceError>) -> Response<Body> {
    match r {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => service_error(e),
    }
}

pub async fn put_provider(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response<Body> {
    match json_body(&body) {
        Ok(v) => no_content(service::put_provider(&engine, &name, v).await),
        Err(m) => api_error(StatusCode::BAD_REQUEST, m),
    }
}

pub async fn delete_provider(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
) -> Response<Body> {
    no_content(service::delete_provider(&engine, &name).await)
}

/// `POST /api/providers/{name}/rename {"name": "new"}`.
pub async fn rename_provider(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response<Body> {
    match serde_json::from_slice::<switchboard_api::RenameRequest>(&body) {
        Ok(req) => no_content(service::rename_provider(&engine, &name, &req.name).await),
        Err(e) => api_error(
            StatusCode::BAD_REQUEST,
            format!("Send {{\"name\": \"new-name\"}}: {e}"),
        ),
    }
}

pub async fn models(State(engine): State<Arc<Engine>>) -> Response<Body> {
    match service::models(&engine).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => service_error(e),
    }
}

pub async fn put_model(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response<Body> {
    match json_body(&body) {
        Ok(v) => no_content(service::put_model(&engine, &name, v).await),
        Err(m) => api_error(StatusCode::BAD_REQUEST, m),
    }
}

pub async fn delete_model(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
) -> Response<Body> {
    no_content(service::delete_model(&engine, &name).await)
}

/// `GET /api/clients`: the coding agents and whether each is connected.
pub async fn agent_clients(State(engine): State<Arc<Engine>>) -> Response<Body> {
    match service::agent_clients(&engine).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => service_error(e),
    }
}

/// `POST /api/clients/{id}/connect`.
pub async fn connect_client(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> Response<Body> {
    match service::connect(&engine, &id).await {
        Ok(change) => Json(change).into_response(),
        Err(e) => service_error(e),
    }
}

/// `POST /api/clients/{id}/disconnect`.
pub async fn disconnect_client(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> Response<Body> {
    match service::disconnect(&engine, &id).await {
        Ok(change) => Json(change).into_response(),
        Err(e) => service_error(e),
    }
}

/// `POST /api/clients/{id}/keep`: a client connected before this start stays as it is.
pub async fn keep_client(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> Response<Body> {
    match service::keep(&engine, &id).await {
        Ok(change) => Json(change).into_response(),
        Err(e) => service_error(e),
    }
}

pub async fn client_keys(State(engine): State<Arc<Engine>>) -> Response<Body> {
    match service::client_keys(&engine).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => service_error(e),
    }
}

pub async fn create_client_key(State(engine): State<Arc<Engine>>, body: Bytes) -> Response<Body> {
    let req = match serde_json::from_slice::<switchboard_api::CreateClientKey>(&body) {
        Ok(r) => r,
        Err(e) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                format!(
                    "Send {{\"name\", \"models\"?, \"rpm\"?, \"expires_at\"?, \"capture_bodies\"?, \"pin_providers\"?}}: {e}"
                ),
            );
        }
    };
    match service::create_client_key(&engine, req).await {
        Ok(created) => (StatusCode::CREATED, Json(created)).into_response(),
        Err(e) => service_error(e),
    }
}

pub async fn revoke_client_key(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
) -> Response<Body> {
    no_content(service::revoke_client_key(&engine, &name).await)
}

/// `PUT /api/client-keys/{name}/budget`: the key's budget (`{}` takes it away).
pub async fn put_budget(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response<Body> {
    match json_body(&body) {
        Ok(v) => no_content(service::put_budget(&engine, &name, v).await),
        Err(m) => api_error(StatusCode::BAD_REQUEST, m),
    }
}

/// `GET /api/export`: the configuration as a TOML file to download; no secret is in it.
pub async fn export(State(engine): State<Arc<Engine>>) -> Response<Body> {
    match service::export(&engine).await {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, "application/toml; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"switchboard.toml\"",
                ),
            ],
            text,
        )
            .into_response(),
        Err(e) => service_error(e),
    }
}

pub async fn logs(
    State(engine): State<Arc<Engine>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response<Body> {
    match service::logs(&engine, &query).await {
        Ok(page) => Json(page).into_response(),
        Err(e) => service_error(e),
    }
}

/// `GET /api/logs/live`: each request as it is written, as a `request` event (the row of
/// `GET /api/logs`), with the same filters; a follower too slow for the traffic gets a
/// `lagged` event saying how many it missed, then the rows after them.
pub async fn live_logs(
    State(engine): State<Arc<Engine>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response<Body> {
    let filter = match service::live_filter(&query) {
        Ok(f) => f,
        Err(e) => return service_error(e),
    };
    let rx = engine.log.follow();
    let stream = futures_util::stream::unfold((rx, filter), |(mut rx, filter)| async move {
        loop {
            match rx.recv().await {
                Ok(row) if service::passes(&filter, &row) => {
                    let event = Event::default()
                        .event("request")
                        .json_data(&*row)
                        .unwrap_or_default();
                    return Some((Ok::<_, Infallible>(event), (rx, filter)));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    let event = Event::default()
                        .event("lagged")
                        .data(format!("{{\"missed\":{n}}}"));
                    return Some((Ok(event), (rx, filter)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// `GET /api/logs/export?format=csv|jsonl` with the filters of `GET /api/logs`: a download,
/// streamed.
pub async fn export_logs(
    State(engine): State<Arc<Engine>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response<Body> {
    match service::export_logs(engine, &query) {
        Ok((format, rows)) => (
            [
                (header::CONTENT_TYPE, format.content_type().to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", format.file_name()),
                ),
            ],
            Body::from_stream(rows),
        )
            .into_response(),
        Err(e) => service_error(e),
    }
}

pub async fn daily(
    State(engine): State<Arc<Engine>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response<Body> {
    match service::daily(&engine, &query).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => service_error(e),
    }
}

pub async fn log(State(engine): State<Arc<Engine>>, Path(id): Path<String>) -> Response<Body> {
    let Ok(id) = id.parse::<i64>() else {
        return api_error(
            StatusCode::NOT_FOUND,
            format!("no request {id:?} in the log"),
        );
    };
    match service::log(&engine, id).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => service_error(e),
    }
}

/// `GET /api/stats`: the request log summed over a window, in buckets, optionally by group.
pub async fn stats(
    State(engine): State<Arc<Engine>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response<Body> {
    match service::stats(&engine, &query).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => service_error(e),
    }
}

/// `GET /api/prices`: the price list in use, the entries over it, the models nothing prices.
pub async fn prices(State(engine): State<Arc<Engine>>) -> Response<Body> {
    match service::prices(&engine).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => service_error(e),
    }
}

/// `PUT /api/prices {"entries": [...]}`: every entry (those left out are deleted).
pub async fn put_prices(State(engine): State<Arc<Engine>>, body: Bytes) -> Response<Body> {
    match serde_json::from_slice::<switchboard_api::prices::PricesUpdate>(&body) {
        Ok(update) => no_content(service::put_prices(&engine, update).await),
        Err(e) => api_error(
            StatusCode::BAD_REQUEST,
            format!("the body must be {{\"entries\": [...]}}: {e}"),
        ),
    }
}

/// `GET /api/capabilities`: the entries, and what each routed (provider, model) can take.
pub async fn capabilities(State(engine): State<Arc<Engine>>) -> Response<Body> {
    Json(service::capabilities(&engine)).into_response()
}

/// `PUT /api/capabilities {"entries": [...]}`: every entry (those left out are deleted).
pub async fn put_capabilities(State(engine): State<Arc<Engine>>, body: Bytes) -> Response<Body> {
    match serde_json::from_slice::<switchboard_api::capabilities::CapabilitiesUpdate>(&body) {
        Ok(update) => no_content(service::put_capabilities(&engine, update).await),
        Err(e) => api_error(
            StatusCode::BAD_REQUEST,
            format!("the body must be {{\"entries\": [...]}}: {e}"),
        ),
    }
}

/// `POST /api/whatif`: the last days' requests replayed through another strategy.
pub async fn whatif(State(engine): State<Arc<Engine>>, body: Bytes) -> Response<Body> {
    match serde_json::from_slice::<switchboard_api::whatif::WhatIfRequest>(&body) {
        Ok(req) => match service::whatif(&engine, req).await {
            Ok(w) => Json(w).into_response(),
            Err(e) => service_error(e),
        },
        Err(e) => api_error(
            StatusCode::BAD_REQUEST,
            format!("the body must be {{\"strategy\", \"days\"?, \"sort\"?, \"model\"?}}: {e}"),
        ),
    }
}

pub async fn groups(State(engine): State<Arc<Engine>>) -> Response<Body> {
    Json(service::groups(&engine)).into_response()
}

pub async fn quotas(State(engine): State<Arc<Engine>>) -> Response<Body> {
    Json(service::quotas(&engine)).into_response()
}

pub async fn put_quotas(State(engine): State<Arc<Engine>>, body: Bytes) -> Response<Body> {
    match serde_json::from_slice::<switchboard_api::quotas::QuotasUpdate>(&body) {
        Ok(update) => no_content(service::put_quotas(&engine, update).await),
        Err(e) => api_error(
            StatusCode::BAD_REQUEST,
            format!("the body must be {{\"entries\": [...]}}: {e}"),
        ),
    }
}

pub async fn settings(State(engine): State<Arc<Engine>>) -> Response<Body> {
    Json(service::settings(&engine)).into_response()
}

pub async fn patch_settings(State(engine): State<Arc<Engine>>, body: Bytes) -> Response<Body> {
    match json_body(&body) {
        Ok(v) => no_content(service::patch_settings(&engine, v).await),
        Err(m) => api_error(StatusCode::BAD_REQUEST, m),
    }
}

/// Live events as server-sent events: one `event:` per kind, JSON data.
pub async fn events(
    State(engine): State<Arc<Engine>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = engine.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    let kind = serde_json::to_value(&ev)
                        .ok()
                        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
                        .unwrap_or_else(|| "event".into());
                    let event = Event::default()
                        .event(kind)
                        .json_data(&ev)
                        .unwrap_or_default();
                    return Some((Ok(event), rx));
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
