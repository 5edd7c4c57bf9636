use switchboard_api::tiers::{Classifier, TierSpec, Tiering};

use super::*;
use crate::protocol::Api;
use crate::protocol::openai::RequestHead;

fn tier(name: &str) -> TierSpec {
    TierSpec {
        name: name.into(),
        target: format!("{name}-model"),
        ..Default::default()
    }
}

/// T3 complex (keywords, a pattern, reasoning, a size), T1 simple (small), T2 the default.
fn three() -> Tiered {
    let t3 = TierSpec {
        keywords: vec!["architecture".into(), "prove".into()],
        patterns: vec![r"(?i)\brefactor\w*".into()],
        reasoning: true,
        min_tokens: Some(2_000),
        ..tier("T3")
    };
    let t1 = TierSpec {
        small: true,
        keywords: vec!["typo".into()],
        ..tier("T1")
    };
    let spec = Tiering {
        classifier: Classifier {
            default: Some("T2".into()),
            ..Default::default()
        },
        tiers: vec![t3, t1, tier("T2")],
    };
    Tiered::compile("smart", spec).expect("compiles")
}

fn pick(t: &Tiered, api: Api, body: &str, asked: &str) -> Pick {
    let head = RequestHead::parse(api, body.as_bytes(), None).expect("a valid request");
    let s = Signals::read(api, &head, body.as_bytes(), asked, t.wants);
    t.by_rules(&s)
}

fn chat(text: &str) -> String {
    serde_json::json!({"model": "smart", "messages": [
        {"role": "user", "content": "an old question about architecture"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": text},
    ]})
    .to_string()
}

#[test]
fn the_first_listed_tier_with_a_match_takes_it_and_the_reason_says_which() {
    let t = three();
    let p = pick(&t, Api::Chat, &chat("Please PROVE this lemma"), "smart");
    assert_eq!(
        (t.tier_name(p.tier), p.reason),
        ("T3", Reason::Keyword("prove".into()))
    );
    let p = pick(&t, Api::Chat, &chat("refactoring this module"), "smart");
    assert_eq!(p.tier, 0);
    assert!(matches!(p.reason, Reason::Pattern(_)), "{:?}", p.reason);
    // Only the last user turn counts: "architecture" was asked before.
    let p = pick(&t, Api::Chat, &chat("fix a typo"), "smart");
    assert_eq!(
        (t.tier_name(p.tier), p.reason),
        ("T1", Reason::Keyword("typo".into()))
    );
    let p = pick(&t, Api::Chat, &chat("what time is it"), "smart");
    assert_eq!((t.tier_name(p.tier), p.reason), ("T2", Reason::Default));
}

#[test]
fn head_signals_in_each_protocol() {
    let t = three();
    let anthropic = r#"{"model":"smart","max_tokens":4096,"thinking":{"type":"enabled","budget_tokens":2048},
        "messages":[{"role":"user","content":[{"type":"text","text":"hello"}]}]}"#;
    assert_eq!(
        pick(&t, Api::Messages, anthropic, "smart").reason,
        Reason::Reasoning
    );
    let disabled = anthropic.replace("\"enabled\",\"budget_tokens\":2048", "\"disabled\"");
    assert_eq!(
        pick(&t, Api::Messages, &disabled, "smart").reason,
        Reason::Default
    );
    let effort = r#"{"model":"smart","reasoning":{"effort":"high"},"input":"hi"}"#;
    assert_eq!(
        pick(&t, Api::Responses, effort, "smart").reason,
        Reason::Reasoning
    );
    let gemini = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}],
        "generationConfig":{"thinkingConfig":{"thinkingBudget":1024}}}"#;
    let head =
        RequestHead::parse(Api::Gemini, gemini.as_bytes(), Some(("smart", false))).expect("valid");
    let s = Signals::read(Api::Gemini, &head, gemini.as_bytes(), "smart", t.wants);
    assert!(s.reasoning && !s.small);
    // A small model by name (word by word: `gemini` is not `mini`) or by a short answer.
    let body = chat("hello");
    assert_eq!(
        pick(&t, Api::Chat, &body, "claude-haiku-4-5").reason,
        Reason::Small
    );
    assert_eq!(
        pick(&t, Api::Chat, &body, "gemini-2.5-pro").reason,
        Reason::Default
    );
    let short = r#"{"model":"smart","max_tokens":100,"messages":[{"role":"user","content":"x"}]}"#;
    assert_eq!(pick(&t, Api::Chat, short, "smart").reason, Reason::Small);
}

