//! Costs end to end: the bundled price list, a provider's multiplier and a model's own price
//! through the admin API, and a refresh of the list from a URL (a loopback mock; the real
//! dataset is never fetched in tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::mock::{Mock, Reply};
use common::{Gateway, admin, admin_token, http, start_admin};
use serde_json::{Value, json};

const KEY: &str = "sk-sb-pricing-tests-000000000";

fn config(url: &str) -> String {
    format!(
        r#"
[[providers]]
name = "relay"
base_url = "{url}"
models = ["gpt-4o", "house-model"]

[[models]]
name = "gpt-4o"

[[models]]
name = "house-model"

[[client_keys]]
name = "priced"
key = "{KEY}"
"#
    )
}

/// The mock's own usage: 5 prompt tokens, 3 completion tokens.
async fn chat(gw: &Gateway, model: &str) {
    let r = http()
        .post(format!("{}/chat/completions", gw.v1()))
        .bearer_auth(KEY)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// The newest row for `model`, once the writer has written `n` rows for it.
async fn row(gw: &Gateway, token: &str, model: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = admin(gw, token, "GET", &format!("/logs?model={model}"), None).await;
        assert_eq!(r.status(), 200);
        let page: Value = r.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        if items.len() >= n {
            return items[0].clone();
        }
        assert!(Instant::now() < deadline, "{n} rows for {model}: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn prices(gw: &Gateway, token: &str) -> Value {
    let r = admin(gw, token, "GET", "/prices", None).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn cost(row: &Value) -> f64 {
    row["cost_usd"]
        .as_f64()
        .unwrap_or_else(|| panic!("a cost: {row}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[tokio::test]
async fn cost_follows_the_list_a_multiplier_and_an_own_price() {
    let mock = Mock::start().await;
    let (gw, _dir) = start_admin(&config(&mock.url()));
    let token = admin_token(&gw).await;

    // The bundled list knows gpt-4o (2.5 in, 10 out per million), even on a relay it does
    // not know; it does not know house-model.
    chat(&gw, "gpt-4o").await;
    let r = row(&gw, &token, "gpt-4o", 1).await;
    assert!(close(cost(&r), (5.0 * 2.5 + 3.0 * 10.0) / 1e6), "{r}");
    assert_eq!(r["price"]["source"], "list", "{r}");
    assert_eq!(r["price"]["list_provider"], "openai", "{r}");
    assert_eq!(r["price"]["list_model"], "gpt-4o", "{r}");
    chat(&gw, "house-model").await;
    let r = row(&gw, &token, "house-model", 1).await;
    assert!(r["cost_usd"].is_null(), "unknown, not zero: {r}");
    assert_eq!(r["input_tokens"], 5, "{r}");

    let p = prices(&gw, &token).await;
    assert!(
        p["list"]["source"].as_str().unwrap().contains("bundled"),
        "{p}"
    );
    assert!(p["list"]["models"].as_u64().unwrap() > 1500, "{p}");
    assert_eq!(
        p["unpriced"],
        json!([{"provider": "relay", "model": "house-model"}]),
        "{p}"
    );

    // The relay sells at half the list price; house-model has a price of its own.
    let entries = json!([
        {"provider": "relay", "multiplier": 0.5},
        {"provider": "relay", "model": "house-model", "input": 1.0, "output": 2.0},
    ]);
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/prices",
        Some(json!({"entries": entries})),
    )
    .await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    chat(&gw, "gpt-4o").await;
    let r = row(&gw, &token, "gpt-4o", 2).await;
    assert!(close(cost(&r), 0.5 * (5.0 * 2.5 + 3.0 * 10.0) / 1e6), "{r}");
    assert_eq!(r["price"]["multiplier"], 0.5, "{r}");
    assert_eq!(r["price"]["output"], 5.0, "the rate paid: {r}");
    chat(&gw, "house-model").await;
    let r = row(&gw, &token, "house-model", 2).await;
    assert!(close(cost(&r), (5.0 * 1.0 + 3.0 * 2.0) / 1e6), "{r}");
    assert_eq!(r["price"]["source"], "entry", "{r}");
    let p = prices(&gw, &token).await;
    assert_eq!(p["unpriced"], json!([]), "{p}");
    assert_eq!(p["entries"], entries, "{p}");

    // They persist, in the config file's own shape.
    let r = admin(&gw, &token, "GET", "/export", None).await;
    let exported = r.text().await.unwrap();
    assert!(exported.contains("[[prices]]"), "{exported}");
    assert!(exported.contains("multiplier = 0.5"), "{exported}");

    // A half entry, a duplicate and an absurd rate are refused, each named; nothing changes.
    for (bad, says) in [
        (json!([{"provider": "relay"}]), "prices[0].input"),
        (
            json!([{"provider": "relay", "multiplier": 2.0}, {"provider": "relay", "multiplier": 3.0}]),
            "prices[1]",
        ),
        (
            json!([{"model": "x", "input": 1e9, "output": 1.0}]),
            "prices[0].input",
        ),
        (
            json!([{"multiplier": 0.5, "input": 1.0}]),
            "prices[0].multiplier",
        ),
    ] {
        let r = admin(&gw, &token, "PUT", "/prices", Some(json!({"entries": bad}))).await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!((400..500).contains(&status), "{status} {text}");
        assert!(text.contains(says), "{says}: {text}");
    }
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/prices",
        Some(json!({"entries": [], "x": 1})),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(prices(&gw, &token).await["entries"], entries);
}

/// A list in genai-prices' shape where gpt-4o costs 100 in and 10 out.
const NEWER: &str = r#"[{"id": "openai", "api_pattern": "https://api\\.openai\\.com",
  "model_match": {"starts_with": "gpt-"}, "models": [
  {"id": "gpt-4o", "match": {"equals": "gpt-4o"}, "prices": {"input_mtok": 100, "output_mtok": 10}}
]}]"#;

async fn prices_until(gw: &Gateway, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = prices(gw, token).await;
        if done(&p) {
            return p;
        }
        assert!(Instant::now() < deadline, "{p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_list_is_refreshed_from_the_url_the_user_sets() {
    let mock = Mock::start().await;
    let (gw, _dir) = start_admin(&config(&mock.url()));
    let token = admin_token(&gw).await;
    let set_url = |url: String| {
        let gw = &gw;
        let token = &token;
        async move {
            let body = json!({"pricing": {"refresh_url": url}});
            let r = admin(gw, token, "PUT", "/settings", Some(body)).await;
            assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
        }
    };

    // A URL that fails keeps the bundled list, and says why.
    mock.script([Reply::status(404, "no such file")]);
    set_url(format!("{}/missing.json", mock.url())).await;
    let p = prices_until(&gw, &token, |p| !p["list"]["last_error"].is_null()).await;
    assert!(
        p["list"]["last_error"].as_str().unwrap().contains("404"),
        "{p}"
    );
    assert!(
        p["list"]["source"].as_str().unwrap().contains("bundled"),
        "{p}"
    );

    // One that serves a list: fetched at once, used for the next request, kept on disk.
    mock.script([Reply::status(200, NEWER)]);
    let url = format!("{}/prices.json", mock.url());
    set_url(url.clone()).await;
    let p = prices_until(&gw, &token, |p| p["list"]["source"] == url.as_str()).await;
    assert_eq!(p["list"]["models"], 1, "{p}");
    assert!(p["list"]["last_error"].is_null(), "{p}");
    assert!(p["list"]["fetched_at"].as_u64().is_some(), "{p}");
    let fetched: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(".json"))
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        fetched,
        [
            ("GET".to_owned(), "/missing.json".to_owned()),
            ("GET".to_owned(), "/prices.json".to_owned())
        ]
    );
    chat(&gw, "gpt-4o").await;
    let r = row(&gw, &token, "gpt-4o", 1).await;
    assert!(close(cost(&r), (5.0 * 100.0 + 3.0 * 10.0) / 1e6), "{r}");
    assert!(gw.data_dir.join("prices.json").exists());

    // Cleared: the bundled list again.
    set_url(String::new()).await;
    prices_until(&gw, &token, |p| {
        p["list"]["source"].as_str().unwrap().contains("bundled")
    })
    .await;
    assert!(!gw.data_dir.join("prices.json").exists());
}
