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
