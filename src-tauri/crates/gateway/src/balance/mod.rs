//! Choosing a candidate. The `weighted` choice (the default strategy, and the tie-break of the
//! others): a provider by weight among those with a usable candidate, then a model within it (so
//! a provider with many matching models is not over-chosen), preferring the client's sticky
//! model. The other strategies are in `strategy`; what they measure in `live`. The RNG is
//! injected for tests.

mod live;
mod sticky;
pub mod strategy;

use std::ops::Range;
use std::sync::Arc;

pub use live::{Busy, Live};
pub use sticky::Sticky;
pub use strategy::{Score, pick};

use crate::catalog::Candidate;

/// Picks among `candidates`, whose provider groups (contiguous runs of one provider, as a
/// route keeps them) are `groups`. `usable(i)` says whether candidate i may be tried now;
/// `preferred(provider_uid)` names a model to prefer within the chosen provider.
pub fn choose(
    candidates: &[Candidate],
    groups: &[Range<usize>],
    usable: impl Fn(usize) -> bool,
    preferred: impl Fn(&Arc<str>) -> Option<Arc<str>>,
    rng: &mut fastrand::Rng,
) -> Option<usize> {
    let open = |g: &&Range<usize>| (g.start..g.end).any(&usable);
    let group = by_weight(
        groups.iter().filter(open),
        |g| u64::from(candidates[g.start].provider.weight),
        rng,
    )?;
    let provider = &candidates[group.start].provider;
    if let Some(model) = preferred(&provider.uid)
        && let Some(i) = group
            .clone()
            .find(|&i| usable(i) && candidates[i].model == model)
    {
        return Some(i);
    }
    let n = group.clone().filter(|&i| usable(i)).count();
    let pick = rng.usize(0..n);
    group.clone().filter(|&i| usable(i)).nth(pick)
}

/// One of `items` at random, each as likely as its weight; None when they weigh nothing.
pub(crate) fn by_weight<I: Iterator + Clone>(
    items: I,
    weight: impl Fn(&I::Item) -> u64,
    rng: &mut fastrand::Rng,
) -> Option<I::Item> {
    let total: u64 = items.clone().map(|i| weight(&i)).sum();
    if total == 0 {
        return None;
    }
    let mut ticket = rng.u64(0..total);
    items.into_iter().find(|i| {
        let w = weight(i);
        if ticket < w {
            true
        } else {
            ticket -= w;
            false
        }
    })
}

#[cfg(test)]
mod tests;
