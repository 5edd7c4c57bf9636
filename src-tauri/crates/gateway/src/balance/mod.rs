//! Choosing a candidate: a provider by weight among those with a usable candidate, then a model
//! within it (so a provider with many matching models is not over-chosen), preferring the
//! client's sticky model. The RNG is injected for tests.

mod sticky;

use std::sync::Arc;

pub use sticky::{SessionPin, Sticky};

use crate::catalog::Candidate;

/// Picks among `candidates` (grouped by provider, as a route keeps them). `usable(i)` says
/// whether candidate i may be tried now; `preferred(provider_uid)` names a model to prefer.
pub fn choose(
    candidates: &[Candidate],
    usable: impl Fn(usize) -> bool,
    preferred: impl Fn(&Arc<str>) -> Option<Arc<str>>,
    rng: &mut fastrand::Rng,
) -> Option<usize> {
    // Provider groups are contiguous runs of the same provider.
    let groups = || {
        let mut start = 0;
        std::iter::from_fn(move || {
            let first = candidates.get(start)?;
            let len = candidates[start..]
                .iter()
                .take_while(|c| Arc::ptr_eq(&c.provider, &first.provider))
                .count();
            let range = start..start + len;
            start += len;
            Some(range)
        })
    };
    let total: u64 = groups()
        .filter(|g| g.clone().any(&usable))
        .map(|g| u64::from(candidates[g.start].provider.weight))
        .sum();
    if total == 0 {
        return None;
    }
    let mut ticket = rng.u64(0..total);
    let group = groups().filter(|g| g.clone().any(&usable)).find(|g| {
        let w = u64::from(candidates[g.start].provider.weight);
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
    group.filter(|&i| usable(i)).nth(pick)
}

#[cfg(test)]
mod tests;
