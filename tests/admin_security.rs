//! Admin access on a headless gateway: login lockout after failed attempts (each logged with the
//! client's address), logout, and `switchboard admin set-password` as the way back in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

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

/// What `GET /api/status` answers to this token: 200 while its session lives, 401 after.
async fn status_with(gw: &Gateway, token: &str) -> u16 {
    admin(gw, token, "GET", "/status", None)
        .await
        .status()
        .as_u16()
}

/// The message of an admin API error answer.
async fn error_message(r: reqwest::Response) -> String {
    let body: serde_json::Value = r.json().await.unwrap();
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
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
    let message = error_message(r).await;
    assert!(message.contains("set-password"), "{message}");
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
async fn lockout_and_session_length_are_settings_and_a_burst_gets_no_extra_guesses() {
    let mock = Mock::start().await;
    let (gw, _dir) = start_admin(&config_for(
        &mock.url(),
        "\n[admin]\nmax_failed_logins = 3\nlockout_s = 4\nsession_ttl_s = 10\n",
    ));
    // Eight wrong guesses at once: three are judged, the others refused before argon2 runs
    // (while three are being judged, then because they locked login).
    let burst =
        futures_util::future::join_all((0..8).map(|_| login(&gw, "not-the-password"))).await;
    let mut codes: Vec<u16> = burst.iter().map(|r| r.status().as_u16()).collect();
    codes.sort_unstable();
    assert_eq!(codes, [401, 401, 401, 429, 429, 429, 429, 429]);
    let locked = burst.iter().find(|r| r.status() == 429).unwrap();
    let retry: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=4).contains(&retry), "{retry}");
    // Now locked, for the configured time.
    let r = login(&gw, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 429);
    let message = error_message(r).await;
    assert!(message.contains("after 3 failed attempts"), "{message}");

    // The configured lockout ends, and a login lasts the configured time.
    tokio::time::sleep(std::time::Duration::from_millis(4100)).await;
    let r = login(&gw, ADMIN_PASSWORD).await;
    let issued = std::time::Instant::now();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["expires_in_s"], 10);
    let short = body["token"].as_str().unwrap().to_owned();

    // Changed from the admin API, they apply to the next login.
    let r = admin(
        &gw,
        &short,
        "PUT",
        "/settings",
        Some(json!({"admin": {"max_failed_logins": 2, "lockout_s": 60, "session_ttl_s": 3600}})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let s: serde_json::Value = admin(&gw, &short, "GET", "/settings", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            &s["max_failed_logins"],
            &s["lockout_s"],
            &s["session_ttl_s"]
        ),
        (&json!(2), &json!(60), &json!(3600))
    );
    let r = login(&gw, ADMIN_PASSWORD).await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["expires_in_s"], 3600);
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(login(&gw, "not-the-password").await.status(), 401);
    assert_eq!(login(&gw, "not-the-password").await.status(), 401);
    let r = login(&gw, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 429);
    let message = error_message(r).await;
    assert!(message.contains("after 2 failed attempts"), "{message}");

    // Out of range: refused with the field named.
    let r = admin(
        &gw,
        &token,
        "PUT",
        "/settings",
        Some(json!({"admin": {"session_ttl_s": 5}})),
    )
    .await;
    assert_eq!(r.status(), 422);
    let message = error_message(r).await;
    assert!(message.contains("admin.session_ttl_s"), "{message}");

    // The ten-second session has ended; the hour-long one has not.
    tokio::time::sleep(std::time::Duration::from_millis(10_500).saturating_sub(issued.elapsed()))
        .await;
    assert_eq!(status_with(&gw, &short).await, 401);
    assert_eq!(status_with(&gw, &token).await, 200);
}

#[tokio::test]
async fn logout_ends_the_session() {
    let mock = Mock::start().await;
    let (gw, _dir) = start_admin(&config_for(&mock.url(), ""));
    let token = admin_token(&gw).await;
    assert_eq!(status_with(&gw, &token).await, 200);
    let r = admin(&gw, &token, "POST", "/logout", None).await;
    assert_eq!(r.status(), 204);
    assert_eq!(status_with(&gw, &token).await, 401);
    // Another session is not touched by this logout.
    let other = admin_token(&gw).await;
    assert_eq!(status_with(&gw, &other).await, 200);
}

