//! Connect and disconnect on a scratch home with realistic files of each client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const URL: &str = "http://127.0.0.1:7340";
const KEY: &str = "sk-sb-connect-test-0123456789";

const CLAUDE: &str = r#"{
  "$schema": "https://json.schemastore.org/claude-code-settings.json",
  "model": "opus",
  "env": {
    "DISABLE_TELEMETRY": "1",
    "ANTHROPIC_API_KEY": "sk-ant-users-own"
  },
  "permissions": {
    "allow": ["Bash(npm run test:*)"],
    "deny": ["Read(./.env)"]
  },
  "hooks": {
    "PostToolUse": [
      {"matcher": "Edit|Write", "hooks": [{"type": "command", "command": "prettier --write \"$CLAUDE_FILE\""}]}
    ]
  },
  "enabledPlugins": {"formatter@marketplace": true},
  "statusLine": {"type": "command", "command": "~/.claude/statusline.sh", "padding": 0}
}
"#;

const CODEX: &str = r#"# Codex settings, by hand
model = "gpt-5-codex"
model_provider = "openai"   # the default, for now
approval_policy = "on-request"

[profiles.fast]
model = "gpt-5-mini"

[mcp_servers.docs]
command = "npx"
args = ["-y", "@acme/docs-mcp"]   # keep this

[projects."/home/me/work"]
trust_level = "trusted"
"#;

const GEMINI_ENV: &str = "# keys\nGEMINI_API_KEY=AIza-users-own\nGEMINI_MODEL=gemini-2.5-pro\n";
const GEMINI_SETTINGS: &str = r#"{
  // my settings
  "general": {"vimMode": true},
  "mcpServers": {
    "fs": {"command": "npx", "args": ["@modelcontextprotocol/server-filesystem", "/home/me"]}
  },
  "ui": {"theme": "GitHub"},
}
"#;

struct Scratch {
    _dir: tempfile::TempDir,
    home: PathBuf,
    data: PathBuf,
    ledger: Ledger,
}

fn scratch() -> Scratch {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    for (path, text) in [
        (".claude/settings.json", CLAUDE),
        (".codex/config.toml", CODEX),
        (
            ".codex/auth.json",
            r#"{"tokens": {"access_token": "oauth-secret"}}"#,
        ),
        (".gemini/.env", GEMINI_ENV),
        (".gemini/settings.json", GEMINI_SETTINGS),
    ] {
        let p = home.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let data = dir.path().join("data");
    let ledger = Ledger::new(&data);
    Scratch {
        home,
        data,
        ledger,
        _dir: dir,
    }
}

fn read(s: &Scratch, path: &str) -> String {
    std::fs::read_to_string(s.home.join(path)).unwrap()
}

const TARGET: Target<'static> = Target {
    base_url: URL,
    key: KEY,
};

#[test]
fn claude_code_gets_its_two_variables_and_every_other_byte_stays() {
    let s = scratch();
    let report = s
        .ledger
        .connect(AgentClient::ClaudeCode, &s.home, &TARGET, None)
        .unwrap();
    assert_eq!(report.files[0].1, Outcome::Written);
    let now = read(&s, ".claude/settings.json");
    let v: serde_json::Value = serde_json::from_str(&now).unwrap();
    assert_eq!(v["env"]["ANTHROPIC_BASE_URL"], URL);
    assert_eq!(v["env"]["ANTHROPIC_AUTH_TOKEN"], KEY);
    assert!(
        v["env"].get("ANTHROPIC_API_KEY").is_none(),
        "one auth variable: {now}"
    );
    // Outside `env`, byte for byte.
    let env_at = CLAUDE.find("  \"env\"").unwrap();
    let after_env = CLAUDE.find("  \"permissions\"").unwrap();
    assert!(now.starts_with(&CLAUDE[..env_at]), "{now}");
    assert!(now.ends_with(&CLAUDE[after_env..]), "{now}");
    assert!(now.contains("\"DISABLE_TELEMETRY\": \"1\""));

    // Connected again (a new key): the first backup stays, ours is never taken as original.
    let again = Target {
        base_url: URL,
        key: "sk-sb-second-key",
    };
    s.ledger
        .connect(AgentClient::ClaudeCode, &s.home, &again, None)
        .unwrap();
    assert!(read(&s, ".claude/settings.json").contains("sk-sb-second-key"));
    assert_eq!(
        s.ledger.connected().unwrap(),
        vec![Connected {
            client: AgentClient::ClaudeCode,
            key_name: None,
            files: vec![s.home.join(".claude/settings.json")],
        }]
    );

    let report = s.ledger.disconnect(AgentClient::ClaudeCode).unwrap();
    assert_eq!(report.files[0].1, Outcome::Restored);
    assert_eq!(read(&s, ".claude/settings.json"), CLAUDE, "byte-identical");
    assert!(s.ledger.connected().unwrap().is_empty());
    assert!(
        s.ledger
            .disconnect(AgentClient::ClaudeCode)
            .unwrap()
            .files
            .is_empty(),
        "not connected: nothing to do"
    );
}

