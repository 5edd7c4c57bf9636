//! The strategies a unified model can choose with. Each is a pure function of the candidates,
//! which of them may be tried now (`usable`: not paused, not open, not tried already), their
//! measures ([`Measures`]), the client's sticky models, a turn counter and an RNG; no engine, no
//! I/O, so each is tested with a seeded RNG and made-up scores.

use std::ops::Range;
use std::sync::Arc;

use switchboard_api::sort::{SortBy, SortKey};

use super::{share, weighted};
use crate::catalog::Candidate;
use crate::config::Strategy;

/// The share of `latency` choices made at random, so a candidate that was slow once is
/// measured again (with two candidates, two random choices always compare both).
pub const EXPLORE: f64 = 0.05;

/// What the strategies know of one candidate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Moving average: time to first content for streams, total latency otherwise.
    pub latency_ms: Option<f64>,
    pub in_flight: u32,
    /// Effective USD per million tokens (input plus output, list price times the provider's
    /// multiplier); None when nothing prices it.
    pub price: Option<f64>,
    /// The health score of this (provider, model), in [0.01, 1] (`balance::Health`).
    pub health: f64,
    /// The health score of its provider (every model's outcomes).
    pub provider_health: f64,
    /// The share of its quota left, in [0, 1] (1 without a quota).
    pub quota_left: f64,
}

/// Each measure of candidate `i`, read one at a time: a strategy that ranks by price over
/// hundreds of candidates reads only their prices (routing reads them from the candidates'
/// slots; a test passes `|i| Score { .. }`).
pub trait Measures {
    fn latency_ms(&self, i: usize) -> Option<f64>;
    fn in_flight(&self, i: usize) -> u32;
    fn price(&self, i: usize) -> Option<f64>;
    fn health(&self, i: usize) -> f64;
    fn provider_health(&self, i: usize) -> f64;
    /// Every candidate's index, cheapest first (unpriced last), when one is kept; `cost` then
    /// walks it instead of ranking them all.
    fn by_price(&self) -> Option<&[u32]> {
        None
    }
    /// The share of its quotas (provider's and pair's) left: 1 without one.
    fn quota_left(&self, _i: usize) -> f64 {
        1.0
    }
    /// The route's `sort` factors (the `sort` strategy's).
    fn sort_keys(&self) -> &[SortKey] {
        &[]
    }
}

impl<F: Fn(usize) -> Score> Measures for F {
    fn latency_ms(&self, i: usize) -> Option<f64> {
        self(i).latency_ms
    }
    fn in_flight(&self, i: usize) -> u32 {
        self(i).in_flight
    }
    fn price(&self, i: usize) -> Option<f64> {
        self(i).price
    }
    fn health(&self, i: usize) -> f64 {
        self(i).health
    }
    fn provider_health(&self, i: usize) -> f64 {
        self(i).provider_health
    }
    fn quota_left(&self, i: usize) -> f64 {
        self(i).quota_left
    }
}

impl Default for Score {
    fn default() -> Self {
        Self {
            latency_ms: None,
            in_flight: 0,
            price: None,
            health: 1.0,
            provider_health: 1.0,
            quota_left: 1.0,
        }
    }
}

/// How many random draws look for a usable candidate before a scan of them all.
const DRAWS: usize = 16;
/// How many price or load levels are tried, lowest first, before a scan of them all.
const LEVELS: usize = 8;

/// The index of the candidate to try next, or None when none is usable. Each strategy looks at
/// as few candidates as it can: `usable` checks breakers, and a route may have hundreds.
#[allow(clippy::too_many_arguments)]
pub fn pick(
    strategy: Strategy,
    candidates: &[Candidate],
    groups: &[Range<usize>],
    usable: impl Fn(usize) -> bool,
    m: impl Measures,
    preferred: impl Fn(&Arc<str>) -> Option<Arc<str>>,
    turn: u64,
    rng: &mut fastrand::Rng,
) -> Option<usize> {
    match strategy {
        Strategy::Weighted => weighted(candidates, groups, usable, &m, preferred, rng),
        Strategy::Priority => priority(candidates, groups, usable, &m, preferred, rng),
        Strategy::RoundRobin => round_robin(candidates, groups, usable, &m, preferred, turn, rng),
        Strategy::Latency => latency(candidates.len(), usable, &m, rng),
        Strategy::Cost => match m.by_price().filter(|o| o.len() == candidates.len()) {
            Some(order) => cheapest_in_order(candidates, order, usable, &m, preferred, rng),
            None => lowest_then_weighted(candidates, usable, &m, preferred, rng, |i| {
                m.price(i).unwrap_or(f64::INFINITY)
            }),
        },
        Strategy::LeastBusy => {
            // Mostly something is idle: then the weighted choice among the idle ones, which
            // stops at each provider's first. Else the levels of load, lowest first.
            let idle = |i: usize| m.in_flight(i) == 0 && usable(i);
            weighted(candidates, groups, idle, &m, &preferred, rng).or_else(|| {
                lowest_then_weighted(candidates, usable, &m, preferred, rng, |i| {
                    f64::from(m.in_flight(i))
                })
            })
        }
        Strategy::Sort => match m.sort_keys() {
            [] => weighted(candidates, groups, usable, &m, preferred, rng),
            keys => sorted(candidates, usable, &m, keys, rng),
        },
    }
}

