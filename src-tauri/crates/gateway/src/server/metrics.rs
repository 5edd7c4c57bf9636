//! `GET /metrics`: open to scrapers on loopback; when the gateway listens beyond it, only with
//! `Authorization: Bearer $SWITCHBOARD_METRICS_TOKEN`. Web pages are refused either way (a
//! foreign Host or Origin), as everywhere.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Response, StatusCode, header};
use switchboard_api::BreakerState;

use crate::engine::Engine;
use crate::origins;
use crate::outside::{Clip, MAX_NAME};

/// The variable holding the scrape token (read from the environment, never stored).
pub const TOKEN_VAR: &str = "SWITCHBOARD_METRICS_TOKEN";

fn refuse(status: StatusCode, message: String) -> Response<Body> {
    let mut r = Response::new(Body::from(message + "\n"));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Equal bytes, in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn state_value(s: BreakerState) -> i64 {
    match s {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
    }
}

pub async fn metrics(State(engine): State<Arc<Engine>>, req: Request) -> Response<Body> {
    let snap = engine.snapshot();
    let configured = snap.settings.server.host.as_str();
    let headers = req.headers();
    let authority = origins::authority_of(headers, req.uri());
    let host = origins::host_of(authority);
    if !origins::allowed_host(host, configured) {
        return refuse(
            StatusCode::FORBIDDEN,
            format!("Host '{}' is not allowed", Clip(host, MAX_NAME)),
        );
    }
    if let Some(o) = headers.get(header::ORIGIN) {
        let o = o.to_str().unwrap_or("\u{fffd}");
        if !origins::same_origin(o, authority) {
            return refuse(
                StatusCode::FORBIDDEN,
                format!("Origin '{}' is not allowed", Clip(o, MAX_NAME)),
            );
        }
    }
    if !crate::catalog::is_loopback_host(configured) {
        let Ok(token) = std::env::var(TOKEN_VAR) else {
            return refuse(
                StatusCode::FORBIDDEN,
                format!("/metrics beyond loopback needs a token: set {TOKEN_VAR} when starting"),
            );
        };
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if token.is_empty() || !same(sent.as_bytes(), token.as_bytes()) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                format!("send Authorization: Bearer ${TOKEN_VAR}"),
            );
        }
    }
    // The breakers of every provider, and of every (provider, model) a route uses: the
    // configuration's pairs, not every model a provider lists.
    let used: HashSet<(&str, &str)> = snap
        .candidates()
        .map(|c| (&*c.provider.name, &*c.model))
        .collect();
    let status = crate::service::status(&engine);
    let mut breakers = Vec::new();
    for p in &status.providers {
        breakers.push((p.name.clone(), String::new(), state_value(p.breaker.state)));
        for m in &p.models {
            if used.contains(&(p.name.as_str(), m.model.as_str())) {
                breakers.push((
                    p.name.clone(),
                    m.model.clone(),
                    state_value(m.breaker.state),
                ));
            }
        }
    }
    let text = engine
        .log
        .metrics()
        .render(breakers.into_iter(), engine.log.dropped());
    let mut r = Response::new(Body::from(text));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}