#[test]
fn size_and_images_are_measured_only_when_a_tier_asks() {
    let t = three();
    let long = chat(&"word ".repeat(10_000));
    assert!(matches!(
        pick(&t, Api::Chat, &long, "smart").reason,
        Reason::Tokens(n) if n > 2_000
    ));
    let image = format!(
        r#"{{"model":"smart","messages":[{{"role":"user","content":[{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{}"}}}}]}}]}}"#,
        "A".repeat(100_000)
    );
    // Base64 is no prompt: the image alone is not 25k tokens.
    assert_eq!(pick(&t, Api::Chat, &image, "smart").reason, Reason::Default);
    let spec = Tiering {
        tiers: vec![
            TierSpec {
                images: true,
                ..tier("V")
            },
            tier("T"),
        ],
        ..Default::default()
    };
    let v = Tiered::compile("v", spec).expect("compiles");
    assert_eq!(pick(&v, Api::Chat, &image, "v").reason, Reason::Images);
    assert!(!three().wants.images && three().wants.tokens);
}

#[test]
fn the_last_user_turn_is_found_by_its_role_not_by_text() {
    let raw = r#"[{"role":"user","content":"first"},{"role":"assistant","content":"say \"user\": no"},{"role" : "user","content":"last"}]"#;
    assert_eq!(last_user_turn(raw), r#","content":"last"}]"#);
    let fake = r#"[{"role":"user","content":"one"},{"role":"assistant","content":"\"role\":\"user\" quoted"}]"#;
    assert_eq!(
        last_user_turn(fake),
        r#","content":"one"},{"role":"assistant","content":"\"role\":\"user\" quoted"}]"#
    );
    assert_eq!(last_user_turn(r#""just text""#), r#""just text""#);
}

#[test]
fn bad_patterns_are_refused_with_their_tier_and_off_mode_draws_by_weight() {
    let spec = Tiering {
        tiers: vec![TierSpec {
            patterns: vec!["(unclosed".into()],
            ..tier("T1")
        }],
        ..Default::default()
    };
    let e = Tiered::compile("m", spec).expect_err("refused");
    assert!(e.contains("tier \"T1\": pattern"), "{e}");
    let spec = Tiering {
        tiers: vec![
            TierSpec {
                weight: Some(3),
                ..tier("A")
            },
            TierSpec {
                weight: Some(1),
                ..tier("B")
            },
            TierSpec {
                weight: Some(0),
                ..tier("C")
            },
        ],
        ..Default::default()
    };
    let t = Tiered::compile("m", spec).expect("compiles");
    let mut rng = fastrand::Rng::with_seed(7);
    let mut counts = [0u32; 3];
    for _ in 0..4_000 {
        counts[t.drawn(&mut rng).tier] += 1;
    }
    assert_eq!(counts[2], 0, "weight 0 is never drawn");
    assert!((2_800..3_200).contains(&counts[0]), "{counts:?}");
}

#[test]
fn classifier_answers_name_a_tier_and_are_cached() {
    let t = three();
    assert_eq!(answer_tier(&t, "t1"), Some(1));
    assert_eq!(answer_tier(&t, "Tier: T3."), Some(0));
    assert_eq!(answer_tier(&t, "I cannot tell"), None);
    let body: serde_json::Value =
        serde_json::from_slice(&prompt(&t, "tiny", &"x".repeat(20_000))).expect("JSON");
    assert_eq!(body["model"], "tiny");
    let system = body["messages"][0]["content"].as_str().unwrap_or_default();
    assert!(system.contains("- T3\n- T1\n- T2"), "{system}");
    assert!(
        body["messages"][1]["content"]
            .as_str()
            .is_some_and(|s| s.len() == 8 * 1024)
    );
    let cache = Cache::default();
    let key = Cache::key("smart", "turn");
    assert_ne!(key, Cache::key("other", "turn"));
    assert_eq!(cache.get(key), None);
    cache.put(key, "T1".into());
    assert_eq!(cache.get(key).as_deref(), Some("T1"));
    for i in 0..10_000u32 {
        cache.put(Cache::key("smart", &i.to_string()), "T2".into());
    }
    assert_eq!(cache.get(key), None, "bounded: the oldest generation goes");
}
