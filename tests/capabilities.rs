//! Requests matched to what each candidate can take, through `serve`: images only where a
//! model takes images, a long prompt only where it fits, tools only where they are called; a
//! request nothing can take is a clear error in its protocol; `[[capabilities]]` entries come
//! from the file and `/api/capabilities`, and persist.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use crate::common;
use common::mock::Mock;
use common::{Gateway, admin, admin_token, http, start_admin};

/// `text` (weighing a million times more) has `house-text`, which takes no images and holds
/// 2,000 tokens; `seeing` has `house-vision`, which takes images and holds 200,000. `m` routes
/// to both, `t` to `house-text` only.
fn config(text: &Mock, seeing: &Mock) -> String {
    format!(
        r#"
[[providers]]
name = "text"
base_url = "{}"
weight = 1000000
models = ["house-text"]

[[providers]]
name = "seeing"
base_url = "{}"
models = ["house-vision"]

[[models]]
name = "m"
include = ["text/house-text", "seeing/house-vision"]

[[models]]
name = "t"
include = ["text/house-text"]

[[capabilities]]
model = "house-text"
vision = false
tools = false
context_window = 2000

[[capabilities]]
provider = "seeing"
model = "house-*"
vision = true
context_window = 200000
"#,
        text.url(),
        seeing.url()
    )
}

fn image_chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{}", "iVBORw0KGgo".repeat(200))}}
    ]}]})
}

async fn chat(gw: &Gateway, body: &Value) -> reqwest::Response {
    http()
        .post(format!("{}/chat/completions", gw.v1()))
        .json(body)
        .send()
        .await
        .unwrap()
}

fn provider(r: &reqwest::Response) -> String {
    r.headers()["x-switchboard-provider"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn each_request_goes_only_where_it_can_be_served() {
    let (text, seeing) = (Mock::start().await, Mock::start().await);
    let (gw, _dir) = start_admin(&config(&text, &seeing));
    let plain = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..3 {
        let r = chat(&gw, &plain).await;
        assert_eq!((r.status().as_u16(), provider(&r)), (200, "text".into()));
    }
    for _ in 0..5 {
        let r = chat(&gw, &image_chat("m")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            provider(&r),
            "seeing",
            "an image goes where images are taken"
        );
    }
    // About 5,000 tokens: too many for house-text's 2,000.
    let long = json!({"model": "m", "messages": [{"role": "user", "content": "many words ".repeat(1800)}]});
    let r = chat(&gw, &long).await;
    assert_eq!((r.status().as_u16(), provider(&r)), (200, "seeing".into()));
    let tools = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]});
    let r = chat(&gw, &tools).await;
    assert_eq!((r.status().as_u16(), provider(&r)), (200, "seeing".into()));
    assert_eq!(text.hits(), 3, "no attempt reached what could not take it");
    // The route preview says so before anything is sent.
    let token = admin_token(&gw).await;
    let p: Value = admin(
        &gw,
        &token,
        "POST",
        "/route/preview",
        Some(json!({"request": image_chat("m")})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(p["images"], true, "{p}");
    assert_eq!(p["order"], json!(["seeing/house-vision"]), "{p}");
    let text_line = p["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["provider"] == "text")
        .cloned()
        .unwrap();
    assert_eq!(text_line["why"], "takes no image input", "{p}");

    // Nothing under `t` takes images: a 400 that says why, nothing sent upstream.
    let r = chat(&gw, &image_chat("t")).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("text/house-text takes no image input"), "{e}");
    assert_eq!(e["error"]["type"], "invalid_request_error", "{e}");
    // The same in Anthropic's protocol.
    let r = http()
        .post(format!("{}/messages", gw.v1()))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "t", "max_tokens": 16, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo"}}
        ]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["type"], "error", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no image input"),
        "{e}"
    );
    let r = chat(&gw, &json!({"model": "t", "messages": [{"role": "user", "content": "many words ".repeat(1800)}]})).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("holds 2000 tokens"),
        "{e}"
    );
    assert_eq!(text.hits(), 3);
    assert_eq!(seeing.hits(), 7);
}

