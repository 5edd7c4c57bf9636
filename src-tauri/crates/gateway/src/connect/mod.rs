//! Pointing a coding agent's own settings at the gateway (connect), and back (disconnect).
//!
//! Only the settings Switchboard owns change; everything else in those files (hooks, plugins,
//! MCP servers, comments, key order) stays byte for byte. Before the first write each file is
//! backed up in the data folder; disconnect puts the backup back byte-identical, unless the user
//! edited the file while it was connected: then only our settings are undone (to what they were
//! before connect) and the report says so. A file that already points at the gateway (its
//! backup lost, say) is never taken as the original.
//!
//! - Claude Code: `~/.claude/settings.json`, `env`: `ANTHROPIC_BASE_URL` and
//!   `ANTHROPIC_AUTH_TOKEN` (and no `ANTHROPIC_API_KEY`: exactly one auth variable).
//! - Codex: `~/.codex/config.toml`, a provider table of its own, `[model_providers.switchboard]`
//!   (`wire_api = "responses"`, the key as `experimental_bearer_token`), selected as
//!   `model_provider`; its OAuth tokens (`auth.json`) are never touched.
//! - Gemini CLI: `~/.gemini/.env` (`GOOGLE_GEMINI_BASE_URL`, `GEMINI_API_KEY`) and
//!   `~/.gemini/settings.json` (`security.auth.selectedType = "gemini-api-key"`).

pub mod dotenv;
pub mod jsonc;
mod ledger;
mod shadows;
mod toml_file;

use std::path::{Path, PathBuf};

pub use ledger::{Connected, Ledger, Outcome, Report};
pub use shadows::shadows;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source} (the file is left as it is)")]
    Json {
        path: PathBuf,
        source: jsonc::JsonEditError,
    },
    #[error("{path}: not TOML: {message} (the file is left as it is)")]
    Toml { path: PathBuf, message: String },
    #[error("{path}: not UTF-8 text (the file is left as it is)")]
    NotText { path: PathBuf },
    #[error("{0}")]
    Ledger(String),
}

/// The coding agents Switchboard can point at itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AgentClient {
    ClaudeCode,
    Codex,
    GeminiCli,
}

impl AgentClient {
    pub const ALL: [Self; 3] = [Self::ClaudeCode, Self::Codex, Self::GeminiCli];

    /// The name on the command line, in the ledger and as the client key's name.
    pub fn id(self) -> &'static str {
        match self {
            Self::ClaudeCode => "claude-code",
            Self::Codex => "codex",
            Self::GeminiCli => "gemini-cli",
        }
    }

    pub fn from_id(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "claude-code" | "claude" => Some(Self::ClaudeCode),
            "codex" => Some(Self::Codex),
            "gemini-cli" | "gemini" => Some(Self::GeminiCli),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ClaudeCode => "Claude Code",
            Self::Codex => "Codex",
            Self::GeminiCli => "Gemini CLI",
        }
    }
}

/// Where the gateway is (`http://127.0.0.1:7340`, no path) and the client key for this client.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub base_url: &'a str,
    pub key: &'a str,
}

/// The name of Codex's provider table that is ours.
pub const CODEX_PROVIDER: &str = "switchboard";

/// How a file is written: which settings in it are ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// JSON members: (object path, key).
    Json(&'static [(&'static [&'static str], &'static str)]),
    /// `.env` variables.
    Env(&'static [&'static str]),
    /// Codex's `config.toml`: `model_provider` and our provider table.
    CodexToml,
}

/// One file a client reads, and the settings in it that are ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct File {
    pub path: PathBuf,
    pub format: Format,
}

const CLAUDE_KEYS: &[(&[&str], &str)] = &[
    (&["env"], "ANTHROPIC_BASE_URL"),
    (&["env"], "ANTHROPIC_AUTH_TOKEN"),
    (&["env"], "ANTHROPIC_API_KEY"),
];
const GEMINI_ENV: &[&str] = &["GOOGLE_GEMINI_BASE_URL", "GEMINI_API_KEY"];
const GEMINI_SETTINGS: &[(&[&str], &str)] = &[(&["security", "auth"], "selectedType")];

impl AgentClient {
    /// The files this client reads its gateway from, under `home`.
    pub(crate) fn files(self, home: &Path) -> Vec<File> {
        match self {
            Self::ClaudeCode => vec![File {
                path: home.join(".claude/settings.json"),
                format: Format::Json(CLAUDE_KEYS),
            }],
            Self::Codex => vec![File {
                path: home.join(".codex/config.toml"),
                format: Format::CodexToml,
            }],
            Self::GeminiCli => vec![
                File {
                    path: home.join(".gemini/.env"),
                    format: Format::Env(GEMINI_ENV),
                },
                File {
                    path: home.join(".gemini/settings.json"),
                    format: Format::Json(GEMINI_SETTINGS),
                },
            ],
        }
    }
}

