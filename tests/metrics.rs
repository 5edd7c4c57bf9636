//! `/metrics` scraped from the real `switchboard serve` after known traffic, read by
//! Prometheus' own OpenMetrics parser (Python's prometheus_client), and its counters checked
//! against what was sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Gateway;
use common::http;
use common::mock::{Mock, Reply};
use serde_json::Value;

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
"#
    )
}

/// The samples as the parser read them (it refuses a malformed text: the test fails).
fn parse(text: &str) -> Vec<Value> {
    let mut child = Command::new(crate::sdk_clients::python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/sdk/parse_metrics.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

/// The sum of the samples named `name` whose labels include `labels`.
fn sum(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][k] == *v))
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

async fn scrape(gw: &Gateway) -> String {
    let r = http()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    r.text().await.unwrap()
}

async fn chat(gw: &Gateway, model: &str) -> u16 {
    common::chat_status(gw, model, None).await
}

#[tokio::test]
async fn metrics_parse_and_count_the_traffic_sent() {
    let bad = Mock::start().await;
    let good = Mock::start().await;
    let (gw, _dir) = Gateway::start(&config(&bad.url(), &good.url()));
    bad.script([Reply::status(502, r#"{"error":{"message":"bad gateway"}}"#)]);
    // A failover (bad, then good), a request to good (bad's breaker is open), a model no
    // route has.
    assert_eq!(chat(&gw, "m1").await, 200);
    assert_eq!(chat(&gw, "m1").await, 200);
    assert_eq!(chat(&gw, "no-such-model-from-a-client").await, 404);

    // The writer counts within its 50 ms beat.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (text, samples) = loop {
        let text = scrape(&gw).await;
        let samples = parse(&text);
        if sum(&samples, "switchboard_requests_total", &[]) >= 3.0 || Instant::now() > deadline {
            break (text, samples);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let req = |labels: &[(&str, &str)]| sum(&samples, "switchboard_requests_total", labels);
    assert_eq!(req(&[]), 3.0, "{text}");
    assert_eq!(
        req(&[
            ("model", "m1"),
            ("provider", "good"),
            ("status_class", "2xx")
        ]),
        2.0,
        "{text}"
    );
    assert_eq!(
        req(&[
            ("model", ""),
            ("status_class", "4xx"),
            ("error_code", "model_not_found")
        ]),
        1.0,
        "{text}"
    );
    let attempts = |labels: &[(&str, &str)]| sum(&samples, "switchboard_attempts_total", labels);
    assert_eq!(
        attempts(&[("provider", "bad"), ("status_class", "5xx")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        attempts(&[("provider", "good"), ("status_class", "2xx")]),
        2.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &samples,
            "switchboard_failovers_total",
            &[("model", "m1"), ("provider", "good")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &samples,
            "gen_ai_server_request_duration_seconds_count",
            &[("gen_ai_request_model", "m1")]
        ),
        2.0,
        "{text}"
    );
    // The mock reports 5 prompt and 3 completion tokens per answer.
    assert_eq!(
        sum(
            &samples,
            "gen_ai_client_token_usage_total",
            &[("gen_ai_token_type", "input")]
        ),
        10.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &samples,
            "gen_ai_client_token_usage_total",
            &[("gen_ai_token_type", "output")]
        ),
        6.0,
        "{text}"
    );
    assert!(
        samples
            .iter()
            .any(|s| s["name"] == "switchboard_breaker_state"
                && s["labels"]["provider"] == "bad"
                && s["value"] == 2.0),
        "bad's breaker is open: {text}"
    );
    assert_eq!(
        sum(&samples, "switchboard_in_flight_requests", &[]),
        0.0,
        "{text}"
    );
    assert_eq!(
        sum(&samples, "switchboard_log_dropped_records_total", &[]),
        0.0,
        "{text}"
    );
    // A name a client made up never becomes a label.
    assert!(!text.contains("no-such-model-from-a-client"), "{text}");

    // Web pages may not read it: a foreign Origin, a foreign Host.
    let r = http()
        .get(format!("{}/metrics", gw.url))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http()
        .get(format!("{}/metrics", gw.url))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// Beyond loopback the scrape needs the token from `SWITCHBOARD_METRICS_TOKEN`, sent as a
/// bearer; without the variable there is no way in at all.
#[tokio::test]
async fn beyond_loopback_metrics_need_the_token() {
    let mock = Mock::start().await;
    let cfg = config(&mock.url(), &mock.url());
    let wide = |l: common::Launch, token: Option<&str>| {
        let mut l = l.env("SWITCHBOARD_ADMIN_PASSWORD", "a-long-admin-password");
        l.args.extend(["--host".into(), "0.0.0.0".into()]);
        match token {
            Some(t) => l.env("SWITCHBOARD_METRICS_TOKEN", t),
            None => l,
        }
    };
    let get = |gw: &Gateway, bearer: Option<&str>| {
        let mut r = http().get(format!("{}/metrics", gw.url));
        if let Some(b) = bearer {
            r = r.header("authorization", format!("Bearer {b}"));
        }
        r.send()
    };

    let (gw, _dir) = Gateway::start_with(&cfg, |l| wide(l, Some("scrape-token-123")));
    let r = get(&gw, None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("SWITCHBOARD_METRICS_TOKEN")
    );
    assert_eq!(
        get(&gw, Some("scrape-token-12")).await.unwrap().status(),
        401
    );
    assert_eq!(
        get(&gw, Some("scrape-token-1234")).await.unwrap().status(),
        401
    );
    let r = get(&gw, Some("scrape-token-123")).await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!parse(&text).is_empty(), "{text}");
    // The token never shows in what the gateway prints.
    assert!(!gw.stderr().contains("scrape-token-123"), "{}", gw.stderr());
    drop(gw);

    let (gw, _dir) = Gateway::start_with(&cfg, |l| wide(l, None));
    let r = get(&gw, Some("anything")).await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("needs a token"));
}
