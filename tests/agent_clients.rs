//! The coding agents people point at a gateway, for real: Claude Code, Codex CLI and Gemini CLI
//! (pinned in tests/agents, installed by scripts/setup), each at its default settings with the
//! configuration the README gives, against `switchboard serve` and a scripted agent upstream
//! in each protocol (tests/common/agent.rs). The upstream asks for the CLI's own shell tool; the
//! CLI runs it and sends back what it printed; only then does the upstream answer with it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Gateway;
use common::agent::{Agent, DONE, Fault, PARTIAL};
use switchboard_gateway::connect::{AgentClient, Ledger, Target};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cli {
    Claude,
    /// Codex with a provider of its own for Switchboard (`model_providers`).
    Codex,
    /// Codex with its built-in OpenAI provider pointed here (`openai_base_url`): it tries the
    /// Responses WebSocket mode first.
    CodexOpenAi,
    Gemini,
    /// The client as `switchboard connect` leaves it: its files written by the connect module,
    /// no gateway variable in its environment.
    Connected(AgentClient),
}

/// The scripted upstreams, one per provider protocol, and a relay with chat completions only.
struct Upstreams {
    openai: Agent,
    relay: Agent,
    anthropic: Agent,
    gemini: Agent,
    /// A second Anthropic provider, for failover: it can be made to fail.
    down: Agent,
}

impl Upstreams {
    async fn start() -> Self {
        Self {
            openai: Agent::start(false).await,
            relay: Agent::start(true).await,
            anthropic: Agent::start(false).await,
            gemini: Agent::start(false).await,
            down: Agent::start(false).await,
        }
    }

    fn get(&self, name: &str) -> &Agent {
        match name {
            "oa" => &self.openai,
            "relay" => &self.relay,
            "an" => &self.anthropic,
            "ge" => &self.gemini,
            _ => &self.down,
        }
    }

    /// The README's wildcard models, each served by `targets` (provider/model pairs).
    fn config(&self, targets: &[&str]) -> String {
        let include: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
        let include = include.join(", ");
        format!(
            r#"
[server]
request_timeout_s = 60

[[providers]]
name = "oa"
base_url = "{}"
protocols = ["openai"]
models = ["gpt-agent"]

[[providers]]
name = "relay"
base_url = "{}"
protocols = ["openai"]
models = ["relay-agent"]

[[providers]]
name = "an"
base_url = "{}"
protocols = ["anthropic"]
models = ["claude-agent"]

[[providers]]
name = "ge"
base_url = "{}"
protocols = ["gemini"]
models = ["gemini-agent"]

[[providers]]
name = "down"
base_url = "{}"
protocols = ["anthropic"]
# Tried first all but once in a million (at weight 100, one run in a hundred went to the
# healthy one first and never tried it).
weight = 1000000
models = ["claude-down"]

[[models]]
name = "claude-*"
include = [{include}]

[[models]]
name = "gpt-*"
include = [{include}]

[[models]]
name = "gemini-*"
include = [{include}]

[[client_keys]]
name = "test"
"#,
            self.openai.url(),
            self.relay.url(),
            self.anthropic.url(),
            self.gemini.url(),
            self.down.url(),
        )
    }
}

fn bin(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/agents/node_modules/.bin")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup (it installs the CLIs pinned in tests/agents)",
        p.display()
    );
    p
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
    took: Duration,
    /// The CLI's home, kept for a look after it ran.
    home: tempfile::TempDir,
}

