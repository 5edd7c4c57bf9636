//! Sending a request to an upstream and handing its answer back as a stream.

mod body;
pub(crate) mod classify;
pub(crate) mod failover;
pub(crate) mod models;
pub(crate) mod pipeline;
mod prepare;
pub(crate) mod probe;

use std::error::Error as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};

pub(crate) use body::{BodyMode, Framing, OnEnd, ProxyBody, Transform, end_markers};

use crate::catalog::{Candidate, Provider};
use crate::config::Protocol;
use crate::error::GatewayError;
use crate::protocol::{Api, openai};

/// The one HTTP client for every upstream: pooled, keep-alive, no Nagle delay.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_keepalive(Duration::from_secs(30))
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The first error and its causes on one line: reqwest's own message alone ("error sending
/// request") does not say what went wrong.
/// An upstream error's causes, without the URL: the answer names the provider, and its URL
/// (a path prefix that may identify an account, a host the client need not know) stays here.
pub fn error_chain(e: &reqwest::Error) -> String {
    let mut out = match e.url() {
        Some(url) => e.to_string().replace(&format!(" ({url})"), ""),
        None => e.to_string(),
    };
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

const MAX_ERROR_BODY: usize = 64 * 1024;

/// One request ready for one candidate: where it goes, in which protocol, with what body.
#[derive(Debug)]
pub struct Upstream {
    pub url: reqwest::Url,
    /// The API called there: it decides the auth headers and how its stream is read.
    pub api: Api,
    pub body: Bytes,
    /// The request was converted from the client's protocol (so must the answer be).
    pub converted: bool,
    pub stream: bool,
}

/// Client headers passed on to a native upstream of the same protocol (Anthropic's version
/// too: [`authorise`] passes that one on).
const PASSED_ON: &[(Protocol, &str)] = &[
    (Protocol::OpenAi, "accept"),
    (Protocol::OpenAi, "openai-beta"),
    (Protocol::Anthropic, "accept"),
    (Protocol::Anthropic, "anthropic-beta"),
    (Protocol::Gemini, "accept"),
];

const ANTHROPIC_VERSION: &str = "anthropic-version";

/// A request to `provider` in `protocol`, authorised as that protocol wants: its key (every key
/// header marked sensitive, so neither `Debug` nor HTTP/2's header tables show it), Anthropic's
/// version (the client's own when it sent one to a native upstream, else the default), and the
/// provider's extra headers. Every call to a provider goes through here.
pub(crate) fn authorise(
    mut req: reqwest::RequestBuilder,
    provider: &Provider,
    protocol: Protocol,
    client_version: Option<&HeaderValue>,
) -> Result<reqwest::RequestBuilder, GatewayError> {
    if protocol == Protocol::Anthropic {
        req = req.header(
            ANTHROPIC_VERSION,
            client_version.cloned().unwrap_or(HeaderValue::from_static(
                crate::protocol::anthropic::DEFAULT_VERSION,
            )),
        );
    }
    if let Some(key) = provider.key.resolve() {
        req = match protocol {
            Protocol::OpenAi => req.header(
                header::AUTHORIZATION,
                sensitive(&format!("Bearer {}", key.expose()))?,
            ),
            Protocol::Anthropic => req.header("x-api-key", sensitive(key.expose())?),
            Protocol::Gemini => req.header("x-goog-api-key", sensitive(key.expose())?),
        };
    }
    for (k, v) in &provider.headers {
        req = req.header(k, v);
    }
    Ok(req.header(header::VIA, via().clone()))
}

/// `Via: 1.1 switchboard-<id>`, the id this process's own (RFC 9110 §7.6.3): a request that
/// comes back with it came from here, through a provider whose base URL points at this gateway.
pub(crate) fn via() -> &'static HeaderValue {
    static VIA: std::sync::OnceLock<HeaderValue> = std::sync::OnceLock::new();
    VIA.get_or_init(|| {
        let mut id = [0u8; 8];
        // Without the OS RNG the time still tells two processes apart.
        if getrandom::fill(&mut id).is_err() {
            id = crate::protocol::unix_now().to_le_bytes();
        }
        HeaderValue::from_str(&format!("1.1 switchboard-{}", hex::encode(id)))
            .unwrap_or(HeaderValue::from_static("1.1 switchboard"))
    })
}

/// Whether a client request carries our own `Via` (among others a proxy chain added).
pub(crate) fn came_from_here(headers: &http::HeaderMap) -> bool {
    let ours = via().as_bytes();
    headers.get_all(header::VIA).iter().any(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|part| part.trim_ascii() == ours)
    })
}

/// POSTs the request to the candidate's provider and waits for the response head, at most
/// `timeout`. A non-2xx answer is read (bounded) and returned as the upstream's error.
pub(crate) async fn post_json(
    http: &reqwest::Client,
    candidate: &Candidate,
    up: Upstream,
    client_headers: &HeaderMap,
    timeout: Duration,
    setting: &'static str,
) -> Result<reqwest::Response, GatewayError> {
    let provider = &candidate.provider;
    let deadline = Instant::now() + timeout;
    let protocol = up.api.family();
    let mut req = http
        .post(up.url)
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )
        .body(up.body);
    if !up.converted {
        for (p, name) in PASSED_ON {
            if *p == protocol
                && let Some(v) = client_headers.get(*name)
            {
                req = req.header(*name, v);
            }
        }
    }
    let client_version = client_headers
        .get(ANTHROPIC_VERSION)
        .filter(|_| !up.converted);
    let req = authorise(req, provider, protocol, client_version)?;
    let sent = tokio::time::timeout(timeout, req.send()).await;
    let resp = match sent {
        Err(_) => {
            return Err(GatewayError::UpstreamTimeout {
                provider: provider.name.to_string(),
                after: timeout,
                setting,
            });
        }
        Ok(Err(e)) if e.is_timeout() => {
            return Err(GatewayError::UpstreamTimeout {
                provider: provider.name.to_string(),
                after: timeout,
                setting,
            });
        }
        Ok(Err(e)) => {
            return Err(GatewayError::UpstreamUnreachable {
                provider: provider.name.to_string(),
                detail: error_chain(&e),
            });
        }
        Ok(Ok(resp)) => resp,
    };
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
    let body = read_bounded(resp, deadline).await;
    Err(openai::upstream_error(status, &body, retry_after))
}

/// A key as a header value that `Debug` and HTTP/2 tables keep hidden.
fn sensitive(key: &str) -> Result<HeaderValue, GatewayError> {
    let mut v = HeaderValue::from_str(key).map_err(|_| {
        GatewayError::Internal(
            "the provider's API key holds characters a header cannot carry".into(),
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// Up to 64 KiB of an error body, within the request's deadline; whatever arrived is enough to
/// find the message.
async fn read_bounded(mut resp: reqwest::Response, deadline: Instant) -> Vec<u8> {
    let mut out = Vec::new();
    let until = tokio::time::Instant::from_std(deadline);
    while out.len() < MAX_ERROR_BODY {
        match tokio::time::timeout_at(until, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => out.extend_from_slice(&chunk),
            _ => break,
        }
    }
    out.truncate(MAX_ERROR_BODY);
    out
}
