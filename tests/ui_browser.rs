//! The admin UI in a real browser: `switchboard serve` serves it at /admin, Debian's Chromium
//! (headless, driven by tests/ui/admin.mjs through playwright-core) logs in, adds a provider and
//! a unified model with a live preview, pauses and resumes, creates a client key, changes a
//! setting and switches to 简体中文. Afterwards the admin API must show every change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use common::mock::{Mock, Reply};
use common::{ADMIN_PASSWORD, admin, admin_token, start_admin};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn get_json(gw: &common::Gateway, token: &str, path: &str) -> Value {
    admin(gw, token, "GET", path, None)
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_ui_manages_the_gateway_in_a_real_browser() {
    let ui = repo().join("tests/ui");
    assert!(
        ui.join("node_modules/playwright-core").is_dir(),
        "tests/ui/node_modules is missing: run `npm ci --prefix tests/ui` (scripts/test does)"
    );
    assert!(
        repo().join("ui/dist/index.html").is_file(),
        "ui/dist is missing: run scripts/build-ui (scripts/test does)"
    );

    let a = Mock::start().await;
    a.set_models(&["gpt-4o", "claude-opus-4-5", "house-model"]);
    // The browser's first chat request fails, so a breaker opens while the page watches.
    a.script([
        Reply::status(500, r#"{"error":{"message":"upstream exploded"}}"#),
        Reply::status(500, r#"{"error":{"message":"upstream exploded"}}"#),
    ]);
    let b = Mock::start().await;
    b.set_models(&[
        "claude-opus-4.5",
        "claude-opus-4-5-20251101",
        "claude-sonnet-4",
    ]);
    let config = format!(
        r#"
[[providers]]
name = "relay-a"
base_url = "{}/v1"
api_key = "sk-relay-a-secret-5555"
responses = false

[[models]]
name = "gpt-4o"

[[models]]
name = "house-model"

[logs]
capture_bodies = true
"#,
        a.url()
    );
    // No admin password: the browser's first visit chooses ADMIN_PASSWORD. A HOME of its own,
    // with a Claude Code file, for the Clients page to connect.
    let home = tempfile::tempdir().unwrap();
    let claude_file = home.path().join(".claude/settings.json");
    std::fs::create_dir_all(claude_file.parent().unwrap()).unwrap();
    let claude_text = "{\n  \"hooks\": {\"Stop\": []},\n  \"model\": \"opus\"\n}\n";
    std::fs::write(&claude_file, claude_text).unwrap();
    let home_path = home.path().to_str().unwrap().to_owned();
    let (gw, _dir) = common::Gateway::start_with(&config, |l| l.env("HOME", &home_path));

    let shots = repo().join("tests/artifacts/ui");
    let url = gw.url.clone();
    let mock_b = b.url();
    let shots_arg = shots.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("admin.mjs")
            .current_dir(repo().join("tests/ui"))
            .env("SB_URL", url)
            .env("SB_PASSWORD", ADMIN_PASSWORD)
            .env("SB_MOCK_B", mock_b)
            .env("SB_SHOTS", shots_arg)
            .output()
            .expect("node runs (scripts/setup installs it)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser test failed\n{stdout}\n{stderr}\n--- gateway ---\n{}",
        gw.stderr()
    );
    assert!(stdout.contains("ui: all steps passed"), "{stdout}");

    // What the page did is really in the gateway.
    let token = admin_token(&gw).await;
    let providers: Value = get_json(&gw, &token, "/providers").await;
    let relay_b = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "relay-c")
        .expect("relay-b was added, then renamed relay-c");
    assert_eq!(relay_b["weight"], 2);
    assert_eq!(relay_b["paused"], false, "resumed at the end");
    assert_eq!(relay_b["models"].as_array().unwrap().len(), 3);
    assert_eq!(
        relay_b["key"], "keychain (…7777)",
        "the key survived the rename"
    );
    assert!(
        !providers.to_string().contains("secret"),
        "no key in /api/providers: {providers}"
    );

    let models: Value = get_json(&gw, &token, "/models").await;
    let smart = models
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "smart")
        .expect("the tiered model saved in the page");
    assert_eq!(smart["tiers"][0]["keywords"][0], "refactor", "{smart}");
    assert_eq!(smart["classifier"]["default"], "T1", "{smart}");
    let group = models
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "opus-group")
        .expect("the group saved in the page");
    assert_eq!(group["group"]["pattern"], "claude-opus-4*", "{group}");

    let status: Value = get_json(&gw, &token, "/status").await;
    let claude = status["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "claude-opus-4-5")
        .expect("the unified model was saved");
    let mut pairs: Vec<String> = claude["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}/{}",
                c["provider"].as_str().unwrap(),
                c["model"].as_str().unwrap()
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            "relay-a/claude-opus-4-5",
            "relay-c/claude-opus-4-5-20251101",
            "relay-c/claude-opus-4.5"
        ]
    );

    assert_eq!(
        std::fs::read_to_string(&claude_file).unwrap(),
        claude_text,
        "connected and disconnected in the page: back byte for byte"
    );
    let keys: Value = get_json(&gw, &token, "/client-keys").await;
    let claude_key = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "claude-code")
        .expect("connect made Claude Code a key");
    assert_eq!(claude_key["revoked"], true, "disconnect revoked it");
    let cursor = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "cursor")
        .expect("the key made in the page");
    assert_eq!(cursor["rpm"], 30);
    assert_eq!(cursor["budget"]["daily_usd"], 5.0, "{cursor}");
    assert_eq!(cursor["expires_at"], 4_070_908_800_u64, "2099-01-01 UTC");
    let prices: Value = get_json(&gw, &token, "/prices").await;
    assert_eq!(
        prices["entries"],
        serde_json::json!([
            {"provider": "relay-a", "multiplier": 0.5},
            {"provider": "relay-a", "model": "house-model", "input": 1.5, "output": 6.0},
        ]),
        "{prices}"
    );
    let settings: Value = get_json(&gw, &token, "/settings").await;
    assert_eq!(settings["first_byte_timeout_s"], 30);
    // The page saved what was changed, not the run's own `--port 0`.
    let db = rusqlite::Connection::open_with_flags(
        gw.data_dir.join(switchboard_gateway::CONFIG_DB),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let stored: Vec<String> = db
        .prepare("SELECT key FROM settings ORDER BY key")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        stored.iter().any(|k| k == "first_byte_timeout_s"),
        "{stored:?}"
    );
    assert!(
        !stored.iter().any(|k| k == "port" || k == "host"),
        "{stored:?}"
    );
    for name in [
        "overview",
        "models-preview",
        "dashboard-tiers",
        "prices",
        "overview-zh",
        "overview-dark",
    ] {
        assert!(
            shots.join(format!("{name}.png")).is_file(),
            "screenshot {name}"
        );
    }
}