/// Runs one CLI non-interactively with its own HOME and an environment built from scratch, as
/// the README tells a user to set it up; killed with its helpers after `limit`.
fn run(cli: Cli, url: &str, key: &str, limit: Duration) -> Run {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let prompt = "Run the shell command and tell me what it printed.";
    let mut cmd;
    match cli {
        Cli::Claude => {
            cmd = Command::new(bin("claude"));
            cmd.env_clear();
            cmd.args(["-p", prompt, "--dangerously-skip-permissions"])
                .env("ANTHROPIC_BASE_URL", url)
                .env("ANTHROPIC_AUTH_TOKEN", key)
                // As root, Claude Code takes --dangerously-skip-permissions only in a sandbox.
                .env("IS_SANDBOX", "1")
                .env("DISABLE_TELEMETRY", "1")
                .env("DISABLE_AUTOUPDATER", "1")
                .env("DISABLE_ERROR_REPORTING", "1");
        }
        Cli::Codex | Cli::CodexOpenAi => {
            let dir = home.path().join(".codex");
            std::fs::create_dir_all(&dir).unwrap();
            let config = if cli == Cli::Codex {
                format!(
                    "model_provider = \"switchboard\"\n\n[model_providers.switchboard]\nname = \"Switchboard\"\nbase_url = \"{url}/v1\"\nwire_api = \"responses\"\nenv_key = \"SWITCHBOARD_KEY\"\n"
                )
            } else {
                format!("openai_base_url = \"{url}/v1\"\n")
            };
            std::fs::write(dir.join("config.toml"), config).unwrap();
            if cli == Cli::CodexOpenAi {
                // Its built-in provider takes the key it was logged in with, not an env key.
                let mut login = Command::new(bin("codex"))
                    .args(["login", "--with-api-key"])
                    .env_clear()
                    .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                    .env("HOME", home.path())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                use std::io::Write;
                login
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(key.as_bytes())
                    .unwrap();
                assert!(login.wait().unwrap().success(), "codex login");
            }
            cmd = Command::new(bin("codex"));
            cmd.env_clear();
            cmd.args([
                "exec",
                "--skip-git-repo-check",
                "--dangerously-bypass-approvals-and-sandbox",
                prompt,
            ])
            .env("SWITCHBOARD_KEY", key);
        }
        Cli::Connected(client) => {
            Ledger::new(&home.path().join("switchboard-data"))
                .connect(client, home.path(), &Target { base_url: url, key }, None)
                .expect("connect");
            match client {
                AgentClient::ClaudeCode => {
                    cmd = Command::new(bin("claude"));
                    cmd.env_clear();
                    cmd.args(["-p", prompt, "--dangerously-skip-permissions"])
                        .env("IS_SANDBOX", "1")
                        .env("DISABLE_TELEMETRY", "1")
                        .env("DISABLE_AUTOUPDATER", "1")
                        .env("DISABLE_ERROR_REPORTING", "1");
                }
                AgentClient::Codex => {
                    cmd = Command::new(bin("codex"));
                    cmd.env_clear();
                    cmd.args([
                        "exec",
                        "--skip-git-repo-check",
                        "--dangerously-bypass-approvals-and-sandbox",
                        prompt,
                    ]);
                }
                AgentClient::GeminiCli => {
                    // Trust for --yolo in the working folder: not a gateway setting.
                    std::fs::write(
                        home.path().join(".gemini/trustedFolders.json"),
                        serde_json::json!({ work.path().display().to_string(): "TRUST_FOLDER" })
                            .to_string(),
                    )
                    .unwrap();
                    cmd = Command::new(bin("gemini"));
                    cmd.env_clear();
                    cmd.args(["-p", prompt, "--yolo"]);
                }
            }
        }
        Cli::Gemini => {
            let dir = home.path().join(".gemini");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("settings.json"),
                r#"{"security": {"auth": {"selectedType": "gemini-api-key"}}}"#,
            )
            .unwrap();
            std::fs::write(
                dir.join("trustedFolders.json"),
                serde_json::json!({ work.path().display().to_string(): "TRUST_FOLDER" })
                    .to_string(),
            )
            .unwrap();
            cmd = Command::new(bin("gemini"));
            cmd.env_clear();
            cmd.args(["-p", prompt, "--yolo"])
                .env("GOOGLE_GEMINI_BASE_URL", url)
                .env("GEMINI_API_KEY", key);
        }
    }
    cmd.current_dir(work.path())
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", home.path())
        .env("TERM", "dumb")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that its helpers go with it.
        .process_group(0);
    let started = Instant::now();
    let mut child = cmd.spawn().expect("the CLI starts");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    // `-s KILL -- -PGID`: procps' kill reads `-KILL -PGID` differently, and killed far more
    // than the group here.
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    let stdout = reader.join().unwrap_or_default();
    let mut stderr = err_reader.join().unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!("\n[killed after {limit:?}]"));
    }
    Run {
        ok: status.is_some_and(|s| s.success()),
        stdout,
        stderr,
        took,
        home,
    }
}

