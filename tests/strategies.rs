//! Each routing strategy end to end: `switchboard serve` over mock upstreams of different
//! speeds, prices and priorities, counting which upstream each request reached.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::common;
use common::mock::{Mock, Reply};
use common::{ADMIN_PASSWORD, Gateway, admin, admin_token, chat_status};

/// Providers `a`, `b`, ... (one per mock, each with `gpt-4o`), and `gpt-4o` chosen by
/// `strategy`. `extra` is per provider (its `priority`, say), then any more of the file.
fn config(mocks: &[&Mock], per_provider: &[&str], strategy: &str, more: &str) -> String {
    let mut out = String::new();
    for (i, m) in mocks.iter().enumerate() {
        let name = char::from(b'a' + u8::try_from(i).unwrap());
        out.push_str(&format!(
            "[[providers]]\nname = \"{name}\"\nbase_url = \"{}/v1\"\nmodels = [\"gpt-4o\"]\n{}\n\n",
            m.url(),
            per_provider.get(i).copied().unwrap_or("")
        ));
    }
    out.push_str(&format!(
        "[[models]]\nname = \"gpt-4o\"\nstrategy = \"{strategy}\"\n\n{more}"
    ));
    out
}

fn start(config: &str) -> (Gateway, tempfile::TempDir) {
    Gateway::start_with(config, |l| {
        l.env("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD)
    })
}

async fn send(gw: &Gateway, n: usize) {
    for _ in 0..n {
        assert_eq!(chat_status(gw, "gpt-4o", None).await, 200);
    }
}

#[tokio::test]
async fn priority_uses_the_second_tier_only_while_the_first_is_down() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    // b weighs far more, but is the second tier.
    let (gw, _dir) = start(&config(
        &[&a, &b],
        &["priority = 0", "priority = 1\nweight = 100"],
        "priority",
        "",
    ));
    send(&gw, 20).await;
    assert_eq!((a.hits(), b.hits()), (20, 0));
    let token = admin_token(&gw).await;
    // The configuration says what it was given.
    let providers: serde_json::Value = admin(&gw, &token, "GET", "/providers", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(providers[1]["priority"], 1, "{providers}");
    let models: serde_json::Value = admin(&gw, &token, "GET", "/models", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(models[0]["strategy"], "priority", "{models}");

    assert_eq!(
        admin(&gw, &token, "POST", "/providers/a/pause", None)
            .await
            .status(),
        204
    );
    send(&gw, 5).await;
    assert_eq!(
        (a.hits(), b.hits()),
        (20, 5),
        "tier 2 while tier 1 is paused"
    );
    assert_eq!(
        admin(&gw, &token, "POST", "/providers/a/resume", None)
            .await
            .status(),
        204
    );
    send(&gw, 5).await;
    assert_eq!((a.hits(), b.hits()), (25, 5), "back to tier 1");
    // A failing first tier fails over to the second within the request.
    a.script([Reply::status(500, r#"{"error":{"message":"down"}}"#)]);
    send(&gw, 1).await;
    assert_eq!((a.hits(), b.hits()), (26, 6));
}

#[tokio::test]
async fn round_robin_takes_each_provider_in_turn() {
    let (a, b, c) = (
        Mock::start().await,
        Mock::start().await,
        Mock::start().await,
    );
    let (gw, _dir) = start(&config(&[&a, &b, &c], &[], "round_robin", ""));
    let mut order = Vec::new();
    for _ in 0..6 {
        let before = [a.hits(), b.hits(), c.hits()];
        send(&gw, 1).await;
        let after = [a.hits(), b.hits(), c.hits()];
        order.push((0..3).find(|&i| after[i] > before[i]).unwrap());
    }
    assert_eq!(order[..3], order[3..], "the same turn again: {order:?}");
    let mut first = order[..3].to_vec();
    first.sort_unstable();
    assert_eq!(first, [0, 1, 2], "each in turn: {order:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_sends_most_requests_to_the_faster_provider() {
    let (fast, slow) = (Mock::start().await, Mock::start().await);
    slow.script((0..60).map(|_| Reply::delayed(Duration::from_millis(150))));
    let (gw, _dir) = start(&config(&[&fast, &slow], &[], "latency", ""));
    send(&gw, 40).await;
    let (f, s) = (fast.hits(), slow.hits());
    assert!(s >= 1, "each is measured: fast {f}, slow {s}");
    assert!(f >= 32, "the faster gets most: fast {f}, slow {s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_busy_spreads_requests_in_flight() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    for m in [&a, &b] {
        m.script((0..10).map(|_| Reply::delayed(Duration::from_millis(400))));
    }
    // By weight nearly all would go to a.
    let (gw, _dir) = start(&config(
        &[&a, &b],
        &["weight = 100", "weight = 1"],
        "least_busy",
        "",
    ));
    let url = format!("{}/chat/completions", gw.v1());
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            // Staggered, so each choice sees the ones before it in flight.
            tokio::time::sleep(Duration::from_millis(20 * i)).await;
            let body = serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
            common::http().post(url).json(&body).send().await.unwrap().status().as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let (x, y) = (a.hits(), b.hits());
    assert!(x >= 3 && y >= 3, "spread over both: a {x}, b {y}");
}

/// Effective prices (input plus output): a 20, b 3, c 6.
const PRICES: &str = r#"
[[prices]]
provider = "a"
model = "gpt-4o"
input = 5.0
output = 15.0

[[prices]]
provider = "b"
model = "gpt-4o"
input = 1.0
output = 2.0

[[prices]]
provider = "c"
model = "gpt-4o"
input = 2.0
output = 4.0
"#;

#[tokio::test]
async fn cost_picks_the_cheapest_healthy_provider() {
    let (a, b, c) = (
        Mock::start().await,
        Mock::start().await,
        Mock::start().await,
    );
    let (gw, _dir) = start(&config(&[&a, &b, &c], &[], "cost", PRICES));
    send(&gw, 10).await;
    assert_eq!((a.hits(), b.hits(), c.hits()), (0, 10, 0));
    let token = admin_token(&gw).await;
    assert_eq!(
        admin(&gw, &token, "POST", "/providers/b/pause", None)
            .await
            .status(),
        204
    );
    send(&gw, 5).await;
    assert_eq!(
        (a.hits(), b.hits(), c.hits()),
        (0, 10, 5),
        "the next cheapest"
    );
    // The export keeps the strategy.
    let export = admin(&gw, &token, "GET", "/export", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(export.contains("strategy = \"cost\""), "{export}");
}

/// The provider's and `gpt-4o`'s health scores in `/api/status`.
async fn scores(gw: &Gateway, token: &str, provider: &str) -> (f64, Option<f64>) {
    let status: serde_json::Value = admin(gw, token, "GET", "/status", None)
        .await
        .json()
        .await
        .unwrap();
    let p = status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == provider)
        .unwrap_or_else(|| panic!("{status}"));
    (
        p["score"].as_f64().unwrap(),
        p["models"][0]["health"]["score"].as_f64(),
    )
}

#[tokio::test]
async fn a_failing_provider_gets_fewer_requests_before_its_breaker_opens() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    // a answers 500 to everything, but its breaker would open only after 100 in a row.
    a.script((0..200).map(|_| Reply::status(500, r#"{"error":{"message":"boom"}}"#)));
    let (gw, _dir) = start(&config(
        &[&a, &b],
        &[],
        "weighted",
        "[routing]\nserver_error_threshold = 100\n",
    ));
    let token = admin_token(&gw).await;
    assert_eq!(
        scores(&gw, &token, "a").await,
        (1.0, Some(1.0)),
        "healthy at first"
    );
    // Every request is answered (by b, after a's 500 when a is tried first); equal weights
    // would send half of the first tries to a, its falling score sends far fewer.
    send(&gw, 100).await;
    assert_eq!(b.hits(), 100);
    assert!(
        (1..25).contains(&a.hits()),
        "a was tried first {} times in 100",
        a.hits()
    );
    let (provider, model) = scores(&gw, &token, "a").await;
    assert!(
        provider < 0.2 && model.unwrap() < 0.2,
        "{provider} {model:?}"
    );
    assert_eq!(scores(&gw, &token, "b").await, (1.0, Some(1.0)));
    // Resetting the breakers says the pair is fine: its score is whole again.
    let r = admin(
        &gw,
        &token,
        "POST",
        "/breakers/reset",
        Some(serde_json::json!({"provider": "a"})),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(scores(&gw, &token, "a").await, (1.0, Some(1.0)));
}

/// `POST /api/route/preview` says where the next request would go, and it goes there.
#[tokio::test]
async fn the_route_preview_says_where_the_next_request_goes() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    let (gw, _dir) = start(&config(
        &[&a, &b],
        &["priority = 0", "priority = 1\nweight = 100"],
        "priority",
        "",
    ));
    let token = admin_token(&gw).await;
    let body = serde_json::json!({"request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}});
    let preview = |gw: &Gateway, token: &str, body: serde_json::Value| {
        let (gw, token) = (gw.url.clone(), token.to_owned());
        async move {
            common::http()
                .post(format!("{gw}/api/route/preview"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let p: serde_json::Value = preview(&gw, &token, body.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p["route"], "gpt-4o");
    assert_eq!(p["strategy"], "priority");
    assert_eq!(p["order"], serde_json::json!(["a/gpt-4o"]), "{p}");
    let share = |p: &serde_json::Value, provider: &str| {
        p["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["provider"] == provider)
            .map(|c| c["share"].as_f64().unwrap())
    };
    assert_eq!(
        (share(&p, "a"), share(&p, "b")),
        (Some(1.0), Some(0.0)),
        "{p}"
    );
    send(&gw, 1).await;
    assert_eq!(
        (a.hits(), b.hits()),
        (1, 0),
        "the request followed the preview"
    );

    assert_eq!(
        admin(&gw, &token, "POST", "/providers/a/pause", None)
            .await
            .status(),
        204
    );
    let p: serde_json::Value = preview(&gw, &token, body.clone())
        .await
        .json()
        .await
        .unwrap();
    let a_line = p["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["provider"] == "a")
        .unwrap();
    assert_eq!(
        (a_line["usable"].clone(), a_line["why"].clone()),
        (false.into(), "paused".into())
    );
    assert_eq!(p["order"], serde_json::json!(["b/gpt-4o"]), "{p}");
    send(&gw, 1).await;
    assert_eq!(
        (a.hits(), b.hits()),
        (1, 1),
        "the request followed the preview"
    );
    assert_eq!(a.hits() + b.hits(), 2, "a preview sends nothing");

    // A name nothing takes, and a request without one.
    let r = preview(
        &gw,
        &token,
        serde_json::json!({"request": {"model": "nope"}}),
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = preview(&gw, &token, serde_json::json!({"request": {}})).await;
    assert_eq!(r.status(), 422);
    let r = preview(&gw, &token, serde_json::json!({"nonsense": 1})).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn sort_weighs_priority_and_cost_and_follows_a_change_of_factors() {
    let (a, b, c) = (
        Mock::start().await,
        Mock::start().await,
        Mock::start().await,
    );
    // Effective prices (input plus output): a 20, b 3, c 6; priorities a 0, b 1, c 0.
    let more =
        format!("sort = [{{ by = \"priority\" }}, {{ by = \"cost\", weight = 0.5 }}]\n{PRICES}");
    let (gw, _dir) = start(&config(
        &[&a, &b, &c],
        &["priority = 0", "priority = 1", "priority = 0"],
        "sort",
        &more,
    ));
    send(&gw, 6).await;
    // Scaled, priority [0, 1, 0] plus half of cost [1, 0, 0.18]: c.
    assert_eq!((a.hits(), b.hits(), c.hits()), (0, 0, 6));
    let token = admin_token(&gw).await;
    let preview: serde_json::Value = admin(
        &gw,
        &token,
        "POST",
        "/route/preview",
        Some(serde_json::json!({"request": {"model": "gpt-4o", "messages": []}})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(preview["strategy"], "sort");
    assert_eq!(
        preview["order"],
        serde_json::json!(["c/gpt-4o"]),
        "{preview}"
    );
    assert_eq!(
        admin(&gw, &token, "POST", "/providers/c/pause", None)
            .await
            .status(),
        204
    );
    send(&gw, 4).await;
    assert_eq!(
        (a.hits(), b.hits(), c.hits()),
        (4, 0, 6),
        "priority still counts double"
    );
    let models: serde_json::Value = admin(&gw, &token, "GET", "/models", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(models[0]["sort"][1]["weight"], 0.5, "{models}");
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/models/gpt-4o",
        Some(serde_json::json!({"strategy": "sort", "sort": [{"by": "cost"}]})),
    )
    .await;
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    send(&gw, 3).await;
    assert_eq!(
        (a.hits(), b.hits(), c.hits()),
        (4, 3, 6),
        "now the cheapest"
    );
    let bad = admin(
        &gw,
        &token,
        "PUT",
        "/models/gpt-4o",
        Some(serde_json::json!({"strategy": "sort", "sort": [{"by": "vibes"}]})),
    )
    .await;
    assert_eq!(bad.status(), 422);
    let bad = admin(
        &gw,
        &token,
        "PUT",
        "/models/gpt-4o",
        Some(serde_json::json!({"strategy": "cost", "sort": [{"by": "cost"}]})),
    )
    .await;
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("sort"));
}

#[tokio::test]
async fn what_if_replays_the_logged_requests_through_another_strategy() {
    let (a, b, c) = (
        Mock::start().await,
        Mock::start().await,
        Mock::start().await,
    );
    let (gw, _dir) = start(&config(&[&a, &b, &c], &[], "weighted", PRICES));
    send(&gw, 12).await;
    let token = admin_token(&gw).await;
    // Every row is in the log before the replay reads it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let page: serde_json::Value = admin(&gw, &token, "GET", "/logs?limit=50", None)
            .await
            .json()
            .await
            .unwrap();
        if page["items"].as_array().unwrap().len() >= 12 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = admin(
        &gw,
        &token,
        "POST",
        "/whatif",
        Some(serde_json::json!({"strategy": "cost", "days": 1})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let w: serde_json::Value = r.json().await.unwrap();
    assert_eq!(w["requests"], 12, "{w}");
    assert_eq!(w["strategy"], "cost");
    // Each answer is 5 input and 3 output tokens: at a 70e-6 USD, at b 11e-6, at c 22e-6.
    let (ha, hb, hc) = (a.hits() as f64, b.hits() as f64, c.hits() as f64);
    let actual = ha * 70e-6 + hb * 11e-6 + hc * 22e-6;
    let m = &w["models"][0];
    assert_eq!(m["model"], "gpt-4o");
    let close = |v: &serde_json::Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-9;
    assert!(close(&m["actual"]["cost_usd"], actual), "{m}");
    assert!(
        close(&m["replayed"]["cost_usd"], 12.0 * 11e-6),
        "all to b: {m}"
    );
    assert_eq!(m["moved"].as_f64().unwrap(), ha + hc, "{m}");
    assert!(m["replayed"]["latency_ms"].as_f64().is_some());
    for bad in [
        serde_json::json!({"strategy": "vibes"}),
        serde_json::json!({"strategy": "cost", "days": 0}),
        serde_json::json!({"strategy": "sort"}),
    ] {
        let r = admin(&gw, &token, "POST", "/whatif", Some(bad.clone())).await;
        assert_eq!(r.status(), 422, "{bad}");
    }
}
