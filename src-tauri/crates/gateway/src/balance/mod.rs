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

pub use live::{Busy, Health, Live, ticks};
pub use sticky::Sticky;
pub use strategy::{Measures, Score, pick};

use crate::catalog::Candidate;

/// Picks among `candidates`, whose provider groups (contiguous runs of one provider, as a
/// route keeps them) are `groups`. `usable(i)` says whether candidate i may be tried now;
/// `preferred(provider_uid)` names a model to prefer within the chosen provider. Every candidate
/// counts as healthy; [`weighted`] is the same choice with health scores.
pub fn choose(
    candidates: &[Candidate],
    groups: &[Range<usize>],
    usable: impl Fn(usize) -> bool,
    preferred: impl Fn(&Arc<str>) -> Option<Arc<str>>,
    rng: &mut fastrand::Rng,
) -> Option<usize> {
    weighted(
        candidates,
        groups,
        usable,
        &|_| Score::default(),
        preferred,
        rng,
    )
}

/// The weighted choice with health scores (its provider's and its own, each in [0.01, 1]:
/// [`Health`]). Its steps:
/// 1. a provider with a usable candidate, drawn by weight times its health;
/// 2. its sticky model if usable (a client's sticky model outweighs a dip in health: the
///    breaker, not the score, takes a failing model away);
/// 3. else one of its usable candidates, drawn by health.
pub(crate) fn weighted(
    candidates: &[Candidate],
    groups: &[Range<usize>],
    usable: impl Fn(usize) -> bool,
    m: &impl Measures,
    preferred: impl Fn(&Arc<str>) -> Option<Arc<str>>,
    rng: &mut fastrand::Rng,
) -> Option<usize> {
    let open = |g: &&Range<usize>| (g.start..g.end).any(&usable);
    let group = by_weight(
        groups.iter().filter(open),
        |g| {
            share(
                candidates[g.start].provider.weight,
                m.provider_health(g.start),
            )
        },
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
    by_weight(
        group.clone().filter(|&i| usable(i)),
        |&i| share(1, m.health(i)),
        rng,
    )
}

/// A weight scaled by a health score, in thousandths so a small score still counts; a weight
/// above zero never scales to nothing.
pub(crate) fn share(weight: u32, health: f64) -> u64 {
    if weight == 0 {
        return 0;
    }
    let scaled = f64::from(weight) * 1000.0 * health.clamp(0.0, 1.0);
    // In range: at most u32::MAX * 1000.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let scaled = scaled.round() as u64;
    scaled.max(1)
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
