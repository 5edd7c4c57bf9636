//! Provider keys in the OS keychain, end to end: the real `switchboard serve` with GNOME Keyring
//! as the Secret Service (in the private D-Bus session `scripts/with-keyring` starts), and
//! without any keychain at all. Then a scan of everything a run leaves behind for its secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;

use common::mock::Mock;
use common::{Gateway, Launch, http, spawn};
use switchboard_gateway::secrets::SecretStore;
use switchboard_keychain::KeychainStore;

const LITERAL: &str = "sk-literal-provider-key-7f3a9c";

fn config(url: &str, key_line: &str) -> String {
    named_config("mock", url, key_line)
}

/// One provider, `name`; `gpt-4o` matched by name and `pinned` by an include naming it.
fn named_config(name: &str, url: &str, key_line: &str) -> String {
    format!(
        r#"
[[providers]]
name = "{name}"
base_url = "{url}"
{key_line}
models = ["gpt-4o"]

[[models]]
name = "gpt-4o"

[[models]]
name = "pinned"
include = ["{name}/gpt-4o"]
"#
    )
}

fn provider_uid(data: &Path, name: &str) -> String {
    let db = rusqlite::Connection::open_with_flags(
        data.join(switchboard_gateway::CONFIG_DB),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.query_row("SELECT uid FROM providers WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .unwrap()
}

async fn ask(gw: &Gateway) {
    ask_for(gw, "gpt-4o").await;
}

/// Asks for `model`; answers the provider that served it.
async fn ask_for(gw: &Gateway, model: &str) -> String {
    let r = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let provider = r.headers()["x-switchboard-provider"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    provider
}

fn keychain() -> KeychainStore {
    KeychainStore::open().unwrap_or_else(|e| {
        panic!("no Secret Service ({e}): run the tests through scripts/with-keyring (scripts/test does)")
    })
}

#[tokio::test]
async fn a_literal_key_stays_in_the_keychain_across_restarts_and_a_rename_and_goes_with_its_provider()
 {
    let mock = Mock::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switchboard.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &file,
        config(&mock.url(), &format!("api_key = \"{LITERAL}\"")),
    )
    .unwrap();
    let gw = spawn(Launch::serve(&file, &data), &data).unwrap();
    ask(&gw).await;
    let uid = provider_uid(&data, "mock");
    assert_eq!(
        keychain().get(&uid).unwrap().unwrap().expose(),
        LITERAL,
        "the key is in the keychain under the provider's id"
    );
    drop(gw);

    // The file no longer holds the key: the keychain does.
    std::fs::write(&file, config(&mock.url(), "")).unwrap();
    let admin_launch =
        || Launch::serve(&file, &data).env("SWITCHBOARD_ADMIN_PASSWORD", common::ADMIN_PASSWORD);
    let gw = spawn(admin_launch(), &data).unwrap();
    ask(&gw).await;

    // A rename from the admin API keeps the key, and the model that named the provider follows.
    let token = common::admin_token(&gw).await;
    let rename = |to: &str| {
        common::admin(
            &gw,
            &token,
            "POST",
            "/providers/mock/rename",
            Some(serde_json::json!({ "name": to })),
        )
    };
    assert_eq!(rename("").await.status(), 422);
    let r = rename("relay").await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    assert_eq!(rename("relay").await.status(), 404, "mock is gone");
    assert_eq!(provider_uid(&data, "relay"), uid);
    assert_eq!(ask_for(&gw, "pinned").await, "relay");
    let models: serde_json::Value = common::admin(&gw, &token, "GET", "/models", None)
        .await
        .json()
        .await
        .unwrap();
    let pinned = models
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "pinned")
        .unwrap();
    assert_eq!(pinned["include"], serde_json::json!(["relay/gpt-4o"]));
    drop(gw);

    // After a restart with a file that says the new name, the keychain still serves the key.
    std::fs::write(&file, named_config("relay", &mock.url(), "")).unwrap();
    let gw = spawn(admin_launch(), &data).unwrap();
    assert_eq!(ask_for(&gw, "gpt-4o").await, "relay");
    let seen = mock.requests();
    assert_eq!(seen.len(), 4);
    for r in &seen {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {LITERAL}").as_str())
        );
    }

    // Deleting the provider deletes its entry.
    let token = common::admin_token(&gw).await;
    let r = common::admin(&gw, &token, "DELETE", "/providers/relay", None).await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(keychain().get(&uid).unwrap(), None);
}

#[tokio::test]
async fn without_a_keychain_env_keys_work_and_a_literal_key_is_refused_with_a_way_forward() {
    let mock = Mock::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switchboard.toml");
    let data = dir.path().join("data");
    // No session bus: no Secret Service.
    let nowhere = |l: Launch| l.env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");

    std::fs::write(
        &file,
        config(&mock.url(), &format!("api_key = \"{LITERAL}\"")),
    )
    .unwrap();
    let Err((status, stderr)) = spawn(nowhere(Launch::serve(&file, &data)), &data) else {
        panic!("a literal key without a keychain must stop the start");
    };
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no OS keychain"), "{stderr}");
    assert!(stderr.contains("env:NAME"), "{stderr}");
    assert!(!stderr.contains(LITERAL), "{stderr}");

    std::fs::write(
        &file,
        config(&mock.url(), "api_key = \"env:SB_KEYCHAIN_TEST_KEY\""),
    )
    .unwrap();
    let gw = spawn(
        nowhere(Launch::serve(&file, &data)).env("SB_KEYCHAIN_TEST_KEY", "sk-from-the-env"),
        &data,
    )
    .unwrap();
    ask(&gw).await;
    assert_eq!(
        mock.requests().pop().unwrap().header("authorization"),
        Some("Bearer sk-from-the-env")
    );
    let log = gw.stderr();
    assert_eq!(
        log.matches("no OS keychain").count(),
        1,
        "said once at start: {log}"
    );
}

