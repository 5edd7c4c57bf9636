//! Sending a request to an upstream and handing its answer back as a stream.

mod body;
pub mod failover;

use std::error::Error as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};

pub use body::{BodyMode, OnEnd, ProxyBody};

use crate::catalog::Candidate;
use crate::error::GatewayError;
use crate::protocol::openai;

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
pub fn error_chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
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

/// POSTs `body` to `url` at the candidate's provider and waits for the response head, at most
/// `timeout`. A non-2xx answer is read (bounded) and returned as the upstream's error.
pub async fn post_json(
    http: &reqwest::Client,
    candidate: &Candidate,
    url: &reqwest::Url,
    body: Bytes,
    client_headers: &HeaderMap,
    timeout: Duration,
    setting: &'static str,
) -> Result<reqwest::Response, GatewayError> {
    let provider = &candidate.provider;
    let deadline = Instant::now() + timeout;
    let mut req = http
        .post(url.clone())
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )
        .body(body);
    if let Some(accept) = client_headers.get(header::ACCEPT) {
        req = req.header(header::ACCEPT, accept);
    }
    if let Some(key) = provider.key.resolve() {
        req = req.bearer_auth(key.expose());
    }
    for (k, v) in &provider.headers {
        req = req.header(k, v);
    }
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
