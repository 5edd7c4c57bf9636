use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::catalog::{Provider, provider_groups};

fn provider(name: &str, weight: u32) -> Arc<Provider> {
    Arc::new(Provider::for_tests(name, weight))
}

fn route(spec: &[(u32, usize)]) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (i, (w, n)) in spec.iter().enumerate() {
        let p = provider(&format!("p{i}"), *w);
        for m in 0..*n {
            let model: Arc<str> = format!("m{m}").into();
            out.push(Candidate {
                provider: p.clone(),
                breaker: p.breaker.clone(),
                model,
            });
        }
    }
    out
}

#[test]
fn prefers_the_sticky_model() {
    let c = route(&[(1, 5)]);
    let mut rng = fastrand::Rng::with_seed(1);
    for _ in 0..50 {
        let i = choose(
            &c,
            &provider_groups(&c),
            |_| true,
            |_| Some("m3".into()),
            &mut rng,
        )
        .unwrap();
        assert_eq!(&*c[i].model, "m3");
    }
    // Not usable: another model.
    let i = choose(
        &c,
        &provider_groups(&c),
        |i| i != 3,
        |_| Some("m3".into()),
        &mut rng,
    )
    .unwrap();
    assert_ne!(i, 3);
}

#[test]
fn nothing_usable_is_none() {
    let c = route(&[(1, 2), (5, 1)]);
    assert_eq!(
        choose(
            &c,
            &provider_groups(&c),
            |_| false,
            |_| None,
            &mut fastrand::Rng::with_seed(1)
        ),
        None
    );
    assert_eq!(
        choose(
            &[],
            &[],
            |_| true,
            |_| None,
            &mut fastrand::Rng::with_seed(1)
        ),
        None
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Provider shares follow the weights, whatever the number of models each has.
    #[test]
    fn shares_follow_weights(spec in prop::collection::vec((1u32..20, 1usize..30), 1..6), seed: u64) {
        let c = route(&spec);
        let mut rng = fastrand::Rng::with_seed(seed);
        let n = 20_000;
        let mut hits: HashMap<String, u32> = HashMap::new();
        let groups = provider_groups(&c);
        for _ in 0..n {
            let i = choose(&c, &groups, |_| true, |_| None, &mut rng).unwrap();
            *hits.entry(c[i].provider.name.to_string()).or_default() += 1;
        }
        let total: u32 = spec.iter().map(|(w, _)| w).sum();
        for (i, (w, _)) in spec.iter().enumerate() {
            let expected = f64::from(*w) / f64::from(total);
            let got = f64::from(hits.get(&format!("p{i}")).copied().unwrap_or(0)) / f64::from(n);
            prop_assert!((got - expected).abs() < 0.02, "p{i}: expected {expected:.3}, got {got:.3}");
        }
    }

    /// An unusable (paused, open) candidate is never picked while another is usable.
    #[test]
    fn never_picks_an_unusable_candidate(
        spec in prop::collection::vec((1u32..20, 1usize..10), 1..6),
        mask in prop::collection::vec(any::<bool>(), 60),
        seed: u64,
    ) {
        let c = route(&spec);
        let usable = |i: usize| mask[i % mask.len()];
        let groups = provider_groups(&c);
        let any_usable = (0..c.len()).any(usable);
        let mut rng = fastrand::Rng::with_seed(seed);
        for _ in 0..200 {
            match choose(&c, &groups, usable, |_| None, &mut rng) {
                Some(i) => prop_assert!(usable(i)),
                None => prop_assert!(!any_usable),
            }
        }
    }
}