#[test]
fn an_edit_made_while_connected_survives_disconnect() {
    let s = scratch();
    s.ledger
        .connect(AgentClient::ClaudeCode, &s.home, &TARGET, None)
        .unwrap();
    let path = s.home.join(".claude/settings.json");
    let edited =
        read(&s, ".claude/settings.json").replace("\"model\": \"opus\"", "\"model\": \"sonnet\"");
    std::fs::write(&path, &edited).unwrap();
    // After a restart: a new ledger over the same data folder.
    let ledger = Ledger::new(&s.data);
    let report = ledger.disconnect(AgentClient::ClaudeCode).unwrap();
    assert_eq!(report.files[0].1, Outcome::KeptEdits);
    assert!(report.lines()[0].contains("your edits are kept"));
    let now = read(&s, ".claude/settings.json");
    assert_eq!(
        now,
        CLAUDE.replace("\"model\": \"opus\"", "\"model\": \"sonnet\""),
        "{now}"
    );
}

#[test]
fn codex_gets_a_provider_of_its_own_and_its_comments_and_oauth_stay() {
    let s = scratch();
    s.ledger
        .connect(AgentClient::Codex, &s.home, &TARGET, None)
        .unwrap();
    let now = read(&s, ".codex/config.toml");
    let doc: toml::Table = now.parse().unwrap();
    assert_eq!(doc["model_provider"].as_str(), Some(CODEX_PROVIDER));
    let ours = &doc["model_providers"][CODEX_PROVIDER];
    assert_eq!(ours["base_url"].as_str(), Some("http://127.0.0.1:7340/v1"));
    assert_eq!(ours["wire_api"].as_str(), Some("responses"));
    assert_eq!(ours["experimental_bearer_token"].as_str(), Some(KEY));
    assert_eq!(ours["supports_websockets"].as_bool(), Some(true));
    for kept in [
        "# Codex settings, by hand\n",
        "model_provider = \"switchboard\"   # the default, for now\n",
        "[profiles.fast]\nmodel = \"gpt-5-mini\"\n",
        "args = [\"-y\", \"@acme/docs-mcp\"]   # keep this\n",
        "[projects.\"/home/me/work\"]\ntrust_level = \"trusted\"\n",
    ] {
        assert!(now.contains(kept), "{kept:?} in {now}");
    }
    assert_eq!(
        read(&s, ".codex/auth.json"),
        r#"{"tokens": {"access_token": "oauth-secret"}}"#
    );
    s.ledger.disconnect(AgentClient::Codex).unwrap();
    assert_eq!(read(&s, ".codex/config.toml"), CODEX, "byte-identical");

    // Edited meanwhile: the user's model stays, the provider goes back to theirs.
    s.ledger
        .connect(AgentClient::Codex, &s.home, &TARGET, None)
        .unwrap();
    let edited = read(&s, ".codex/config.toml").replace("gpt-5-codex", "gpt-5.1-codex");
    std::fs::write(s.home.join(".codex/config.toml"), edited).unwrap();
    s.ledger.disconnect(AgentClient::Codex).unwrap();
    let now = read(&s, ".codex/config.toml");
    let doc: toml::Table = now.parse().unwrap();
    assert_eq!(doc["model"].as_str(), Some("gpt-5.1-codex"));
    assert_eq!(doc["model_provider"].as_str(), Some("openai"));
    assert!(doc.get("model_providers").is_none(), "{now}");
}