/// The CLI against a gateway whose wildcard models go to `targets`; off the runtime, since the
/// upstreams run on it.
async fn drive(ups: &Upstreams, cli: Cli, targets: &[&str]) -> (Run, Gateway, tempfile::TempDir) {
    let (gw, dir) = common::start_admin(&ups.config(targets));
    let (url, key) = (gw.url.clone(), gw.key("test"));
    let r = tokio::task::spawn_blocking(move || run(cli, &url, &key, Duration::from_secs(120)))
        .await
        .unwrap();
    (r, gw, dir)
}

fn report(cli: Cli, target: &str, r: &Run, gw: &Gateway) -> String {
    format!(
        "{cli:?} on {target} (ok {}, {:?}):\n--- stdout\n{}\n--- stderr\n{}\n--- gateway\n{}",
        r.ok,
        r.took,
        r.stdout,
        r.stderr.chars().take(6000).collect::<String>(),
        gw.stderr()
    )
}

/// The tool round trip: the upstream asked for the shell tool, the CLI ran it and sent the
/// output back, and the answer made of it reached the user.
async fn round_trip(cli: Cli, target: &str) {
    let ups = Upstreams::start().await;
    let (r, gw, _dir) = drive(&ups, cli, &[target]).await;
    let agent = ups.get(target.split('/').next().unwrap());
    let ctx = report(cli, target, &r, &gw);
    assert!(r.ok, "{ctx}");
    assert!(r.stdout.contains(DONE), "{ctx}");
    assert!(agent.requests().len() >= 2, "{ctx}");
    println!("{cli:?} on {target}: {:?}", r.took);
}

