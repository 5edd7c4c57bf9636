//! The ready-made model groups (`auto:free`, `auto:cheap`, `auto:fast`, `auto:tools`,
//! `auto:vision`, `auto:long`): unified models defined by what their candidates can do and
//! cost rather than by rules, over every model the user's providers list. Built by the engine
//! once the prices and capabilities are in the slots (on every reload and price-list change);
//! a unified model of the same name wins over a group.

use std::collections::HashSet;
use std::sync::Arc;

use switchboard_api::capabilities::Capabilities;

use super::{Candidate, Route, Snapshot, provider_groups};
use crate::breaker::BreakerRegistry;
use crate::config::Strategy;

/// A group's name, its strategy, and which candidates it holds.
struct Group {
    name: &'static str,
    strategy: Strategy,
    keep: fn(&Capabilities, Option<f64>) -> bool,
    /// Only those with the largest known context window.
    longest: bool,
}

/// Whether `name` is a ready-made group's (it may have no candidates now).
pub fn is_builtin(name: &str) -> bool {
    GROUPS.iter().any(|g| g.name == name)
}

/// A model that is known to do none of tools, images and reasoning is an embedding, speech or
/// image model: no group offers it for chat.
fn chats(c: &Capabilities) -> bool {
    !(c.tools == Some(false) && c.vision == Some(false) && c.reasoning == Some(false))
}

const GROUPS: &[Group] = &[
    Group {
        name: "auto:free",
        strategy: Strategy::Weighted,
        keep: |c, price| chats(c) && price == Some(0.0),
        longest: false,
    },
    Group {
        name: "auto:cheap",
        strategy: Strategy::Cost,
        keep: |c, price| chats(c) && price.is_some(),
        longest: false,
    },
    Group {
        name: "auto:fast",
        strategy: Strategy::Latency,
        keep: |c, _| chats(c),
        longest: false,
    },
    Group {
        name: "auto:tools",
        strategy: Strategy::Weighted,
        keep: |c, _| c.tools == Some(true),
        longest: false,
    },
    Group {
        name: "auto:vision",
        strategy: Strategy::Weighted,
        keep: |c, _| c.vision == Some(true),
        longest: false,
    },
    Group {
        name: "auto:long",
        strategy: Strategy::Weighted,
        keep: |c, _| chats(c) && c.context_window.is_some(),
        longest: true,
    },
];

/// Every group that has a candidate and no unified model of its name, from the prices and
/// capabilities now in the slots.
pub fn builtin(snap: &Snapshot, breakers: &BreakerRegistry) -> Vec<Arc<Route>> {
    let mut pairs: Vec<Candidate> = Vec::new();
    let mut seen = HashSet::new();
    for p in &snap.providers {
        for m in &p.models {
            if seen.insert((p.uid.clone(), m.as_str())) {
                let model: Arc<str> = m.as_str().into();
                pairs.push(Candidate {
                    breaker: breakers.model_slot(&p.uid, &model),
                    provider: p.clone(),
                    model,
                });
            }
        }
    }
    pairs.sort_by(super::route_order);
    let measured: Vec<(Capabilities, Option<f64>)> = pairs
        .iter()
        .map(|c| (**c.breaker.live.caps.load(), c.breaker.live.price()))
        .collect();
    GROUPS
        .iter()
        .filter(|g| !snap.routes.contains_key(g.name))
        .filter_map(|g| {
            let mut keep: Vec<usize> = (0..pairs.len())
                .filter(|&i| (g.keep)(&measured[i].0, measured[i].1))
                .collect();
            if g.longest {
                let most = keep
                    .iter()
                    .filter_map(|&i| measured[i].0.context_window)
                    .max();
                keep.retain(|&i| measured[i].0.context_window == most);
            }
            if keep.is_empty() {
                return None;
            }
            let candidates: Vec<Candidate> = keep.into_iter().map(|i| pairs[i].clone()).collect();
            let route = Route {
                name: g.name.into(),
                groups: provider_groups(&candidates),
                candidates,
                protocol: None,
                default_params: snap.settings.routing.default_params.clone(),
                override_params: Default::default(),
                probe: false,
                strategy: g.strategy,
                sort: Vec::new(),
                turn: Default::default(),
                by_price: Default::default(),
                limits: Default::default(),
                group: true,
            };
            route.rank_by_price();
            route.sum_up_limits();
            Some(Arc::new(route))
        })
        .collect()
}
