//! Client keys' budgets through `serve`: past the warning share an answer carries
//! `x-switchboard-budget`; at the limit a request is refused with a 429 in the client's protocol
//! that names the budget and its reset, and nothing goes upstream; the spend survives a restart
//! (seeded from the request log) and the admin API shows and changes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common;
use common::mock::Mock;
use common::{ADMIN_PASSWORD, Gateway, Launch, admin, admin_token, http};

const KEY: &str = "sk-budget-client-key-0123456789";

/// Every mock answer reports 5 input and 3 output tokens; at 100,000 USD per million each, a
/// request costs 0.80 USD. The key may spend 2 USD a day and is warned at half.
fn config(mock: &Mock) -> String {
    format!(
        r#"
[[providers]]
name = "mock"
base_url = "{}/v1"
models = ["gpt-4o"]

[[models]]
name = "gpt-4o"

[[prices]]
provider = "mock"
model = "gpt-4o"
input = 100000.0
output = 100000.0

[[client_keys]]
name = "intern"
key = "{KEY}"
budget = {{ daily_usd = 2.0, warn_at = 0.5, tz = "Europe/Berlin" }}
"#,
        mock.url()
    )
}

fn start(config: &Path, data: &Path) -> Gateway {
    common::spawn(
        Launch::serve(config, data).env("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
        data,
    )
    .unwrap_or_else(|(s, e)| panic!("switchboard exited with {s}:\n{e}"))
}

async fn chat(gw: &Gateway) -> reqwest::Response {
    http()
        .post(format!("{}/chat/completions", gw.v1()))
        .bearer_auth(KEY)
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

/// The key's spend as the admin API shows it, once it reaches `at_least` (the writer counts
/// every 50 ms).
async fn spent(gw: &Gateway, token: &str, at_least: f64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let keys: Value = admin(gw, token, "GET", "/client-keys", None)
            .await
            .json()
            .await
            .unwrap();
        let key = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "intern")
            .cloned()
            .unwrap();
        let used = key["budget_use"][0]["used"].as_f64().unwrap_or(0.0);
        if used >= at_least - 1e-9 || Instant::now() > deadline {
            return key;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_budget_warns_then_refuses_in_each_protocol_and_survives_a_restart() {
    let mock = Mock::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.toml");
    std::fs::write(&path, config(&mock)).unwrap();
    let data = dir.path().join("data");
    let gw = start(&path, &data);
    let token = admin_token(&gw).await;

    let r = chat(&gw).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-switchboard-budget").is_none());
    spent(&gw, &token, 0.8).await;
    assert_eq!(chat(&gw).await.status(), 200);
    let key = spent(&gw, &token, 1.6).await;
    assert_eq!(key["budget"]["daily_usd"], 2.0, "{key}");
    let reset = key["budget_use"][0]["resets_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reset.ends_with("T00:00:00+01:00") || reset.ends_with("T00:00:00+02:00"),
        "the next Berlin midnight: {reset}"
    );
    // At 80 % of the day's 2 USD: answered, with the warning.
    let r = chat(&gw).await;
    assert_eq!(r.status(), 200);
    let warning = r.headers()["x-switchboard-budget"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        warning.starts_with("daily_usd 80% (1.6000 USD of 2.0000 USD); resets "),
        "{warning}"
    );
    spent(&gw, &token, 2.4).await;
    assert_eq!(mock.hits(), 3);

    // Over: refused in each protocol, and nothing goes upstream.
    let r = chat(&gw).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 25 * 3600, "{retry}");
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("client key 'intern' has used its budget daily_usd")
            && message.contains(&reset),
        "{body}"
    );
    assert_eq!(body["error"]["code"], "budget_exceeded");
    let r = http()
        .post(format!("{}/messages", gw.v1()))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "gpt-4o", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    let r = http()
        .post(format!(
            "{}/v1beta/models/gpt-4o:generateContent?key={KEY}",
            gw.url
        ))
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED", "{body}");
    assert_eq!(mock.hits(), 3, "nothing went upstream");

    // A restart: the spend comes back from the log before the first request.
    drop(gw);
    let gw = start(&path, &data);
    assert_eq!(chat(&gw).await.status(), 429, "still over after a restart");
    assert_eq!(mock.hits(), 3);

    // A bigger budget through the admin API lets it in again, with the spend kept.
    let token = admin_token(&gw).await;
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/client-keys/intern/budget",
        Some(json!({"daily_usd": 100.0})),
    )
    .await;
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    let r = chat(&gw).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-switchboard-budget").is_none());
    let key = spent(&gw, &token, 3.2).await;
    assert!(
        (key["budget_use"][0]["used"].as_f64().unwrap() - 3.2).abs() < 1e-6,
        "{key}"
    );
    let bad = admin(
        &gw,
        &token,
        "PUT",
        "/client-keys/intern/budget",
        Some(json!({"daily_usd": -1.0})),
    )
    .await;
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("daily_usd"));
    let none = admin(
        &gw,
        &token,
        "PUT",
        "/client-keys/nobody/budget",
        Some(json!({"daily_usd": 1.0})),
    )
    .await;
    assert_eq!(none.status(), 404);
    let export = admin(&gw, &token, "GET", "/export", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(export.contains("daily_usd = 100.0"), "{export}");
}