/// One factor's value for candidate `i`, oriented so that lower is better; None: not known
/// (no price, never measured).
fn factor(c: &[Candidate], m: &impl Measures, key: &SortKey, i: usize) -> Option<f64> {
    let v = match key.by {
        SortBy::Cost => m.price(i)?,
        SortBy::Latency => m.latency_ms(i)?,
        SortBy::Success => m.health(i) * m.provider_health(i),
        SortBy::Quota => m.quota_left(i),
        SortBy::Priority => f64::from(c[i].provider.priority),
    };
    Some(if key.ascending() { v } else { -v })
}

/// A route of at most this many candidates is scored whole; a larger one by a sample of this
/// size, so that a choice costs the same at 800 candidates as at 32.
pub const SORT_SCORED: usize = 32;

/// The candidates `sort` scores: every usable one of a route of at most [`SORT_SCORED`]; of a
/// larger one, the cheapest usable ones in the kept price order (a quarter of the sample) and
/// the rest drawn at random among the usable ones, each once.
fn sort_pool(
    n: usize,
    usable: &impl Fn(usize) -> bool,
    m: &impl Measures,
    rng: &mut fastrand::Rng,
) -> Vec<usize> {
    if n <= SORT_SCORED {
        return (0..n).filter(|&i| usable(i)).collect();
    }
    let mut pool = Vec::with_capacity(SORT_SCORED);
    // Which are in the pool already: a bit each.
    let mut seen = vec![0u64; n.div_ceil(64)];
    let mut take = |i: usize, pool: &mut Vec<usize>| {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        if seen[w] & b == 0 && usable(i) {
            seen[w] |= b;
            pool.push(i);
        }
    };
    if let Some(order) = m.by_price().filter(|o| o.len() == n) {
        for &i in order {
            if pool.len() >= SORT_SCORED / 4 {
                break;
            }
            if let Ok(i) = usize::try_from(i) {
                take(i, &mut pool);
            }
        }
    }
    for _ in 0..SORT_SCORED * 2 {
        if pool.len() >= SORT_SCORED {
            break;
        }
        take(rng.usize(0..n), &mut pool);
    }
    if pool.is_empty() {
        // Few usable among many: find them.
        pool.extend((0..n).filter(|&i| usable(i)).take(SORT_SCORED));
    }
    pool
}

