//! The routing engine end to end: failover on every outcome kind, breakers at both layers,
//! Retry-After, last resort, sticky models and sessions, stream failover before the first
//! content, retry keywords, pause and resume, and model-list sync. Real binary, loopback mocks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::mock::{DONE, Mock, Reply, chunk, completion, role_chunk};
use common::{Gateway, admin, admin_token, http, start_admin};
use futures_util::StreamExt;
use serde_json::{Value, json};

const KEY: &str = "sk-sb-routing-tests-000000000";

/// `bad` is all but certain to be chosen first (weight 1,000,000 against 1), so its failure
/// and the failover to `good` are what each test sees.
fn two(bad: &str, good: &str, extra: &str) -> String {
    format!(
        r#"
[server]
request_timeout_s = 10

[routing]
first_byte_timeout_s = 1
{extra}

[[providers]]
name = "bad"
base_url = "{bad}"
weight = 1000000
models = ["m1", "m2"]

[[providers]]
name = "good"
base_url = "{good}"
weight = 1
models = ["m1", "m2"]

[[models]]
name = "m1"

[[models]]
name = "m2"

[[client_keys]]
name = "tests"
key = "{KEY}"
"#
    )
}

/// Two mocks and a gateway in front of them, configured by [`two`].
async fn pair(extra: &str) -> (Mock, Mock, Gateway, tempfile::TempDir) {
    let bad = Mock::start().await;
    let good = Mock::start().await;
    let (gw, dir) = start_admin(&two(&bad.url(), &good.url(), extra));
    (bad, good, gw, dir)
}

fn body(model: &str, stream: bool) -> String {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
        .to_string()
}

async fn chat(gw: &Gateway, model: &str, stream: bool) -> reqwest::Response {
    chat_with(gw, model, stream, &[]).await
}

async fn chat_with(
    gw: &Gateway,
    model: &str,
    stream: bool,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut r = http()
        .post(format!("{}/chat/completions", gw.v1()))
        .bearer_auth(KEY)
        .body(body(model, stream));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

fn h(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).unwrap().to_str().unwrap().to_owned()
}

async fn status(gw: &Gateway, token: &str) -> Value {
    http()
        .get(format!("{}/api/status", gw.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn provider_breaker<'a>(status: &'a Value, name: &str) -> &'a Value {
    let p = status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap();
    &p["breaker"]
}

fn model_breaker<'a>(status: &'a Value, provider: &str, model: &str) -> &'a Value {
    let p = status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == provider)
        .unwrap();
    &p["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == model)
        .unwrap()["breaker"]
}

