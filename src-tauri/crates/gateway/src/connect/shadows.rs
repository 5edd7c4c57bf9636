//! What would make a client ignore the files connect wrote, found the way each client resolves
//! its settings (verified with the real CLIs: docs in `shared/design/agent-clients.md`):
//! - Claude Code: a project's `.claude/settings.json` or `settings.local.json` `env` wins over
//!   `~/.claude/settings.json` (shell variables do not: the file wins over them).
//! - Gemini CLI: shell variables win over `~/.gemini/.env`, and a project's `.gemini/.env` or
//!   `.env` (the first found from the folder up) is read instead of it.
//! - Codex: `CODEX_HOME` moves its whole configuration away from `~/.codex`. `codex --profile
//!   NAME` reads `NAME.config.toml` beside `config.toml`, whose `model_provider` wins; a legacy
//!   `profile = "NAME"` in `config.toml` stops Codex 0.171 from starting at all. A project's
//!   `.codex/config.toml` does not change the provider (trusted or not).

use std::path::{Path, PathBuf};

use super::{AgentClient, jsonc};

const CLAUDE_VARS: &[&str] = &[
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_API_KEY",
];
const GEMINI_VARS: &[&str] = &["GOOGLE_GEMINI_BASE_URL", "GEMINI_API_KEY"];

/// One line per thing that wins over connect's files, each saying how to fix it. `project` is
/// the folder the client will run in (the command line's current folder), if known; `var` reads
/// the environment the client will start from.
pub fn shadows(
    client: AgentClient,
    home: &Path,
    project: Option<&Path>,
    var: impl Fn(&str) -> Option<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    match client {
        AgentClient::ClaudeCode => {
            let Some(project) = project.filter(|p| *p != home) else {
                return out;
            };
            for name in ["settings.json", "settings.local.json"] {
                let path = project.join(".claude").join(name);
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let set: Vec<&str> = CLAUDE_VARS
                    .iter()
                    .copied()
                    .filter(|v| jsonc::get(&text, &["env"], v).ok().flatten().is_some())
                    .collect();
                if !set.is_empty() {
                    out.push(format!(
                        "{} sets {} in its env, which wins over ~/.claude/settings.json in {}: take {} out there",
                        path.display(),
                        set.join(", "),
                        project.display(),
                        if set.len() == 1 { "it" } else { "them" }
                    ));
                }
            }
        }
        AgentClient::GeminiCli => {
            for v in GEMINI_VARS {
                if var(v).is_some_and(|s| !s.is_empty()) {
                    out.push(format!(
                        "{v} is set in the environment, which wins over ~/.gemini/.env: unset it (and remove it from your shell profile)"
                    ));
                }
            }
            if let Some(found) = project.and_then(|p| project_env(p, home)) {
                out.push(format!(
                    "{} is read instead of ~/.gemini/.env when Gemini CLI runs in {}: add the same GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY there, or remove it",
                    found.display(),
                    project.map(Path::display).map(|d| d.to_string()).unwrap_or_default()
                ));
            }
        }
        AgentClient::Codex => {
            if let Some(dir) = var("CODEX_HOME").filter(|s| !s.is_empty())
                && Path::new(&dir) != home.join(".codex")
            {
                out.push(format!(
                    "CODEX_HOME is set ({dir}): Codex reads {dir}/config.toml, not ~/.codex/config.toml; unset it, or copy the [model_providers.switchboard] table and model_provider there"
                ));
            }
            codex_profiles(&home.join(".codex"), &mut out);
        }
    }
    out
}

/// Codex's profiles: each `NAME.config.toml` that picks another provider, and a legacy
/// `profile` selector (which Codex now refuses to start with).
fn codex_profiles(dir: &Path, out: &mut Vec<String>) {
    let provider = |path: &Path| -> Option<Option<String>> {
        let text = std::fs::read_to_string(path).ok()?;
        let doc = text.parse::<toml_edit::DocumentMut>().ok()?;
        Some(
            doc.get("model_provider")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        )
    };
    if let Ok(text) = std::fs::read_to_string(dir.join("config.toml"))
        && let Ok(doc) = text.parse::<toml_edit::DocumentMut>()
        && let Some(name) = doc.get("profile").and_then(|v| v.as_str())
    {
        out.push(format!(
            "~/.codex/config.toml selects the profile \"{name}\" the legacy way (profile = \"{name}\"), which Codex refuses to start with: remove that line (use `codex --profile {name}` with ~/.codex/{name}.config.toml instead)"
        ));
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut found: Vec<(String, String)> = entries
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let name = file.strip_suffix(".config.toml")?.to_owned();
            let chosen = provider(&e.path())??;
            (chosen != super::CODEX_PROVIDER).then_some((name, chosen))
        })
        .collect();
    found.sort();
    for (name, chosen) in found {
        out.push(format!(
            "~/.codex/{name}.config.toml sets model_provider = \"{chosen}\": `codex --profile {name}` goes there, not to Switchboard; set model_provider = \"switchboard\" in it to connect that profile too"
        ));
    }
}

