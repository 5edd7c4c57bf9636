//! `/api/capabilities`: the `[[capabilities]]` entries and what each routed pair can take.

use std::collections::BTreeMap;

use switchboard_api::capabilities::{CapabilitiesUpdate, CapabilitiesView, PairCapabilities};

use super::ServiceError;
use crate::engine::Engine;
use crate::store;

pub fn capabilities(engine: &Engine) -> CapabilitiesView {
    let snap = engine.snapshot();
    // Each pair the user's own models route to once, in order, as its slot holds it.
    let pairs: BTreeMap<(String, String), PairCapabilities> = snap
        .routes
        .values()
        .filter(|r| !r.group)
        .flat_map(|r| r.candidates.iter())
        .map(|c| {
            let key = (c.provider.name.to_string(), c.model.to_string());
            let caps = **c.breaker.live.caps.load();
            (
                key.clone(),
                PairCapabilities {
                    provider: key.0,
                    model: key.1,
                    capabilities: caps,
                },
            )
        })
        .collect();
    CapabilitiesView {
        entries: snap.capabilities.clone(),
        pairs: pairs.into_values().collect(),
    }
}

/// Replaces every entry; each is checked as the config file's `[[capabilities]]` is.
pub async fn put_capabilities(
    engine: &Engine,
    update: CapabilitiesUpdate,
) -> Result<(), ServiceError> {
    let doc = serde_json::json!({ "capabilities": update.entries });
    let file = super::edit::parse_doc(&doc, "")?;
    let entries = file.capabilities;
    engine
        .store
        .call(move |c| store::replace_capabilities(c, &entries))
        .await?;
    engine.reload().await?;
    Ok(())
}