/// The quotas' standing as `GET /api/quotas` shows it, once `scope` has used `at_least`.
async fn standing(gw: &Gateway, token: &str, scope: &str, at_least: f64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let q: Value = admin(gw, token, "GET", "/quotas", None)
            .await
            .json()
            .await
            .unwrap();
        let s = q["standing"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["scope"] == scope)
            .cloned()
            .unwrap_or(Value::Null);
        if s["uses"][0]["used"].as_f64().unwrap_or(0.0) >= at_least - 1e-9
            || Instant::now() > deadline
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `free` (weighing a hundred times more) and `paid`, both with `gpt-4o`, then `quotas`.
fn free_and_paid(free: &Mock, paid: &Mock, quotas: &str) -> String {
    format!(
        r#"
[[providers]]
name = "free"
base_url = "{}/v1"
weight = 100
models = ["gpt-4o"]

[[providers]]
name = "paid"
base_url = "{}/v1"
models = ["gpt-4o"]

[[models]]
name = "gpt-4o"

{quotas}"#,
        free.url(),
        paid.url()
    )
}

#[tokio::test]
async fn a_candidate_at_its_quota_is_skipped_and_says_so_everywhere() {
    let (free, paid) = (Mock::start().await, Mock::start().await);
    let config = free_and_paid(
        &free,
        &paid,
        "[[quotas]]\nprovider = \"free\"\nmodel = \"gpt-4o\"\ndaily_requests = 2\ntz = \"Pacific/Auckland\"\n",
    );
    let (gw, _dir) = common::start_admin(&config);
    let token = admin_token(&gw).await;
    let send = || async {
        http()
            .post(format!("{}/chat/completions", gw.v1()))
            .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap()
    };
    for _ in 0..2 {
        let r = send().await;
        assert_eq!(r.headers()["x-switchboard-provider"], "free");
    }
    let s = standing(&gw, &token, "free/gpt-4o", 2.0).await;
    assert_eq!(s["uses"][0]["limit"], "daily_requests", "{s}");
    let until = s["until"].as_str().expect("at its quota").to_owned();
    assert!(
        until.ends_with("T00:00:00+13:00") || until.ends_with("T00:00:00+12:00"),
        "Auckland's next midnight: {until}"
    );
    // At the limit: the next requests go to the other provider, the free one is not tried.
    for _ in 0..3 {
        let r = send().await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-switchboard-provider"], "paid");
    }
    assert_eq!((free.hits(), paid.hits()), (2, 3));
    let status: Value = admin(&gw, &token, "GET", "/status", None)
        .await
        .json()
        .await
        .unwrap();
    let free_status = status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "free")
        .unwrap();
    assert!(
        free_status["models"][0]["quota_until"].as_u64().is_some(),
        "{free_status}"
    );
    assert_eq!(status["models"][0]["candidates"][0]["available"], false);
    let p: Value = admin(
        &gw,
        &token,
        "POST",
        "/route/preview",
        Some(json!({"request": {"model": "gpt-4o", "messages": []}})),
    )
    .await
    .json()
    .await
    .unwrap();
    let why = p["candidates"][0]["why"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("free/gpt-4o is at its quota daily_requests (2 of 2) until"),
        "{p}"
    );
    assert_eq!(p["order"], json!(["paid/gpt-4o"]));

    // A provider-wide quota through the API, counted from the log: paid has answered 3.
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/quotas",
        Some(json!({"entries": [
            {"provider": "free", "model": "gpt-4o", "daily_requests": 2, "tz": "Pacific/Auckland"},
            {"provider": "paid", "monthly_requests": 3}
        ]})),
    )
    .await;
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    standing(&gw, &token, "paid", 3.0).await;
    let r = send().await;
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(body.contains("at its quota"), "{body}");
    assert_eq!((free.hits(), paid.hits()), (2, 3), "nothing went upstream");
    let summary: Value = admin(&gw, &token, "GET", "/summary", None)
        .await
        .json()
        .await
        .unwrap();
    let paid_summary = summary["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "paid")
        .unwrap();
    assert_eq!(paid_summary["state"], "cooling", "{summary}");
    assert_eq!(paid_summary["reason"], "at its quota monthly_requests");
    assert!(paid_summary["until"].as_u64().is_some());
    let bad = admin(
        &gw,
        &token,
        "PUT",
        "/quotas",
        Some(json!({"entries": [{"provider": "paid"}]})),
    )
    .await;
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("sets no limit"));
    let export = admin(&gw, &token, "GET", "/export", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        export.contains("[[quotas]]") && export.contains("monthly_requests = 3"),
        "{export}"
    );
}

/// Unix seconds now.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn a_quota_comes_back_at_its_reset() {
    // The quota's day begins at the next whole minute (UTC): the test waits for it rather than
    // bend the gateway's clock. Never in a minute's last seconds, so the requests before the
    // reset fit in the old day.
    while unix_now() % 60 > 45 {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let reset_at = (unix_now() / 60 + 1) * 60;
    let minute = reset_at % 86_400 / 60;
    let reset = format!("{:02}:{:02}", minute / 60, minute % 60);
    let (free, paid) = (Mock::start().await, Mock::start().await);
    let config = free_and_paid(
        &free,
        &paid,
        &format!("[[quotas]]\nprovider = \"free\"\ndaily_requests = 1\nreset = \"{reset}\"\n"),
    );
    let (gw, _dir) = common::start_admin(&config);
    let token = admin_token(&gw).await;
    let send = || async {
        let r = http()
            .post(format!("{}/chat/completions", gw.v1()))
            .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.headers()["x-switchboard-provider"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(send().await, "free");
    let s = standing(&gw, &token, "free", 1.0).await;
    assert!(s["until"].as_str().is_some(), "{s}");
    assert_eq!(send().await, "paid", "at its quota");
    // Past the reset: the free provider takes requests again.
    while unix_now() < reset_at + 1 {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(send().await, "free", "back after the reset");
    assert_eq!((free.hits(), paid.hits()), (2, 1));
}
