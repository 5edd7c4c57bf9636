use std::path::Path;

use super::*;
use crate::secrets::{MemorySecretStore, Secret, SecretStore};
use crate::store::{import, load, open_connection};

fn snapshot(src: &str) -> (Snapshot, Warnings) {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = open_connection(&dir.path().join("c.db")).unwrap();
    let file = crate::config::parse(src, Path::new("t.toml")).unwrap();
    let report = import(&mut conn, &file).unwrap();
    let secrets = MemorySecretStore::default();
    for (uid, s) in &report.literal_keys {
        secrets.set(uid, s).unwrap();
    }
    Snapshot::build(
        &load(&conn).unwrap(),
        &|uid| secrets.get(uid),
        &Default::default(),
    )
}

fn pairs(s: &Snapshot, model: &str) -> Vec<String> {
    s.routes[model]
        .candidates
        .iter()
        .map(|c| format!("{}/{}", c.provider.name, c.model))
        .collect()
}

const SRC: &str = r#"
[[providers]]
name = "a"
base_url = "http://a"
weight = 1
api_key = "sk-a-literal"
models = ["claude-opus-4-5", "claude-opus-4-5-thinking", "gpt-4o"]
[[providers]]
name = "b"
base_url = "http://b"
weight = 10
api_key = "env:B"
models = ["claude-opus-4.5", "claude-opus-4-5-20251101"]
[[providers]]
name = "c"
base_url = "http://c"
weight = 5
models = ["claude-opus-4-5"]
[[providers]]
name = "off"
base_url = "http://off"
enabled = false
models = ["claude-opus-4-5", "gpt-4o"]
[[models]]
name = "opus"
rules = [
  { type = "regex", value = "^claude-opus-4[-.]5" },
  { type = "exclude_keyword", value = "thinking" },
]
include = ["a/claude-opus-4-5-thinking", "c/manual-id"]
exclude_providers = ["c"]
[[models]]
name = "gpt-4o"
"#;

#[test]
fn resolves_rules_includes_and_exclusions() {
    let (s, warnings) = snapshot(SRC);
    assert!(warnings.is_empty(), "{warnings:?}");
    // b first (weight 10), then a; c is excluded even though included; the thinking variant is
    // excluded by keyword even though included; the disabled provider contributes nothing.
    assert_eq!(
        pairs(&s, "opus"),
        [
            "b/claude-opus-4-5-20251101",
            "b/claude-opus-4.5",
            "a/claude-opus-4-5"
        ]
    );
    assert_eq!(pairs(&s, "gpt-4o"), ["a/gpt-4o"]);
}

#[test]
fn keys_and_models_body() {
    let (s, _) = snapshot(SRC);
    let a = s.providers.iter().find(|p| &*p.name == "a").unwrap();
    assert_eq!(a.key, ProviderKey::Stored(Secret::new("sk-a-literal")));
    let b = s.providers.iter().find(|p| &*p.name == "b").unwrap();
    assert_eq!(b.key, ProviderKey::Env("B".into()));
    let body: serde_json::Value = serde_json::from_slice(&s.openai_models_body).unwrap();
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt-4o", "opus"]);
    assert!(s.open_access, "no client keys on loopback");
}

#[test]
fn a_key_missing_from_the_store_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = open_connection(&dir.path().join("c.db")).unwrap();
    let file = crate::config::parse(SRC, Path::new("t.toml")).unwrap();
    import(&mut conn, &file).unwrap();
    let (s, warnings) = Snapshot::build(&load(&conn).unwrap(), &|_| Ok(None), &Default::default());
    assert_eq!(s.providers[0].key, ProviderKey::Missing);
    assert!(warnings[0].contains("provider 'a'"), "{warnings:?}");
}

#[test]
fn client_keys_and_access() {
    let (s, _) = snapshot(
        "[[client_keys]]\nname = \"k\"\nkey = \"sk-sb-0123456789abcdef\"\nmodels = [\"opus\"]\n",
    );
    assert!(!s.open_access);
    let k = &s.client_keys[&KeyHash::of("sk-sb-0123456789abcdef")];
    assert!(k.allows("opus") && !k.allows("gpt-4o"));
    let (s, _) = snapshot("[server]\nhost = \"0.0.0.0\"\n");
    assert!(!s.open_access, "never open beyond loopback");
}

#[test]
fn client_names_reach_exact_variant_and_wildcard_models() {
    let (s, _) = snapshot(
        r#"
[[providers]]
name = "a"
base_url = "http://a"
models = ["claude-opus-4-5", "gpt-4o"]
[[models]]
name = "claude-opus-4-5"
[[models]]
name = "claude-*"
include = ["a/claude-opus-4-5"]
[[models]]
name = "claude-haiku-*"
include = ["a/gpt-4o"]
[[models]]
name = "*"
include = ["a/gpt-4o"]
"#,
    );
    let name = |n: &str| s.route(n).map(|r| r.name.to_string());
    assert_eq!(name("claude-opus-4-5").as_deref(), Some("claude-opus-4-5"));
    // Claude Code's long-context variant names the same model.
    assert_eq!(
        name("claude-opus-4-5[1m]").as_deref(),
        Some("claude-opus-4-5")
    );
    // The most specific wildcard wins; `*` takes the rest.
    assert_eq!(name("claude-opus-4-8[1m]").as_deref(), Some("claude-*"));
    assert_eq!(name("claude-haiku-4-5").as_deref(), Some("claude-haiku-*"));
    assert_eq!(name("gemini-3.1-pro-preview").as_deref(), Some("*"));
    assert!(wildcard_match("a*b*c", "a-b-b-c"));
    assert!(!wildcard_match("a*b*c", "a-c-b"));
    assert!(wildcard_match("gpt-*", "gpt-"));
    assert!(!wildcard_match("gpt-*x", "gpt-"));
    assert!(!wildcard_match("claude", "claude-x"));
}

#[test]
fn without_a_wildcard_an_unknown_name_stays_unknown() {
    let (s, _) = snapshot(SRC);
    assert!(s.route("claude-opus-9").is_none());
    assert!(s.route("[1m]").is_none());
}
