//! Provider model lists, fetched from the provider with its own key: on demand (admin API, a
//! 404 "model not found") and on a schedule (`routing.sync_interval_s`) for providers whose list
//! does not come from the config file. A failed sync keeps the last good list.

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use serde_json::Value;

use crate::config::Protocol;
use crate::dispatch::error_chain;
use crate::engine::Engine;
use crate::events::GatewayEvent;
use crate::store;

const TIMEOUT: Duration = Duration::from_secs(30);
/// The most of a model-list answer read: the largest real lists are a few hundred KB.
const MAX_LIST_BYTES: usize = 16 << 20;
/// The most models taken from one list, and the longest id kept.
const MAX_MODELS: usize = 20_000;
const MAX_ID: usize = 256;
/// A provider's list is fetched on demand (its 404s) at most this often.
const ON_DEMAND_GAP: Duration = Duration::from_secs(30);

/// Providers whose model list was asked for (a 404 naming a model), each once however often it
/// was asked: a storm of 404s is one sync, not a queue that grows.
#[derive(Default)]
pub struct SyncQueue {
    pending: std::sync::Mutex<std::collections::BTreeSet<String>>,
    wake: tokio::sync::Notify,
}

impl SyncQueue {
    pub fn push(&self, provider: String) {
        if let Ok(mut p) = self.pending.lock() {
            // Bounded by the providers that exist; the cap only guards against a bug.
            if p.len() < 4096 {
                p.insert(provider);
            }
        }
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<String> {
        self.pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p).into_iter().collect())
            .unwrap_or_default()
    }
}

pub async fn run(engine: Weak<Engine>, queue: std::sync::Arc<SyncQueue>) {
    // The scheduled round keeps its own deadline: syncs asked for in between do not push it
    // back, so a provider answering 404s cannot starve every other provider's schedule.
    let mut next_round = tokio::time::Instant::now();
    let mut last_on_demand: HashMap<String, tokio::time::Instant> = HashMap::new();
    loop {
        tokio::select! {
            () = queue.wake.notified() => {
                let Some(e) = engine.upgrade() else { return };
                // A list the config file gives is the user's word: a 404 does not replace it.
                let info = e.store.call(|c| store::sync_info(c)).await.unwrap_or_default();
                let now = tokio::time::Instant::now();
                last_on_demand.retain(|_, t| now.duration_since(*t) < ON_DEMAND_GAP);
                for name in queue.take() {
                    let from_config = info
                        .iter()
                        .any(|(n, i)| *n == name && i.source.as_deref() == Some("config"));
                    if from_config || last_on_demand.contains_key(&name) {
                        continue;
                    }
                    last_on_demand.insert(name.clone(), now);
                    let _ = sync_provider(&e, &name).await;
                }
            }
            () = tokio::time::sleep_until(next_round) => {
                let Some(e) = engine.upgrade() else { return };
                let interval = Duration::from_secs(e.snapshot().settings.sync_interval_s.max(1));
                next_round = tokio::time::Instant::now() + interval;
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
        if engine.strong_count() == 0 {
            return;
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
        .map(|id| id.strip_prefix("models/").unwrap_or(id))
        // An id no client could type, or one that would forge a log line, is no model.
        .filter(|id| !id.is_empty() && id.len() <= MAX_ID && !id.chars().any(char::is_control))
        .take(MAX_MODELS)
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_storm_of_requests_is_one_per_provider() {
        let q = SyncQueue::default();
        for _ in 0..10_000 {
            q.push("a".into());
        }
        q.push("b".into());
        assert_eq!(q.take(), ["a", "b"]);
        assert!(q.take().is_empty());
    }

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
        let odd =
            json!({"data": [{"id": "a\nb"}, {"id": ""}, {"id": "x".repeat(300)}, {"id": "ok"}]});
        assert_eq!(parse_models(Protocol::OpenAi, &odd).unwrap(), ["ok"]);
        let many: Vec<Value> = (0..MAX_MODELS + 5)
            .map(|i| json!({"id": format!("m{i}")}))
            .collect();
        assert_eq!(
            parse_models(Protocol::OpenAi, &json!({"data": many}))
                .unwrap()
                .len(),
            MAX_MODELS
        );
    }
}
