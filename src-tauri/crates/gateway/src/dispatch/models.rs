//! Fetching a provider's model list, in the protocol it speaks first, with its own key.

use std::time::Duration;

use serde_json::Value;

use super::{authorise, error_chain};
use crate::catalog::Provider;
use crate::config::Protocol;

const TIMEOUT: Duration = Duration::from_secs(30);
/// The most of a model-list answer read: the largest real lists are a few hundred KB.
const MAX_LIST_BYTES: usize = 16 << 20;

/// The provider's model ids, bounded in size, count and length.
pub(crate) async fn fetch(http: &reqwest::Client, p: &Provider) -> Result<Vec<String>, String> {
    let protocol = p.protocols.first().copied().unwrap_or(Protocol::OpenAi);
    let req = http.get(crate::protocol::models::list_url(protocol, &p.base_url));
    let req = authorise(req, p, protocol, None)
        .map_err(|e| e.to_string())?
        .timeout(TIMEOUT);
    let mut resp = req.send().await.map_err(|e| error_chain(&e))?;
    let status = resp.status();
    let mut raw = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
        if raw.len() + chunk.len() > MAX_LIST_BYTES {
            return Err(format!(
                "the model list is larger than {} MB",
                MAX_LIST_BYTES >> 20
            ));
        }
        raw.extend_from_slice(&chunk);
    }
    let body: Value = serde_json::from_slice(&raw)
        .map_err(|e| format!("the model list is not JSON ({status}): {e}"))?;
    if !status.is_success() {
        let msg = body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return Err(format!("{status}: {msg}"));
    }
    crate::protocol::models::parse_list(protocol, &body)
}
