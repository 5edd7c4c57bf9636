//! `POST /api/whatif`: what another strategy (or tier map) would have done with the last days'
//! requests.
//! Each answered request in the log is routed again, by the same pure strategy function a
//! request runs, over its unified model's candidates as they are now, all taken as healthy,
//! with today's prices (the slots') and the mean latency the log measured for each (provider,
//! model). Its cost is its logged tokens at the chosen candidate's price; its latency, that
//! candidate's mean (the request's own where the log never measured the candidate).

use std::collections::{BTreeMap, HashMap};

use switchboard_api::sort::SortKey;
use switchboard_api::whatif::{MAX_DAYS, Outcome, WhatIf, WhatIfModel, WhatIfRequest};

use super::ServiceError;
use crate::balance::{self, Measures};
use crate::catalog::Route;
use crate::config::Strategy;
use crate::engine::Engine;
use crate::store::logs_db;

/// The most requests replayed at once (the newest).
const MAX_ROWS: usize = 50_000;
const DAY_MS: i64 = 86_400_000;

/// A route's candidates as the log saw them.
struct Observed<'a> {
    route: &'a Route,
    latency: Vec<Option<f64>>,
    sort: &'a [SortKey],
}

impl Measures for &Observed<'_> {
    fn latency_ms(&self, i: usize) -> Option<f64> {
        self.latency[i]
    }
    fn in_flight(&self, _: usize) -> u32 {
        0
    }
    fn price(&self, i: usize) -> Option<f64> {
        self.route.candidates[i].breaker.live.price()
    }
    fn health(&self, _: usize) -> f64 {
        1.0
    }
    fn provider_health(&self, _: usize) -> f64 {
        1.0
    }
    fn sort_keys(&self) -> &[SortKey] {
        self.sort
    }
}

#[derive(Default)]
struct Sums {
    requests: u64,
    moved: u64,
    actual: Side,
    replayed: Side,
}

#[derive(Default)]
struct Side {
    usd: f64,
    unpriced: u64,
    latency_ms: f64,
    timed: u64,
}

impl Side {
    fn add(&mut self, usd: Option<f64>, latency_ms: Option<f64>) {
        match usd {
            Some(u) => self.usd += u,
            None => self.unpriced += 1,
        }
        if let Some(l) = latency_ms {
            self.latency_ms += l;
            self.timed += 1;
        }
    }

    fn outcome(&self) -> Outcome {
        Outcome {
            cost_usd: self.usd,
            unpriced: self.unpriced,
            latency_ms: (self.timed > 0).then(|| self.latency_ms / self.timed as f64),
        }
    }
}

impl Sums {
    fn view(&self, model: String) -> WhatIfModel {
        WhatIfModel {
            model,
            requests: self.requests,
            actual: self.actual.outcome(),
            replayed: self.replayed.outcome(),
            moved: self.moved,
        }
    }
}

pub async fn whatif(engine: &Engine, req: WhatIfRequest) -> Result<WhatIf, ServiceError> {
    let strategy: Strategy = req.strategy.parse().map_err(ServiceError::Invalid)?;
    let snap = engine.snapshot();
    if let Some((tier, to)) = req.tiers.iter().find(|(_, to)| snap.route(to).is_none()) {
        return Err(ServiceError::Invalid(format!(
            "tiers: {tier} goes to '{to}', which is no unified model or group"
        )));
    }
    if strategy == Strategy::Sort {
        switchboard_api::sort::check(&req.sort).map_err(ServiceError::Invalid)?;
    }
    let days = req.days.unwrap_or(7);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ServiceError::Invalid(format!(
            "days is {days} (from 1 to {MAX_DAYS})"
        )));
    }
    let until_ms = crate::protocol::unix_now_ms();
    let since_ms = until_ms - i64::from(days) * DAY_MS;
    let model = req.model.clone();
    let rows = engine
        .logs
        .call(move |c| logs_db::replayed(c, since_ms, until_ms, model.as_deref(), MAX_ROWS + 1))
        .await?;
    let beyond = rows.len().saturating_sub(MAX_ROWS) as u64;
    let rows = &rows[..rows.len().min(MAX_ROWS)];
    let pricing = engine.log.pricing();

    // The mean latency the log measured for each (provider, model).
    let mut measured: HashMap<(&str, &str), (f64, u64)> = HashMap::new();
    for r in rows {
        let e = measured
            .entry((r.provider.as_str(), r.upstream_model.as_str()))
            .or_default();
        e.0 += r.latency_us as f64 / 1000.0;
        e.1 += 1;
    }
    let mean = |p: &str, m: &str| {
        measured
            .get(&(p, m))
            .map(|(sum, n)| sum / (*n).max(1) as f64)
    };

    let mut observed: HashMap<&str, Observed<'_>> = HashMap::new();
    let mut by_model: BTreeMap<String, Sums> = BTreeMap::new();
    let mut total = Sums::default();
    let mut skipped = beyond;
    // Seeded: the same log replays to the same answer.
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for (turn, r) in rows.iter().enumerate() {
        // Another tier map sends a tiered request's tier elsewhere.
        let target = r
            .tier
            .as_ref()
            .and_then(|t| req.tiers.get(t))
            .unwrap_or(&r.unified_model);
        let Some(route) = snap.route(target).filter(|r| !r.candidates.is_empty()) else {
            skipped += 1;
            continue;
        };
        let o = observed
            .entry(route.name.as_ref())
            .or_insert_with(|| Observed {
                route,
                latency: route
                    .candidates
                    .iter()
                    .map(|c| mean(&c.provider.name, &c.model))
                    .collect(),
                sort: if strategy == Strategy::Sort {
                    &req.sort
                } else {
                    &[]
                },
            });
        let Some(i) = balance::pick(
            strategy,
            &route.candidates,
            &route.groups,
            |_| true,
            &*o,
            |_| None,
            turn as u64,
            &mut rng,
        ) else {
            skipped += 1;
            continue;
        };
        let chosen = &route.candidates[i];
        let at_s = u64::try_from(r.started_ms / 1000).unwrap_or(0);
        let cost = pricing
            .cost(&chosen.provider.name, &chosen.model, &r.tokens, at_s)
            .map(|(usd, _)| usd);
        let own = r.latency_us as f64 / 1000.0;
        let latency = mean(&chosen.provider.name, &chosen.model).unwrap_or(own);
        let moved = *chosen.provider.name != *r.provider || *chosen.model != *r.upstream_model;
        for s in [
            by_model.entry(route.name.to_string()).or_default(),
            &mut total,
        ] {
            s.requests += 1;
            s.moved += u64::from(moved);
            s.actual.add(r.cost_usd, Some(own));
            s.replayed.add(cost, Some(latency));
        }
    }
    Ok(WhatIf {
        since_ms,
        until_ms,
        strategy: strategy.as_str().to_owned(),
        requests: total.requests,
        skipped,
        total: total.view("(all)".into()),
        models: by_model.into_iter().map(|(name, s)| s.view(name)).collect(),
    })
}
