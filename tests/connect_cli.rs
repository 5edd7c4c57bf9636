//! `switchboard connect`, `clients` and `disconnect` on the command line, through the running
//! `serve` (which owns the client keys), on a scratch HOME holding a realistic Claude Code file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::mock::Mock;
use common::{BIN, Gateway, admin_token, config_for};
use serde_json::Value;

const SETTINGS: &str = r#"{
  "model": "opus",
  "env": {
    "DISABLE_TELEMETRY": "1"
  },
  "hooks": {
    "PostToolUse": [{"matcher": "Edit", "hooks": [{"type": "command", "command": "fmt"}]}]
  },
  "statusLine": {"type": "command", "command": "~/.claude/statusline.sh"}
}
"#;

fn cli(data: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("HOME", home)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn chat(gw: &Gateway, key: &str) -> u16 {
    common::chat_status(gw, "gpt-4o", Some(key)).await
}

// Multi-threaded: the mock upstream answers the connect's test request while this thread waits
// for the command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_gives_claude_code_a_key_of_its_own_and_disconnect_takes_it_back() {
    let mock = Mock::start().await;
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join(".claude/settings.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, SETTINGS).unwrap();
    let (gw, dir) = Gateway::start_with(&config_for(&mock.url(), ""), |l| {
        l.env("SWITCHBOARD_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
            .env("HOME", home.path().to_str().unwrap())
    });
    let data = dir.path().join("data");

    let listed = cli(&data, home.path(), &["clients"]);
    assert!(listed.status.success(), "{}", text(&listed));
    assert!(
        text(&listed).contains("claude-code  Claude Code  not connected"),
        "{}",
        text(&listed)
    );

    let connected = cli(&data, home.path(), &["connect", "claude-code"]);
    let said = text(&connected);
    assert!(connected.status.success(), "{said}");
    assert!(said.contains("now points at Switchboard"), "{said}");
    assert!(said.contains("client key 'claude-code'"), "{said}");
    // A one-token request, as Claude Code sends it, went through the gateway to the relay.
    assert!(said.contains("Test request: fast answered in"), "{said}");
    let sent = mock.requests().last().unwrap().json();
    assert_eq!(sent["max_tokens"], 1, "{sent}");
    let settings: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(settings["env"]["ANTHROPIC_BASE_URL"], gw.url.as_str());
    assert_eq!(
        settings["hooks"]["PostToolUse"][0]["matcher"], "Edit",
        "hooks kept"
    );
    let key = settings["env"]["ANTHROPIC_AUTH_TOKEN"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(chat(&gw, &key).await, 200, "the key works");
    // Its traffic is its own in the log.
    let token = admin_token(&gw).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let page: Value = common::admin(&gw, &token, "GET", "/logs?client_key=claude-code", None)
            .await
            .json()
            .await
            .unwrap();
        if page["items"].as_array().is_some_and(|i| !i.is_empty()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no row for claude-code: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let listed = text(&cli(&data, home.path(), &["clients"]));
    assert!(listed.contains("connected (key claude-code)"), "{listed}");

    // Killed while connected: the next start says so, and disconnect still puts it back.
    let config = dir.path().join("switchboard.toml");
    drop(gw);
    let gw = common::spawn(
        common::Launch::serve(&config, &data)
            .env("SWITCHBOARD_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
            .env("HOME", home.path().to_str().unwrap()),
        &data,
    )
    .unwrap();
    let said = "Claude Code is still connected to Switchboard from before this start";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !gw.stderr().contains(said) {
        assert!(std::time::Instant::now() < deadline, "{}", gw.stderr());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(chat(&gw, &key).await, 200, "its key still works");
    // The start asks keep or restore, until the user answers.
    let listed = text(&cli(&data, home.path(), &["clients"]));
    assert!(
        listed.contains("from before this start: `switchboard keep claude-code`"),
        "{listed}"
    );
    let kept = cli(&data, home.path(), &["keep", "claude-code"]);
    assert!(
        text(&kept).contains("Claude Code stays connected"),
        "{}",
        text(&kept)
    );
    let listed = text(&cli(&data, home.path(), &["clients"]));
    assert!(
        listed.contains("connected (key claude-code)") && !listed.contains("before this start"),
        "{listed}"
    );
    let codex = cli(&data, home.path(), &["keep", "codex"]);
    assert_eq!(codex.status.code(), Some(2), "{}", text(&codex));
    assert!(
        text(&codex).contains("Codex is not connected"),
        "{}",
        text(&codex)
    );

    let gone = cli(&data, home.path(), &["disconnect", "claude-code"]);
    assert!(gone.status.success(), "{}", text(&gone));
    assert!(
        text(&gone).contains("restored from its backup"),
        "{}",
        text(&gone)
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        SETTINGS,
        "byte-identical"
    );
    assert_eq!(chat(&gw, &key).await, 401, "its key is revoked");

    // Connected again: a new key under a new name (a revoked key keeps its name).
    // The upstream refuses the test request: connect still holds, and says why.
    mock.script([common::mock::Reply::status(
        400,
        r#"{"error":{"message":"max_tokens is too small for this relay","type":"invalid_request_error"}}"#,
    )]);
    let again = text(&cli(&data, home.path(), &["connect", "claude"]));
    assert!(again.contains("client key 'claude-code-2'"), "{again}");
    assert!(
        again.contains("Test request: fast failed with 400: max_tokens is too small"),
        "{again}"
    );

    // Run from a folder whose own .env Gemini CLI would read, with the key in the shell too:
    // connect says both, and how to fix them.
    let project = home.path().join("work/app");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(home.path().join("work/.env"), "GEMINI_MODEL=x\n").unwrap();
    let gemini = Command::new(BIN)
        .args(["connect", "gemini-cli", "--data-dir"])
        .arg(&data)
        .env("HOME", home.path())
        .env("GEMINI_API_KEY", "AIza-in-the-shell")
        .current_dir(&project)
        .output()
        .unwrap();
    let said = text(&gemini);
    assert!(gemini.status.success(), "{said}");
    assert!(
        said.contains("Check: GEMINI_API_KEY is set in the environment"),
        "{said}"
    );
    assert!(
        said.contains("work/.env is read instead of ~/.gemini/.env"),
        "{said}"
    );

    let unknown = cli(&data, home.path(), &["connect", "cursor"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown).contains("one of claude-code, codex, gemini-cli"),
        "{}",
        text(&unknown)
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let nobody = cli(elsewhere.path(), home.path(), &["clients"]);
    assert_eq!(nobody.status.code(), Some(2));
    assert!(
        text(&nobody).contains("no running Switchboard"),
        "{}",
        text(&nobody)
    );
}
