//! The request log end to end: rows and attempts in `logs.db`, read through the admin API,
//! and a `kill -9` under traffic. Real binary, loopback mocks, the SQLite file itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::mock::{Mock, Reply};
use common::{Gateway, admin, admin_token, http, start_admin};
use serde_json::{Value, json};

const KEY: &str = "sk-sb-request-log-tests-00000";

fn config(bad: &str, good: &str) -> String {
    format!(
        r#"
[[providers]]
name = "bad"
base_url = "{bad}"
weight = 1000000
models = ["m1"]

[[providers]]
name = "good"
base_url = "{good}"
weight = 1
models = ["m1"]

[[models]]
name = "m1"

[[client_keys]]
name = "logged"
key = "{KEY}"
"#
    )
}

async fn chat(gw: &Gateway) -> reqwest::Response {
    http()
        .post(format!("{}/chat/completions", gw.v1()))
        .bearer_auth(KEY)
        .header("user-agent", "log-test/1.0")
        .header("x-session-id", "session-1")
        .json(&json!({"model": "m1", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

/// `GET /api/logs` with a query, until it lists `n` rows (the writer commits every 50 ms).
async fn logs_until(gw: &Gateway, token: &str, query: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let r = admin(gw, token, "GET", &format!("/logs{query}"), None).await;
        assert_eq!(r.status(), 200);
        let page: Value = r.json().await.unwrap();
        if page["items"].as_array().unwrap().len() >= n || Instant::now() > deadline {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_failover_leaves_the_request_and_every_attempt_in_the_log() {
    let bad = Mock::start().await;
    let good = Mock::start().await;
    let (gw, _dir) = start_admin(&config(&bad.url(), &good.url()));
    let token = admin_token(&gw).await;
    bad.script([Reply::status(
        502,
        r#"{"error":{"message":"bad gateway upstream"}}"#,
    )]);
    assert_eq!(chat(&gw).await.status(), 200);

    let page = logs_until(&gw, &token, "", 1).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    let row = &items[0];
    assert_eq!(row["endpoint"], "chat/completions");
    assert_eq!(row["protocol"], "openai");
    assert_eq!(row["model"], "m1");
    assert_eq!(row["unified_model"], "m1");
    assert_eq!(row["session"], "session-1");
    assert_eq!(row["upstream_protocol"], "openai");
    assert_eq!(row["converted"], false);
    assert_eq!(row["provider"], "good");
    assert_eq!(row["client_key"], "logged");
    assert_eq!(row["client_addr"], "127.0.0.1");
    assert_eq!(row["user_agent"], "log-test/1.0");
    assert_eq!(row["status"], 200);
    assert_eq!(row["attempts"], 2);
    assert_eq!(row["stream"], false);
    assert!(row["bytes_in"].as_i64().unwrap() > 0, "{row}");
    assert!(row["bytes_out"].as_i64().unwrap() > 0, "{row}");
    assert!(row["latency_us"].as_i64().unwrap() > 0, "{row}");
    assert_eq!(page["next"], Value::Null);
    assert_eq!(page["dropped"], 0);
    let daily = admin(&gw, &token, "GET", "/logs/daily", None).await;
    assert_eq!(daily.status(), 200);
    assert_eq!(
        daily.json::<Value>().await.unwrap(),
        json!([]),
        "nothing pruned yet"
    );

    let one: Value = admin(&gw, &token, "GET", &format!("/logs/{}", row["id"]), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["request"]["id"], row["id"]);
    assert_eq!(
        one["bodies"],
        Value::Null,
        "bodies are kept only when asked"
    );
    let attempts = one["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{one}");
    assert_eq!(attempts[0]["provider"], "bad");
    assert_eq!(attempts[0]["status"], 502, "{one}");
    assert_eq!(attempts[0]["error_code"], "upstream_error", "{one}");
    assert_eq!(attempts[0]["error"], "bad gateway upstream", "{one}");
    assert_eq!(attempts[1]["provider"], "good");
    assert_eq!(attempts[1]["status"], 200);
    assert_eq!(attempts[1]["error"], Value::Null);
    // Both were chosen by weight through closed breakers; each had a first byte.
    for a in attempts {
        assert_eq!(a["chosen_by"], "weighted", "{one}");
        assert_eq!(a["breaker"], "closed", "{one}");
        assert!(a["ttfb_us"].as_i64().unwrap() > 0, "{one}");
    }
    assert_eq!(one["request"]["chosen_by"], "weighted", "{one}");
    assert!(one["request"]["ttfc_us"].is_null(), "not a stream: {one}");

    // The same session goes back to the provider that answered it.
    assert_eq!(chat(&gw).await.status(), 200);
    let page = logs_until(&gw, &token, "", 2).await;
    let again = &page["items"][0];
    assert_eq!(again["provider"], "good", "{again}");
    assert_eq!(again["chosen_by"], "session", "{again}");
    assert_eq!(again["attempts"], 1, "{again}");

    // The stats count what users saw: two successes, one of them saved by failover.
    for query in ["?window=1h", "?window=30d&group_by=provider"] {
        let r = admin(&gw, &token, "GET", &format!("/stats{query}"), None).await;
        assert_eq!(r.status(), 200, "{query}");
        let stats: Value = r.json().await.unwrap();
        let t = &stats["totals"];
        assert_eq!(t["requests"], 2, "{query}: {stats}");
        assert_eq!(t["errors"], 0, "{stats}");
        assert_eq!(t["saved"], 1, "{stats}");
        assert_eq!(
            (&t["attempts"], &t["failed_attempts"]),
            (&json!(3), &json!(1)),
            "{stats}"
        );
        assert_eq!(t["success_rate"], 1.0, "{stats}");
        assert!(t["latency_ms"]["p95"].as_f64().unwrap() > 0.0, "{stats}");
        assert!(!stats["series"].as_array().unwrap().is_empty(), "{stats}");
    }
    let stats: Value = admin(
        &gw,
        &token,
        "GET",
        "/stats?window=30d&group_by=provider",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(stats["bucket"], "day");
    assert_eq!(stats["groups"][0]["group"], "good", "{stats}");
    assert_eq!(stats["groups"][0]["requests"], 2, "{stats}");
    let r = admin(&gw, &token, "GET", "/stats?bucket=fortnight", None).await;
    assert_eq!(r.status(), 422);

    // A request that fails is logged with the gateway's own code.
    let r = http()
        .post(format!("{}/chat/completions", gw.v1()))
        .bearer_auth(KEY)
        .json(&json!({"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let failed = logs_until(&gw, &token, "?error_code=model_not_found", 1).await;
    let failed = &failed["items"][0];
    assert_eq!(failed["status"], 404, "{failed}");
    assert_eq!(failed["model"], "no-such-model");
    assert_eq!(failed["unified_model"], Value::Null);
    assert!(failed["error"].as_str().unwrap().contains("no-such-model"));

    // Filters, and their errors in the admin API's shape.
    let none = logs_until(&gw, &token, "?status=5xx", 0).await;
    // (The failed request above is a 404: no 5xx.)
    assert_eq!(none["items"], json!([]));
    let by_provider = logs_until(&gw, &token, "?provider=good&status=2xx&stream=false", 2).await;
    assert_eq!(by_provider["items"].as_array().unwrap().len(), 2);
    let page = logs_until(&gw, &token, "?limit=1", 1).await;
    assert_eq!(page["items"][0]["status"], 404, "newest first");
    let rest = logs_until(&gw, &token, &format!("?limit=2&before={}", page["next"]), 2).await;
    assert_eq!(rest["items"][1]["id"], row["id"]);
    assert_eq!(rest["next"], Value::Null);

    // Exported with the same filters, as CSV (a header and a line per row) and JSON Lines.
    let r = admin(&gw, &token, "GET", "/logs/export?provider=good", None).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".csv")
    );
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = header.iter().position(|h| *h == "user_agent").unwrap();
    assert_eq!(lines[2].split(',').nth(col), Some("log-test/1.0"), "{csv}");
    let r = admin(&gw, &token, "GET", "/logs/export?format=jsonl", None).await;
    let jsonl = r.text().await.unwrap();
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "{jsonl}");
    assert_eq!(rows[0]["status"], 404, "newest first");
    assert_eq!(rows[2]["id"], row["id"]);
    for bad in ["?format=xml", "?limit=5", "?colour=red"] {
        let r = admin(&gw, &token, "GET", &format!("/logs/export{bad}"), None).await;
        assert_eq!(r.status(), 422, "{bad}");
    }
    for (query, names) in [
        ("?status=3xx", "status"),
        ("?limit=0", "limit"),
        ("?before=x", "before"),
        ("?colour=red", "colour"),
        ("/daily?since_day=soon", "since_day"),
    ] {
        let r = admin(&gw, &token, "GET", &format!("/logs{query}"), None).await;
        assert_eq!(r.status(), 422, "{query}");
        let e: Value = r.json().await.unwrap();
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(names), "{query}: {message}");
    }
    assert_eq!(
        admin(&gw, &token, "GET", "/logs/999999", None)
            .await
            .status(),
        404
    );
    assert_eq!(
        admin(&gw, &token, "GET", "/logs/abc", None).await.status(),
        404
    );
    assert_eq!(
        http()
            .get(format!("{}/api/logs", gw.url))
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "the log is the admin's"
    );

    // Turned off, it keeps no rows (and on again, it does).
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/settings",
        Some(json!({"logs": {"enabled": false}})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let rows_now = logs_until(&gw, &token, "", 2).await["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(chat(&gw).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = logs_until(&gw, &token, "", rows_now + 1).await;
    assert_eq!(
        after["items"].as_array().unwrap().len(),
        rows_now,
        "{after}"
    );
    admin(
        &gw,
        &token,
        "PUT",
        "/settings",
        Some(json!({"logs": {"enabled": true}})),
    )
    .await;
    assert_eq!(chat(&gw).await.status(), 200);
    let back = logs_until(&gw, &token, "", rows_now + 1).await;
    assert_eq!(back["items"].as_array().unwrap().len(), rows_now + 1);

    // Its own file, and no client key in it.
    let data = gw.data_dir.clone();
    drop(gw);
    let bytes = std::fs::read(data.join("logs.db")).unwrap();
    let wal = std::fs::read(data.join("logs.db-wal")).unwrap_or_default();
    for file in [&bytes, &wal] {
        assert!(
            !file.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "a client key in logs.db"
        );
    }
}

#[tokio::test]
async fn kill_9_under_traffic_loses_at_most_the_last_second_and_the_file_stays_whole() {
    let up = Mock::start().await;
    let (mut gw, _dir) = start_admin(&config(&up.url(), &up.url()));
    let answered_before = |n: usize| {
        let gw = &gw;
        async move {
            let mut ok = 0;
            for _ in 0..n {
                if chat(gw).await.status() == 200 {
                    ok += 1;
                }
            }
            ok
        }
    };
    let settled = answered_before(200).await;
    // Past the writer's batch interval: these are all written.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let traffic: Vec<_> = (0..8)
        .map(|_| {
            let url = format!("{}/chat/completions", gw.v1());
            tokio::spawn(async move {
                loop {
                    let _ = http()
                        .post(&url)
                        .bearer_auth(KEY)
                        .json(&json!({"model": "m1", "messages": [{"role": "user", "content": "hi"}]}))
                        .send()
                        .await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    gw.signal("KILL");
    assert!(gw.wait(Duration::from_secs(5)).await.is_some());
    for t in traffic {
        t.abort();
    }

    let db = rusqlite::Connection::open(gw.data_dir.join("logs.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let rows: i64 = db
        .query_row("SELECT count(*) FROM requests", [], |r| r.get(0))
        .unwrap();
    assert!(
        rows >= settled as i64,
        "{rows} rows after kill -9, {settled} requests answered a second before it"
    );
    let orphans: i64 = db
        .query_row(
            "SELECT count(*) FROM attempts WHERE request_id NOT IN (SELECT id FROM requests)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
}

/// One request of each protocol, plain and streamed, natively and converted: the row holds the
/// tokens each upstream reported, in one meaning (input counts cached tokens too).
/// POSTs `body` to `path` with the client key in each protocol's header; answers the body of
/// the 200 it must get.
async fn post_ok(gw: &Gateway, path: &str, body: &Value) -> String {
    let r = http()
        .post(format!("{}{path}", gw.url))
        .bearer_auth(KEY)
        .header("x-api-key", KEY)
        .header("x-goog-api-key", KEY)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path} {body}");
    r.text().await.unwrap()
}

/// One upstream that speaks every protocol, a unified model on it, and one converted to
/// Anthropic; `head` goes first (a `[logs]` section).
fn all_protocols(url: &str, head: &str) -> String {
    format!(
        r#"{head}
[[providers]]
name = "all"
base_url = "{url}"
api_key = "sk-upstream-secret-0000000000"
protocols = ["openai", "anthropic", "gemini"]
models = ["m1"]

[[models]]
name = "m1"

[[models]]
name = "via-anthropic"
include = ["all/m1"]
protocol = "anthropic"

[[client_keys]]
name = "logged"
key = "{KEY}"
"#
    )
}

#[tokio::test]
async fn every_protocol_leaves_the_tokens_its_upstream_reported() {
    let mock = Mock::start().await;
    let config = all_protocols(&mock.url(), "");
    let (gw, _dir) = start_admin(&config);
    let token = admin_token(&gw).await;
    let tools =
        json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    let chat = |model: &str, stream: bool| {
        json!({"model": model, "stream": stream, "tools": tools,
            "messages": [{"role": "user", "content": "hi"}]})
    };
    let messages = |stream: bool| {
        json!({"model": "m1", "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]})
    };
    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let responses = |stream: bool| json!({"model": "m1", "input": "hi", "stream": stream});
    // (path, body, input, output, cache read): the mocks' own usage objects.
    let cases = [
        ("/v1/chat/completions", chat("m1", false), 11, 7, 3),
        ("/v1/chat/completions", chat("m1", true), 11, 7, 3),
        (
            "/v1/chat/completions",
            chat("via-anthropic", false),
            11,
            7,
            3,
        ),
        (
            "/v1/chat/completions",
            chat("via-anthropic", true),
            11,
            7,
            3,
        ),
        ("/v1/messages", messages(false), 11, 7, 3),
        ("/v1/messages", messages(true), 11, 7, 3),
        ("/v1/responses", responses(false), 5, 3, 0),
        ("/v1/responses", responses(true), 5, 3, 0),
        (
            "/v1beta/models/m1:generateContent",
            gemini.clone(),
            11,
            7,
            3,
        ),
        (
            "/v1beta/models/m1:streamGenerateContent?alt=sse",
            gemini,
            11,
            7,
            3,
        ),
        (
            "/v1/embeddings",
            json!({"model": "m1", "input": "hi"}),
            2,
            0,
            0,
        ),
    ];
    for (path, body, ..) in &cases {
        let text = post_ok(&gw, path, body).await;
        assert!(!text.is_empty(), "{path}");
    }
    let page = logs_until(&gw, &token, "", cases.len()).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), cases.len(), "{page}");
    // Newest first.
    for (row, (path, body, input, output, cache_read)) in items.iter().rev().zip(&cases) {
        let what = format!("{path} stream={} {row}", body["stream"]);
        assert_eq!(row["input_tokens"], *input, "{what}");
        assert_eq!(row["output_tokens"], *output, "{what}");
        assert_eq!(row["cache_read_tokens"], *cache_read, "{what}");
        assert_eq!(row["tokens_estimated"], false, "{what}");
    }
}

/// With `[logs] capture_bodies`, each request keeps its body and its answer, a stream as the
/// final message in the client's protocol, each cut to `body_max_kb` with a mark; never a key.
/// Off (the default), nothing is kept.
#[tokio::test]
async fn captured_bodies_keep_the_request_and_the_reassembled_answer() {
    let mock = Mock::start().await;
    let config = all_protocols(
        &mock.url(),
        "[logs]\ncapture_bodies = true\nbody_max_kb = 1\n",
    );
    let (gw, _dir) = start_admin(&config);
    let token = admin_token(&gw).await;
    let chat = |model: &str, stream: bool, text: &str| json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]});
    let long = "y".repeat(3000);
    // (path, body, what the kept answer is)
    let cases = [
        (
            "/v1/chat/completions",
            chat("m1", false, "hi-0"),
            "chat.completion",
        ),
        (
            "/v1/chat/completions",
            chat("m1", true, "hi-1"),
            "chat.completion",
        ),
        (
            "/v1/chat/completions",
            chat("via-anthropic", true, "hi-2"),
            "chat.completion",
        ),
        (
            "/v1/messages",
            json!({"model": "m1", "max_tokens": 64, "stream": true,
                "messages": [{"role": "user", "content": "hi-3"}]}),
            "message",
        ),
        (
            "/v1/responses",
            json!({"model": "m1", "input": "hi-4", "stream": true}),
            "response",
        ),
        (
            "/v1beta/models/m1:streamGenerateContent?alt=sse",
            json!({"contents": [{"role": "user", "parts": [{"text": "hi-5"}]}]}),
            "gemini",
        ),
        (
            "/v1/chat/completions",
            chat("m1", false, &long),
            "chat.completion",
        ),
    ];
    for (path, body, _) in &cases {
        post_ok(&gw, path, body).await;
    }
    let page = logs_until(&gw, &token, "", cases.len()).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), cases.len(), "{page}");
    for (i, (row, (path, _, kind))) in items.iter().rev().zip(&cases).enumerate() {
        let one: Value = admin(&gw, &token, "GET", &format!("/logs/{}", row["id"]), None)
            .await
            .json()
            .await
            .unwrap();
        let bodies = &one["bodies"];
        let text = bodies.to_string();
        assert!(
            !text.contains(KEY) && !text.contains("sk-upstream-secret"),
            "{text}"
        );
        let answer = &bodies["response"];
        let what = format!("{path} #{i}: {bodies}");
        match *kind {
            "chat.completion" => {
                assert_eq!(answer["object"], "chat.completion", "{what}");
                assert!(
                    answer["choices"][0]["message"]["content"].is_string(),
                    "{what}"
                );
            }
            "message" => {
                assert_eq!(answer["type"], "message", "{what}");
                assert!(answer["content"][0]["text"].is_string(), "{what}");
            }
            "response" => assert_eq!(answer["object"], "response", "{what}"),
            _ => assert!(
                answer["candidates"][0]["content"]["parts"].is_array(),
                "{what}"
            ),
        }
        if i < 6 {
            assert!(text.contains(&format!("hi-{i}")), "{what}");
        } else {
            // 3 KB asked, 1 KB kept: cut, with a mark that says how much went.
            let kept = bodies["request"].as_str().unwrap();
            assert!(kept.len() < 1100, "{what}");
            assert!(kept.contains("…[truncated: "), "{what}");
        }
    }
    // The text filter looks in the bodies too.
    let found = logs_until(&gw, &token, "?text=hi-3", 1).await;
    let found = found["items"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], items[cases.len() - 1 - 3]["id"]);

    // The gateway's own answer (no route for the model) is kept as the answer given.
    let r = http()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", KEY)
        .json(&json!({"model": "no-such-model", "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi-404"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let sent: Value = r.json().await.unwrap();
    let page = logs_until(&gw, &token, "?status=4xx", 1).await;
    let id = &page["items"][0]["id"];
    let one: Value = admin(&gw, &token, "GET", &format!("/logs/{id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["bodies"]["response"], sent, "{one}");
    assert!(
        one["bodies"]["request"].to_string().contains("hi-404"),
        "{one}"
    );
}

/// A client key's own `capture_bodies` wins over `[logs]`: kept for it with the setting off,
/// and settable through the admin API, listed and exported.
#[tokio::test]
async fn a_client_keys_own_body_capture_wins() {
    let mock = Mock::start().await;
    let on_key = "sk-sb-request-log-bodies-on-0";
    let config = format!(
        "{}\n[[client_keys]]\nname = \"kept\"\nkey = \"{on_key}\"\ncapture_bodies = true\n",
        all_protocols(&mock.url(), "")
    );
    let (gw, _dir) = start_admin(&config);
    let token = admin_token(&gw).await;
    for key in [on_key, KEY] {
        let r = http()
            .post(format!("{}/chat/completions", gw.v1()))
            .bearer_auth(key)
            .json(&json!({"model": "m1", "messages": [{"role": "user", "content": format!("from {key}")}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let page = logs_until(&gw, &token, "", 2).await;
    for row in page["items"].as_array().unwrap() {
        let one: Value = admin(&gw, &token, "GET", &format!("/logs/{}", row["id"]), None)
            .await
            .json()
            .await
            .unwrap();
        match row["client_key"].as_str() {
            Some("kept") => assert!(
                one["bodies"]["request"].to_string().contains(on_key),
                "the prompt names the key: {one}"
            ),
            _ => assert_eq!(one["bodies"], Value::Null, "{one}"),
        }
    }
    let r = admin(
        &gw,
        &token,
        "POST",
        "/client-keys",
        Some(json!({"name": "never", "capture_bodies": false})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let keys: Value = admin(&gw, &token, "GET", "/client-keys", None)
        .await
        .json()
        .await
        .unwrap();
    let setting = |name: &str| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .map(|k| k["capture_bodies"].clone())
    };
    assert_eq!(setting("kept"), Some(json!(true)), "{keys}");
    assert_eq!(setting("never"), Some(json!(false)), "{keys}");
    assert_eq!(setting("logged"), Some(Value::Null), "{keys}");
    let export = admin(&gw, &token, "GET", "/export", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(export.contains("capture_bodies = false"), "{export}");
    assert!(export.contains("capture_bodies = true"), "{export}");
}

/// `GET /api/logs/live` sends each request once it is written, with `/api/logs`' filters.
#[tokio::test]
async fn the_live_tail_follows_new_requests_with_filters() {
    use futures_util::StreamExt;
    let bad = Mock::start().await;
    let good = Mock::start().await;
    let (gw, _dir) = start_admin(&config(&bad.url(), &good.url()));
    let token = admin_token(&gw).await;
    let r = admin(&gw, &token, "GET", "/logs/live?status=3xx", None).await;
    assert_eq!(r.status(), 422, "a malformed filter is named");
    let live = http()
        .get(format!("{}/api/logs/live?status=5xx", gw.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    assert!(
        live.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut events = live.bytes_stream();
    // A request that succeeds (filtered out), then one that fails on both providers.
    assert_eq!(chat(&gw).await.status(), 200);
    let down = || Reply::status(500, r#"{"error":{"message":"down for the tail"}}"#);
    bad.script([down()]);
    good.script([down()]);
    let sent = Instant::now();
    assert!(chat(&gw).await.status().is_server_error());
    let mut text = String::new();
    let event = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(chunk) = events.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if let Some(at) = text.find("event: request\ndata: ") {
                let rest = &text[at + "event: request\ndata: ".len()..];
                if let Some(end) = rest.find('\n') {
                    return serde_json::from_str::<Value>(&rest[..end]).unwrap();
                }
            }
        }
        panic!("the tail ended: {text}");
    })
    .await
    .unwrap_or_else(|_| panic!("no event within 3 s: {text}"));
    println!("live row after {:?}", sent.elapsed());
    assert!(
        event["status"].as_u64().unwrap() >= 500,
        "the 2xx was filtered out: {event}"
    );
    assert!(event["error"].is_string(), "{event}");
    let one = admin(&gw, &token, "GET", &format!("/logs/{}", event["id"]), None).await;
    assert_eq!(one.status(), 200, "its id opens it");
}

/// One chunk of an OpenAI chat stream; with `usage`, the `"usage": null` OpenAI adds to every
/// chunk once usage is asked for.
fn piece(content: &str, usage: bool) -> String {
    let mut c = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m1",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]});
    if usage {
        c["usage"] = Value::Null;
    }
    format!("data: {c}\n\n")
}

const USAGE_CHUNK: &str = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"m1\",\"choices\":[],\
    \"usage\":{\"prompt_tokens\":40,\"completion_tokens\":9,\"completion_tokens_details\":{\"reasoning_tokens\":4}}}\n\n";

/// Scripts `chunks` on the mock, streams a chat with `options` as its `stream_options`, and
/// returns the body the client received.
async fn stream_chat(gw: &Gateway, mock: &Mock, chunks: Vec<String>, options: Value) -> String {
    mock.script([Reply::Sse {
        chunks,
        gap: Duration::ZERO,
        drop_after: None,
    }]);
    let r = http()
        .post(format!("{}/chat/completions", gw.v1()))
        .bearer_auth(KEY)
        .json(
            &json!({"model": "m1", "stream": true, "stream_options": options,
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// A chat stream whose client did not ask for usage: the gateway asks the upstream for it,
/// logs it, and the client receives the very bytes it would have without the option.
#[tokio::test]
async fn a_chat_stream_is_asked_for_usage_and_the_client_gets_its_stream_unchanged() {
    let mock = Mock::start().await;
    let (gw, _dir) = start_admin(&config(&mock.url(), &mock.url()));
    let token = admin_token(&gw).await;
    let with_usage = vec![
        piece("Hel", true),
        piece("lo", true),
        USAGE_CHUNK.to_owned(),
        common::mock::DONE.to_owned(),
    ];
    let without: String = [
        piece("Hel", false),
        piece("lo", false),
        common::mock::DONE.into(),
    ]
    .concat();
    let body = stream_chat(
        &gw,
        &mock,
        with_usage,
        json!({"include_obfuscation": false}),
    )
    .await;
    assert_eq!(body, without);
    let sent = mock.requests().last().unwrap().json();
    assert_eq!(
        sent["stream_options"],
        json!({"include_obfuscation": false, "include_usage": true}),
        "the client's own options stay"
    );
    let page = logs_until(&gw, &token, "", 1).await;
    let row = &page["items"][0];
    assert_eq!(
        (
            &row["input_tokens"],
            &row["output_tokens"],
            &row["reasoning_tokens"]
        ),
        (&json!(40), &json!(9), &json!(4)),
        "{row}"
    );
    assert_eq!(row["tokens_estimated"], false);

    // Asked by the client, the usage chunk is its own and stays.
    let chunks = vec![
        piece("x", true),
        USAGE_CHUNK.to_owned(),
        common::mock::DONE.into(),
    ];
    let body = stream_chat(&gw, &mock, chunks, json!({"include_usage": true})).await;
    assert!(body.contains("\"prompt_tokens\":40"), "{body}");
}

/// A stream's time to first content counts past its preamble (the role-only chunk), which the
/// gateway holds; the attempt's first byte is the upstream's response head.
#[tokio::test]
async fn a_streams_time_to_first_content_is_past_its_preamble() {
    let mock = Mock::start().await;
    let (gw, _dir) = start_admin(&config(&mock.url(), &mock.url()));
    let token = admin_token(&gw).await;
    mock.script([Reply::Sse {
        chunks: vec![
            common::mock::role_chunk("m1"),
            common::mock::chunk("m1", "Hi"),
            common::mock::DONE.to_owned(),
        ],
        gap: Duration::from_millis(300),
        drop_after: None,
    }]);
    let r = http()
        .post(format!("{}/chat/completions", gw.v1()))
        .bearer_auth(KEY)
        .json(&json!({"model": "m1", "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Hi"));
    let page = logs_until(&gw, &token, "", 1).await;
    let row = &page["items"][0];
    let ttfc = row["ttfc_us"]
        .as_i64()
        .expect("a stream has a time to first content");
    assert!(ttfc >= 300_000, "{row}");
    assert!(ttfc <= row["latency_us"].as_i64().unwrap(), "{row}");
    let one: Value = admin(&gw, &token, "GET", &format!("/logs/{}", row["id"]), None)
        .await
        .json()
        .await
        .unwrap();
    let head = one["attempts"][0]["ttfb_us"].as_i64().unwrap();
    assert!(head < ttfc, "the head came before the content: {one}");
}

/// `logs.ask_usage = false`: the client's request goes as it came, and the stream's tokens
/// are estimated.
#[tokio::test]
async fn with_ask_usage_off_the_stream_options_are_the_clients_own() {
    let mock = Mock::start().await;
    let config = format!(
        "[logs]\nask_usage = false\n{}",
        config(&mock.url(), &mock.url())
    );
    let (gw, _dir) = start_admin(&config);
    let token = admin_token(&gw).await;
    let chunks = vec![piece("Hello there", false), common::mock::DONE.into()];
    stream_chat(&gw, &mock, chunks, json!({"include_obfuscation": false})).await;
    let sent = mock.requests().last().unwrap().json();
    assert_eq!(
        sent["stream_options"],
        json!({"include_obfuscation": false})
    );
    let page = logs_until(&gw, &token, "", 1).await;
    let row = &page["items"][0];
    assert_eq!(row["tokens_estimated"], true, "{row}");
    assert_eq!(
        row["output_tokens"], 3,
        "'Hello there' and a newline: {row}"
    );
}

/// An upstream that reports no usage: the row's tokens are counted here and marked so.
#[tokio::test]
async fn tokens_no_upstream_reported_are_estimated_and_marked() {
    let mock = Mock::start().await;
    let (gw, _dir) = start_admin(&config(&mock.url(), &mock.url()));
    let token = admin_token(&gw).await;
    mock.script([Reply::status(
        200,
        r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"one two three four"},"finish_reason":"stop"}]}"#,
    )]);
    assert_eq!(chat(&gw).await.status(), 200);
    let page = logs_until(&gw, &token, "", 1).await;
    let row = &page["items"][0];
    assert_eq!(row["tokens_estimated"], true, "{row}");
    assert_eq!(
        row["output_tokens"], 5,
        "'one two three four' and a newline: {row}"
    );
    assert!(row["input_tokens"].as_i64().unwrap() >= 1, "{row}");
    // A failed request used nothing the log can tell: no tokens, not zero.
    mock.script([
        Reply::status(500, r#"{"error":{"message":"down"}}"#),
        Reply::status(500, r#"{"error":{"message":"down"}}"#),
        Reply::status(500, r#"{"error":{"message":"down"}}"#),
    ]);
    let _ = chat(&gw).await;
    let page = logs_until(&gw, &token, "?status=5xx", 1).await;
    let row = &page["items"][0];
    assert!(row["input_tokens"].is_null(), "{row}");
}
