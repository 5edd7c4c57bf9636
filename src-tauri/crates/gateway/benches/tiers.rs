//! The intent-tier classifier on the request path: the rules over a 10,000-token conversation
//! (about 40 kB, 40 turns) with three tiers of keywords, patterns, a size and the head's
//! signals, none of which match (the most work: every keyword searched for, every pattern run,
//! the whole body measured); and a small-model answer found in the cache. Also the request
//! path's budget and quota checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use switchboard_api::tiers::{Classifier, ClassifierMode, TierSpec, Tiering};
use switchboard_gateway::protocol::Api;
use switchboard_gateway::protocol::openai::RequestHead;
use switchboard_gateway::{Signals, TierCache, Tiered};

fn words(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn tiered(mode: ClassifierMode) -> Tiered {
    let spec = Tiering {
        classifier: Classifier {
            mode,
            model: Some("judge".into()),
            default: Some("T2".into()),
            ..Default::default()
        },
        tiers: vec![
            TierSpec {
                name: "T3".into(),
                target: "strong".into(),
                keywords: words("architecturex", 30),
                patterns: vec![
                    r"(?i)\bprove\s+that\b".into(),
                    r"(?i)\bdesign\s+(a|an|the)\s+\w+\s+system".into(),
                ],
                reasoning: true,
                min_tokens: Some(50_000),
                ..Default::default()
            },
            TierSpec {
                name: "T1".into(),
                target: "cheap".into(),
                keywords: words("typox", 20),
                patterns: vec![r"^\s*(hi|hello)\b".into()],
                small: true,
                images: true,
                ..Default::default()
            },
            TierSpec {
                name: "T2".into(),
                target: "medium".into(),
                ..Default::default()
            },
        ],
    };
    Tiered::compile("smart", spec).unwrap()
}

/// 40 turns of about 1 kB each: about 40 kB, 10,000 tokens at four bytes a token.
fn conversation() -> String {
    let turn = "The service reads its settings at start and keeps them in memory; when the file \
                changes it parses it again and swaps the new settings in. ";
    let messages: Vec<serde_json::Value> = (0..40)
        .map(|i| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            serde_json::json!({"role": role, "content": turn.repeat(7)})
        })
        .collect();
    serde_json::json!({"model": "smart", "max_tokens": 4096, "messages": messages}).to_string()
}

fn bench(c: &mut Criterion) {
    let body = conversation();
    assert!((38_000..46_000).contains(&body.len()), "{}", body.len());
    let rules = tiered(ClassifierMode::Rules);
    let head = RequestHead::parse(Api::Chat, body.as_bytes(), None).unwrap();
    let s = Signals::read(Api::Chat, &head, body.as_bytes(), "smart", rules.wants);
    assert_eq!(
        rules.tier_name(rules.by_rules(&s).tier),
        "T2",
        "nothing matches"
    );
    c.bench_function("tiers: rules on a 10k-token conversation", |b| {
        b.iter(|| {
            let s = Signals::read(
                Api::Chat,
                black_box(&head),
                black_box(body.as_bytes()),
                "smart",
                rules.wants,
            );
            black_box(rules.by_rules(&s))
        })
    });
    // For scale: the head parse every request has anyway, tiered or not.
    c.bench_function("tiers: (the head parse, for scale)", |b| {
        b.iter(|| RequestHead::parse(Api::Chat, black_box(body.as_bytes()), None).map(|h| h.stream))
    });

    let model = tiered(ClassifierMode::Model);
    let cache = TierCache::default();
    let turn = Signals::turn(Api::Chat, &head);
    cache.put(TierCache::key(&model.name, turn), "T3".into());
    for i in 0..4000 {
        cache.put(TierCache::key("smart", &i.to_string()), "T1".into());
    }
    assert_eq!(model.cached(&cache, turn).map(|p| p.tier), Some(0));
    c.bench_function("tiers: a cached small-model answer", |b| {
        b.iter(|| {
            let turn = Signals::turn(Api::Chat, black_box(&head));
            black_box(model.cached(&cache, turn))
        })
    });
}

/// A budgeted key's verdict (a short lock and the limits read), and a candidate's quota check
/// with 50 providers and 200 pairs under quotas (one map look-up and an atomic each).
fn spend(c: &mut Criterion) {
    use switchboard_api::budget::Budget;
    use switchboard_gateway::{BudgetClock, SpendBook};
    let now = 1_796_558_400_000;
    let budget = Budget {
        daily_usd: Some(5.0),
        monthly_tokens: Some(1_000_000),
        tz: Some("Europe/Berlin".into()),
        ..Default::default()
    };
    let clock = BudgetClock::new(&budget).unwrap();
    let keys = SpendBook::default();
    keys.retain(&[("k".into(), budget.clone(), clock.clone())], now);
    let slot = keys.get("k").unwrap();
    c.bench_function("budget: a key's verdict", |b| {
        b.iter(|| black_box(slot.verdict(black_box(now))))
    });
    let quotas = SpendBook::quotas();
    let entries: Vec<_> = (0..50)
        .map(|p| format!("relay-{p}"))
        .chain((0..200).map(|m| format!("relay-{}/model-{m}", m % 50)))
        .map(|s| (s.as_str().into(), budget.clone(), clock.clone()))
        .collect();
    quotas.retain(&entries, now);
    c.bench_function("quota: one candidate's check, 250 quotas", |b| {
        b.iter(|| black_box(quotas.blocked(black_box("relay-7"), black_box("model-107"), now)))
    });
    let none = SpendBook::quotas();
    c.bench_function("quota: one candidate's check, no quotas", |b| {
        b.iter(|| black_box(none.blocked(black_box("relay-7"), black_box("model-107"), now)))
    });
}

criterion_group!(benches, bench, spend);
criterion_main!(benches);