/// `sort`, in these steps:
/// - the candidates to score: every usable one, or of a route larger than [`SORT_SCORED`], a
///   sample (the cheapest usable ones and others drawn at random, `sort_pool`);
/// - each factor of each scored candidate is read once (cost: the effective price; latency:
///   the moving average; success: the health score times its provider's; quota: the share
///   left; priority: the provider's);
/// - each factor is scaled over the scored candidates to 0 (the best of them) .. 1 (the
///   worst), in its direction; a value not known counts as the worst;
/// - a candidate's score is the sum of each factor's weight times its scaled value, and the
///   lowest score wins;
/// - a tie goes to the better value of the first factor, then of the next, then to route order
///   (provider weight first).
pub(crate) fn sorted(
    candidates: &[Candidate],
    usable: impl Fn(usize) -> bool,
    m: &impl Measures,
    keys: &[SortKey],
    rng: &mut fastrand::Rng,
) -> Option<usize> {
    let keys = &keys[..keys.len().min(switchboard_api::sort::MAX_KEYS)];
    let pool = sort_pool(candidates.len(), &usable, m, rng);
    let mut rows: Vec<(usize, [f64; switchboard_api::sort::MAX_KEYS])> =
        Vec::with_capacity(pool.len());
    let mut lo = [f64::INFINITY; switchboard_api::sort::MAX_KEYS];
    let mut hi = [f64::NEG_INFINITY; switchboard_api::sort::MAX_KEYS];
    for i in pool {
        let mut row = [f64::NAN; switchboard_api::sort::MAX_KEYS];
        for (k, key) in keys.iter().enumerate() {
            if let Some(v) = factor(candidates, m, key, i).filter(|v| v.is_finite()) {
                row[k] = v;
                lo[k] = lo[k].min(v);
                hi[k] = hi[k].max(v);
            }
        }
        rows.push((i, row));
    }
    let scaled = |k: usize, v: f64| {
        if v.is_nan() {
            1.0
        } else if hi[k] > lo[k] {
            (v - lo[k]) / (hi[k] - lo[k])
        } else {
            0.0
        }
    };
    let score = |row: &[f64; switchboard_api::sort::MAX_KEYS]| -> f64 {
        keys.iter()
            .enumerate()
            .map(|(k, key)| key.weight() * scaled(k, row[k]))
            .sum()
    };
    let lexical = |a: &[f64; switchboard_api::sort::MAX_KEYS],
                   b: &[f64; switchboard_api::sort::MAX_KEYS]| {
        (0..keys.len())
            .map(|k| {
                let (x, y) = (a[k], b[k]);
                let x = if x.is_nan() { f64::INFINITY } else { x };
                let y = if y.is_nan() { f64::INFINITY } else { y };
                x.total_cmp(&y)
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    };
    rows.iter()
        .map(|(i, row)| (*i, row, score(row)))
        .min_by(|(i, a, sa), (j, b, sb)| {
            if (sa - sb).abs() > 1e-9 {
                sa.total_cmp(sb)
            } else {
                lexical(a, b).then(i.cmp(j))
            }
        })
        .map(|(i, ..)| i)
}

/// `cost` over a kept price order: the candidates of the cheapest price (read now) with a
/// usable one, then the weighted choice among those; looks at no more than it needs.
fn cheapest_in_order(
    candidates: &[Candidate],
    order: &[u32],
    usable: impl Fn(usize) -> bool,
    m: &impl Measures,
    preferred: impl Fn(&Arc<str>) -> Option<Arc<str>>,
    rng: &mut fastrand::Rng,
) -> Option<usize> {
    let price = |k: usize| {
        let i = usize::try_from(order[k]).unwrap_or(usize::MAX);
        (i, m.price(i).unwrap_or(f64::INFINITY))
    };
    let mut members = Vec::new();
    let mut k = 0;
    while k < order.len() {
        let level = price(k).1;
        while k < order.len() && price(k).1 == level {
            let (i, _) = price(k);
            if i < candidates.len() && usable(i) {
                members.push(i);
            }
            k += 1;
        }
        if !members.is_empty() {
            // The weighted choice reads providers' runs in route order.
            members.sort_unstable();
            return weighted_among(candidates, &members, m, preferred, rng);
        }
    }
    None
}

/// The lowest priority number among providers with a usable candidate is the tier in use, then
/// the weighted choice (with sticky models and health) within that tier only: a lower tier
/// serves only while every candidate of the higher ones is unusable.
fn priority(
    candidates: &[Candidate],
    groups: &[Range<usize>],
    usable: impl Fn(usize) -> bool,
    m: &impl Measures,
    preferred: impl Fn(&Arc<str>) -> Option<Arc<str>>,
    rng: &mut fastrand::Rng,
) -> Option<usize> {
    let tier = groups
        .iter()
        .filter(|g| (g.start..g.end).any(&usable))
        .map(|g| candidates[g.start].provider.priority)
        .min()?;
    let in_tier = |i: usize| candidates[i].provider.priority == tier && usable(i);
    weighted(candidates, groups, in_tier, m, preferred, rng)
}

/// The providers with a usable candidate, in route order (weight, then name), and the `turn`-th
/// of them: each provider in turn, an unusable one skipped (its turns shared by the others;
/// health does not change the order). Within the provider, the sticky model if usable, else one
/// drawn by health.
fn round_robin(
    candidates: &[Candidate],
    groups: &[Range<usize>],
    usable: impl Fn(usize) -> bool,
    m: &impl Measures,
    preferred: impl Fn(&Arc<str>) -> Option<Arc<str>>,
    turn: u64,
    rng: &mut fastrand::Rng,
) -> Option<usize> {
    let open: Vec<&Range<usize>> = groups
        .iter()
        .filter(|g| (g.start..g.end).any(&usable))
        .collect();
    let n = u64::try_from(open.len()).ok().filter(|&n| n > 0)?;
    let group = *open.get(usize::try_from(turn % n).ok()?)?;
    let only = |i: usize| group.contains(&i) && usable(i);
    weighted(
        candidates,
        std::slice::from_ref(group),
        only,
        m,
        preferred,
        rng,
    )
}

/// A usable candidate drawn at random: a few draws, then a scan (a route mostly open needs one
/// or two draws; a mostly open-breaker one falls back to the scan).
fn draw(
    n: usize,
    usable: &impl Fn(usize) -> bool,
    rng: &mut fastrand::Rng,
    not: Option<usize>,
) -> Option<usize> {
    if n == 0 {
        return None;
    }
    for _ in 0..DRAWS {
        let i = rng.usize(0..n);
        if Some(i) != not && usable(i) {
            return Some(i);
        }
    }
    let open: Vec<usize> = (0..n).filter(|&i| Some(i) != not && usable(i)).collect();
    (!open.is_empty()).then(|| open[rng.usize(0..open.len())])
}

/// Two usable candidates drawn at random and the faster of them (power of two choices: the
/// fastest gets most, without every request piling onto it), each one's latency divided by its
/// health (one that fails lately looks slower). A candidate never measured counts as the
/// fastest, so a cold start measures each; a small share of choices ([`EXPLORE`]) takes the
/// first draw as it is, so one that was slow once is measured again.
fn latency(
    n: usize,
    usable: impl Fn(usize) -> bool,
    m: &impl Measures,
    rng: &mut fastrand::Rng,
) -> Option<usize> {
    let a = draw(n, &usable, rng, None)?;
    if rng.f64() < EXPLORE {
        return Some(a);
    }
    let Some(b) = draw(n, &usable, rng, Some(a)) else {
        return Some(a);
    };
    let ms = |i: usize| m.latency_ms(i).unwrap_or(0.0) / m.health(i).max(0.01);
    Some(if ms(b) < ms(a) { b } else { a })
}

/// The lowest `key` held by a usable candidate (an unpriced one counts as dearest), then the
/// weighted choice among the usable ones at that level. One pass over the keys (cheap reads)
/// finds the lowest level and its members; only those are checked for usability, and the next
/// level is looked at only when none of them is usable.
fn lowest_then_weighted(
    candidates: &[Candidate],
    usable: impl Fn(usize) -> bool,
    m: &impl Measures,
    preferred: impl Fn(&Arc<str>) -> Option<Arc<str>>,
    rng: &mut fastrand::Rng,
    key: impl Fn(usize) -> f64,
) -> Option<usize> {
    let n = candidates.len();
    let mut above = f64::NEG_INFINITY;
    let mut members: Vec<usize> = Vec::new();
    for _ in 0..LEVELS {
        members.clear();
        let mut best = f64::INFINITY;
        for i in 0..n {
            let k = key(i);
            if k <= above {
                continue;
            }
            if k < best {
                best = k;
                members.clear();
            }
            if k == best {
                members.push(i);
            }
        }
        if members.is_empty() {
            return None;
        }
        members.retain(|&i| usable(i));
        if !members.is_empty() {
            return weighted_among(candidates, &members, m, preferred, rng);
        }
        if best == f64::INFINITY {
            return None;
        }
        above = best;
    }
    // Many levels unusable: one pass over the usable ones.
    let level = (0..n).filter(|&i| usable(i)).map(&key).reduce(f64::min)?;
    members = (0..n).filter(|&i| key(i) == level && usable(i)).collect();
    weighted_among(candidates, &members, m, preferred, rng)
}

/// The weighted choice over a list of usable candidates in route order: a provider by weight
/// times health (each counted once), then its sticky model if listed, else one of its listed
/// ones by health.
fn weighted_among(
    candidates: &[Candidate],
    list: &[usize],
    m: &impl Measures,
    preferred: impl Fn(&Arc<str>) -> Option<Arc<str>>,
    rng: &mut fastrand::Rng,
) -> Option<usize> {
    // Runs of one provider in the list (it is in route order, where a provider's are together).
    let mut runs: Vec<Range<usize>> = Vec::new();
    for (k, &i) in list.iter().enumerate() {
        match runs.last_mut() {
            Some(r)
                if Arc::ptr_eq(&candidates[list[r.start]].provider, &candidates[i].provider) =>
            {
                r.end = k + 1;
            }
            _ => runs.push(k..k + 1),
        }
    }
    let run = super::by_weight(
        runs.iter(),
        |r| {
            let first = list[r.start];
            share(candidates[first].provider.weight, m.provider_health(first))
        },
        rng,
    )?;
    let mine = &list[run.clone()];
    let provider = &candidates[mine[0]].provider;
    if let Some(model) = preferred(&provider.uid)
        && let Some(&i) = mine.iter().find(|&&i| candidates[i].model == model)
    {
        return Some(i);
    }
    super::by_weight(mine.iter().copied(), |&i| share(1, m.health(i)), rng)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest};

    use super::*;
    use crate::catalog::{Provider, provider_groups};

    /// One candidate per provider: (weight, priority).
    fn route(spec: &[(u32, u32)]) -> Vec<Candidate> {
        spec.iter()
            .enumerate()
            .map(|(i, &(w, prio))| {
                let mut p = Provider::for_tests(&format!("p{i}"), w);
                p.priority = prio;
                let p = Arc::new(p);
                Candidate {
                    breaker: p.breaker.clone(),
                    provider: p,
                    model: "m".into(),
                }
            })
            .collect()
    }

    fn run(
        strategy: Strategy,
        c: &[Candidate],
        usable: impl Fn(usize) -> bool + Copy,
        score: impl Fn(usize) -> Score + Copy,
        n: u64,
        seed: u64,
    ) -> HashMap<usize, u32> {
        let groups = provider_groups(c);
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut counts = HashMap::new();
        for turn in 0..n {
            if let Some(i) = pick(
                strategy,
                c,
                &groups,
                usable,
                score,
                |_| None,
                turn,
                &mut rng,
            ) {
                *counts.entry(i).or_default() += 1;
            }
        }
        counts
    }

    fn none(_: usize) -> Score {
        Score::default()
    }

    #[test]
    fn priority_uses_the_second_tier_only_while_the_first_is_down() {
        let c = route(&[(1, 0), (1, 0), (100, 1)]);
        let all = run(Strategy::Priority, &c, |_| true, none, 400, 1);
        assert_eq!(all.get(&2), None, "tier 1 is up: {all:?}");
        assert!(
            all[&0] > 100 && all[&1] > 100,
            "weight within the tier: {all:?}"
        );
        let one_down = run(Strategy::Priority, &c, |i| i != 0, none, 100, 2);
        assert_eq!(one_down.get(&1), Some(&100), "{one_down:?}");
        let tier_down = run(Strategy::Priority, &c, |i| i == 2, none, 100, 3);
        assert_eq!(tier_down.get(&2), Some(&100), "{tier_down:?}");
    }

    #[test]
    fn round_robin_keeps_its_order_and_skips_the_unusable() {
        let c = route(&[(5, 0), (3, 0), (1, 0)]);
        let groups = provider_groups(&c);
        let mut rng = fastrand::Rng::with_seed(1);
        let order: Vec<usize> = (0..6)
            .filter_map(|t| {
                pick(
                    Strategy::RoundRobin,
                    &c,
                    &groups,
                    |_| true,
                    none,
                    |_| None,
                    t,
                    &mut rng,
                )
            })
            .collect();
        assert_eq!(order, [0, 1, 2, 0, 1, 2]);
        let order: Vec<usize> = (0..4)
            .filter_map(|t| {
                pick(
                    Strategy::RoundRobin,
                    &c,
                    &groups,
                    |i| i != 1,
                    none,
                    |_| None,
                    t,
                    &mut rng,
                )
            })
            .collect();
        assert_eq!(order, [0, 2, 0, 2]);
    }

    #[test]
    fn latency_converges_to_the_faster_and_still_measures_the_others() {
        let c = route(&[(1, 0), (1, 0), (1, 0)]);
        // Feeding back what each pick measured: candidate 1 is the fast one.
        let truth = [300.0, 20.0, 150.0];
        let measured: std::cell::RefCell<[Option<f64>; 3]> = std::cell::RefCell::new([None; 3]);
        let groups = provider_groups(&c);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut counts = [0u32; 3];
        for turn in 0..2000 {
            let score = |i: usize| Score {
                latency_ms: measured.borrow()[i],
                ..Score::default()
            };
            let i = pick(
                Strategy::Latency,
                &c,
                &groups,
                |_| true,
                score,
                |_| None,
                turn,
                &mut rng,
            )
            .unwrap();
            counts[i] += 1;
            measured.borrow_mut()[i] = Some(truth[i]);
        }
        assert!(counts[1] > 1200, "the fast one gets most: {counts:?}");
        assert!(
            counts[0] >= 10 && counts[2] >= 10,
            "the others are measured again: {counts:?}"
        );
        // A candidate never measured wins every comparison it is drawn into.
        let cold = |i: usize| Score {
            latency_ms: (i != 2).then_some(1.0),
            ..Score::default()
        };
        let got = run(Strategy::Latency, &c, |_| true, cold, 300, 1);
        assert!(got[&2] > 150, "{got:?}");
    }

    #[test]
    fn cost_picks_the_cheapest_usable_one_and_ties_go_by_weight() {
        let c = route(&[(1, 0), (1, 0), (1, 0), (9, 0)]);
        let price = |i: usize| Score {
            price: [Some(10.0), Some(2.5), None, Some(2.5)][i],
            ..Score::default()
        };
        let got = run(Strategy::Cost, &c, |_| true, price, 1000, 4);
        assert_eq!(got.get(&0), None);
        assert_eq!(got.get(&2), None, "unpriced counts as dearest");
        assert!(got[&3] > got[&1] * 4, "ties by weight: {got:?}");
        let cheapest_down = run(Strategy::Cost, &c, |i| i != 1 && i != 3, price, 50, 5);
        assert_eq!(cheapest_down.get(&0), Some(&50), "{cheapest_down:?}");
    }

    #[test]
    fn least_busy_picks_the_fewest_in_flight() {
        let c = route(&[(100, 0), (1, 0)]);
        let busy = |i: usize| Score {
            in_flight: [3, 1][i],
            ..Score::default()
        };
        assert_eq!(
            run(Strategy::LeastBusy, &c, |_| true, busy, 50, 6).get(&1),
            Some(&50)
        );
    }

    #[test]
    fn a_failing_candidate_gets_a_smaller_share_before_its_breaker_opens() {
        let c = route(&[(1, 0), (1, 0)]);
        let ailing = |i: usize| Score {
            health: [1.0, 0.2][i],
            provider_health: [1.0, 0.2][i],
            ..Score::default()
        };
        for s in [
            Strategy::Weighted,
            Strategy::Priority,
            Strategy::Cost,
            Strategy::LeastBusy,
        ] {
            let got = run(s, &c, |_| true, ailing, 2000, 8);
            let (well, ill) = (got[&0], got.get(&1).copied().unwrap_or(0));
            assert!(ill > 100 && well > 4 * ill, "{s:?}: {got:?}");
        }
        // Within one provider the model stage weighs health too.
        let mut one = route(&[(1, 0)]);
        let mut second = one[0].clone();
        second.model = "m2".into();
        one.push(second);
        let got = run(
            Strategy::Weighted,
            &one,
            |_| true,
            |i| Score {
                health: [0.1, 1.0][i],
                ..Score::default()
            },
            1000,
            9,
        );
        assert!(got[&1] > 8 * got[&0], "{got:?}");
        // A latency that fails lately looks slower: 100 ms at health 0.25 loses to 200 ms.
        let c = route(&[(1, 0), (1, 0)]);
        let got = run(
            Strategy::Latency,
            &c,
            |_| true,
            |i| Score {
                latency_ms: Some([100.0, 200.0][i]),
                health: [0.25, 1.0][i],
                ..Score::default()
            },
            1000,
            10,
        );
        assert!(got[&1] > 900, "{got:?}");
    }

    /// Measures with a kept price order, as routing passes them.
    struct Ordered(Vec<Score>, Vec<u32>);

    impl Measures for Ordered {
        fn latency_ms(&self, i: usize) -> Option<f64> {
            self.0[i].latency_ms
        }
        fn in_flight(&self, i: usize) -> u32 {
            self.0[i].in_flight
        }
        fn price(&self, i: usize) -> Option<f64> {
            self.0[i].price
        }
        fn health(&self, i: usize) -> f64 {
            self.0[i].health
        }
        fn provider_health(&self, i: usize) -> f64 {
            self.0[i].provider_health
        }
        fn by_price(&self) -> Option<&[u32]> {
            Some(&self.1)
        }
    }

    #[test]
    fn least_busy_with_nothing_idle_takes_the_lowest_load() {
        let c = route(&[(100, 0), (1, 0), (1, 0)]);
        let busy = |i: usize| Score {
            in_flight: [4, 2, 9][i],
            ..Score::default()
        };
        assert_eq!(
            run(Strategy::LeastBusy, &c, |_| true, busy, 30, 11).get(&1),
            Some(&30)
        );
        assert_eq!(
            run(Strategy::LeastBusy, &c, |i| i != 1, busy, 30, 12).get(&0),
            Some(&30),
            "the next level when the lowest is unusable"
        );
    }

    /// Measures with `sort` factors, over made-up scores.
    struct Sorting<'a>(&'a [Score], Vec<SortKey>);

    impl Measures for Sorting<'_> {
        fn latency_ms(&self, i: usize) -> Option<f64> {
            self.0[i].latency_ms
        }
        fn in_flight(&self, i: usize) -> u32 {
            self.0[i].in_flight
        }
        fn price(&self, i: usize) -> Option<f64> {
            self.0[i].price
        }
        fn health(&self, i: usize) -> f64 {
            self.0[i].health
        }
        fn provider_health(&self, i: usize) -> f64 {
            self.0[i].provider_health
        }
        fn quota_left(&self, i: usize) -> f64 {
            self.0[i].quota_left
        }
        fn sort_keys(&self) -> &[SortKey] {
            &self.1
        }
    }

    fn key(by: SortBy, weight: f64) -> SortKey {
        SortKey {
            by,
            order: None,
            weight: Some(weight),
        }
    }

    #[test]
    fn sort_weighs_its_factors_scaled_over_the_usable_candidates() {
        let c = route(&[(1, 2), (1, 0), (1, 1)]);
        let groups = provider_groups(&c);
        let scores = [
            Score {
                price: Some(3.0),
                latency_ms: Some(10.0),
                quota_left: 0.1,
                ..Score::default()
            },
            Score {
                price: Some(1.0),
                latency_ms: Some(300.0),
                quota_left: 0.9,
                ..Score::default()
            },
            Score {
                price: Some(2.0),
                latency_ms: Some(20.0),
                quota_left: 0.5,
                ..Score::default()
            },
        ];
        let mut rng = fastrand::Rng::with_seed(1);
        let mut go = |keys: Vec<SortKey>, usable: &dyn Fn(usize) -> bool| {
            pick(
                Strategy::Sort,
                &c,
                &groups,
                usable,
                Sorting(&scores, keys),
                |_| None,
                0,
                &mut rng,
            )
        };
        let all = |_: usize| true;
        assert_eq!(go(vec![key(SortBy::Cost, 1.0)], &all), Some(1));
        assert_eq!(go(vec![key(SortBy::Latency, 1.0)], &all), Some(0));
        // Cost scaled [1, 0, 0.5], latency [0, 1, 0.03]: the middle one is best of both.
        assert_eq!(
            go(
                vec![key(SortBy::Cost, 1.0), key(SortBy::Latency, 1.0)],
                &all
            ),
            Some(2)
        );
        // Latency weighs far more: the fastest.
        assert_eq!(
            go(
                vec![key(SortBy::Cost, 1.0), key(SortBy::Latency, 20.0)],
                &all
            ),
            Some(0)
        );
        assert_eq!(
            go(vec![key(SortBy::Quota, 1.0)], &all),
            Some(1),
            "most left"
        );
        assert_eq!(go(vec![key(SortBy::Priority, 1.0)], &all), Some(1));
        let desc = SortKey {
            order: Some(switchboard_api::sort::SortOrder::Desc),
            ..key(SortBy::Cost, 1.0)
        };
        assert_eq!(go(vec![desc], &all), Some(0), "a direction of its own");
        // Scaled over the usable ones only; none usable, none picked.
        assert_eq!(go(vec![key(SortBy::Cost, 1.0)], &|i| i != 1), Some(2));
        assert_eq!(go(vec![key(SortBy::Cost, 1.0)], &|_| false), None);
    }

    #[test]
    fn sort_counts_an_unknown_value_as_the_worst_and_breaks_ties_by_the_first_factor() {
        let c = route(&[(1, 0), (1, 0), (1, 0)]);
        let groups = provider_groups(&c);
        let scores = [
            Score {
                price: None,
                latency_ms: Some(10.0),
                ..Score::default()
            },
            Score {
                price: Some(5.0),
                latency_ms: Some(50.0),
                ..Score::default()
            },
            Score {
                price: Some(5.0),
                latency_ms: Some(40.0),
                ..Score::default()
            },
        ];
        let mut rng = fastrand::Rng::with_seed(1);
        let keys = vec![key(SortBy::Cost, 1.0), key(SortBy::Latency, 0.001)];
        let got = pick(
            Strategy::Sort,
            &c,
            &groups,
            |_| true,
            Sorting(&scores, keys),
            |_| None,
            0,
            &mut rng,
        );
        assert_eq!(got, Some(2), "unpriced is the worst price; then the faster");
        // No factors: the weighted choice.
        let got = pick(
            Strategy::Sort,
            &c,
            &groups,
            |i| i == 1,
            Sorting(&scores, Vec::new()),
            |_| None,
            0,
            &mut rng,
        );
        assert_eq!(got, Some(1));
    }

    fn strategies() -> impl proptest::strategy::Strategy<Value = Strategy> {
        proptest::sample::select(Strategy::ALL.to_vec())
    }

    proptest! {
        /// No strategy picks an unusable candidate, and each picks one while any is usable.
        #[test]
        fn never_an_unusable_candidate_while_a_usable_one_exists(
            s in strategies(),
            spec in proptest::collection::vec((1u32..50, 0u32..3), 1..8),
            mask in proptest::collection::vec(any::<bool>(), 8),
            lat in proptest::collection::vec(proptest::option::of(1.0f64..500.0), 8),
            price in proptest::collection::vec(proptest::option::of(0.0f64..50.0), 8),
            busy in proptest::collection::vec(0u32..5, 8),
            health in proptest::collection::vec(0.01f64..=1.0, 8),
            turn in 0u64..1000,
            seed in any::<u64>(),
        ) {
            let c = route(&spec);
            let groups = provider_groups(&c);
            let usable = |i: usize| mask[i];
            let score = |i: usize| Score {
                latency_ms: lat[i],
                in_flight: busy[i],
                price: price[i],
                health: health[i],
                provider_health: health[7 - i],
                quota_left: 1.0,
            };
            let mut rng = fastrand::Rng::with_seed(seed);
            let got = pick(s, &c, &groups, usable, score, |_| None, turn, &mut rng);
            let any_usable = (0..c.len()).any(usable);
            prop_assert_eq!(got.is_some(), any_usable);
            if let Some(i) = got {
                prop_assert!(usable(i));
            }
        }

        /// `sort` over any factors, on a route small enough to score whole or large enough to
        /// sample, picks a usable candidate whenever one is usable, and only then.
        #[test]
        fn sort_never_picks_an_unusable_candidate(
            n in 1usize..120,
            usable_every in 1usize..40,
            price in proptest::collection::vec(proptest::option::of(0.0f64..50.0), 120),
            which in proptest::collection::vec(0usize..5, 1..4),
            seed in any::<u64>(),
        ) {
            let spec: Vec<(u32, u32)> = (0..n).map(|i| (1 + (i % 3) as u32, (i % 2) as u32)).collect();
            let c = route(&spec);
            let groups = provider_groups(&c);
            let usable = |i: usize| i.is_multiple_of(usable_every);
            let scores: Vec<Score> = (0..n)
                .map(|i| Score { price: price[i], latency_ms: price[119 - i], ..Score::default() })
                .collect();
            let all = [SortBy::Cost, SortBy::Latency, SortBy::Success, SortBy::Quota, SortBy::Priority];
            let mut keys: Vec<SortKey> = Vec::new();
            for w in which {
                if !keys.iter().any(|k| k.by == all[w]) {
                    keys.push(key(all[w], 1.0));
                }
            }
            let mut rng = fastrand::Rng::with_seed(seed);
            let got = pick(Strategy::Sort, &c, &groups, usable, Sorting(&scores, keys), |_| None, 0, &mut rng);
            prop_assert_eq!(got.is_some(), (0..n).any(usable));
            if let Some(i) = got {
                prop_assert!(usable(i));
            }
        }

        /// `cost` over a kept price order picks at the same price as ranking them all: the
        /// cheapest usable one's.
        #[test]
        fn cost_over_a_price_order_picks_the_cheapest_usable_price(
            spec in proptest::collection::vec((1u32..50, 0u32..3), 1..8),
            mask in proptest::collection::vec(any::<bool>(), 8),
            price in proptest::collection::vec(proptest::option::of(0u8..4), 8),
            seed in any::<u64>(),
        ) {
            let c = route(&spec);
            let n = c.len();
            let groups = provider_groups(&c);
            let usable = |i: usize| mask[i];
            let scores: Vec<Score> = (0..n)
                .map(|i| Score { price: price[i].map(f64::from), ..Score::default() })
                .collect();
            let key = |i: usize| scores[i].price.unwrap_or(f64::INFINITY);
            let mut order: Vec<u32> = (0..n as u32).collect();
            order.sort_by(|&a, &b| key(a as usize).total_cmp(&key(b as usize)));
            let m = Ordered(scores.clone(), order);
            let mut rng = fastrand::Rng::with_seed(seed);
            let got = pick(Strategy::Cost, &c, &groups, usable, m, |_| None, 0, &mut rng);
            let cheapest = (0..n).filter(|&i| usable(i)).map(key).reduce(f64::min);
            prop_assert_eq!(got.map(key), cheapest);
            if let Some(i) = got {
                prop_assert!(usable(i));
            }
        }
    }
}
