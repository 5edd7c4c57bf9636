//! Intent tiers through `serve`: a tiered model sends each request to its tier's target, by
//! rules (keywords, tools, a small model asked for) and by a classifier model (a mock that
//! names the tier, is cached, and falls back when it is too slow); the tier is in the answer's
//! `x-switchboard-tier`, the request log and the route preview, in every protocol.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common;
use common::mock::{Mock, Reply, completion};
use common::{Gateway, admin, admin_token, http, start_admin};

const KEY: &str = "sk-tiers-client-key-0123456789";

/// `cheap` (provider `small`), `strong` (provider `big`) and `judge` (provider `judge`); the
/// tiered `smart` by rules, `judged` by the judge with a fallback, `judged-rules` by the judge
/// with the rules behind it. The client key may use only the tiered models.
fn config(small: &Mock, big: &Mock, judge: &Mock) -> String {
    format!(
        r#"
[[providers]]
name = "small"
base_url = "{}/v1"
models = ["small-model"]

[[providers]]
name = "big"
base_url = "{}/v1"
models = ["big-model"]

[[providers]]
name = "judge"
base_url = "{}/v1"
models = ["judge-model"]

[[models]]
name = "cheap"
include = ["small/small-model"]

[[models]]
name = "strong"
include = ["big/big-model"]

[[models]]
name = "judge"
include = ["judge/judge-model"]

[[models]]
name = "smart"
classifier = {{ default = "T1" }}

[[models.tiers]]
name = "T3"
target = "strong"
keywords = ["refactor", "architecture"]
tools = true

[[models.tiers]]
name = "T1"
target = "cheap"
small = true

[[models]]
name = "judged"
classifier = {{ mode = "model", model = "judge", timeout_ms = 400, fallback = "T1" }}

[[models.tiers]]
name = "T1"
target = "cheap"
description = "greetings and one-line questions"

[[models.tiers]]
name = "T3"
target = "strong"
description = "design, proofs, large changes"

[[models]]
name = "judged-rules"
classifier = {{ mode = "model", model = "judge", timeout_ms = 400 }}

[[models.tiers]]
name = "T1"
target = "cheap"

[[models.tiers]]
name = "T3"
target = "strong"
keywords = ["refactor"]

[[client_keys]]
name = "tiered-only"
key = "{KEY}"
models = ["smart", "judged", "judged-rules"]
"#,
        small.url(),
        big.url(),
        judge.url()
    )
}

async fn chat(gw: &Gateway, model: &str, text: &str) -> reqwest::Response {
    http()
        .post(format!("{}/chat/completions", gw.v1()))
        .bearer_auth(KEY)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": text}]}))
        .send()
        .await
        .unwrap()
}