fn json_err(path: &Path) -> impl FnOnce(jsonc::JsonEditError) -> ConnectError + '_ {
    move |source| ConnectError::Json {
        path: path.to_owned(),
        source,
    }
}

/// What our settings are for `target` (None: taken out while connected).
fn wanted(file: &File, target: &Target<'_>) -> Vec<Option<String>> {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    match file.format {
        Format::Json(keys) => keys
            .iter()
            .map(|(_, k)| match *k {
                "ANTHROPIC_BASE_URL" => Some(q(target.base_url)),
                "ANTHROPIC_AUTH_TOKEN" => Some(q(target.key)),
                "selectedType" => Some(q("gemini-api-key")),
                _ => None,
            })
            .collect(),
        Format::Env(names) => names
            .iter()
            .map(|n| match *n {
                "GOOGLE_GEMINI_BASE_URL" => Some(target.base_url.to_owned()),
                _ => Some(target.key.to_owned()),
            })
            .collect(),
        Format::CodexToml => Vec::new(),
    }
}

/// What our settings were in `original` (None: it had none).
fn before(file: &File, original: &str) -> Vec<Option<String>> {
    match file.format {
        Format::Json(keys) => keys
            .iter()
            .map(|(obj, key)| jsonc::get(original, obj, key).unwrap_or(None))
            .collect(),
        Format::Env(names) => names.iter().map(|n| dotenv::get(original, n)).collect(),
        Format::CodexToml => Vec::new(),
    }
}

/// `text` with each of our settings set to its value, or taken out where it has none (JSON
/// and `.env`; Codex's TOML has its own, in `toml_file`).
fn put(file: &File, text: &str, values: Vec<Option<String>>) -> Result<String, ConnectError> {
    let mut out = text.to_owned();
    match file.format {
        Format::Json(keys) => {
            for ((obj, key), value) in keys.iter().zip(values) {
                out = match value {
                    Some(v) => jsonc::set(&out, obj, key, &v),
                    None => jsonc::remove(&out, obj, key),
                }
                .map_err(json_err(&file.path))?;
            }
        }
        Format::Env(names) => {
            for (name, value) in names.iter().zip(values) {
                out = match value {
                    Some(v) => dotenv::set(&out, name, &v),
                    None => dotenv::remove(&out, name),
                };
            }
        }
        Format::CodexToml => {}
    }
    Ok(out)
}

/// `text` with our settings for `target`.
pub(crate) fn apply(file: &File, text: &str, target: &Target<'_>) -> Result<String, ConnectError> {
    match file.format {
        Format::CodexToml => toml_file::apply(&file.path, text, target),
        _ => put(file, text, wanted(file, target)),
    }
}

/// `current` with our settings put back as `original` had them (taken out where it had none).
pub(crate) fn undo(
    file: &File,
    current: &str,
    original: Option<&str>,
) -> Result<String, ConnectError> {
    let original = original.unwrap_or("");
    match file.format {
        Format::CodexToml => toml_file::undo(&file.path, current, original),
        _ => put(file, current, before(file, original)),
    }
}

/// Whether `text` already points this client at the gateway at `base_url`.
pub(crate) fn points_at(file: &File, text: &str, base_url: &str) -> bool {
    let same = |v: &str| v.trim_end_matches('/') == base_url.trim_end_matches('/');
    match file.format {
        Format::Json(keys) => keys.iter().any(|(obj, key)| {
            *key == "ANTHROPIC_BASE_URL"
                && jsonc::get(text, obj, key)
                    .ok()
                    .flatten()
                    .and_then(|v| serde_json::from_str::<String>(&v).ok())
                    .is_some_and(|v| same(&v))
        }),
        Format::Env(_) => dotenv::get(text, "GOOGLE_GEMINI_BASE_URL").is_some_and(|v| same(&v)),
        Format::CodexToml => toml_file::has_ours(text),
    }
}

/// The user's home folder, as each OS's clients look for their settings (`HOME` on Linux and
/// macOS, `USERPROFILE` on Windows, which is where Claude Code, Codex and Gemini CLI all keep
/// their dot-folders there too).
pub fn home_dir(os: &str, var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let found = if os == "windows" {
        var("USERPROFILE").or_else(|| Some(format!("{}{}", var("HOMEDRIVE")?, var("HOMEPATH")?)))
    } else {
        var("HOME")
    };
    found.filter(|h| !h.is_empty()).map(PathBuf::from)
}

#[cfg(test)]
mod tests;
