//! The official Python SDKs (openai, anthropic, google-genai; pinned in tests/sdk) against the
//! real `switchboard serve`, each asking for a model whose provider speaks another protocol:
//! plain and streamed, with a tool call and its result (tests/sdk/clients.py).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::process::Stdio;

use common::Gateway;
use common::upstreams::Upstreams;

/// The virtualenv `scripts/setup` makes; SWITCHBOARD_PYTHON names another interpreter.
pub(crate) fn python() -> String {
    if let Ok(p) = std::env::var("SWITCHBOARD_PYTHON") {
        return p;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/.venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/setup (it installs the SDKs from tests/sdk/requirements.txt)",
        venv.display()
    );
    venv.display().to_string()
}

async fn run_sdk(cases: &[&str]) {
    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/clients.py");
    let mut cmd = std::process::Command::new(python());
    cmd.arg(script)
        .args(cases)
        .env("SB_URL", &gw.url)
        .env("SB_KEY", gw.key("test"))
        .stdin(Stdio::null());
    // Off the runtime: the mock upstreams run on it while Python waits for them.
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{cases:?} failed:\n{stdout}\n{stderr}\ngateway log:\n{}",
        gw.stderr()
    );
    // Each case prints its passes: a script that ran nothing must not pass.
    let oks = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(oks >= 2 * cases.len(), "{stdout}");
    print!("{stdout}");
}

#[tokio::test]
async fn openai_sdk_against_anthropic_and_gemini_providers() {
    run_sdk(&[
        "openai-chat:to-anthropic",
        "openai-chat:to-gemini",
        "openai-responses:to-anthropic",
        "openai-responses:to-gemini",
    ])
    .await;
}

#[tokio::test]
async fn anthropic_sdk_against_openai_and_gemini_providers() {
    run_sdk(&["anthropic:to-openai", "anthropic:to-gemini"]).await;
}

#[tokio::test]
async fn gemini_sdk_against_openai_and_anthropic_providers() {
    run_sdk(&["gemini:to-openai", "gemini:to-anthropic"]).await;
}