#[tokio::test]
async fn client_keys_have_a_rate_limit_an_expiry_and_a_last_used_time() {
    let mock = Mock::start().await;
    let config = format!(
        r#"
[[providers]]
name = "mock"
base_url = "{}"
models = ["gpt-4o"]

[[models]]
name = "gpt-4o"

[[client_keys]]
name = "limited"
key = "sk-sb-limited-key-0123456789"
rpm = 2

[[client_keys]]
name = "expired"
key = "sk-sb-expired-key-0123456789"
expires_at = "2020-01-01"

[[client_keys]]
name = "idle"
key = "sk-sb-idle-key-0123456789ab"
"#,
        mock.url()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switchboard.toml");
    std::fs::write(&file, config).unwrap();
    let data = dir.path().join("data");
    let launch =
        || common::Launch::serve(&file, &data).env("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD);
    let mut gw = common::spawn(launch(), &data).unwrap();
    let chat = |key: &'static str| {
        http()
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(key)
            .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(
            chat("sk-sb-limited-key-0123456789").await.unwrap().status(),
            200
        );
    }
    let r = chat("sk-sb-limited-key-0123456789").await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 requests a minute")
    );
    assert_eq!(mock.hits(), 2, "the refused request never went upstream");

    let r = chat("sk-sb-expired-key-0123456789").await.unwrap();
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("expired"),
        "{v}"
    );

    let token = admin_token(&gw).await;
    let keys: serde_json::Value = admin(&gw, &token, "GET", "/client-keys", None)
        .await
        .json()
        .await
        .unwrap();
    let by_name = |name: &str| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name("limited")["rpm"], 2);
    assert!(by_name("limited")["last_used_at"].as_u64().is_some());
    assert_eq!(by_name("expired")["expired"], true);
    assert!(by_name("idle")["last_used_at"].is_null());

    // Revoked: refused at once.
    let r = admin(&gw, &token, "DELETE", "/client-keys/idle", None).await;
    assert!(r.status().is_success());
    assert_eq!(
        chat("sk-sb-idle-key-0123456789ab").await.unwrap().status(),
        401
    );

    // The last-used time outlives a restart (written on the way out, and every few seconds).
    gw.signal("TERM");
    assert!(gw.wait(std::time::Duration::from_secs(15)).await.is_some());
    let gw = common::spawn(launch(), &data).unwrap();
    let token = admin_token(&gw).await;
    let keys: serde_json::Value = admin(&gw, &token, "GET", "/client-keys", None)
        .await
        .json()
        .await
        .unwrap();
    let limited = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "limited")
        .unwrap();
    assert!(limited["last_used_at"].as_u64().is_some(), "{keys}");
}

#[tokio::test]
async fn listening_beyond_loopback_needs_an_admin_password_and_says_so() {
    let mock = Mock::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switchboard.toml");
    std::fs::write(&file, config_for(&mock.url(), "")).unwrap();
    let data = dir.path().join("data");
    let wide = || {
        let mut l = common::Launch::serve(&file, &data);
        l.args.extend(["--host".into(), "0.0.0.0".into()]);
        l
    };
    let Err((status, stderr)) = common::spawn(wide(), &data) else {
        panic!("started beyond loopback without an admin password");
    };
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("needs an admin password"), "{stderr}");

    let gw = common::spawn(
        wide().env("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
        &data,
    )
    .unwrap();
    assert!(
        gw.stderr().contains("listening beyond loopback"),
        "{}",
        gw.stderr()
    );
    // Beyond loopback nobody chooses the password through the API, whatever the caller.
    let r = setup(&gw, json!({"password": "another-password"}), None).await;
    assert_eq!(r.status(), 403);
    assert!(
        error_message(r)
            .await
            .contains("SWITCHBOARD_ADMIN_PASSWORD"),
        "says what to do instead"
    );
}

async fn setup(gw: &Gateway, body: serde_json::Value, origin: Option<&str>) -> reqwest::Response {
    let mut req = http().post(format!("{}/api/setup", gw.url)).json(&body);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    req.send().await.unwrap()
}

