//! Admin access on a headless gateway: login lockout after failed attempts (each logged with the
//! client's address), logout, and `switchboard admin set-password` as the way back in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::mock::Mock;
use common::{ADMIN_PASSWORD, BIN, Gateway, admin, admin_token, config_for, http, start_admin};
use serde_json::json;

async fn login(gw: &Gateway, password: &str) -> reqwest::Response {
    http()
        .post(format!("{}/api/login", gw.url))
        .json(&json!({ "password": password }))
        .send()
        .await
        .unwrap()
}

fn set_password(data: &std::path::Path, password: &str) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(["admin", "set-password", "--data-dir"])
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn five_wrong_passwords_lock_login_and_a_new_password_lets_you_back_in() {
    let mock = Mock::start().await;
    let (gw, _dir) = start_admin(&config_for(&mock.url(), ""));
    for i in 0..5 {
        let r = login(&gw, "not-the-password").await;
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    // Locked now: even the right password is refused, with when to come back.
    let r = login(&gw, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((840..=900).contains(&retry), "{retry}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("set-password"),
        "{body}"
    );
    // Every attempt is logged with the caller's address.
    let log = gw.stderr();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("admin login failed") && l.contains("client=127.0.0.1:"))
            .count(),
        5,
        "{log}"
    );

    // The way back in: a new password, set from the command line while the gateway runs.
    let short = set_password(&gw.data_dir, "short");
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8"));
    let out = set_password(&gw.data_dir, "a-brand-new-password");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        login(&gw, ADMIN_PASSWORD).await.status(),
        401,
        "the old one is gone"
    );
    let r = login(&gw, "a-brand-new-password").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn logout_ends_the_session() {
    let mock = Mock::start().await;
    let (gw, _dir) = start_admin(&config_for(&mock.url(), ""));
    let token = admin_token(&gw).await;
    assert_eq!(
        admin(&gw, &token, "GET", "/status", None).await.status(),
        200
    );
    let r = admin(&gw, &token, "POST", "/logout", None).await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        admin(&gw, &token, "GET", "/status", None).await.status(),
        401
    );
    // Another session is not touched by this logout.
    let other = admin_token(&gw).await;
    assert_eq!(
        admin(&gw, &other, "GET", "/status", None).await.status(),
        200
    );
}
