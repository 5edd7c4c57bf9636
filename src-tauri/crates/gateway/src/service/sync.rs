//! Applying a provider's model list: fetched by `dispatch`, stored, then live.

use crate::engine::Engine;
use crate::events::GatewayEvent;
use crate::store;

/// Fetches one provider's model list and applies it; answers the number of models.
pub async fn sync_provider(engine: &Engine, name: &str) -> Result<usize, String> {
    let snap = engine.snapshot();
    let Some(provider) = snap.providers.iter().find(|p| &*p.name == name).cloned() else {
        return Err(format!("no provider named '{name}'"));
    };
    let result = crate::dispatch::models::fetch(&engine.http, &provider).await;
    let n = provider.uid.to_string();
    let outcome = result.clone();
    let stored = engine
        .store
        .call(move |c| {
            let outcome = outcome.as_deref().map_err(String::as_str);
            store::record_sync(c, &n, outcome)
        })
        .await;
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
    engine.emit(GatewayEvent::ModelsSynced {
        provider: name.to_owned(),
        models: result.as_ref().map_or(0, Vec::len),
        error: result.as_ref().err().cloned(),
    });
    result.map(|m| m.len())
}