async fn setup_status(gw: &Gateway) -> serde_json::Value {
    let r = http()
        .get(format!("{}/api/setup", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// `serve` on loopback with no admin password: the first visit chooses one (and is logged in
/// with it); a web page of another origin cannot, a short password is refused, and once set it
/// is set: a second choice is refused and login takes the chosen one.
#[tokio::test]
async fn on_loopback_the_first_visit_chooses_the_admin_password() {
    let mock = Mock::start().await;
    let (gw, _dir) = Gateway::start(&config_for(&mock.url(), ""));
    assert_eq!(
        setup_status(&gw).await,
        json!({"password_set": false, "can_choose": true})
    );
    let r = login(&gw, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 403);
    assert!(
        error_message(r).await.contains("/admin"),
        "points at the first visit"
    );

    let foreign = setup(
        &gw,
        json!({"password": "evil-page-password"}),
        Some("https://evil.example"),
    )
    .await;
    assert_eq!(foreign.status(), 403);
    let short = setup(&gw, json!({"password": "short"}), None).await;
    assert_eq!(short.status(), 422);
    assert!(error_message(short).await.contains("at least 8"));
    assert_eq!(setup(&gw, json!({"nope": 1}), None).await.status(), 400);
    assert_eq!(setup_status(&gw).await["password_set"], false);

    // Two at once: one wins, the other is told it is taken.
    let (a, b) = tokio::join!(
        setup(&gw, json!({"password": ADMIN_PASSWORD}), None),
        setup(&gw, json!({"password": "the-other-password"}), None)
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    let winner = if a.status() == 200 { a } else { b };
    let session: serde_json::Value = winner.json().await.unwrap();
    let token = session["token"].as_str().unwrap();
    assert_eq!(status_with(&gw, token).await, 200, "logged in with it");
    assert_eq!(
        setup_status(&gw).await,
        json!({"password_set": true, "can_choose": false})
    );
    let again = setup(&gw, json!({"password": "a-third-password"}), None).await;
    assert_eq!(again.status(), 409);
    // Whichever won, exactly one of the two passwords logs in.
    let logins = [
        login(&gw, ADMIN_PASSWORD).await.status().as_u16(),
        login(&gw, "the-other-password").await.status().as_u16(),
    ];
    assert!(logins == [200, 401] || logins == [401, 200], "{logins:?}");
    assert_eq!(login(&gw, "a-third-password").await.status(), 401);
}

#[tokio::test]
async fn a_second_factor_when_switchboard_admin_totp_is_set() {
    use switchboard_gateway::totp;
    let mock = Mock::start().await;
    // RFC 6238's test secret, as an authenticator app shows it.
    let base32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let secret = totp::decode_base32(base32).unwrap();
    let (gw, _dir) = common::Gateway::start_with(&config_for(&mock.url(), ""), |l| {
        l.env("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("SWITCHBOARD_ADMIN_TOTP", base32)
    });
    let with_code = |code: Option<String>| {
        let mut body = json!({ "password": ADMIN_PASSWORD });
        if let Some(c) = code {
            body["totp"] = c.into();
        }
        http()
            .post(format!("{}/api/login", gw.url))
            .json(&body)
            .send()
    };
    let r = with_code(None).await.unwrap();
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("6-digit code"),
        "{v}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let wrong = (totp::code_at(&secret, now) + 1) % 1_000_000;
    assert_eq!(
        with_code(Some(format!("{wrong:06}")))
            .await
            .unwrap()
            .status(),
        401
    );
    let right = format!("{:06}", totp::code_at(&secret, now));
    assert_eq!(with_code(Some(right.clone())).await.unwrap().status(), 200);
    // A code lets someone in once: the same code again (read over a shoulder) does not, nor
    // does the step before it.
    assert_eq!(with_code(Some(right)).await.unwrap().status(), 401);
    let before = format!("{:06}", totp::code_at(&secret, now - 30));
    assert_eq!(with_code(Some(before)).await.unwrap().status(), 401);

    // A secret that does not parse stops the start instead of turning the factor off.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switchboard.toml");
    std::fs::write(&file, config_for(&mock.url(), "")).unwrap();
    let data = dir.path().join("data");
    let bad = common::Launch::serve(&file, &data).env("SWITCHBOARD_ADMIN_TOTP", "not base32!");
    let Err((status, stderr)) = common::spawn(bad, &data) else {
        panic!("started with a broken second factor");
    };
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("SWITCHBOARD_ADMIN_TOTP"), "{stderr}");
}

/// A new password set from the command line ends every session the old one opened (a stolen
/// token dies with the password), within seconds; the new password's sessions go on.
#[tokio::test]
async fn a_new_password_ends_the_old_ones_sessions() {
    let mock = Mock::start().await;
    let (gw, _dir) = start_admin(&config_for(&mock.url(), ""));
    let old = common::admin_token(&gw).await;
    assert_eq!(status_with(&gw, &old).await, 200);
    let out = set_password(&gw.data_dir, "a-brand-new-password");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ended = false;
    for _ in 0..50 {
        if status_with(&gw, &old).await == 401 {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ended, "the old password's session still works");
    let r = login(&gw, "a-brand-new-password").await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let new = v["token"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(status_with(&gw, &new).await, 200, "the new one's goes on");
}

/// An HTTP/2 client names the host in `:authority`, not in a Host header: the admin API takes
/// it (every HTTP/2 request was refused 403), and a foreign one is still refused.
#[tokio::test]
async fn the_admin_api_answers_http2() {
    let mock = Mock::start().await;
    let (gw, _dir) = start_admin(&config_for(&mock.url(), ""));
    let token = common::admin_token(&gw).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2
        .get(format!("{}/api/status", gw.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    // A rebound name for this address, as a DNS-rebinding page would use, in :authority.
    let port: u16 = gw.url.rsplit(':').next().unwrap().parse().unwrap();
    let rebound = reqwest::Client::builder()
        .http2_prior_knowledge()
        .resolve(
            "evil.example",
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .build()
        .unwrap();
    let r = rebound
        .get(format!("http://evil.example:{port}/api/status"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 403);
}
