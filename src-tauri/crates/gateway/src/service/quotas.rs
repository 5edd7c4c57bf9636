//! `/api/quotas`: the `[[quotas]]` entries and where each stands now.

use switchboard_api::quotas::{QuotaStanding, QuotasUpdate, QuotasView};

use super::ServiceError;
use crate::engine::Engine;
use crate::store;

pub fn quotas(engine: &Engine) -> QuotasView {
    let snap = engine.snapshot();
    let now = crate::protocol::unix_now_ms();
    let standing = snap
        .quotas
        .iter()
        .map(|q| {
            let scope = q.scope();
            let slot = engine.log.quotas().get(&scope);
            let uses = slot.as_ref().map(|s| s.uses(now)).unwrap_or_default();
            let until = slot
                .as_ref()
                .and_then(|s| s.blocked_until(now))
                .and_then(|_| uses.iter().find(|u| u.used >= u.amount))
                .map(|u| u.resets_at.clone());
            QuotaStanding { scope, uses, until }
        })
        .collect();
    QuotasView {
        entries: snap.quotas.clone(),
        standing,
    }
}

/// Replaces every entry; each is checked as the config file's `[[quotas]]` is. What was used
/// stays counted for entries that remain.
pub async fn put_quotas(engine: &Engine, update: QuotasUpdate) -> Result<(), ServiceError> {
    let doc = serde_json::json!({ "quotas": update.entries });
    let file = super::edit::parse_doc(&doc, "")?;
    let entries = file.quotas;
    engine
        .store
        .call(move |c| store::replace_quotas(c, &entries))
        .await?;
    engine.reload().await?;
    Ok(())
}
