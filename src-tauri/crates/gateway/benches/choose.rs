//! The per-request routing decision at scale: 50 providers with 200 models each, a unified model
//! with 20 rules. Measures the route lookup plus the two-stage choice with breaker checks, with
//! every breaker closed and with some open.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use switchboard_api::sort::{SortBy, SortKey};
use switchboard_gateway::Snapshot;
use switchboard_gateway::{BreakerRegistry, FailureKind, Limits, Needs};
use switchboard_gateway::{Health, Measures, Score, Sticky, Strategy, choose, ticks};
use switchboard_gateway::{KeyRef, StoredModel, StoredProvider, StoredState};
use switchboard_gateway::{Rule, RuleKind};

fn state() -> StoredState {
    let families = [
        "claude-opus-4-5",
        "claude-sonnet-4-5",
        "gpt-4o",
        "gemini-2.5-pro",
        "deepseek-v3",
    ];
    let providers = (0..50)
        .map(|p| StoredProvider {
            id: p,
            uid: format!("uid-{p}"),
            name: format!("relay-{p}"),
            base_url: format!("http://relay-{p}.example"),
            protocols: vec![switchboard_gateway::Protocol::OpenAi],
            key_ref: KeyRef::None,
            weight: 1 + (p as u32 % 7),
            priority: p as u32 % 3,
            enabled: true,
            paused: false,
            paused_until: None,
            responses: true,
            headers: Default::default(),
            models: (0..200)
                .map(|m| {
                    format!(
                        "{}-{m:03}{}",
                        families[m % 5],
                        if m % 11 == 0 { "-thinking" } else { "" }
                    )
                })
                .collect(),
        })
        .collect();
    let mut rules = vec![
        Rule {
            kind: RuleKind::Exact,
            value: "claude-opus-4-5".into(),
        },
        Rule {
            kind: RuleKind::Prefix,
            value: "claude-opus-4-5-00".into(),
        },
        Rule {
            kind: RuleKind::Keyword,
            value: "opus-4.5".into(),
        },
        Rule {
            kind: RuleKind::Regex,
            value: "^claude-opus-4[-.]5-01[0-9]$".into(),
        },
        Rule {
            kind: RuleKind::ExcludeKeyword,
            value: "thinking".into(),
        },
    ];
    for i in 0..15 {
        rules.push(Rule {
            kind: RuleKind::Keyword,
            value: format!("opus-4-5-{:03}", 100 + i * 5),
        });
    }
    let models = vec![StoredModel {
        id: 1,
        name: "claude-opus-4-5".into(),
        rules,
        include: Vec::new(),
        exclude_providers: Vec::new(),
        protocol: None,
        default_params: Default::default(),
        override_params: Default::default(),
        probe: true,
        strategy: Default::default(),
        sort: Vec::new(),
        group: None,
        tiers: None,
    }];
    StoredState {
        providers,
        models,
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let breakers = BreakerRegistry::default();
    let (snap, _) = Snapshot::build(&state(), &|_| Ok(None), &breakers);
    let route = snap.routes.get("claude-opus-4-5").unwrap();
    eprintln!("candidates: {}", route.candidates.len());
    let sticky = Sticky::default();
    let client: Arc<str> = "cursor".into();
    let mut rng = fastrand::Rng::with_seed(7);
    let pick = |breakers: &BreakerRegistry, rng: &mut fastrand::Rng| {
        let now = Instant::now();
        let route = snap.routes.get(black_box("claude-opus-4-5")).unwrap();
        let c = &route.candidates;
        choose(
            c,
            &route.groups,
            |i| {
                !c[i].provider.paused
                    && breakers.available(&c[i].provider.breaker, &c[i].breaker, now)
            },
            |uid| sticky.model(&client, uid),
            rng,
        )
    };
    c.bench_function(
        "choose: 50 providers x 200 models, 20 rules, breakers closed",
        |b| b.iter(|| black_box(pick(&breakers, &mut rng))),
    );
    // Open a model breaker at a third of the providers.
    let now = Instant::now();
    for cand in route.candidates.iter().step_by(3) {
        breakers.on_failure(
            &cand.provider.breaker,
            &cand.breaker,
            &FailureKind::ServerError,
            "500",
            now,
            &snap.policy,
        );
    }
    c.bench_function("choose: same, a third of the candidates open", |b| {
        b.iter(|| black_box(pick(&breakers, &mut rng)))
    });

    // Every strategy on the same route, a third open, with made-up measures (the real ones are
    // atomic loads from each candidate's slot; the health scores are read from real ones, a
    // fifth of them lowered by a recent failure, each read decaying it to now).
    let n = route.candidates.len();
    let healths: Vec<Health> = (0..n).map(|_| Health::default()).collect();
    let start = ticks(Instant::now());
    for h in healths.iter().step_by(5) {
        h.failed(&FailureKind::ServerError, start);
    }
    let scores: Vec<Score> = (0..n)
        .map(|i| Score {
            latency_ms: Some(50.0 + (i * 37 % 400) as f64),
            in_flight: (i * 7 % 5) as u32,
            price: Some(1.0 + (i * 13 % 30) as f64),
            ..Score::default()
        })
        .collect();
    // The engine keeps each route's price order; made up here from the made-up prices.
    let mut by_price: Vec<u32> = (0..n as u32).collect();
    by_price.sort_by(|&a, &b| {
        let p = |i: u32| scores[i as usize].price.unwrap_or(f64::INFINITY);
        p(a).total_cmp(&p(b))
    });
    c.bench_function("health score: one read of a lowered score", |b| {
        b.iter(|| black_box(healths[0].at(black_box(start + 3))))
    });
    let mut turn = 0u64;
    // `sort` over three factors: every usable candidate's price, latency and health are read.
    let sort = [
        SortKey {
            by: SortBy::Cost,
            order: None,
            weight: None,
        },
        SortKey {
            by: SortBy::Latency,
            order: None,
            weight: Some(0.5),
        },
        SortKey {
            by: SortBy::Success,
            order: None,
            weight: Some(0.2),
        },
    ];
    for strategy in Strategy::ALL {
        c.bench_function(
            &format!("pick {}: same, a third open", strategy.as_str()),
            |b| {
                b.iter(|| {
                    let now = Instant::now();
                    let route = snap.routes.get(black_box("claude-opus-4-5")).unwrap();
                    let c = &route.candidates;
                    turn += 1;
                    let tick = ticks(now);
                    black_box(switchboard_gateway::pick(
                        strategy,
                        c,
                        &route.groups,
                        |i| {
                            !c[i].provider.paused
                                && breakers.available(&c[i].provider.breaker, &c[i].breaker, now)
                        },
                        Bench {
                            scores: &scores,
                            healths: &healths,
                            by_price: &by_price,
                            tick,
                            sort: &sort,
                        },
                        |uid| sticky.model(&client, uid),
                        turn,
                        &mut rng,
                    ))
                })
            },
        );
    }
}

/// Made-up measures, and health read from real scores, one measure at a time as routing reads
/// them from the slots.
struct Bench<'a> {
    scores: &'a [Score],
    healths: &'a [Health],
    by_price: &'a [u32],
    tick: u32,
    sort: &'a [SortKey],
}

