//! Managing Switchboard through the admin API: providers, unified models, client keys and
//! settings, each checked like the config file, persisted, and live at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::mock::{Mock, Reply};
use common::{Gateway, admin_token, http, start_admin};
use serde_json::{Value, json};

const KEY: &str = "sk-sb-admin-api-tests-00000000";

fn base() -> String {
    format!("[[client_keys]]\nname = \"tests\"\nkey = \"{KEY}\"\n")
}

struct Admin<'a> {
    gw: &'a Gateway,
    token: String,
}

impl Admin<'_> {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        common::admin(self.gw, &self.token, method.as_str(), path, body).await
    }

    async fn put(&self, path: &str, body: Value) -> reqwest::Response {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        let r = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }
}

async fn error(r: reqwest::Response, status: u16, needle: &str) {
    assert_eq!(r.status().as_u16(), status);
    let v: Value = r.json().await.unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
}

async fn chat(gw: &Gateway, key: &str, model: &str) -> reqwest::Response {
    http()
        .post(format!("{}/chat/completions", gw.v1()))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn providers_and_models_are_managed_live() {
    let mock = Mock::start().await;
    let (gw, _dir) = start_admin(&base());
    let admin = Admin {
        gw: &gw,
        token: admin_token(&gw).await,
    };

    // Checked like the config file: every error names its field.
    error(
        admin
            .put("/providers/relay", json!({"base_url": "relay.example"}))
            .await,
        422,
        "base_url: ",
    )
    .await;
    error(
        admin
            .put(
                "/providers/relay",
                json!({"base_url": mock.url(), "wieght": 3}),
            )
            .await,
        422,
        "wieght",
    )
    .await;
    error(
        admin
            .put("/providers/relay", json!({"models": ["x"]}))
            .await,
        422,
        "base_url: a new provider needs one",
    )
    .await;
    // The gateway itself as a provider would send every request round and round.
    let own = gw.url.replace("127.0.0.1", "localhost");
    error(
        admin
            .put("/providers/relay", json!({"base_url": format!("{own}/v1")}))
            .await,
        422,
        "is this gateway itself",
    )
    .await;
    error(
        admin
            .put(
                "/providers/relay",
                json!({"name": "other", "base_url": mock.url()}),
            )
            .await,
        422,
        "/rename",
    )
    .await;

    let r = admin
        .put("/providers/relay", json!({"base_url": format!("{}/v1", mock.url()), "api_key": "sk-typed-into-the-ui-1234", "models": ["gpt-4o-2024"]}))
        .await;
    assert_eq!(r.status(), 204);
    let list = admin.get("/providers").await;
    assert_eq!(list[0]["name"], "relay");
    assert_eq!(list[0]["key"], "keychain (…1234)");
    assert!(
        !list.to_string().contains("sk-typed-into-the-ui"),
        "never a secret in /api"
    );

    error(admin.put("/models/gpt-4o", json!({"rules": [{"type": "prefix", "value": "gpt-4o"}, {"type": "regex", "value": "(["}]})).await, 422, "rules[1]: invalid regex").await;
    assert_eq!(
        chat(&gw, KEY, "gpt-4o").await.status(),
        404,
        "nothing was saved"
    );
    let r = admin.put("/models/gpt-4o", json!({"rules": [{"type": "prefix", "value": "gpt-4o"}], "default_params": {"temperature": 0.1}})).await;
    assert_eq!(r.status(), 204);
    let r = chat(&gw, KEY, "gpt-4o").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchboard-model"], "gpt-4o-2024");
    let sent = mock.requests().pop().unwrap();
    assert_eq!(
        sent.header("authorization"),
        Some("Bearer sk-typed-into-the-ui-1234")
    );
    assert_eq!(sent.json()["temperature"], 0.1);
    let models = admin.get("/models").await;
    assert_eq!(
        models[0]["rules"][0],
        json!({"type": "prefix", "value": "gpt-4o"})
    );

    // A wrong key opens the provider's breaker; a new key closes it.
    mock.script([Reply::status(401, r#"{"error":{"message":"bad key"}}"#)]);
    assert_eq!(chat(&gw, KEY, "gpt-4o").await.status(), 401);
    let s = admin.get("/status").await;
    assert_eq!(s["providers"][0]["breaker"]["reason"], "auth failed");
    assert_eq!(
        admin
            .put(
                "/providers/relay",
                json!({"api_key": "sk-the-right-key-5678"})
            )
            .await
            .status(),
        204
    );
    let s = admin.get("/status").await;
    assert_eq!(s["providers"][0]["breaker"]["state"], "closed");
    assert_eq!(chat(&gw, KEY, "gpt-4o").await.status(), 200);
    assert_eq!(
        mock.requests().pop().unwrap().header("authorization"),
        Some("Bearer sk-the-right-key-5678")
    );

    // Deleting: the provider's candidates go with it.
    assert_eq!(
        admin
            .send(reqwest::Method::DELETE, "/providers/relay", None)
            .await
            .status(),
        204
    );
    assert_eq!(
        admin
            .send(reqwest::Method::DELETE, "/providers/relay", None)
            .await
            .status(),
        404
    );
    assert_eq!(chat(&gw, KEY, "gpt-4o").await.status(), 503);
    assert_eq!(
        admin
            .send(reqwest::Method::DELETE, "/models/gpt-4o", None)
            .await
            .status(),
        204
    );
    assert_eq!(chat(&gw, KEY, "gpt-4o").await.status(), 404);
}

#[tokio::test]
async fn client_keys_are_created_once_and_revoked() {
    let mock = Mock::start().await;
    let cfg = format!(
        "{}[[providers]]\nname = \"m\"\nbase_url = \"{}\"\nmodels = [\"a\"]\n[[models]]\nname = \"a\"\n",
        base(),
        mock.url()
    );
    let (gw, dir) = start_admin(&cfg);
    let admin = Admin {
        gw: &gw,
        token: admin_token(&gw).await,
    };
    let r = admin
        .send(
            reqwest::Method::POST,
            "/client-keys",
            Some(json!({"name": "cline", "models": ["a"]})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-sb-") && key.len() > 40);
    assert_eq!(chat(&gw, &key, "a").await.status(), 200);
    let r = admin
        .send(
            reqwest::Method::POST,
            "/client-keys",
            Some(json!({"name": "cline"})),
        )
        .await;
    error(r, 409, "exists").await;
    let list = admin.get("/client-keys").await;
    assert!(
        !list.to_string().contains(&key),
        "the key is shown once, at creation"
    );
    let cline = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "cline")
        .unwrap();
    assert_eq!(cline["revoked"], false);
    assert_eq!(
        admin
            .send(reqwest::Method::DELETE, "/client-keys/cline", None)
            .await
            .status(),
        204
    );
    assert_eq!(chat(&gw, &key, "a").await.status(), 401);
    assert_eq!(
        admin
            .send(reqwest::Method::DELETE, "/client-keys/nobody", None)
            .await
            .status(),
        404
    );
    drop(gw);

    // Revocation persists.
    let data = dir.path().join("data");
    let gw = common::spawn(
        common::Launch::serve(&dir.path().join("switchboard.toml"), &data),
        &data,
    )
    .unwrap();
    assert_eq!(chat(&gw, &key, "a").await.status(), 401);
    assert_eq!(chat(&gw, KEY, "a").await.status(), 200);
}

#[tokio::test]
async fn settings_are_checked_persisted_and_live() {
    let (gw, dir) = start_admin(&base());
    let admin = Admin {
        gw: &gw,
        token: admin_token(&gw).await,
    };
    let s = admin.get("/settings").await;
    assert_eq!(s["max_attempts"], 4);
    error(
        admin
            .put("/settings", json!({"routing": {"max_attempts": 0}}))
            .await,
        422,
        "routing.max_attempts: must be between 1 and 20",
    )
    .await;
    error(
        admin.put("/settings", json!({"routng": {}})).await,
        422,
        "unknown section",
    )
    .await;
    error(
        admin
            .put("/settings", json!({"routing": {"max_attempt": 2}}))
            .await,
        422,
        "max_attempt",
    )
    .await;
    let r = admin.put("/settings", json!({"routing": {"max_attempts": 2, "retry_on_keywords": ["busy"]}, "cooldown": {"rate_limited": 30}})).await;
    assert_eq!(r.status(), 204);
    let s = admin.get("/settings").await;
    assert_eq!(s["max_attempts"], 2);
    assert_eq!(s["retry_on_keywords"], json!(["busy"]));
    assert_eq!(s["cooldown_rate_limited_s"], 30);
    drop(gw);
    let data = dir.path().join("data");
    let launch = common::Launch {
        args: vec![
            "serve".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--port".into(),
            "0".into(),
        ],
        env: vec![],
    };
    let gw = common::spawn(launch, &data).unwrap();
    let admin = Admin {
        gw: &gw,
        token: admin_token(&gw).await,
    };
    assert_eq!(admin.get("/settings").await["max_attempts"], 2, "persisted");
}

/// Crash safety: admin writes in a loop, `kill -9` at a moment that differs each round, a
/// restart on the same data folder. Every write the API acknowledged is there after, and both
/// SQLite files pass `PRAGMA integrity_check`.
#[tokio::test]
async fn kill_9_during_admin_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchboard.toml");
    std::fs::write(&config, base()).unwrap();
    let data = dir.path().join("data");
    let launch = || {
        common::Launch::serve(&config, &data)
            .env("SWITCHBOARD_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
    };
    let mut acknowledged: Vec<String> = Vec::new();
    let mut rng = 0x9e37_79b9_u64;
    for round in 0..6 {
        let mut gw = common::spawn(launch(), &data).unwrap_or_else(|(s, e)| panic!("{s}: {e}"));
        let token = admin_token(&gw).await;
        // Everything acknowledged before, in any round, survived this restart.
        let models: Value = http()
            .get(format!("{}/api/models", gw.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let have: std::collections::HashSet<&str> = models
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["name"].as_str())
            .collect();
        let lost: Vec<&String> = acknowledged
            .iter()
            .filter(|n| !have.contains(n.as_str()))
            .collect();
        assert!(lost.is_empty(), "round {round}: lost {lost:?}");
        // Writes as fast as they are answered, until the kill.
        let (url, tok) = (gw.url.clone(), token.clone());
        let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let acks = acked.clone();
        let writer = tokio::spawn(async move {
            let client = http();
            let mut done = Vec::new();
            for i in 0.. {
                let name = format!("crash-{round}-{i}");
                let r = client
                    .put(format!("{url}/api/models/{name}"))
                    .bearer_auth(&tok)
                    .json(&json!({"rules": [{"type": "prefix", "value": name}]}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        done.push(name);
                        acks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    _ => break,
                }
            }
            done
        });
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // The kill lands mid-writes, never before the first: a loaded machine can take
        // longer than a fixed delay to answer one (each write reloads a growing catalog).
        let first = std::time::Instant::now();
        while acked.load(std::sync::atomic::Ordering::SeqCst) == 0
            && first.elapsed() < std::time::Duration::from_secs(20)
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(rng % 600)).await;
        gw.signal("KILL");
        let _ = gw.wait(std::time::Duration::from_secs(5)).await;
        let done = writer.await.unwrap();
        assert!(!done.is_empty(), "round {round}: no write acknowledged");
        acknowledged.extend(done);
        for file in ["config.db", "logs.db"] {
            let path = data.join(file);
            if !path.exists() {
                continue;
            }
            let conn = rusqlite::Connection::open(&path).unwrap();
            let check: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(check, "ok", "round {round}: {file}");
        }
    }
    println!(
        "crash safety: {} acknowledged writes over 6 kills, none lost",
        acknowledged.len()
    );
}
