//! The database as a config file: what `GET /api/export` answers. Importing it (as
//! `--config`) gives the same providers, models, client keys and settings back. No secret is in
//! it: provider keys in the keychain stay there (an entry without `api_key` keeps the stored
//! key), client keys are only stored hashed, and a literal credential header is left out.

use std::collections::HashSet;

use rusqlite::Connection;
use toml::{Table, Value};

use super::StoreError;
use super::config_db::{KeyRef, StoredState, load, sync_info};
use crate::config::{Settings, Strategy, is_credential_header, url_has_credentials};

const PREAMBLE: &str = "\
# Switchboard configuration, exported from its database.
# Provider keys kept in the OS keychain are not in this file: imported on the same machine,
# a provider without api_key keeps its stored key; elsewhere, add api_key = \"env:NAME\" or the
# key itself. Client keys are stored hashed: imported elsewhere, new ones are generated and
# printed once.
";

pub fn export(conn: &Connection) -> Result<String, StoreError> {
    let state = load(conn)?;
    let listed: HashSet<String> = sync_info(conn)?
        .into_iter()
        .filter(|(_, s)| s.source.as_deref() == Some("config"))
        .map(|(name, _)| name)
        .collect();
    render(&state, &listed)
}

/// `listed`: the providers whose model list comes from the config (not from a sync).
pub fn render(state: &StoredState, listed: &HashSet<String>) -> Result<String, StoreError> {
    let mut doc = settings_tables(&state.settings)?;
    let mut notes = Vec::new();

    let providers: Vec<Value> = state
        .providers
        .iter()
        .map(|p| {
            let mut t = Table::new();
            t.insert("name".into(), p.name.clone().into());
            let base_url = if url_has_credentials(&p.base_url) {
                notes.push(format!(
                    "provider '{}': the credentials in its base_url left out",
                    p.name
                ));
                without_credentials(&p.base_url)
            } else {
                p.base_url.clone()
            };
            t.insert("base_url".into(), base_url.into());
            t.insert(
                "protocols".into(),
                strings(p.protocols.iter().map(|x| x.as_str())),
            );
            match &p.key_ref {
                KeyRef::Env(var) => {
                    t.insert("api_key".into(), format!("env:{var}").into());
                }
                KeyRef::Stored => notes.push(format!(
                    "provider '{}': api_key is in the OS keychain",
                    p.name
                )),
                KeyRef::None => {}
            }
            t.insert("weight".into(), i64::from(p.weight).into());
            if p.priority != 0 {
                t.insert("priority".into(), i64::from(p.priority).into());
            }
            t.insert("enabled".into(), p.enabled.into());
            if !p.responses {
                t.insert("responses".into(), false.into());
            }
            if listed.contains(&p.name) {
                t.insert(
                    "models".into(),
                    strings(p.models.iter().map(String::as_str)),
                );
            }
            let mut headers = Table::new();
            for (k, v) in &p.headers {
                if !v.starts_with("env:") && is_credential_header(k) {
                    notes.push(format!(
                        "provider '{}': header {k:?} left out (a credential)",
                        p.name
                    ));
                    continue;
                }
                headers.insert(k.clone(), v.clone().into());
            }
            if !headers.is_empty() {
                t.insert("headers".into(), headers.into());
            }
            Value::Table(t)
        })
        .collect();
    if !providers.is_empty() {
        doc.insert("providers".into(), providers.into());
    }

    let mut models = Vec::new();
    for m in &state.models {
        let mut t = Table::new();
        t.insert("name".into(), m.name.clone().into());
        if !m.rules.is_empty() {
            let rules: Vec<Value> = m
                .rules
                .iter()
                .map(|r| {
                    let mut rule = Table::new();
                    rule.insert("type".into(), r.kind.as_str().into());
                    rule.insert("value".into(), r.value.clone().into());
                    Value::Table(rule)
                })
                .collect();
            t.insert("rules".into(), rules.into());
        }
        if !m.include.is_empty() {
            let pairs: Vec<String> = m
                .include
                .iter()
                .map(|i| format!("{}/{}", i.provider, i.model))
                .collect();
            t.insert("include".into(), strings(pairs.iter().map(String::as_str)));
        }
        if !m.exclude_providers.is_empty() {
            t.insert(
                "exclude_providers".into(),
                strings(m.exclude_providers.iter().map(String::as_str)),
            );
        }
        if let Some(p) = m.protocol {
            t.insert("protocol".into(), p.as_str().into());
        }
        for (key, params) in [
            ("default_params", &m.default_params),
            ("override_params", &m.override_params),
        ] {
            if !params.is_empty() {
                let v = Value::try_from(params)
                    .map_err(|e| StoreError::Invalid(format!("model '{}': {key}: {e}", m.name)))?;
                t.insert(key.into(), v);
            }
        }
        if !m.probe {
            t.insert("probe".into(), false.into());
        }
        if m.strategy != Strategy::Weighted {
            t.insert("strategy".into(), m.strategy.as_str().into());
        }
        if let Some(Ok(Value::Table(g))) = m.group.as_ref().map(Value::try_from) {
            t.insert("group".into(), Value::Table(g));
        }
        if !m.sort.is_empty()
            && let Ok(v) = Value::try_from(&m.sort)
        {
            t.insert("sort".into(), v);
        }
        if let Some(tiering) = &m.tiers {
            // The config file's shape: `classifier = {...}` and `[[models.tiers]]`.
            if tiering.classifier != Default::default()
                && let Ok(Value::Table(c)) = Value::try_from(&tiering.classifier)
            {
                t.insert("classifier".into(), Value::Table(c));
            }
            if let Ok(v) = Value::try_from(&tiering.tiers) {
                t.insert("tiers".into(), v);
            }
        }
        models.push(Value::Table(t));
    }
    if !models.is_empty() {
        doc.insert("models".into(), models.into());
    }

    // Revoked keys stay out: imported elsewhere, their names would make live keys.
    let keys: Vec<Value> = state
        .client_keys
        .iter()
        .filter(|k| !k.revoked)
        .map(|k| {
            let mut t = Table::new();
            t.insert("name".into(), k.name.clone().into());
            t.insert(
                "models".into(),
                strings(k.models.iter().map(String::as_str)),
            );
            if let Some(rpm) = k.rpm {
                t.insert("rpm".into(), i64::from(rpm).into());
            }
            if let Some(at) = k.expires_at.and_then(|t| i64::try_from(t).ok()) {
                t.insert("expires_at".into(), at.into());
            }
            if let Some(on) = k.capture_bodies {
                t.insert("capture_bodies".into(), on.into());
            }
            if k.pin_providers {
                t.insert("pin_providers".into(), true.into());
            }
            if let Some(Ok(Value::Table(b))) = k.budget.as_ref().map(Value::try_from) {
                t.insert("budget".into(), Value::Table(b));
            }
            Value::Table(t)
        })
        .collect();
    if !keys.is_empty() {
        doc.insert("client_keys".into(), keys.into());
    }

    if !state.quotas.is_empty() {
        let q = Value::try_from(&state.quotas)
            .map_err(|e| StoreError::Invalid(format!("quotas: {e}")))?;
        doc.insert("quotas".into(), q);
    }
    if !state.capabilities.is_empty() {
        let caps = Value::try_from(&state.capabilities)
            .map_err(|e| StoreError::Invalid(format!("capabilities: {e}")))?;
        doc.insert("capabilities".into(), caps);
    }

    if !state.prices.is_empty() {
        let prices = Value::try_from(&state.prices)
            .map_err(|e| StoreError::Invalid(format!("prices: {e}")))?;
        doc.insert("prices".into(), prices);
    }

    let body = toml::to_string_pretty(&doc).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let mut out = PREAMBLE.to_owned();
    for n in &notes {
        out.push_str("# ");
        out.push_str(n);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&body);
    Ok(out)
}

/// `scheme://user:password@host/path` without `user:password@` (stored before such URLs were
/// refused).
fn without_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = rest[..end]
        .rsplit_once('@')
        .map_or(&rest[..end], |(_, h)| h);
    let prefix = if scheme.is_empty() {
        String::new()
    } else {
        format!("{scheme}://")
    };
    format!("{prefix}{host}{}", &rest[end..])
}

fn strings<'a>(items: impl Iterator<Item = &'a str>) -> Value {
    Value::Array(items.map(|s| Value::String(s.to_owned())).collect())
}

/// The settings in the config file's sections, every one of them set.
fn settings_tables(s: &Settings) -> Result<Table, StoreError> {
    let invalid = |e: &dyn std::fmt::Display| {
        StoreError::Invalid(format!("the settings cannot be written as TOML: {e}"))
    };
    match Value::try_from(s.to_patch()) {
        Ok(Value::Table(t)) => Ok(t),
        Ok(other) => Err(invalid(&format!(
            "a {} instead of a table",
            other.type_str()
        ))),
        Err(e) => Err(invalid(&e)),
    }
}
