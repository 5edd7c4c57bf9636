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

/// A unified model defined by filters: its route is made here, as the ready-made groups' are.
#[derive(Debug)]
pub struct UserGroup {
    pub name: String,
    pub filter: switchboard_api::groups::GroupFilter,
    pub strategy: Strategy,
    pub sort: Vec<switchboard_api::sort::SortKey>,
    pub protocol: Option<crate::config::Protocol>,
    pub default_params: crate::config::JsonObject,
    pub override_params: crate::config::JsonObject,
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

/// Every (provider, model) the user's providers list, once, in route order.
fn listed(snap: &Snapshot, breakers: &BreakerRegistry) -> Vec<Candidate> {
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
    pairs
}

/// Whether a listed pair passes a group's filters, with what its slot knows of it.
fn passes(
    filter: &switchboard_api::groups::GroupFilter,
    c: &Candidate,
    caps: &Capabilities,
    price: Option<f64>,
) -> bool {
    chats(caps)
        && filter.keeps(&c.provider.name, caps, price, |p| {
            super::wildcard_match(p, &c.model)
        })
}

/// What a group's filters would hold now: the Models page's live preview.
pub fn members(
    snap: &Snapshot,
    breakers: &BreakerRegistry,
    filter: &switchboard_api::groups::GroupFilter,
) -> Vec<Candidate> {
    listed(snap, breakers)
        .into_iter()
        .filter(|c| {
            passes(
                filter,
                c,
                &c.breaker.live.caps.load(),
                c.breaker.live.price(),
            )
        })
        .collect()
}

/// Every group that has a candidate and no unified model of its name, from the prices and
/// capabilities now in the slots.
pub fn builtin(snap: &Snapshot, breakers: &BreakerRegistry) -> Vec<Arc<Route>> {
    let pairs = listed(snap, breakers);
    let measured: Vec<(Capabilities, Option<f64>)> = pairs
        .iter()
        .map(|c| (**c.breaker.live.caps.load(), c.breaker.live.price()))
        .collect();
    let route_of = |name: &str, candidates: Vec<Candidate>, u: Option<&UserGroup>, strategy| {
        let route = Route {
            name: name.into(),
            groups: provider_groups(&candidates),
            candidates,
            protocol: u.and_then(|u| u.protocol),
            default_params: u.map_or_else(
                || snap.settings.routing.default_params.clone(),
                |u| u.default_params.clone(),
            ),
            override_params: u.map(|u| u.override_params.clone()).unwrap_or_default(),
            probe: false,
            strategy,
            sort: u.map(|u| u.sort.clone()).unwrap_or_default(),
            turn: Default::default(),
            by_price: Default::default(),
            limits: Default::default(),
            group: true,
        };
        route.rank_by_price();
        route.sum_up_limits();
        Arc::new(route)
    };
    // The user's own groups, each kept even with no candidate now (a request then hears that
    // nothing passes its filters, not that the model does not exist).
    let own = snap.filtered.iter().map(|u| {
        let candidates: Vec<Candidate> = (0..pairs.len())
            .filter(|&i| passes(&u.filter, &pairs[i], &measured[i].0, measured[i].1))
            .map(|i| pairs[i].clone())
            .collect();
        route_of(&u.name, candidates, Some(u), u.strategy)
    });
    let own: Vec<Arc<Route>> = own.collect();
    let ready = GROUPS
        .iter()
        .filter(|g| {
            !snap.routes.contains_key(g.name) && !snap.filtered.iter().any(|u| u.name == g.name)
        })
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
            Some(route_of(g.name, candidates, None, g.strategy))
        });
    own.into_iter().chain(ready).collect()
}
