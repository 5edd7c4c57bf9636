//! Provider model lists, fetched from the provider with its own key: on demand (admin API, a
//! 404 "model not found") and on a schedule (`routing.sync_interval_s`) for providers whose list
//! does not come from the config file. A failed sync keeps the last good list.

use std::sync::Weak;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::Protocol;
use crate::dispatch::error_chain;
use crate::engine::Engine;
use crate::events::GatewayEvent;
use crate::store;

const TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(engine: Weak<Engine>, mut requests: UnboundedReceiver<String>) {
    let mut first = true;
    loop {
        let Some(e) = engine.upgrade() else { return };
        let interval = Duration::from_secs(e.snapshot().settings.sync_interval_s.max(1));
        if !first {
            drop(e);
            tokio::select! {
                req = requests.recv() => {
                    let (Some(name), Some(e)) = (req, engine.upgrade()) else { return };
                    // A list the config file gives is the user's word: a 404 does not replace it.
                    let info = e.store.call(|c| store::sync_info(c)).await.unwrap_or_default();
                    let from_config = info
                        .iter()
                        .any(|(n, i)| *n == name && i.source.as_deref() == Some("config"));
                    if !from_config {
                        let _ = sync_provider(&e, &name).await;
                    }
                    continue;
                }
                () = tokio::time::sleep(interval) => {}
            }
        }
        first = false;
        let Some(e) = engine.upgrade() else { return };
        let due = e
            .store
            .call(|c| store::sync_info(c))
            .await
            .unwrap_or_default();
        for (name, info) in due {
            if info.source.as_deref() != Some("config") {
                let _ = sync_provider(&e, &name).await;
            }
        }
    }
}

/// Fetches one provider's model list and applies it; answers the number of models.
pub async fn sync_provider(engine: &Engine, name: &str) -> Result<usize, String> {
    let snap = engine.snapshot();
    let Some(provider) = snap.providers.iter().find(|p| &*p.name == name).cloned() else {
        return Err(format!("no provider named '{name}'"));
    };
    let result = fetch(&engine.http, &provider).await;
    let n = provider.uid.to_string();
    let stored = match &result {
        Ok(models) => {
            let models = models.clone();
            engine
                .store
                .call(move |c| store::record_sync(c, &n, Ok(&models)))
                .await
        }
        Err(e) => {
            let e = e.clone();
            engine
                .store
                .call(move |c| store::record_sync(c, &n, Err(&e)))
                .await
        }
    };
    match stored {
        Ok(true) => {
            if let Err(e) = engine.reload().await {
                tracing::warn!("provider '{name}': cannot apply the synced model list: {e}");
            }
        }
        Ok(false) => {}
        Err(e) => tracing::warn!("provider '{name}': cannot store the sync result: {e}"),
    }
    match &result {
        Ok(m) => tracing::info!(provider = name, models = m.len(), "model list synced"),
        Err(e) => tracing::warn!(provider = name, "model list sync failed: {e}"),
    }
    let _ = engine.events.send(GatewayEvent::ModelsSynced {
        provider: name.to_owned(),
        models: result.as_ref().map_or(0, Vec::len),
        error: result.as_ref().err().cloned(),
    });
    result.map(|m| m.len())
}

async fn fetch(
    http: &reqwest::Client,
    p: &crate::catalog::Provider,
) -> Result<Vec<String>, String> {
    let protocol = p.protocols.first().copied().unwrap_or(Protocol::OpenAi);
    let key = p.key.resolve();
    let req = match protocol {
        Protocol::OpenAi => {
            let r = http.get(format!("{}/v1/models", p.base_url));
            match &key {
                Some(k) => r.bearer_auth(k.expose()),
                None => r,
            }
        }
        Protocol::Anthropic => {
            let r = http
                .get(format!("{}/v1/models?limit=1000", p.base_url))
                .header("anthropic-version", "2023-06-01");
            match &key {
                Some(k) => r.header("x-api-key", k.expose()),
                None => r,
            }
        }
        Protocol::Gemini => {
            let r = http.get(format!("{}/v1beta/models?pageSize=1000", p.base_url));
            match &key {
                Some(k) => r.header("x-goog-api-key", k.expose()),
                None => r,
            }
        }
    };
    let mut req = req.timeout(TIMEOUT);
    for (k, v) in &p.headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.map_err(|e| error_chain(&e))?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| format!("the model list is not JSON ({status}): {}", error_chain(&e)))?;
    if !status.is_success() {
        let msg = body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return Err(format!("{status}: {msg}"));
    }
    parse_models(protocol, &body)
}

fn parse_models(protocol: Protocol, body: &Value) -> Result<Vec<String>, String> {
    let (list, field) = match protocol {
        Protocol::Gemini => (body.get("models"), "name"),
        _ => (body.get("data"), "id"),
    };
    let list = list
        .and_then(Value::as_array)
        .ok_or_else(|| "the model list has no data array".to_owned())?;
    Ok(list
        .iter()
        .filter_map(|m| m.get(field).and_then(Value::as_str))
        .map(|id| id.strip_prefix("models/").unwrap_or(id).to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_protocols_list() {
        let openai = json!({"object": "list", "data": [{"id": "gpt-4o"}, {"id": "o3"}]});
        assert_eq!(
            parse_models(Protocol::OpenAi, &openai).unwrap(),
            ["gpt-4o", "o3"]
        );
        let anthropic = json!({"data": [{"type": "model", "id": "claude-opus-4-5-20251101"}], "has_more": false});
        assert_eq!(
            parse_models(Protocol::Anthropic, &anthropic).unwrap(),
            ["claude-opus-4-5-20251101"]
        );
        let gemini = json!({"models": [{"name": "models/gemini-2.5-pro"}]});
        assert_eq!(
            parse_models(Protocol::Gemini, &gemini).unwrap(),
            ["gemini-2.5-pro"]
        );
        assert!(parse_models(Protocol::OpenAi, &json!({"x": 1})).is_err());
    }
}
