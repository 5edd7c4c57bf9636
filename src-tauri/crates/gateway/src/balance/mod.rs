//! Choosing a candidate: a provider by weight among those with a usable candidate, then a model
//! within it (so a provider with many matching models is not over-chosen), preferring the
//! client's sticky model. The RNG is injected for tests.

mod sticky;

use std::ops::Range;
use std::sync::Arc;

pub use sticky::Sticky;

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
    let weight = |g: &Range<usize>| u64::from(candidates[g.start].provider.weight);
    let total: u64 = groups.iter().filter(open).map(weight).sum();
    if total == 0 {
        return None;
    }
    let mut ticket = rng.u64(0..total);
    let group = groups.iter().filter(open).find(|g| {
        let w = weight(g);
        if ticket < w {
            true
        } else {
            ticket -= w;
            false
        }
    })?;
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

#[cfg(test)]
mod tests;