/// Every file a run leaves in its data folder (SQLite, its WAL and shared memory included) and
/// everything it logged, searched for every secret it was given or made.
#[tokio::test]
async fn no_secret_is_left_in_the_data_folder_or_the_logs() {
    let mock = Mock::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switchboard.toml");
    let data = dir.path().join("data");
    let configured_client_key = "sk-sb-configured-client-key-0123456789abcdef";
    std::fs::write(
        &file,
        format!(
            // Bodies captured too: the scan covers them.
            "{}\n[[client_keys]]\nname = \"given\"\nkey = \"{configured_client_key}\"\n\n[[client_keys]]\nname = \"made\"\n\n[logs]\ncapture_bodies = true\n",
            config(
                &mock.url(),
                &format!(
                    "api_key = \"{LITERAL}\"\nheaders = {{ \"x-relay-key\" = \"env:SB_HEADER_SECRET\" }}"
                )
            )
        ),
    )
    .unwrap();
    let header_secret = "relay-header-secret-0a1b2c";
    let launch = Launch::serve(&file, &data)
        .env("SWITCHBOARD_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
        .env("SB_HEADER_SECRET", header_secret)
        .env("RUST_LOG", "trace");
    let gw = spawn(launch, &data).unwrap();
    let made = gw.key("made");
    let token = common::admin_token(&gw).await;
    // A key typed into the admin API, and a client key created there.
    let typed = "sk-typed-into-the-admin-api-55aa";
    let r = common::admin(
        &gw,
        &token,
        "PUT",
        "/providers/second",
        Some(serde_json::json!({"base_url": mock.url(), "api_key": typed, "models": ["m2"]})),
    )
    .await;
    assert!(r.status().is_success(), "{}", r.status());
    let r = common::admin(
        &gw,
        &token,
        "POST",
        "/client-keys",
        Some(serde_json::json!({"name": "from-api"})),
    )
    .await;
    let created: serde_json::Value = r.json().await.unwrap();
    let from_api = created["key"].as_str().unwrap().to_owned();
    for key in [configured_client_key, made.as_str(), from_api.as_str()] {
        let r = http()
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(key)
            .json(&serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // The credential header, from the environment, reached the upstream.
    assert!(
        mock.requests()
            .iter()
            .any(|r| r.header("x-relay-key") == Some(header_secret)),
        "the env: header was sent"
    );
    // The bodies were kept (so the scan below reads them).
    let mut kept = serde_json::Value::Null;
    for _ in 0..40 {
        let page: serde_json::Value = common::admin(&gw, &token, "GET", "/logs", None)
            .await
            .json()
            .await
            .unwrap();
        if let Some(id) = page["items"][0]["id"].as_i64() {
            kept = common::admin(&gw, &token, "GET", &format!("/logs/{id}"), None)
                .await
                .json()
                .await
                .unwrap();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(kept["bodies"]["request"].is_object(), "{kept}");
    // What the admin API says about providers names no key.
    let providers = common::admin(&gw, &token, "GET", "/providers", None)
        .await
        .text()
        .await
        .unwrap();
    // The configuration exported for download names no key either.
    let r = common::admin(&gw, &token, "GET", "/export", None).await;
    assert_eq!(r.status(), 200);
    let export = r.text().await.unwrap();
    assert!(export.contains("name = \"mock\""), "{export}");
    assert!(
        export.contains("x-relay-key = \"env:SB_HEADER_SECRET\""),
        "{export}"
    );
    let log = gw.stderr();
    drop(gw);

    let secrets = [
        LITERAL,
        typed,
        configured_client_key,
        made.as_str(),
        from_api.as_str(),
        common::ADMIN_PASSWORD,
        header_secret,
    ];
    let mut places = vec![("GET /api/providers".to_owned(), providers.into_bytes())];
    places.push(("the log (RUST_LOG=trace)".to_owned(), log.into_bytes()));
    places.push(("GET /api/export".to_owned(), export.into_bytes()));
    let mut stack = vec![data.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                places.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    assert!(
        places
            .iter()
            .any(|(p, _)| p.ends_with(switchboard_gateway::CONFIG_DB)),
        "the scan sees the database"
    );
    assert!(
        places
            .iter()
            .any(|(p, _)| p.ends_with(switchboard_gateway::LOGS_DB)),
        "the scan sees the request log"
    );
    let mut hits = Vec::new();
    for (place, bytes) in &places {
        for s in secrets {
            if bytes.windows(s.len()).any(|w| w == s.as_bytes()) {
                hits.push(format!("{s} in {place}"));
            }
        }
    }
    assert!(hits.is_empty(), "secrets left behind: {hits:?}");
}