impl Measures for Bench<'_> {
    fn latency_ms(&self, i: usize) -> Option<f64> {
        self.scores[i].latency_ms
    }
    fn in_flight(&self, i: usize) -> u32 {
        self.scores[i].in_flight
    }
    fn price(&self, i: usize) -> Option<f64> {
        self.scores[i].price
    }
    fn health(&self, i: usize) -> f64 {
        self.healths[i].at(self.tick)
    }
    fn provider_health(&self, i: usize) -> f64 {
        // Stands for the provider's slot: a second score, as routing reads.
        self.healths[(i + 1) % self.healths.len()].at(self.tick)
    }
    fn by_price(&self) -> Option<&[u32]> {
        Some(self.by_price)
    }
    fn sort_keys(&self) -> &[SortKey] {
        self.sort
    }
}

/// What a request needs, read from its body: a 10,000-token conversation (about 40 kB) on a
/// route where some candidate takes no images and holds 8,000 tokens (so both searches run),
/// and on one where nothing is known to be lacking (the usual case: nothing is read).
fn needs(c: &mut Criterion) {
    let turns: Vec<serde_json::Value> = (0..100)
        .map(|i| {
            serde_json::json!({
                "role": if i % 2 == 0 { "user" } else { "assistant" },
                "content": "the quick brown fox jumps over the lazy dog again and again ".repeat(6),
            })
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({"model": "m", "messages": turns})).unwrap();
    eprintln!("body: {} bytes", body.len());
    let limited = Limits {
        min_context: Some(8000),
        some_without_vision: true,
        some_without_tools: true,
    };
    c.bench_function("needs: 10k-token conversation, limits to check", |b| {
        b.iter(|| black_box(Needs::of(black_box(&body), true, &limited)))
    });
    c.bench_function("needs: same, nothing known to be lacking", |b| {
        b.iter(|| black_box(Needs::of(black_box(&body), true, &Limits::default())))
    });
}

criterion_group!(benches, bench, needs);
criterion_main!(benches);