/// `switchboard connect`'s files alone make the CLI use the gateway, for a tool round trip;
/// after disconnect no file of the CLI names the gateway any more.
async fn connected_round_trip(client: AgentClient, target: &str) {
    let ups = Upstreams::start().await;
    let cli = Cli::Connected(client);
    let (r, gw, _dir) = drive(&ups, cli, &[target]).await;
    let agent = ups.get(target.split('/').next().unwrap());
    let ctx = report(cli, target, &r, &gw);
    assert!(r.ok, "{ctx}");
    assert!(r.stdout.contains(DONE), "{ctx}");
    assert!(agent.requests().len() >= 2, "{ctx}");
    if client == AgentClient::Codex {
        // Connect turns on Codex's WebSocket mode, which the gateway serves: used at once.
        assert!(
            gw.stderr().contains("access responses (websocket)"),
            "{ctx}"
        );
    }
    let home = r.home.path();
    let report = Ledger::new(&home.join("switchboard-data"))
        .disconnect(client)
        .unwrap();
    assert!(!report.files.is_empty(), "{ctx}");
    for (path, _) in &report.files {
        if let Ok(text) = std::fs::read_to_string(path) {
            assert!(
                !text.contains(&gw.url),
                "{} still names the gateway:\n{text}",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn claude_code_connected_by_switchboard_runs_its_shell_tool() {
    connected_round_trip(AgentClient::ClaudeCode, "an/claude-agent").await;
}

#[tokio::test]
async fn codex_connected_by_switchboard_runs_its_shell_tool() {
    connected_round_trip(AgentClient::Codex, "oa/gpt-agent").await;
}

#[tokio::test]
async fn gemini_cli_connected_by_switchboard_runs_its_shell_tool() {
    connected_round_trip(AgentClient::GeminiCli, "ge/gemini-agent").await;
}

#[tokio::test]
async fn claude_code_runs_its_shell_tool_on_anthropic() {
    round_trip(Cli::Claude, "an/claude-agent").await;
}

#[tokio::test]
async fn claude_code_runs_its_shell_tool_on_openai_chat() {
    round_trip(Cli::Claude, "oa/gpt-agent").await;
}

#[tokio::test]
async fn claude_code_runs_its_shell_tool_on_gemini() {
    round_trip(Cli::Claude, "ge/gemini-agent").await;
}

#[tokio::test]
async fn codex_runs_its_shell_tool_on_openai_responses() {
    round_trip(Cli::Codex, "oa/gpt-agent").await;
}

#[tokio::test]
async fn codex_runs_its_shell_tool_on_anthropic() {
    round_trip(Cli::Codex, "an/claude-agent").await;
}

#[tokio::test]
async fn codex_runs_its_shell_tool_on_gemini() {
    round_trip(Cli::Codex, "ge/gemini-agent").await;
}

/// Codex's built-in OpenAI provider speaks the Responses WebSocket mode: one connection for the
/// session, each turn a `response.create` naming the previous response and sending only its new
/// items. The gateway keeps the connection's history, so every upstream, native or converted,
/// gets the whole conversation (the call before its result), over plain HTTP.
#[tokio::test]
async fn codex_over_the_responses_websocket_on_every_upstream() {
    for target in ["oa/gpt-agent", "an/claude-agent", "ge/gemini-agent"] {
        let ups = Upstreams::start().await;
        let (r, gw, _dir) = drive(&ups, Cli::CodexOpenAi, &[target]).await;
        let ctx = report(Cli::CodexOpenAi, target, &r, &gw);
        assert!(r.ok && r.stdout.contains(DONE), "{ctx}");
        // Over the WebSocket, not after giving up on it (five retries took about 6 s).
        assert!(
            gw.stderr().contains("access responses (websocket)"),
            "{ctx}"
        );
        assert!(r.took < Duration::from_secs(5), "{ctx}");
        let agent = ups.get(&target[..2]);
        let reqs = agent.requests();
        let (_, last) = reqs.last().unwrap();
        let body = last.to_string();
        let call = match &target[..2] {
            "oa" => r#""type":"custom_tool_call""#,
            "an" => r#""type":"tool_use""#,
            _ => r#""functionCall""#,
        };
        assert!(
            body.contains(call) && body.contains(common::agent::MARK),
            "{target}: the call and its result both reach the upstream ({} requests)",
            reqs.len()
        );
    }
}

/// A relay with chat completions only: its 404 to `/v1/responses` is learned, the request
/// converted and sent again, and Codex never sees it; the provider is then shown chat-only.
#[tokio::test]
async fn codex_runs_its_shell_tool_on_a_chat_only_relay() {
    let ups = Upstreams::start().await;
    let (r, gw, _dir) = drive(&ups, Cli::Codex, &["relay/relay-agent"]).await;
    let ctx = report(Cli::Codex, "relay", &r, &gw);
    assert!(r.ok && r.stdout.contains(DONE), "{ctx}");
    let paths: Vec<String> = ups.relay.requests().into_iter().map(|(p, _)| p).collect();
    assert!(
        paths.iter().all(|p| p.ends_with("/chat/completions")),
        "{paths:?}"
    );
    let token = common::admin_token(&gw).await;
    let relay = common::provider_view(&gw, &token, "relay").await;
    assert_eq!(relay["responses"], false, "{relay}");
}

#[tokio::test]
async fn gemini_cli_runs_its_shell_tool_on_gemini() {
    round_trip(Cli::Gemini, "ge/gemini-agent").await;
}

/// Gemini CLI's default "auto" mode first asks a classifier for JSON by schema: the schema
/// reaches the converted upstream, so the classifier answers at once.
#[tokio::test]
async fn gemini_cli_runs_its_shell_tool_on_openai_chat() {
    let ups = Upstreams::start().await;
    let (r, gw, _dir) = drive(&ups, Cli::Gemini, &["oa/gpt-agent"]).await;
    let ctx = report(Cli::Gemini, "oa", &r, &gw);
    assert!(r.ok && r.stdout.contains(DONE), "{ctx}");
    let first = ups.openai.requests().into_iter().next().map(|(_, b)| b);
    let schema = first.as_ref().and_then(|b| {
        b["response_format"]["json_schema"]["schema"]["properties"]
            .as_object()
            .cloned()
    });
    assert!(schema.is_some_and(|p| !p.is_empty()), "{first:?}\n{ctx}");
    assert!(r.took < Duration::from_secs(40), "{ctx}");
}

/// On a model without Anthropic's structured output, the classifier's JSON is asked for by a
/// forced tool, and its input comes back as the JSON text.
#[tokio::test]
async fn gemini_cli_runs_its_shell_tool_on_anthropic() {
    let ups = Upstreams::start().await;
    let (r, gw, _dir) = drive(&ups, Cli::Gemini, &["an/claude-agent"]).await;
    let ctx = report(Cli::Gemini, "an", &r, &gw);
    assert!(r.ok && r.stdout.contains(DONE), "{ctx}");
    let first = ups.anthropic.requests().into_iter().next().map(|(_, b)| b);
    let forced = first
        .as_ref()
        .and_then(|b| b["tool_choice"]["name"].as_str().map(str::to_owned));
    assert_eq!(
        forced.as_deref(),
        Some("switchboard_json_answer"),
        "{first:?}"
    );
    assert!(r.took < Duration::from_secs(40), "{ctx}");
}

/// Every stream breaks after content has started: the CLI reports the gateway's reason and
/// fails (after its own retries), or gets a whole answer another way (Claude Code falls back to
/// a plain request), and never takes the half answer for a finished one. (Gemini CLI did:
/// exit 0 with the cut text, while the error came as a `data:` line.)
#[tokio::test]
async fn a_stream_broken_after_content_is_an_error_for_every_cli() {
    for (cli, target) in [
        (Cli::Claude, "oa/gpt-agent"),
        (Cli::Claude, "an/claude-agent"),
        (Cli::Codex, "an/claude-agent"),
        (Cli::Codex, "oa/gpt-agent"),
        (Cli::Gemini, "an/claude-agent"),
        (Cli::Gemini, "ge/gemini-agent"),
    ] {
        let ups = Upstreams::start().await;
        let agent = ups.get(target.split('/').next().unwrap());
        agent.set_fault(Fault::BreakStreams);
        let (r, gw, _dir) = drive(&ups, cli, &[target]).await;
        let ctx = report(cli, target, &r, &gw);
        if r.ok {
            assert!(
                r.stdout.contains(DONE) && !r.stdout.trim_end().ends_with(PARTIAL),
                "a cut answer passed as a whole one: {ctx}"
            );
        } else {
            let said = format!("{}{}", r.stdout, r.stderr);
            assert!(
                said.contains(&format!("cannot reach provider '{}'", &target[..2])),
                "the CLI shows the gateway's reason: {ctx}"
            );
        }
        println!("{cli:?} on {target}: ok {}, {:?}", r.ok, r.took);
    }
}

/// A provider that answers 503 to everything, with the highest weight: every CLI finishes its
/// turn on the healthy one without noticing.
#[tokio::test]
async fn failover_is_invisible_to_every_cli() {
    for (cli, healthy) in [
        (Cli::Claude, "oa/gpt-agent"),
        (Cli::Codex, "an/claude-agent"),
        (Cli::Gemini, "ge/gemini-agent"),
    ] {
        let ups = Upstreams::start().await;
        ups.down.set_fault(Fault::Status(503));
        let (r, gw, _dir) = drive(&ups, cli, &["down/claude-down", healthy]).await;
        let ctx = report(cli, healthy, &r, &gw);
        assert!(r.ok && r.stdout.contains(DONE), "{ctx}");
        assert!(
            !ups.down.requests().is_empty(),
            "the failing provider was tried: {ctx}"
        );
    }
}