fn tier(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("x-switchboard-tier")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The log's rows for `model`, until there are `n` (the writer commits every 50 ms).
async fn logged(gw: &Gateway, token: &str, model: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let page: Value = admin(gw, token, "GET", &format!("/logs?model={model}"), None)
            .await
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= n || Instant::now() > deadline {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn rules_pick_the_tier_in_every_protocol_and_say_so() {
    let (small, big, judge) = (
        Mock::start().await,
        Mock::start().await,
        Mock::start().await,
    );
    let (gw, _dir) = start_admin(&config(&small, &big, &judge));

    let r = chat(&gw, "smart", "Please refactor the parser module").await;
    assert_eq!(r.status(), 200);
    assert_eq!(tier(&r).as_deref(), Some("T3"));
    assert_eq!(r.headers()["x-switchboard-model"], "big-model");
    let r = chat(&gw, "smart", "hello there").await;
    assert_eq!(tier(&r).as_deref(), Some("T1"), "the default tier");
    assert_eq!((small.hits(), big.hits()), (1, 1));
    // The key names only the tiered models: their targets need no permission of their own,
    // and are not open to it directly.
    assert_eq!(chat(&gw, "strong", "hi").await.status(), 403);

    // Anthropic, with tools: T3, converted to the OpenAI upstream.
    let r = http()
        .post(format!("{}/messages", gw.v1()))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "smart", "max_tokens": 1024, "messages": [
            {"role": "user", "content": "what is the weather?"}],
            "tools": [{"name": "weather", "description": "the weather",
                "input_schema": {"type": "object", "properties": {}}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    // Gemini, asking for a short answer: a small request, T1.
    let r = http()
        .post(format!(
            "{}/v1beta/models/smart:generateContent?key={KEY}",
            gw.url
        ))
        .json(
            &json!({"contents": [{"role": "user", "parts": [{"text": "a title please"}]}],
            "generationConfig": {"maxOutputTokens": 20}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(tier(&r).as_deref(), Some("T1"));
    assert_eq!((small.hits(), big.hits()), (2, 2));

    let token = admin_token(&gw).await;
    let rows = logged(&gw, &token, "smart", 4).await;
    let seen: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["tier"].as_str().unwrap_or("-").to_owned(),
                r["tier_reason"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    assert!(
        seen.contains(&("T3".into(), "keyword \"refactor\"".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("T3".into(), "tools declared".into())),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(t, why)| t == "T1" && why.contains("small"))
    );
    assert_eq!(rows[0]["unified_model"], "cheap", "the route is the target");
    let stats: Value = admin(&gw, &token, "GET", "/stats?window=1h", None)
        .await
        .json()
        .await
        .unwrap();
    let by_tier: Vec<(String, u64)> = stats["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["model"] == "smart")
        .map(|t| {
            (
                t["tier"].as_str().unwrap().to_owned(),
                t["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_tier,
        [("T1".to_owned(), 2), ("T3".to_owned(), 2)],
        "{stats}"
    );

    // The tiered models are listed, and the admin API shows the tiers as written.
    let ids = common::model_ids(&gw, Some(KEY)).await;
    assert!(
        ids.iter().any(|m| m == "smart") && ids.iter().any(|m| m == "judged"),
        "{ids:?}"
    );
    let views: Value = admin(&gw, &token, "GET", "/models", None)
        .await
        .json()
        .await
        .unwrap();
    let smart = views
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "smart")
        .unwrap();
    assert_eq!(smart["tiers"][0]["keywords"][1], "architecture", "{smart}");
    assert_eq!(smart["classifier"]["default"], "T1");

    // The preview takes the same tier and shows the target's candidates.
    let p: Value = admin(
        &gw,
        &token,
        "POST",
        "/route/preview",
        Some(json!({"request": {"model": "smart", "messages": [
            {"role": "user", "content": "an architecture review"}]}})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(p["tier"]["name"], "T3", "{p}");
    assert_eq!(p["tier"]["reason"], "keyword \"architecture\"");
    assert_eq!(p["route"], "strong");
    assert_eq!(p["order"][0], "big/big-model");
    let r = chat(&gw, "smart", "an architecture review").await;
    assert_eq!(r.headers()["x-switchboard-model"], "big-model");

    // What if T1 had gone to the strong model: both T1 requests move there.
    logged(&gw, &token, "smart", 5).await;
    let w: Value = admin(
        &gw,
        &token,
        "POST",
        "/whatif",
        Some(json!({"strategy": "weighted", "days": 1, "tiers": {"T1": "strong"}})),
    )
    .await
    .json()
    .await
    .unwrap();
    let strong = w["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "strong")
        .unwrap_or_else(|| panic!("{w}"));
    assert_eq!(
        (strong["requests"].as_u64(), strong["moved"].as_u64()),
        (Some(5), Some(2)),
        "{w}"
    );
    let bad = admin(
        &gw,
        &token,
        "POST",
        "/whatif",
        Some(json!({"strategy": "weighted", "tiers": {"T1": "nowhere"}})),
    )
    .await;
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn a_classifier_model_names_the_tier_is_cached_and_falls_back_when_slow() {
    let (small, big, judge) = (
        Mock::start().await,
        Mock::start().await,
        Mock::start().await,
    );
    let (gw, _dir) = start_admin(&config(&small, &big, &judge));

    judge.script([Reply::status(200, &completion("judge-model", "T3"))]);
    let r = chat(&gw, "judged", "design a storage engine").await;
    assert_eq!(r.status(), 200);
    assert_eq!(tier(&r).as_deref(), Some("T3"));
    assert_eq!((judge.hits(), big.hits()), (1, 1));
    // The judge was shown the tiers and the turn, and asked for a word.
    let asked = judge.requests()[0].json();
    assert_eq!(asked["model"], "judge-model");
    let system = asked["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("- T3: design, proofs, large changes"),
        "{system}"
    );
    assert!(
        asked["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("design a storage engine")
    );

    // The same turn again: answered from the cache, the judge is not asked.
    let r = chat(&gw, "judged", "design a storage engine").await;
    assert_eq!(tier(&r).as_deref(), Some("T3"));
    assert_eq!((judge.hits(), big.hits()), (1, 2));

    // A judge slower than the timeout: the fallback tier, at once.
    judge.script([Reply::delayed(Duration::from_secs(3))]);
    let started = Instant::now();
    let r = chat(&gw, "judged", "what is 2 + 2?").await;
    assert_eq!(r.status(), 200);
    assert_eq!(tier(&r).as_deref(), Some("T1"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited for the judge"
    );
    assert_eq!(small.hits(), 1);

    // A judge that fails, with no fallback: the rules decide.
    judge.script([Reply::status(
        400,
        r#"{"error":{"message":"no such thing"}}"#,
    )]);
    let r = chat(&gw, "judged-rules", "refactor it all").await;
    assert_eq!(tier(&r).as_deref(), Some("T3"));
    assert_eq!(big.hits(), 3);

    let token = admin_token(&gw).await;
    let rows = logged(&gw, &token, "judged", 3).await;
    let reasons: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["tier_reason"].as_str())
        .collect();
    assert!(reasons.contains(&"classifier model"), "{reasons:?}");
    assert!(
        reasons.contains(&"classifier model (cached)"),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("did not answer within 400 ms") && r.ends_with("fallback tier")),
        "{reasons:?}"
    );
    let rows = logged(&gw, &token, "judged-rules", 1).await;
    let why = rows[0]["tier_reason"].as_str().unwrap();
    assert!(
        why.contains("failed") && why.ends_with("rules: keyword \"refactor\""),
        "{why}"
    );
    // The judge's own calls are in the log too, as the classifier's.
    let asked = logged(&gw, &token, "judge", 2).await;
    assert!(
        asked.iter().all(|r| r["endpoint"] == "classifier"),
        "{asked:?}"
    );
}

#[tokio::test]
async fn a_bad_tier_in_the_file_or_the_api_is_refused_with_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.toml");
    std::fs::write(
        &path,
        "[[models]]\nname = \"smart\"\n\n[[models.tiers]]\nname = \"T1\"\ntarget = \"x\"\npatterns = [\"(open\"]\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let Err((status, err)) = common::spawn(common::Launch::serve(&path, &data), &data) else {
        panic!("started with a bad pattern");
    };
    assert_eq!(status.code(), Some(2));
    assert!(
        err.contains("models[0].tiers") && err.contains("tier \"T1\": pattern"),
        "{err}"
    );

    let (small, big, judge) = (
        Mock::start().await,
        Mock::start().await,
        Mock::start().await,
    );
    let (gw, _dir) = start_admin(&config(&small, &big, &judge));
    let token = admin_token(&gw).await;
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/models/smart",
        Some(json!({"tiers": [{"name": "T1", "target": "cheap"}, {"name": "T1", "target": "strong"}]})),
    )
    .await;
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(body.contains("named twice"), "{body}");
    // A change through the API takes effect and persists.
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/models/smart",
        Some(json!({"tiers": [{"name": "only", "target": "strong"}]})),
    )
    .await;
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    let r = chat(&gw, "smart", "hello").await;
    assert_eq!(tier(&r).as_deref(), Some("only"));
}