/// The `.env` Gemini CLI reads in `folder`: the first `.gemini/.env` or `.env` from it upwards,
/// stopping below `home` (whose `.gemini/.env` is the one connect writes).
fn project_env(folder: &Path, home: &Path) -> Option<PathBuf> {
    let mut dir = Some(folder);
    while let Some(d) = dir {
        if d == home {
            return None;
        }
        for candidate in [d.join(".gemini/.env"), d.join(".env")] {
            // The first file found is the one read, whatever it holds.
            if candidate.is_file() {
                return Some(candidate);
            }
        }
        dir = d.parent();
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn what_wins_over_connects_files_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let project = home.join("work/app");
        std::fs::create_dir_all(project.join(".claude")).unwrap();
        assert!(shadows(AgentClient::ClaudeCode, &home, Some(&project), none).is_empty());
        std::fs::write(
            project.join(".claude/settings.local.json"),
            r#"{"env": {"ANTHROPIC_BASE_URL": "https://relay.example"}, "model": "opus"}"#,
        )
        .unwrap();
        let said = shadows(AgentClient::ClaudeCode, &home, Some(&project), none);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains("settings.local.json sets ANTHROPIC_BASE_URL"),
            "{said:?}"
        );
        // Shell variables do not win over Claude Code's file.
        let shell = |k: &str| (k == "ANTHROPIC_BASE_URL").then(|| "x".to_owned());
        assert!(shadows(AgentClient::ClaudeCode, &home, None, shell).is_empty());

        let gemini_shell = |k: &str| (k == "GEMINI_API_KEY").then(|| "AIza".to_owned());
        let said = shadows(AgentClient::GeminiCli, &home, None, gemini_shell);
        assert!(said[0].starts_with("GEMINI_API_KEY is set"), "{said:?}");
        assert!(shadows(AgentClient::GeminiCli, &home, Some(&project), none).is_empty());
        std::fs::write(home.join("work/.env"), "GEMINI_MODEL=gemini-2.5-pro\n").unwrap();
        let said = shadows(AgentClient::GeminiCli, &home, Some(&project), none);
        assert!(said[0].contains("work/.env is read instead"), "{said:?}");

        let codex_home = |k: &str| (k == "CODEX_HOME").then(|| "/opt/codex".to_owned());
        let said = shadows(AgentClient::Codex, &home, None, codex_home);
        assert!(said[0].contains("/opt/codex/config.toml"), "{said:?}");
        assert!(shadows(AgentClient::Codex, &home, None, none).is_empty());
    }

    #[test]
    fn codex_profiles_that_pick_another_provider_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let codex = home.join(".codex");
        std::fs::create_dir_all(&codex).unwrap();
        std::fs::write(
            codex.join("config.toml"),
            "model_provider = \"switchboard\"\n",
        )
        .unwrap();
        std::fs::write(
            codex.join("work.config.toml"),
            "model_provider = \"azure\"\n",
        )
        .unwrap();
        std::fs::write(codex.join("fast.config.toml"), "model = \"gpt-5-mini\"\n").unwrap();
        std::fs::write(
            codex.join("mine.config.toml"),
            "model_provider = \"switchboard\"\n",
        )
        .unwrap();
        let said = shadows(AgentClient::Codex, home, None, none);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains("work.config.toml sets model_provider = \"azure\""),
            "{said:?}"
        );

        std::fs::write(
            codex.join("config.toml"),
            "profile = \"work\"\nmodel_provider = \"switchboard\"\n",
        )
        .unwrap();
        let said = shadows(AgentClient::Codex, home, None, none);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(
            said[0].contains("legacy way (profile = \"work\")"),
            "{said:?}"
        );
    }
}