#[test]
fn gemini_cli_gets_its_env_and_auth_type_and_both_files_come_back() {
    let s = scratch();
    s.ledger
        .connect(AgentClient::GeminiCli, &s.home, &TARGET, None)
        .unwrap();
    let env = read(&s, ".gemini/.env");
    assert_eq!(dotenv::get(&env, "GEMINI_API_KEY").as_deref(), Some(KEY));
    assert_eq!(
        dotenv::get(&env, "GOOGLE_GEMINI_BASE_URL").as_deref(),
        Some(URL)
    );
    assert!(env.starts_with("# keys\n") && env.contains("GEMINI_MODEL=gemini-2.5-pro\n"));
    let settings = read(&s, ".gemini/settings.json");
    assert_eq!(
        jsonc::get(&settings, &["security", "auth"], "selectedType")
            .unwrap()
            .as_deref(),
        Some("\"gemini-api-key\"")
    );
    assert!(settings.starts_with("{\n  // my settings\n"), "{settings}");
    let report = s.ledger.disconnect(AgentClient::GeminiCli).unwrap();
    assert_eq!(
        report.files.iter().map(|f| &f.1).collect::<Vec<_>>(),
        [&Outcome::Restored, &Outcome::Restored]
    );
    assert_eq!(read(&s, ".gemini/.env"), GEMINI_ENV);
    assert_eq!(read(&s, ".gemini/settings.json"), GEMINI_SETTINGS);
}

#[test]
fn files_that_did_not_exist_are_made_and_removed_again() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("empty-home");
    let ledger = Ledger::new(&dir.path().join("data"));
    ledger
        .connect(AgentClient::ClaudeCode, &home, &TARGET, None)
        .unwrap();
    let made = home.join(".claude/settings.json");
    let text = std::fs::read_to_string(&made).unwrap();
    assert_eq!(
        text,
        format!(
            "{{\n  \"env\": {{\n    \"ANTHROPIC_BASE_URL\": \"{URL}\",\n    \"ANTHROPIC_AUTH_TOKEN\": \"{KEY}\"\n  }}\n}}\n"
        )
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&made).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "it holds a key: the owner's only");
    }
    let report = ledger.disconnect(AgentClient::ClaudeCode).unwrap();
    assert_eq!(report.files[0].1, Outcome::Removed);
    assert!(!made.exists());
}

#[test]
fn a_file_that_already_points_here_is_not_taken_as_the_original() {
    let s = scratch();
    // Connected once, then the data folder was lost: the file points here, no ledger knows.
    s.ledger
        .connect(AgentClient::ClaudeCode, &s.home, &TARGET, None)
        .unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let ledger = Ledger::new(fresh.path());
    let report = ledger
        .connect(AgentClient::ClaudeCode, &s.home, &TARGET, None)
        .unwrap();
    assert_eq!(report.files[0].1, Outcome::AlreadyThere);
    let report = ledger.disconnect(AgentClient::ClaudeCode).unwrap();
    assert_eq!(report.files[0].1, Outcome::TookOutOurs);
    let now = read(&s, ".claude/settings.json");
    assert!(
        !now.contains("ANTHROPIC_BASE_URL") && !now.contains(KEY),
        "{now}"
    );
    assert!(now.contains("\"hooks\""), "{now}");
}

#[test]
fn a_file_that_does_not_parse_stops_connect_before_any_write() {
    let s = scratch();
    let broken = "{ \"env\": { \"A\": 1, } oops";
    std::fs::write(s.home.join(".gemini/settings.json"), broken).unwrap();
    let err = s
        .ledger
        .connect(AgentClient::GeminiCli, &s.home, &TARGET, None)
        .unwrap_err();
    assert!(err.to_string().contains("settings.json"), "{err}");
    assert_eq!(read(&s, ".gemini/.env"), GEMINI_ENV, "nothing written");
    assert_eq!(read(&s, ".gemini/settings.json"), broken);
    assert!(s.ledger.connected().unwrap().is_empty());
}

#[test]
fn home_folders_on_each_os() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    assert_eq!(
        home_dir("linux", vars(&[("HOME", "/home/me")])),
        Some(PathBuf::from("/home/me"))
    );
    assert_eq!(
        home_dir("macos", vars(&[("HOME", "/Users/me")])),
        Some(PathBuf::from("/Users/me"))
    );
    assert_eq!(
        home_dir(
            "windows",
            vars(&[("USERPROFILE", r"C:\Users\me"), ("HOME", "/x")])
        ),
        Some(PathBuf::from(r"C:\Users\me"))
    );
    assert_eq!(
        home_dir(
            "windows",
            vars(&[("HOMEDRIVE", "D:"), ("HOMEPATH", r"\Users\me")])
        ),
        Some(PathBuf::from(r"D:\Users\me"))
    );
    assert_eq!(home_dir("linux", vars(&[("HOME", "")])), None);
    let claude = AgentClient::ClaudeCode.files(Path::new(r"C:\Users\me"));
    assert!(claude[0].path.ends_with(".claude/settings.json"));
}
