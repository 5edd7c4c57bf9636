//! Client access: who is calling (a client key, or nobody on an open gateway), and whether
//! they may now (expiry, requests per minute, budgets).

use std::sync::Arc;

use http::HeaderMap;

use crate::auth::{KeyHash, client_key_from};
use crate::catalog::{ClientKey, Snapshot};
use crate::engine::Engine;
use crate::error::GatewayError;

/// Who is calling: a known client key, or nobody when the gateway is open (no keys exist and it
/// listens on loopback only). An expired key is refused; a key over its requests-per-minute
/// limit is told when to come back. Each use is counted in memory (no database write here).
pub(crate) fn authenticate(
    engine: &Engine,
    snap: &Snapshot,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<Arc<ClientKey>>, GatewayError> {
    let client = identify(snap, headers, query)?;
    if let Some(k) = &client {
        let unix = crate::protocol::unix_now();
        if let Some(at) = k.expires_at
            && at <= unix
        {
            return Err(GatewayError::Unauthorized(format!(
                "The client key '{}' has expired. Create a new one in Switchboard.",
                k.name
            )));
        }
        engine
            .key_usage
            .admit(k.hash, k.rpm, std::time::Instant::now(), unix)
            .map_err(|wait| GatewayError::ClientRateLimited {
                name: k.name.to_string(),
                rpm: k.rpm.unwrap_or(0),
                retry_after_s: wait.as_secs().max(1),
            })?;
    }
    Ok(client)
}

/// A key's budget now: at a limit, refused until it resets (nothing goes upstream); past the
/// warning share, the text of the answer's `x-switchboard-budget`.
pub(crate) fn budget(
    engine: &Engine,
    client: Option<&ClientKey>,
) -> Result<Option<String>, GatewayError> {
    let Some(k) = client.filter(|k| k.budget.is_some()) else {
        return Ok(None);
    };
    let Some(slot) = engine.log.spend().get(&k.name) else {
        return Ok(None);
    };
    let now = crate::protocol::unix_now_ms();
    match slot.verdict(now) {
        crate::budget::Verdict::Fine => Ok(None),
        crate::budget::Verdict::Warn(s) => Ok(Some(format!(
            "{} {:.0}% ({} of {}); resets {}",
            s.limit.as_str(),
            s.share() * 100.0,
            amount(s.limit, s.used),
            amount(s.limit, s.amount),
            s.resets_at
        ))),
        crate::budget::Verdict::Over(s) => Err(GatewayError::BudgetExceeded {
            key: k.name.to_string(),
            limit: s.limit.as_str(),
            used: amount(s.limit, s.used),
            amount: amount(s.limit, s.amount),
            resets_at: s.resets_at.clone(),
            retry_after_s: u64::try_from((s.resets_at_ms - now).max(1_000) / 1_000).unwrap_or(1),
        }),
    }
}

fn amount(limit: switchboard_api::budget::BudgetLimit, v: f64) -> String {
    if limit.usd() {
        format!("{v:.4} USD")
    } else {
        format!("{v:.0} tokens")
    }
}

pub(crate) fn identify(
    snap: &Snapshot,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<Arc<ClientKey>>, GatewayError> {
    let Some(key) = client_key_from(headers, query) else {
        if snap.open_access {
            return Ok(None);
        }
        return Err(GatewayError::Unauthorized(
            "Missing API key. Send your Switchboard client key as 'Authorization: Bearer sk-sb-...' (or x-api-key, x-goog-api-key)."
                .into(),
        ));
    };
    match snap.client_keys.get(&KeyHash::of(&key)) {
        Some(k) => Ok(Some(k.clone())),
        None if snap.open_access => Ok(None),
        None => Err(GatewayError::Unauthorized(
            "Invalid API key. Use a client key created in Switchboard ([[client_keys]] in the config file)."
                .into(),
        )),
    }
}