#[tokio::test]
async fn admin_pages_carry_a_strict_content_security_policy() {
    let (gw, _dir) = start_admin("");
    let r = common::http()
        .get(format!("{}/admin/", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-eval'") || csp.contains("'wasm-unsafe-eval'"));
    let body = r.text().await.unwrap();
    assert!(body.contains("boot.js"), "the app shell: {body}");
    // Deep links get the app shell; a missing file is a 404, not the shell.
    let deep = common::http()
        .get(format!("{}/admin/providers", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(deep.status(), 200);
    let missing = common::http()
        .get(format!("{}/admin/nope.js", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let wasm = common::http()
        .get(format!("{}/admin/switchboard-ui_bg.wasm", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
}

#[tokio::test]
async fn the_desktop_pages_origin_gets_cors_and_no_other_origin_does() {
    let (gw, _dir) = start_admin("");
    let token = admin_token(&gw).await;
    let pre = common::http()
        .request(reqwest::Method::OPTIONS, format!("{}/api/status", gw.url))
        .header("origin", "tauri://localhost")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "tauri://localhost"
    );
    assert!(
        pre.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let get = common::http()
        .get(format!("{}/api/status", gw.url))
        .header("origin", "http://tauri.localhost")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    assert_eq!(
        get.headers()["access-control-allow-origin"],
        "http://tauri.localhost"
    );
    let foreign = common::http()
        .request(reqwest::Method::OPTIONS, format!("{}/api/status", gw.url))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
