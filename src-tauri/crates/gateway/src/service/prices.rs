//! `[[prices]]` through the admin API: the list in use, the entries, and the models nothing
//! prices yet.

use std::collections::BTreeSet;

use switchboard_api::prices::{PricesUpdate, PricesView, UnpricedModel};

use super::ServiceError;
use crate::engine::{Engine, unix_seconds};
use crate::store;

pub async fn prices(engine: &Engine) -> Result<PricesView, ServiceError> {
    let snap = engine.snapshot();
    let pricing = engine.log.pricing();
    let list = engine.price_list.view(pricing.book());
    let entries = snap.prices.clone();
    let now = unix_seconds(std::time::Instant::now());
    // A model the list does not know is looked up through all of it: a few hundred such are
    // a noticeable while of CPU, off the async workers.
    let unpriced = tokio::task::spawn_blocking(move || {
        let served: BTreeSet<(&str, &str)> = snap
            .candidates()
            .map(|c| (&*c.provider.name, &*c.model))
            .collect();
        served
            .into_iter()
            .filter(|(p, m)| !pricing.is_priced(p, m, now))
            .map(|(p, m)| UnpricedModel {
                provider: p.to_owned(),
                model: m.to_owned(),
            })
            .collect()
    })
    .await
    .map_err(|e| ServiceError::Invalid(e.to_string()))?;
    Ok(PricesView {
        list,
        entries,
        unpriced,
    })
}

/// Replaces every entry; each is checked as the config file's `[[prices]]` is.
pub async fn put_prices(engine: &Engine, update: PricesUpdate) -> Result<(), ServiceError> {
    let doc = serde_json::json!({ "prices": update.entries });
    let file = super::edit::parse_doc(&doc, "")?;
    let entries = file.prices;
    engine
        .store
        .call(move |c| store::replace_prices(c, &entries))
        .await?;
    engine.reload().await?;
    Ok(())
}
