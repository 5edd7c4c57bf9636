//! The client API's door for web pages: a request from a foreign `Origin` or under a foreign
//! `Host` is refused before it reaches a provider, unless the user allowed that origin
//! (`server.allowed_origins`); an allowed origin gets proper CORS answers. Clients that are not
//! browsers send no `Origin` and a loopback `Host`, and pass untouched.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use axum::middleware::Next;

use super::proxy::error_response;
use crate::engine::Engine;
use crate::error::GatewayError;
use crate::origins;
use crate::outside::{Clip, MAX_NAME};
use crate::requestlog::Recorder;

/// The request headers a browser-based client may send; what SDKs running in a page use.
const ALLOW_HEADERS: &str = "authorization, content-type, x-api-key, x-goog-api-key, \
    anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access, openai-beta, \
    openai-organization, openai-project, x-stainless-arch, x-stainless-lang, x-stainless-os, \
    x-stainless-package-version, x-stainless-retry-count, x-stainless-runtime, \
    x-stainless-runtime-version, x-stainless-timeout, x-goog-api-client, x-session-id";

/// What a page may read of an answer: the route headers (kept in step by a test) and when to
/// come back.
const EXPOSE_HEADERS: &str = "x-switchboard-provider, x-switchboard-model, \
    x-switchboard-attempts, x-switchboard-dropped, x-switchboard-tier, x-switchboard-budget, retry-after";

pub async fn guard(State(engine): State<Arc<Engine>>, req: Request, next: Next) -> Response<Body> {
    let snap = engine.snapshot();
    let allowed = &snap.settings.server.allowed_origins;
    let headers = req.headers();
    let authority = origins::authority_of(headers, req.uri());
    let host = origins::host_of(authority);
    // An Origin that is not text is nobody's page: foreign.
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let listed = origin.is_some_and(|o| origins::allowed(o, allowed));
    let refusal = if !origins::allowed_host(host, &snap.settings.server.host)
        && !origins::host_allowed(host, allowed)
    {
        Some(format!(
            "Host '{}' is not allowed: the gateway answers requests sent to it by a local name or \
             address. To reach it under another name, add that origin to server.allowed_origins.",
            Clip(host, MAX_NAME)
        ))
    } else if let Some(o) = origin
        && !listed
        && !origins::same_origin(o, authority)
        && !origins::APP_ORIGINS.contains(&o)
    {
        Some(format!(
            "Origin '{}' is not allowed: a web page may use the gateway only when its origin is \
             listed in server.allowed_origins (Settings in the admin UI).",
            Clip(o, MAX_NAME)
        ))
    } else {
        None
    };
    if let Some(why) = refusal {
        // Inside `/v1` the URI has lost its prefix; the original tells the protocol.
        let path = req
            .extensions()
            .get::<axum::extract::OriginalUri>()
            .map_or(req.uri().path(), |u| u.0.path());
        let api = super::openai::api_of_path(path);
        let e = GatewayError::CrossSite(why);
        let mut record = Recorder::new(&engine.log, api.family(), "refused");
        record.failed(&e);
        drop(record);
        tracing::warn!(
            target: "switchboard::access",
            origin = %Clip(origin.unwrap_or("-"), MAX_NAME),
            host = %Clip(host, MAX_NAME),
            path = %Clip(path, MAX_NAME),
            "refused a request from a web page"
        );
        return error_response(api, &e);
    }
    let origin_value = listed
        .then(|| headers.get(header::ORIGIN).cloned())
        .flatten();
    if req.method() == Method::OPTIONS
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        if let Some(o) = origin_value {
            preflight_headers(resp.headers_mut(), headers, o);
        }
        return resp;
    }
    let mut resp = next.run(req).await;
    if let Some(o) = origin_value {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.append(header::VARY, HeaderValue::from_static("Origin"));
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    resp
}

fn preflight_headers(h: &mut HeaderMap, req: &HeaderMap, origin: HeaderValue) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    // Chrome asks before a public page may reach a loopback address.
    if req.contains_key("access-control-request-private-network") {
        h.insert(
            "access-control-allow-private-network",
            HeaderValue::from_static("true"),
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_header_is_exposed() {
        let exposed = super::EXPOSE_HEADERS;
        use crate::server::{H_ATTEMPTS, H_DROPPED, H_MODEL, H_PROVIDER};
        for h in [H_PROVIDER, H_MODEL, H_ATTEMPTS, H_DROPPED] {
            assert!(exposed.contains(h), "{h}");
        }
    }
}