#[tokio::test]
async fn fails_over_on_every_outcome_kind() {
    let kinds: Vec<(&str, Vec<Reply>, &str)> = vec![
        (
            "500",
            vec![Reply::status(500, r#"{"error":{"message":"boom"}}"#)],
            "server error",
        ),
        (
            "429",
            vec![Reply::status(429, r#"{"error":{"message":"slow down"}}"#)],
            "rate limited",
        ),
        (
            "401",
            vec![Reply::status(401, r#"{"error":{"message":"bad key"}}"#)],
            "auth failed",
        ),
        (
            "402",
            vec![Reply::status(402, r#"{"error":{"message":"pay up"}}"#)],
            "quota exhausted",
        ),
        (
            "404 model",
            vec![Reply::status(
                404,
                r#"{"error":{"message":"The model m1 does not exist","code":"model_not_found"}}"#,
            )],
            "model not found",
        ),
        (
            "stream first byte late",
            vec![Reply::delayed(Duration::from_secs(3))],
            "timeout",
        ),
        (
            "stream broke before content",
            vec![Reply::Sse {
                chunks: vec![role_chunk("m1"), chunk("m1", "x")],
                gap: Duration::ZERO,
                drop_after: Some(1),
            }],
            "server error",
        ),
    ];
    for (name, script, reason) in kinds {
        let (bad, _good, gw, _dir) = pair("").await;
        bad.script(script);
        let r = chat(&gw, "m1", name.starts_with("stream")).await;
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(h(&r, "x-switchboard-provider"), "good", "{name}");
        assert_eq!(h(&r, "x-switchboard-attempts"), "2", "{name}");
        let text = r.text().await.unwrap();
        assert!(!text.contains("\"error\""), "{name}: {text}");
        assert_eq!(bad.hits(), 1, "{name}");
        let token = admin_token(&gw).await;
        let s = status(&gw, &token).await;
        let b = if ["401", "402"].contains(&name) {
            provider_breaker(&s, "bad")
        } else {
            model_breaker(&s, "bad", "m1")
        };
        assert_eq!(b["state"], "open", "{name}: {s}");
        assert_eq!(b["reason"], reason, "{name}");
    }
}

#[tokio::test]
async fn network_errors_trip_the_provider_after_three() {
    let dead = format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let good = Mock::start().await;
    let (gw, _dir) = start_admin(&two(&dead, &good.url(), ""));
    let token = admin_token(&gw).await;
    for i in 1..=3 {
        let r = chat(&gw, "m1", false).await;
        assert_eq!(h(&r, "x-switchboard-provider"), "good");
        assert_eq!(
            h(&r, "x-switchboard-attempts"),
            "2",
            "attempt {i} tried the dead provider first"
        );
        let s = status(&gw, &token).await;
        let expected = if i < 3 { "closed" } else { "open" };
        assert_eq!(provider_breaker(&s, "bad")["state"], expected, "after {i}");
    }
    let r = chat(&gw, "m2", false).await;
    assert_eq!(
        h(&r, "x-switchboard-attempts"),
        "1",
        "an open provider is skipped for all models"
    );
}

#[tokio::test]
async fn client_errors_are_returned_without_failover() {
    let (bad, good, gw, _dir) = pair("").await;
    bad.script([Reply::status(
        400,
        r#"{"error":{"message":"max_tokens too large","type":"invalid_request_error"}}"#,
    )]);
    let r = chat(&gw, "m1", false).await;
    assert_eq!(r.status(), 400);
    assert_eq!(h(&r, "x-switchboard-attempts"), "1");
    assert_eq!(good.hits(), 0);
    let token = admin_token(&gw).await;
    assert_eq!(
        model_breaker(&status(&gw, &token).await, "bad", "m1")["state"],
        "closed"
    );
}

#[tokio::test]
async fn a_401_trips_the_provider_for_all_its_models_until_reset() {
    let (bad, _good, gw, _dir) = pair("").await;
    bad.script([Reply::status(401, r#"{"error":{"message":"invalid key"}}"#)]);
    assert_eq!(
        h(&chat(&gw, "m1", false).await, "x-switchboard-provider"),
        "good"
    );
    let r = chat(&gw, "m2", false).await;
    assert_eq!(h(&r, "x-switchboard-provider"), "good");
    assert_eq!(h(&r, "x-switchboard-attempts"), "1");
    assert_eq!(bad.hits(), 1);
    let token = admin_token(&gw).await;
    let s = status(&gw, &token).await;
    assert_eq!(
        provider_breaker(&s, "bad")["until"],
        Value::Null,
        "open until reset"
    );
    // The tray and the overview say what it is and what to do, not "cooling" with no end.
    let summary: Value = admin(&gw, &token, "GET", "/summary", None)
        .await
        .json()
        .await
        .unwrap();
    let bad_line = summary["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "bad")
        .unwrap();
    assert_eq!(bad_line["state"], "key_refused", "{summary}");
    assert!(
        bad_line["reason"].as_str().unwrap().contains("Fix the key"),
        "{summary}"
    );
    // A person resets it: the provider is used again.
    let r = admin(
        &gw,
        &token,
        "POST",
        "/breakers/reset",
        Some(json!({"provider": "bad"})),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        h(&chat(&gw, "m2", false).await, "x-switchboard-provider"),
        "bad"
    );
}

#[tokio::test]
async fn retry_after_sets_the_cooldown() {
    let (bad, _good, gw, _dir) = pair("").await;
    bad.script([
        Reply::status(429, r#"{"error":{"message":"slow down"}}"#).with_header("retry-after", "1")
    ]);
    assert_eq!(
        h(&chat(&gw, "m1", false).await, "x-switchboard-provider"),
        "good"
    );
    assert_eq!(
        h(&chat(&gw, "m1", false).await, "x-switchboard-provider"),
        "good",
        "cooling down"
    );
    assert_eq!(bad.hits(), 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let r = chat(&gw, "m1", false).await;
    assert_eq!(
        h(&r, "x-switchboard-provider"),
        "bad",
        "after Retry-After the trial goes through"
    );
    let token = admin_token(&gw).await;
    assert_eq!(
        model_breaker(&status(&gw, &token).await, "bad", "m1")["state"],
        "closed"
    );
}

#[tokio::test]
async fn last_resort_when_everything_cools_down() {
    let only = Mock::start().await;
    let cfg = format!(
        "[[providers]]\nname = \"only\"\nbase_url = \"{}\"\nmodels = [\"m1\"]\n[[models]]\nname = \"m1\"\n[[client_keys]]\nname = \"tests\"\nkey = \"{KEY}\"\n",
        only.url()
    );
    only.script([Reply::status(503, r#"{"error":{"message":"overloaded"}}"#)]);
    let (gw, _dir) = start_admin(&cfg);
    assert_eq!(chat(&gw, "m1", false).await.status(), 503);
    let token = admin_token(&gw).await;
    assert_eq!(
        model_breaker(&status(&gw, &token).await, "only", "m1")["state"],
        "open"
    );
    // Cooling down for 10 minutes, yet the request is tried once instead of failing at once.
    let r = chat(&gw, "m1", false).await;
    assert_eq!(r.status(), 200);
    assert_eq!(only.hits(), 2);
    assert_eq!(
        model_breaker(&status(&gw, &token).await, "only", "m1")["state"],
        "closed"
    );
}

#[tokio::test]
async fn sticky_model_per_client_and_session_pins() {
    let p = Mock::start().await;
    let q = Mock::start().await;
    let cfg = format!(
        r#"
[[providers]]
name = "p"
base_url = "{}"
models = ["m-a", "m-b", "m-c", "m-d", "m-e"]
[[providers]]
name = "q"
base_url = "{}"
models = ["m-a", "m-b", "m-c", "m-d", "m-e"]
[[models]]
name = "u"
rules = [{{ type = "prefix", value = "m-" }}]
[[client_keys]]
name = "tests"
key = "{KEY}"
"#,
        p.url(),
        q.url()
    );
    let (gw, _dir) = start_admin(&cfg);
    // Per (client, provider): the model that succeeded is preferred from then on.
    let mut by_provider: std::collections::HashMap<String, std::collections::HashSet<String>> =
        Default::default();
    for _ in 0..30 {
        let r = chat(&gw, "u", false).await;
        by_provider
            .entry(h(&r, "x-switchboard-provider"))
            .or_default()
            .insert(h(&r, "x-switchboard-model"));
    }
    assert_eq!(
        by_provider.len(),
        2,
        "both providers are used: {by_provider:?}"
    );
    for (provider, models) in &by_provider {
        assert_eq!(models.len(), 1, "{provider} kept one model: {models:?}");
    }
    // A session goes to the same provider and model every time.
    let first = chat_with(&gw, "u", false, &[("x-session-id", "abc")]).await;
    let pin = (
        h(&first, "x-switchboard-provider"),
        h(&first, "x-switchboard-model"),
    );
    for _ in 0..15 {
        let r = chat_with(&gw, "u", false, &[("x-session-id", "abc")]).await;
        assert_eq!(
            (
                h(&r, "x-switchboard-provider"),
                h(&r, "x-switchboard-model")
            ),
            pin
        );
    }
    // So does OpenAI's prompt_cache_key.
    let with_key = |k: &str| {
        json!({"model": "u", "prompt_cache_key": k, "messages": [{"role": "user", "content": "hi"}]}).to_string()
    };
    let r = http()
        .post(format!("{}/chat/completions", gw.v1()))
        .bearer_auth(KEY)
        .body(with_key("cache-1"))
        .send()
        .await
        .unwrap();
    let pin = (
        h(&r, "x-switchboard-provider"),
        h(&r, "x-switchboard-model"),
    );
    for _ in 0..10 {
        let r = http()
            .post(format!("{}/chat/completions", gw.v1()))
            .bearer_auth(KEY)
            .body(with_key("cache-1"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            (
                h(&r, "x-switchboard-provider"),
                h(&r, "x-switchboard-model")
            ),
            pin
        );
    }
}

#[tokio::test]
async fn a_stream_fails_over_before_its_first_content() {
    let (bad, good, gw, _dir) = pair("").await;
    // The preamble arrives, then the connection dies: nothing has reached the client yet.
    bad.script([Reply::Sse {
        chunks: vec![role_chunk("m1"), chunk("m1", "never")],
        gap: Duration::from_millis(20),
        drop_after: Some(1),
    }]);
    good.script([Reply::Sse {
        chunks: vec![role_chunk("m1"), chunk("m1", "Hello"), DONE.into()],
        gap: Duration::ZERO,
        drop_after: None,
    }]);
    let r = chat(&gw, "m1", true).await;
    assert_eq!(h(&r, "x-switchboard-provider"), "good");
    let text = r.text().await.unwrap();
    assert_eq!(
        text.matches("\"role\":\"assistant\"").count(),
        1,
        "one preamble: {text}"
    );
    assert!(text.contains("Hello") && text.ends_with(DONE), "{text}");
    assert!(!text.contains("never") && !text.contains("\"error\""));

    // An upstream that says nothing after its preamble: the first-byte timeout fails it over.
    bad.script([Reply::Sse {
        chunks: vec![role_chunk("m2"), chunk("m2", "late")],
        gap: Duration::from_secs(3),
        drop_after: None,
    }]);
    let r = chat(&gw, "m2", true).await;
    assert_eq!(h(&r, "x-switchboard-provider"), "good");
    assert_eq!(h(&r, "x-switchboard-attempts"), "2");
}

#[tokio::test]
async fn after_the_first_content_a_failure_is_an_error_event() {
    let (bad, good, gw, _dir) = pair("").await;
    bad.script([Reply::Sse {
        chunks: vec![chunk("m1", "partial"), chunk("m1", "never")],
        gap: Duration::from_millis(20),
        drop_after: Some(1),
    }]);
    let r = chat(&gw, "m1", true).await;
    assert_eq!(h(&r, "x-switchboard-provider"), "bad");
    let text = r.text().await.unwrap();
    assert!(text.contains("partial"));
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("data: {\"error\""), "{text}");
    assert_eq!(good.hits(), 0, "no retry once content reached the client");
}

#[tokio::test]
async fn retry_keywords_fail_over_a_200() {
    let bad = Mock::start().await;
    let good = Mock::start().await;
    bad.script([
        Reply::status(
            200,
            &completion("m1", "Sorry: Rate Limit reached, try later"),
        ),
        Reply::Sse {
            chunks: vec![
                role_chunk("m2"),
                chunk("m2", "upstream overloaded"),
                DONE.into(),
            ],
            gap: Duration::ZERO,
            drop_after: None,
        },
    ]);
    let (gw, _dir) = start_admin(&two(
        &bad.url(),
        &good.url(),
        "retry_on_keywords = [\"rate limit\", \"overloaded\"]",
    ));
    let r = chat(&gw, "m1", false).await;
    assert_eq!(h(&r, "x-switchboard-provider"), "good");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from the mock");
    let r = chat(&gw, "m2", true).await;
    assert_eq!(h(&r, "x-switchboard-provider"), "good");
    assert!(!r.text().await.unwrap().contains("overloaded"));
    let token = admin_token(&gw).await;
    assert_eq!(
        model_breaker(&status(&gw, &token).await, "bad", "m1")["reason"],
        "rate limited"
    );
}

#[tokio::test]
async fn pause_and_resume_survive_a_restart() {
    let bad = Mock::start().await;
    let good = Mock::start().await;
    let cfg = two(&bad.url(), &good.url(), "");
    let (gw, dir) = start_admin(&cfg);
    let token = admin_token(&gw).await;
    let pause = |name: &str, action: &str| {
        http()
            .post(format!("{}/api/providers/{name}/{action}", gw.url))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(pause("bad", "pause").await.unwrap().status(), 204);
    assert_eq!(pause("nope", "pause").await.unwrap().status(), 404);
    for _ in 0..5 {
        assert_eq!(
            h(&chat(&gw, "m1", false).await, "x-switchboard-provider"),
            "good"
        );
    }
    assert_eq!(bad.hits(), 0);
    let s = status(&gw, &token).await;
    let p = s["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "bad")
        .unwrap();
    assert_eq!(p["paused"], true);
    assert_eq!(
        p["breaker"]["state"], "closed",
        "pause is not a breaker state"
    );

    // Paused providers are skipped even as a last resort.
    good.script([Reply::status(500, "{}")]);
    let r = chat(&gw, "m2", false).await;
    assert_eq!(r.status(), 500);
    assert_eq!(bad.hits(), 0);
    drop(gw);

    // After a restart (same data dir, same config file) the pause is still there.
    let launch = common::Launch::serve(
        &dir.path().join("switchboard.toml"),
        &dir.path().join("data"),
    )
    .env("SWITCHBOARD_ADMIN_PASSWORD", common::ADMIN_PASSWORD);
    let gw = common::spawn(launch, &dir.path().join("data")).unwrap();
    assert_eq!(
        h(&chat(&gw, "m1", false).await, "x-switchboard-provider"),
        "good"
    );
    assert_eq!(bad.hits(), 0);
    let token = admin_token(&gw).await;
    let r = admin(&gw, &token, "POST", "/providers/bad/resume", None).await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        h(&chat(&gw, "m1", false).await, "x-switchboard-provider"),
        "bad"
    );
}

fn synced(url: &str, interval: u64) -> String {
    format!(
        r#"
[routing]
sync_interval_s = {interval}
[[providers]]
name = "relay"
base_url = "{url}"
[[models]]
name = "claude"
rules = [{{ type = "regex", value = "^claude-x-[0-9]+$" }}, {{ type = "exclude_keyword", value = "thinking" }}]
[[client_keys]]
name = "tests"
key = "{KEY}"
"#
    )
}

#[tokio::test]
async fn model_lists_sync_on_demand_and_re_resolve_rules() {
    let relay = Mock::start().await;
    relay.set_models(&["claude-x-1", "claude-x-1-thinking", "gpt-4o"]);
    let (gw, _dir) = start_admin(&synced(&relay.url(), 3600));
    // Synced at start: the regex rule resolves to the listed model.
    let mut r = chat(&gw, "claude", false).await;
    for _ in 0..50 {
        if r.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        r = chat(&gw, "claude", false).await;
    }
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "x-switchboard-model"), "claude-x-1");
    let seen = relay.requests();
    assert_eq!(
        seen.last().unwrap().header("authorization"),
        None,
        "no key configured, none sent"
    );

    relay.set_models(&["claude-x-2"]);
    let token = admin_token(&gw).await;
    let r = admin(&gw, &token, "POST", "/providers/relay/sync", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["models"], 1);
    assert_eq!(
        h(&chat(&gw, "claude", false).await, "x-switchboard-model"),
        "claude-x-2"
    );

    let r = admin(&gw, &token, "GET", "/providers", None).await;
    let list: Value = r.json().await.unwrap();
    assert_eq!(list[0]["models"], json!(["claude-x-2"]));
    assert_eq!(list[0]["sync"]["source"], "upstream");
}

#[tokio::test]
async fn model_lists_sync_on_a_schedule() {
    let relay = Mock::start().await;
    relay.set_models(&["claude-x-1"]);
    let (gw, _dir) = start_admin(&synced(&relay.url(), 1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h(&chat(&gw, "claude", false).await, "x-switchboard-model"),
        "claude-x-1"
    );
    relay.set_models(&["claude-x-7"]);
    let mut model = String::new();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        model = h(&chat(&gw, "claude", false).await, "x-switchboard-model");
        if model == "claude-x-7" {
            break;
        }
    }
    assert_eq!(
        model, "claude-x-7",
        "the scheduled sync picked up the new list"
    );
    assert!(relay.model_list_hits() >= 2);
}

#[tokio::test]
async fn a_failed_sync_keeps_the_last_good_list() {
    let relay = Mock::start().await;
    relay.set_models(&["claude-x-1"]);
    let (gw, _dir) = start_admin(&synced(&relay.url(), 3600));
    let token = admin_token(&gw).await;
    let sync = || {
        http()
            .post(format!("{}/api/providers/relay/sync", gw.url))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(sync().await.unwrap().status(), 200);
    relay.fail_model_list(Some(500));
    let r = sync().await.unwrap();
    assert_eq!(r.status(), 502);
    let msg = r.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("model list unavailable"), "{msg}");
    let list: Value = admin(&gw, &token, "GET", "/providers", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list[0]["models"],
        json!(["claude-x-1"]),
        "the last good list is kept"
    );
    assert!(
        list[0]["sync"]["last_error"]
            .as_str()
            .unwrap()
            .contains("model list unavailable")
    );
    assert_eq!(
        h(&chat(&gw, "claude", false).await, "x-switchboard-model"),
        "claude-x-1"
    );
    let r = admin(&gw, &token, "POST", "/providers/nope/sync", None).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn breaker_changes_are_events() {
    let (bad, _good, gw, _dir) = pair("[cooldown]\nserver_error = 1").await;
    bad.script([Reply::status(500, "{}")]);
    let token = admin_token(&gw).await;
    let events = admin(&gw, &token, "GET", "/events", None).await;
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let mut events = events.bytes_stream();
    let mut seen = String::new();
    let mut wait_for = async |needle: &str| {
        while !seen.contains(needle) {
            let chunk = tokio::time::timeout(Duration::from_secs(5), events.next())
                .await
                .unwrap_or_else(|_| panic!("no {needle} in {seen}"))
                .unwrap()
                .unwrap();
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        seen.clone()
    };
    assert_eq!(chat(&gw, "m1", false).await.status(), 200);
    let s = wait_for("\"state\":\"open\"").await;
    assert!(
        s.contains("event: breaker") && s.contains("\"provider\":\"bad\""),
        "{s}"
    );
    // After the cooldown the next request is the trial: half-open, then closed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        h(&chat(&gw, "m1", false).await, "x-switchboard-provider"),
        "bad"
    );
    wait_for("\"state\":\"half_open\"").await;
    wait_for("\"state\":\"closed\"").await;
}

#[tokio::test]
async fn the_admin_api_refuses_what_a_web_page_could_send() {
    let m = Mock::start().await;
    let (gw, _dir) = start_admin(&two(&m.url(), &m.url(), ""));
    let url = format!("{}/api/status", gw.url);
    let r = http().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let r = http()
        .post(format!("{}/api/login", gw.url))
        .json(&json!({"password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let token = admin_token(&gw).await;
    let ok = http().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["cache-control"], "no-store");
    let r = http()
        .get(&url)
        .bearer_auth(&token)
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "DNS rebinding: a foreign Host");
    let r = http()
        .get(&url)
        .bearer_auth(&token)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a foreign Origin");
    for origin in [
        "tauri://localhost",
        "http://tauri.localhost",
        gw.url.as_str(),
    ] {
        let r = http()
            .get(&url)
            .bearer_auth(&token)
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{origin}");
    }
    // Another local server's page (a dev server on another port) is foreign too: it could lock
    // the owner out with text/plain logins.
    let other = format!("http://127.0.0.1:{}", gw.port + 1);
    for origin in ["http://localhost:3000", other.as_str()] {
        let r = http()
            .post(format!("{}/api/login", gw.url))
            .header("origin", origin)
            .header("content-type", "text/plain")
            .body(r#"{"password":"guess"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{origin}");
    }
    let providers: Value = admin(&gw, &token, "GET", "/providers", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(providers[0]["key"], "none");
    let _ = http()
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .unwrap();
}

/// A request a browser sends without a preflight (text/plain, no key: the gateway is open on
/// loopback) from a page of another site, or under a rebound name.
fn page_post(gw: &Gateway, path: &str, body: &str) -> reqwest::RequestBuilder {
    http()
        .post(format!("{}{path}", gw.url))
        .header("content-type", "text/plain")
        .body(body.to_owned())
}

#[tokio::test]
async fn the_client_api_refuses_what_a_web_page_could_send_unless_its_origin_is_allowed() {
    let m = Mock::start().await;
    let config = format!(
        r#"
[server]
request_timeout_s = 10

[[providers]]
name = "only"
base_url = "{}"
models = ["m1"]

[[models]]
name = "m1"
"#,
        m.url()
    );
    let (gw, _dir) = start_admin(&config);
    let chat = r#"{"model":"m1","messages":[{"role":"user","content":"hi"}]}"#;
    let messages = r#"{"model":"m1","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let gemini = r#"{"contents":[{"parts":[{"text":"hi"}]}]}"#;
    let cases = [
        ("/v1/chat/completions", chat, "error.code"),
        ("/v1/messages", messages, "type"),
        ("/v1beta/models/m1:generateContent", gemini, "error.status"),
    ];
    for origin in ["https://evil.example", "http://localhost:3000", "null"] {
        for (path, body, field) in cases {
            let r = page_post(&gw, path, body)
                .header("origin", origin)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{origin} {path}");
            assert!(!r.headers().contains_key("access-control-allow-origin"));
            let v: Value = r.json().await.unwrap();
            // In the shape of the client's protocol.
            let mut at = &v;
            for k in field.split('.') {
                at = &at[k];
            }
            assert!(!at.is_null(), "{path}: {v}");
            let text = v.to_string();
            assert!(text.contains("allowed_origins"), "{text}");
        }
    }
    // DNS rebinding: the page's own name for this address, so it could read the answer.
    for path in ["/v1/chat/completions", "/v1/models"] {
        let r = http()
            .request(
                if path == "/v1/models" {
                    reqwest::Method::GET
                } else {
                    reqwest::Method::POST
                },
                format!("{}{path}", gw.url),
            )
            .header("host", format!("evil.example:{}", gw.port))
            .body(chat)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    assert_eq!(m.hits(), 0, "nothing reached the provider");

    // Clients that are not browsers, and the gateway's own pages, pass.
    assert_eq!(
        page_post(&gw, "/v1/chat/completions", chat)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = page_post(&gw, "/v1/chat/completions", chat)
        .header("origin", &gw.url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A browser-based chat app the user allowed: a preflight, then the request, with CORS.
    let token = admin_token(&gw).await;
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/settings",
        Some(
            json!({"server": {"allowed_origins": ["https://chat.example/", "http://gw.lan:8080"]}}),
        ),
    )
    .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let r = http()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/chat/completions", gw.url),
        )
        .header("origin", "https://chat.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .header("access-control-request-private-network", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "https://chat.example");
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert_eq!(h["access-control-allow-private-network"], "true");
    let r = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("origin", "https://chat.example")
        .json(&serde_json::from_str::<Value>(chat).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://chat.example"
    );
    assert!(
        r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("x-switchboard-provider")
    );
    // The allowed origin's host may name the gateway (a reverse proxy's name).
    let r = page_post(&gw, "/v1/chat/completions", chat)
        .header("host", "gw.lan:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Every other page is still refused, the preflight included.
    let r = http()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/chat/completions", gw.url),
        )
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(m.hits(), 4);
    // A bad entry is refused like in the file.
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/settings",
        Some(json!({"server": {"allowed_origins": ["chat.example/path"]}})),
    )
    .await;
    assert_eq!(r.status(), 422);
    let stderr = gw.stderr();
    assert!(
        stderr.contains("refused a request from a web page"),
        "{stderr}"
    );
}

/// A provider answering 404 to every request asks for its model list again each time; those
/// requests are merged, at most one per 30 s, and they do not push back the schedule that
/// syncs every other provider.
#[tokio::test]
async fn a_storm_of_404s_neither_floods_nor_starves_the_model_list_schedule() {
    let bad = Mock::start().await;
    let other = Mock::start().await;
    bad.set_models(&["claude-x-1"]);
    other.set_models(&["gpt-x"]);
    let cfg = synced(&bad.url(), 2)
        + &format!(
            "\n[[providers]]\nname = \"other\"\nbase_url = \"{}\"\n",
            other.url()
        );
    let (gw, _dir) = start_admin(&cfg);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let not_found =
        r#"{"error":{"message":"The model claude-x-1 does not exist","code":"model_not_found"}}"#;
    bad.script((0..200).map(|_| Reply::status(404, not_found)));
    let (bad_lists, other_lists) = (bad.model_list_hits(), other.model_list_hits());
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(4500) {
        let _ = chat(&gw, "claude", false).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let other_synced = other.model_list_hits() - other_lists;
    assert!(
        other_synced >= 2,
        "the schedule ran {other_synced} times in 4.5 s"
    );
    // Two scheduled rounds and one sync the 404s asked for, not one per 404.
    let bad_synced = bad.model_list_hits() - bad_lists;
    assert!(
        bad_synced <= 4,
        "{bad_synced} syncs of the provider answering 404"
    );
}

#[tokio::test]
async fn a_404_for_a_model_triggers_a_resync() {
    let relay = Mock::start().await;
    relay.set_models(&["claude-x-1"]);
    let (gw, _dir) = start_admin(&synced(&relay.url(), 3600));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h(&chat(&gw, "claude", false).await, "x-switchboard-model"),
        "claude-x-1"
    );
    let hits = relay.model_list_hits();
    // The provider retired the model and lists its successor.
    relay.set_models(&["claude-x-2"]);
    relay.script([Reply::status(
        404,
        r#"{"error":{"message":"The model claude-x-1 does not exist","code":"model_not_found"}}"#,
    )]);
    assert_eq!(chat(&gw, "claude", false).await.status(), 404);
    let mut model = String::new();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = chat(&gw, "claude", false).await;
        if r.status() == 200 {
            model = h(&r, "x-switchboard-model");
            break;
        }
    }
    assert_eq!(model, "claude-x-2");
    assert!(relay.model_list_hits() > hits);
}

/// Open at some point, and closed now; a poll may also catch the half-open trial in between.
fn opened_then_closed(states: &[String]) -> bool {
    states
        .iter()
        .position(|s| s == "open")
        .is_some_and(|i| states[i..].last().is_some_and(|s| s == "closed"))
}

#[tokio::test]
async fn active_probes_trip_and_recover_breakers_without_user_requests() {
    let bad = Mock::start().await;
    let good = Mock::start().await;
    let cfg = two(&bad.url(), &good.url(), "probe_interval_s = 1").replace(
        "[[models]]\nname = \"m2\"",
        "[[models]]\nname = \"m2\"\nprobe = false",
    ) + "\n[cooldown]\nserver_error = 1\n";
    let (gw, _dir) = start_admin(&cfg);
    let token = admin_token(&gw).await;
    // Fail only once the test is watching: probes start half a second after the gateway, and
    // a loaded machine can take longer than a whole open-and-close to log in.
    bad.script([Reply::status(500, r#"{"error":{"message":"down"}}"#)]);
    let mut states = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = status(&gw, &token).await;
        let state = model_breaker(&s, "bad", "m1")["state"]
            .as_str()
            .unwrap()
            .to_owned();
        if states.last() != Some(&state) {
            states.push(state);
        }
        if opened_then_closed(&states) {
            break;
        }
    }
    assert!(opened_then_closed(&states), "{states:?}");
    // Only probes were sent: one token, and never for the model that opted out.
    let sent = bad.requests();
    assert!(
        sent.len() >= 2,
        "a probe that failed, then the trial that closed it"
    );
    for r in sent.iter().chain(good.requests().iter()) {
        let b = r.json();
        assert_eq!(b["max_tokens"], 1);
        assert_eq!(b["model"], "m1", "m2 opted out of probes");
    }
}

/// A provider that speaks only Anthropic or only Gemini is probed in its own protocol (probes
/// skipped them, so with probes on a tripped one never recovered), and a probe answered 4xx
/// is a failure, not a sign of health.
#[tokio::test]
async fn probes_speak_each_providers_protocol_and_a_refused_probe_is_a_failure() {
    let an = Mock::start().await;
    let ge = Mock::start().await;
    let oa = Mock::start().await;
    let cfg = format!(
        r#"
[routing]
probe_interval_s = 1

[cooldown]
server_error = 1

[[providers]]
name = "an"
base_url = "{}"
protocols = ["anthropic"]
models = ["m1"]

[[providers]]
name = "ge"
base_url = "{}"
protocols = ["gemini"]
models = ["m1"]

[[providers]]
name = "oa"
base_url = "{}"
models = ["m1"]

[[models]]
name = "m1"
"#,
        an.url(),
        ge.url(),
        oa.url()
    );
    let (gw, _dir) = start_admin(&cfg);
    let token = admin_token(&gw).await;
    // Fail only once the test is watching (see the test above).
    an.script([Reply::status(
        500,
        r#"{"type":"error","error":{"type":"api_error","message":"down"}}"#,
    )]);
    ge.script([Reply::status(
        503,
        r#"{"error":{"code":503,"message":"down","status":"UNAVAILABLE"}}"#,
    )]);
    oa.script([Reply::status(
        400,
        r#"{"error":{"message":"this model does not take that request"}}"#,
    )]);
    let names = ["an", "ge", "oa"];
    let mut states: Vec<Vec<String>> = vec![Vec::new(); 3];
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = status(&gw, &token).await;
        for (i, name) in names.iter().enumerate() {
            let state = model_breaker(&s, name, "m1")["state"]
                .as_str()
                .unwrap()
                .to_owned();
            if states[i].last() != Some(&state) {
                states[i].push(state);
            }
        }
        if states.iter().all(|s| opened_then_closed(s)) {
            break;
        }
    }
    for (i, name) in names.iter().enumerate() {
        assert!(opened_then_closed(&states[i]), "{name}: {:?}", states[i]);
    }
    assert!(
        an.requests()
            .iter()
            .all(|r| r.path.ends_with("/v1/messages"))
    );
    assert!(
        ge.requests()
            .iter()
            .all(|r| r.path.ends_with("/models/m1:generateContent"))
    );
    assert!(an.hits() >= 2 && ge.hits() >= 2 && oa.hits() >= 2);
}

/// An upstream that answers its first connection 500 and closes every later one without a
/// word; it counts connections.
async fn first_500_then_resets() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = s.read(&mut buf).await;
                if n == 0 {
                    let body = r#"{"error":{"message":"down"}}"#;
                    let head = format!(
                        "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(format!("{head}{body}").as_bytes()).await;
                }
            });
        }
    });
    (url, count)
}

/// A half-open trial that ends in a connection reset (a failure of the provider, counted
/// there) frees the model's trial at once: the next request may try it, where it used to wait
/// `request_timeout_s`.
#[tokio::test]
async fn a_trial_ended_by_a_connection_reset_is_settled_at_once() {
    let (flaky, connections) = first_500_then_resets().await;
    let good = Mock::start().await;
    let cfg = two(&flaky, &good.url(), "") + "\n[cooldown]\nserver_error = 1\n";
    let (gw, _dir) = start_admin(&cfg);
    let ask = || async {
        let r = http()
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(KEY)
            .json(&json!({"model": "m1", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    };
    ask().await;
    let n = || connections.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(n(), 1, "the 500 opened the model's breaker");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    ask().await;
    assert_eq!(n(), 2, "the trial, cut by a reset");
    ask().await;
    assert_eq!(n(), 3, "the next request may try at once");
}

#[tokio::test]
async fn the_rule_preview_resolves_and_refuses_bad_rules() {
    let m = Mock::start().await;
    let (gw, _dir) = start_admin(&two(&m.url(), &m.url(), ""));
    let token = admin_token(&gw).await;
    let preview = |body: Value| {
        http()
            .post(format!("{}/api/models/preview", gw.url))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let r = preview(json!({"name": "x", "rules": [{"type": "regex", "value": "^m[12]$"}], "exclude_providers": ["bad"]})).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["candidates"],
        json!([{"provider": "good", "model": "m1"}, {"provider": "good", "model": "m2"}])
    );
    let r = preview(json!({"name": "x", "rules": [{"type": "exact", "value": "m1"}, {"type": "regex", "value": "(unclosed"}]})).await.unwrap();
    assert_eq!(r.status(), 422);
    let msg = r.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.starts_with("rules[1]: invalid regex \"(unclosed\""),
        "{msg}"
    );
    let r = preview(json!({"name": "x", "include": ["no-slash"]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn a_timed_pause_ends_by_itself() {
    let (bad, _good, gw, _dir) = pair("").await;
    let token = admin_token(&gw).await;
    let pause = |body: Value| {
        http()
            .post(format!("{}/api/providers/bad/pause", gw.url))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    assert_eq!(pause(json!({"minutes": 0})).await.unwrap().status(), 422);
    assert_eq!(
        pause(json!({"minutes": 5, "seconds": 5}))
            .await
            .unwrap()
            .status(),
        422
    );
    assert_eq!(pause(json!({"seconds": 2})).await.unwrap().status(), 204);
    let list: Value = admin(&gw, &token, "GET", "/providers", None)
        .await
        .json()
        .await
        .unwrap();
    let p = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "bad")
        .unwrap();
    assert_eq!(p["paused"], true);
    assert!(p["paused_until"].as_u64().is_some());
    assert_eq!(
        h(&chat(&gw, "m1", false).await, "x-switchboard-provider"),
        "good"
    );
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(
        h(&chat(&gw, "m1", false).await, "x-switchboard-provider"),
        "bad",
        "resumed by itself"
    );
    assert_eq!(bad.hits(), 1);
}

#[tokio::test]
async fn the_summary_says_ok_degraded_paused_and_down() {
    let (bad, _good, gw, _dir) = pair("").await;
    let token = admin_token(&gw).await;
    let summary = || async {
        admin(&gw, &token, "GET", "/summary", None)
            .await
            .json::<Value>()
            .await
            .unwrap()
    };
    assert_eq!(summary().await["state"], "ok");
    bad.script([Reply::status(500, "{}")]);
    chat(&gw, "m1", false).await;
    let s = summary().await;
    assert_eq!(s["state"], "degraded");
    let b = s["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "bad")
        .unwrap();
    assert_eq!(b["state"], "cooling");
    assert_eq!(b["reason"], "server error");
    assert!(b["until"].as_u64().is_some());
    for name in ["bad", "good"] {
        let r = admin(
            &gw,
            &token,
            "POST",
            &format!("/providers/{name}/pause"),
            None,
        )
        .await;
        assert_eq!(r.status(), 204);
    }
    assert_eq!(summary().await["state"], "paused");
    let r = admin(&gw, &token, "POST", "/providers/good/resume", None).await;
    assert_eq!(r.status(), 204);
    // The cooling provider is paused: the user set it aside, so it does not degrade the rest.
    assert_eq!(summary().await["state"], "ok");
    // Every candidate of every model cooling: down.
    admin(&gw, &token, "POST", "/providers/bad/resume", None).await;
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/providers/good",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(r.status(), 204);
    bad.script([Reply::status(500, "{}")]);
    chat(&gw, "m2", false).await;
    assert_eq!(summary().await["state"], "down");
}

/// A Retry-After as large as a u64 goes: the request is answered by the healthy provider (it
/// used to overflow `now + cooldown` and drop the connection unanswered), the cooldown is the
/// ceiling (`cooldown.max_retry_after`), and the clamp is logged.
#[tokio::test]
async fn a_huge_retry_after_is_clamped_and_the_request_answered() {
    let (bad, _good, gw, _dir) = pair("[cooldown]\nmax_retry_after = 2").await;
    bad.script([Reply::status(429, r#"{"error":{"message":"slow down"}}"#)
        .with_header("retry-after", "18446744073709551615")]);
    let r = chat(&gw, "m1", false).await;
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "x-switchboard-provider"), "good");
    assert!(gw.stderr().contains("clamped"), "{}", gw.stderr());
    // Cooling for the ceiling, not for ever: after it the trial goes to `bad` again.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let r = chat(&gw, "m1", false).await;
    assert_eq!(h(&r, "x-switchboard-provider"), "bad");
}

/// The last resort never goes to a provider whose key was refused (open until reset): it would
/// be refused again. It goes to the next one, cooling for a reason that may have passed.
#[tokio::test]
async fn the_last_resort_skips_a_refused_key() {
    let (bad, good, gw, _dir) = pair("").await;
    bad.script([Reply::status(
        401,
        r#"{"error":{"message":"invalid api key"}}"#,
    )]);
    good.script([Reply::status(503, r#"{"error":{"message":"overloaded"}}"#)]);
    // bad: key refused; good: a 503. Both are now open.
    let r = chat(&gw, "m1", false).await;
    assert_eq!(r.status(), 503);
    assert_eq!((bad.hits(), good.hits()), (1, 1));
    // Everything cools: the last resort goes to `good` (weight 1), not to `bad` (1,000,000).
    let r = chat(&gw, "m1", false).await;
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "x-switchboard-provider"), "good");
    assert_eq!(bad.hits(), 1, "the refused key was not tried again");
}

/// A plain (not streamed) answer's head comes only when the whole answer is ready: it may take
/// up to the request's deadline, not the first-byte timeout that streams are held to (a long
/// generation was cut at 1 s here, and tripped the model's breaker).
#[tokio::test]
async fn a_plain_answer_may_take_until_the_requests_deadline() {
    let (bad, good, gw, _dir) = pair("").await;
    bad.script([Reply::delayed(Duration::from_millis(1800))]);
    let r = chat(&gw, "m1", false).await;
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "x-switchboard-provider"), "bad");
    assert_eq!(h(&r, "x-switchboard-attempts"), "1");
    assert_eq!(good.hits(), 0);
}

/// A provider whose base URL is the gateway itself (here from the config file, which the admin
/// API would refuse): the request that comes back carries the gateway's own `Via` and is
/// refused at once (508), so the outer request fails over instead of looping.
#[tokio::test]
async fn a_provider_pointing_back_at_the_gateway_does_not_loop() {
    let good = Mock::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchboard.toml");
    std::fs::write(
        &config,
        two(&format!("http://127.0.0.1:{port}/v1"), &good.url(), ""),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut launch = common::Launch::serve(&config, &data)
        .env("SWITCHBOARD_ADMIN_PASSWORD", common::ADMIN_PASSWORD);
    let at = launch.args.iter().position(|a| a == "--port").unwrap();
    launch.args[at + 1] = port.to_string();
    let gw = common::spawn(launch, &data).unwrap();
    for _ in 0..3 {
        let r = chat(&gw, "m1", false).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-switchboard-provider"], "good");
    }
    let token = admin_token(&gw).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let page: Value = admin(&gw, &token, "GET", "/logs?status=5xx", None)
            .await
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        if let Some(row) = items.first() {
            assert_eq!(row["status"], 508, "{row}");
            assert_eq!(row["error_code"], "gateway_loop", "{row}");
            // The loop was cut at its first turn: one refused request per attempt, not more.
            assert!(items.len() <= 3, "{page}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refused row: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `provider/model` reaches that provider's own model past the unified models: for a caller
/// with no key on an open gateway, and for a key allowed to (`pin_providers`); any other key
/// gets a 403 in its protocol, an unknown provider or model a 404 that says which.
#[tokio::test]
async fn provider_slash_model_pins_a_provider_for_keys_allowed_to() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    let providers = format!(
        "[[providers]]\nname = \"a\"\nbase_url = \"{}\"\nweight = 1000000\nmodels = [\"m1\"]\n\n\
         [[providers]]\nname = \"b\"\nbase_url = \"{}\"\nmodels = [\"m1\", \"vendor/m9\"]\n\n\
         [[models]]\nname = \"m1\"\n",
        a.url(),
        b.url()
    );
    let post = |gw: &Gateway, model: &str, key: Option<&str>| {
        let mut r = http()
            .post(format!("{}/chat/completions", gw.v1()))
            .body(body(model, false));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };

    // Open on loopback, no keys: anyone here may pin.
    let (open, _d1) = start_admin(&providers);
    let r = post(&open, "m1", None).await.unwrap();
    assert_eq!(
        h(&r, "x-switchboard-provider"),
        "a",
        "the unified model as before"
    );
    for _ in 0..5 {
        let r = post(&open, "b/m1", None).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(h(&r, "x-switchboard-provider"), "b");
    }
    // A provider's own id with a slash of its own goes upstream as it is.
    let r = post(&open, "b/vendor/m9", None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(b.requests().last().unwrap().json()["model"], "vendor/m9");
    let r = post(&open, "b/nope", None).await.unwrap();
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("'b' lists no model 'nope'"), "{e}");
    assert_eq!(
        post(&open, "zzz/m1", None).await.unwrap().status(),
        404,
        "no such provider: an unknown model"
    );
    assert_eq!(b.hits(), 6);
    drop(open);

    // With keys: only the one allowed to.
    const PINS: &str = "sk-sb-routing-pins-00000000000";
    let keys = format!(
        "{providers}\n[[client_keys]]\nname = \"tests\"\nkey = \"{KEY}\"\n\n\
         [[client_keys]]\nname = \"pins\"\nkey = \"{PINS}\"\npin_providers = true\n"
    );
    let (gw, _d2) = start_admin(&keys);
    let r = post(&gw, "b/m1", Some(KEY)).await.unwrap();
    assert_eq!(r.status(), 403);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pin_providers"),
        "{e}"
    );
    // The same refusal in Anthropic's protocol.
    let r = http()
        .post(format!("{}/messages", gw.v1()))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "b/m1", "max_tokens": 8,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["error"]["type"], "permission_error", "{e}");
    let r = post(&gw, "b/m1", Some(PINS)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "x-switchboard-provider"), "b");

    // The admin API and the export say which key may.
    let token = admin_token(&gw).await;
    let list: Value = admin(&gw, &token, "GET", "/client-keys", None)
        .await
        .json()
        .await
        .unwrap();
    let pins = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .map(|k| k["pin_providers"].clone())
    };
    assert_eq!(pins("pins"), Some(json!(true)), "{list}");
    assert_eq!(pins("tests"), Some(json!(false)), "{list}");
    let created: Value = admin(
        &gw,
        &token,
        "POST",
        "/client-keys",
        Some(json!({"name": "made", "pin_providers": true})),
    )
    .await
    .json()
    .await
    .unwrap();
    let made = created["key"].as_str().unwrap().to_owned();
    let r = post(&gw, "b/m1", Some(&made)).await.unwrap();
    assert_eq!(r.status(), 200, "a key made through the API pins too");
    let export = admin(&gw, &token, "GET", "/export", None)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        export.matches("pin_providers = true").count(),
        2,
        "{export}"
    );
}

/// `[routing] default_params` fill what a request leaves out, under a unified model's own
/// defaults and the client's values; they reach pinned requests too, are checked like the file
/// when changed through the admin API, and take effect at once.
#[tokio::test]
async fn global_default_params_fill_in_under_a_models_own() {
    let up = Mock::start().await;
    let config = format!(
        "[routing]\ndefault_params = {{ max_tokens = 77, temperature = 0.2 }}\n\n\
         [[providers]]\nname = \"up\"\nbase_url = \"{}\"\nmodels = [\"m1\", \"m2\"]\n\n\
         [[models]]\nname = \"m1\"\ndefault_params = {{ temperature = 0.9 }}\n\n\
         [[models]]\nname = \"m2\"\n",
        up.url()
    );
    let (gw, _dir) = start_admin(&config);
    let send = |model: &'static str, extra: Value| {
        let mut b = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        http()
            .post(format!("{}/chat/completions", gw.v1()))
            .json(&b)
            .send()
    };
    let last = || up.requests().last().unwrap().json();
    assert_eq!(send("m1", json!({})).await.unwrap().status(), 200);
    assert_eq!(
        (last()["max_tokens"].clone(), last()["temperature"].clone()),
        (json!(77), json!(0.9)),
        "the model's own default wins, the global one fills the rest"
    );
    assert_eq!(
        send("m2", json!({"max_tokens": 5})).await.unwrap().status(),
        200
    );
    assert_eq!(
        (last()["max_tokens"].clone(), last()["temperature"].clone()),
        (json!(5), json!(0.2)),
        "the client's value wins"
    );
    assert_eq!(send("up/m2", json!({})).await.unwrap().status(), 200);
    assert_eq!(last()["max_tokens"], 77, "a pinned request gets them too");

    let token = admin_token(&gw).await;
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/settings",
        Some(json!({"routing": {"default_params": {"model": "other"}}})),
    )
    .await;
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert!(e.to_string().contains("routing.default_params"), "{e}");
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/settings",
        Some(json!({"routing": {"default_params": {"top_p": 0.5}}})),
    )
    .await;
    assert!(r.status().is_success(), "{}", r.status());
    let settings: Value = admin(&gw, &token, "GET", "/settings", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(settings["default_params"], json!({"top_p": 0.5}));
    assert_eq!(send("m2", json!({})).await.unwrap().status(), 200);
    assert_eq!(last()["top_p"], 0.5, "live at once");
    assert!(last().get("max_tokens").is_none(), "the old ones are gone");
    let export = admin(&gw, &token, "GET", "/export", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(export.contains("top_p = 0.5"), "{export}");
}