#[tokio::test]
async fn capability_entries_are_managed_through_the_admin_api_and_persist() {
    let (text, seeing) = (Mock::start().await, Mock::start().await);
    let (gw, dir) = start_admin(&config(&text, &seeing));
    let token = admin_token(&gw).await;
    let view: Value = admin(&gw, &token, "GET", "/capabilities", None)
        .await
        .json()
        .await
        .unwrap();
    let pair = |v: &Value, model: &str| {
        v["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["model"] == model)
            .cloned()
            .unwrap_or_else(|| panic!("{v}"))
    };
    assert_eq!(pair(&view, "house-text")["vision"], false, "{view}");
    assert_eq!(pair(&view, "house-vision")["context_window"], 200000);
    assert_eq!(view["entries"].as_array().unwrap().len(), 2);

    // A bad entry is refused with its field.
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/capabilities",
        Some(json!({"entries": [{"model": "x", "context_window": 0}]})),
    )
    .await;
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert!(
        e.to_string().contains("capabilities[0].context_window"),
        "{e}"
    );

    // house-text takes images after all: images may go there now (it weighs more).
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/capabilities",
        Some(json!({"entries": [{"model": "house-text", "vision": true}]})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = chat(&gw, &image_chat("t")).await;
    assert_eq!((r.status().as_u16(), provider(&r)), (200, "text".into()));
    let export = admin(&gw, &token, "GET", "/export", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(export.contains("[[capabilities]]"), "{export}");
    assert!(export.contains("vision = true"), "{export}");
    drop(gw);

    // Restarted on the same data folder (the file's entries imported again over it): the
    // entry set through the API is still there.
    let data = dir.path().join("data");
    let again = common::spawn(
        common::Launch {
            args: vec![
                "serve".into(),
                "--data-dir".into(),
                data.display().to_string(),
            ],
            env: vec![(
                "SWITCHBOARD_ADMIN_PASSWORD".into(),
                common::ADMIN_PASSWORD.into(),
            )],
        },
        &data,
    )
    .unwrap_or_else(|(s, e)| panic!("{s}: {e}"));
    let token = admin_token(&again).await;
    let view: Value = admin(&again, &token, "GET", "/capabilities", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        view["entries"],
        json!([{"model": "house-text", "vision": true}]),
        "{view}"
    );
}

/// The ready-made groups over the user's own providers: each holds what qualifies by price
/// and capabilities, is listed in `/v1/models` when it has a candidate, and routes there.
#[tokio::test]
async fn auto_groups_route_by_price_and_capability() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    let config = format!(
        r#"
[[providers]]
name = "a"
base_url = "{}"
models = ["vis-1", "txt-1", "text-embedding-3-small"]

[[providers]]
name = "b"
base_url = "{}"
models = ["free-1", "long-1"]

[[capabilities]]
model = "vis-1"
vision = true

[[capabilities]]
model = "txt-1"
vision = false
context_window = 8000

[[capabilities]]
model = "long-1"
context_window = 1000000

[[prices]]
provider = "b"
model = "free-1"
input = 0.0
output = 0.0

[[prices]]
provider = "a"
model = "txt-1"
input = 1.0
output = 2.0
"#,
        a.url(),
        b.url()
    );
    let (gw, _dir) = start_admin(&config);
    let ids = common::model_ids(&gw, None).await;
    for g in [
        "auto:free",
        "auto:cheap",
        "auto:fast",
        "auto:vision",
        "auto:long",
    ] {
        assert!(ids.iter().any(|m| m == g), "{g} in {ids:?}");
    }
    assert!(
        !ids.iter().any(|m| m == "auto:tools"),
        "no model is known to call tools: {ids:?}"
    );

    let upstream_model = |m: &Mock| m.requests().last().unwrap().json()["model"].clone();
    let r = chat(&gw, &image_chat("auto:vision")).await;
    assert_eq!((r.status().as_u16(), provider(&r)), (200, "a".into()));
    assert_eq!(upstream_model(&a), "vis-1");
    let hi = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    for (group, want) in [
        ("auto:free", "free-1"),
        ("auto:cheap", "free-1"),
        ("auto:long", "long-1"),
    ] {
        let r = chat(&gw, &hi(group)).await;
        assert_eq!(
            (r.status().as_u16(), provider(&r)),
            (200, "b".into()),
            "{group}"
        );
        assert_eq!(upstream_model(&b), want, "{group}");
    }
    for _ in 0..20 {
        assert_eq!(chat(&gw, &hi("auto:fast")).await.status(), 200);
    }
    let sent: Vec<Value> = a
        .requests()
        .iter()
        .chain(b.requests().iter())
        .map(|r| r.json()["model"].clone())
        .collect();
    assert!(
        !sent.contains(&json!("text-embedding-3-small")),
        "an embedding model answers no chat: {sent:?}"
    );
    // The groups follow the prices: free-1 priced, auto:free has nothing left.
    let token = admin_token(&gw).await;
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/prices",
        Some(json!({"entries": [
            {"provider": "b", "model": "free-1", "input": 3.0, "output": 3.0},
            {"provider": "a", "model": "txt-1", "input": 1.0, "output": 2.0}
        ]})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = chat(&gw, &hi("auto:free")).await;
    assert_eq!(r.status(), 404, "no free model left");
    // Now txt-1 (1 + 2 USD per million tokens) is the cheapest priced chat model.
    let r = chat(&gw, &hi("auto:cheap")).await;
    assert_eq!((r.status().as_u16(), provider(&r)), (200, "a".into()));
    assert_eq!(upstream_model(&a), "txt-1");
}

#[tokio::test]
async fn a_model_defined_by_filters_takes_what_passes_them() {
    let (text, seeing) = (Mock::start().await, Mock::start().await);
    // house-text takes no images and holds 2,000 tokens; house-vision takes images and holds
    // 200,000; house-text is priced, house-vision not.
    let more = r#"
[[models]]
name = "my-vision"
group = { vision = true }
strategy = "cost"

[[models]]
name = "long-ones"
group = { min_context = 100000, providers = ["seeing", "text"], pattern = "house-*" }

[[models]]
name = "cheap-text"
group = { max_price = 10.0, vision = false }

[[models]]
name = "free-only"
group = { max_price = 0 }

[[prices]]
provider = "text"
model = "house-text"
input = 1.0
output = 2.0
"#;
    let (gw, _dir) = start_admin(&format!("{}{more}", config(&text, &seeing)));
    let hi = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    for (model, want) in [
        ("my-vision", "seeing"),
        ("long-ones", "seeing"),
        ("cheap-text", "text"),
    ] {
        let r = chat(&gw, &hi(model)).await;
        assert_eq!(
            (r.status().as_u16(), provider(&r)),
            (200, want.to_owned()),
            "{model}"
        );
    }
    let r = chat(&gw, &image_chat("my-vision")).await;
    assert_eq!((r.status().as_u16(), provider(&r)), (200, "seeing".into()));
    // Nothing passes: said so, not "no such model".
    let r = chat(&gw, &hi("free-only")).await;
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(body.contains("free-only"), "{body}");
    let ids = common::model_ids(&gw, None).await;
    for m in ["my-vision", "long-ones", "cheap-text", "free-only"] {
        assert!(ids.iter().any(|i| i == m), "{m} in {ids:?}");
    }
    let token = admin_token(&gw).await;
    let models: Value = admin(&gw, &token, "GET", "/models", None)
        .await
        .json()
        .await
        .unwrap();
    let long = models
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "long-ones")
        .unwrap();
    assert_eq!(long["group"]["min_context"], 100000, "{long}");
    let groups: Value = admin(&gw, &token, "GET", "/groups", None)
        .await
        .json()
        .await
        .unwrap();
    let mine = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "long-ones")
        .unwrap_or_else(|| panic!("{groups}"));
    assert_eq!(mine["ready_made"], false);
    // The form's live preview of filters: what passes now.
    let p: Value = admin(
        &gw,
        &token,
        "POST",
        "/models/preview",
        Some(json!({"name": "x", "group": {"vision": true}})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        p["candidates"],
        json!([{"provider": "seeing", "model": "house-vision"}]),
        "{p}"
    );
    assert_eq!(mine["candidates"], json!(["seeing/house-vision"]), "{mine}");
    assert!(
        groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "auto:vision" && g["ready_made"] == true),
        "{groups}"
    );
    // A group and rules at once is refused, with the field.
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/models/both",
        Some(json!({"group": {"vision": true}, "include": ["text/house-text"]})),
    )
    .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("group"));
    // Changed through the API: live at once.
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/models/free-only",
        Some(json!({"group": {"max_price": 5.0}})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = chat(&gw, &hi("free-only")).await;
    assert_eq!((r.status().as_u16(), provider(&r)), (200, "text".into()));
}
