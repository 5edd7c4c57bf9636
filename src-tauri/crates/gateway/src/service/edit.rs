//! Changes from the admin API: providers, unified models, client keys and settings. Each body
//! is checked by the same validation as the config file (it is turned into a one-entry config
//! document), upserted the same way, persisted, then applied by a reload.

use std::path::Path;

use serde_json::{Value, json};
use switchboard_api::{ClientKeyView, CreateClientKey, CreatedClientKey, ModelView, RuleView};

use super::ServiceError;
use crate::config::{self, ConfigFile};
use crate::engine::Engine;
use crate::store::{self, ImportReport};

/// Checks `doc` (shaped like the config file) with the config file's own validation.
pub(super) fn parse_doc(doc: &Value, prefix: &str) -> Result<ConfigFile, ServiceError> {
    let value = toml::Value::try_from(doc).map_err(|e| {
        ServiceError::Invalid(format!("{e} (leave a field out rather than sending null)"))
    })?;
    let src = toml::to_string(&value).map_err(|e| ServiceError::Invalid(e.to_string()))?;
    config::parse(&src, Path::new("request")).map_err(|e| {
        let field = e
            .field
            .as_deref()
            .map(|f| f.strip_prefix(prefix).unwrap_or(f));
        ServiceError::Invalid(match field {
            Some(f) => format!("{f}: {}", e.message),
            None => e.message,
        })
    })
}

async fn apply(engine: &Engine, file: ConfigFile) -> Result<ImportReport, ServiceError> {
    let report = engine.store.call(move |c| store::import(c, &file)).await?;
    let fresh: Vec<String> = report
        .literal_keys
        .iter()
        .map(|(uid, _)| uid.clone())
        .collect();
    if !report.literal_keys.is_empty() {
        // The keychain is a D-Bus call: off the async workers.
        let secrets = engine.secrets.clone();
        let keys = report.literal_keys.clone();
        tokio::task::spawn_blocking(move || {
            keys.iter()
                .try_for_each(|(uid, secret)| secrets.set(uid, secret))
        })
        .await
        .map_err(|e| ServiceError::Invalid(format!("api_key: {e}")))?
        .map_err(|e| ServiceError::Invalid(format!("api_key: {e}")))?;
    }
    engine.reload_with_new_keys(&fresh).await?;
    Ok(report)
}

/// The object must name `name` (or leave it out): the path decides.
fn named(mut body: Value, name: &str) -> Result<Value, ServiceError> {
    let Some(obj) = body.as_object_mut() else {
        return Err(ServiceError::Invalid(
            "the body must be a JSON object".into(),
        ));
    };
    match obj.get("name") {
        Some(Value::String(n)) if n != name => {
            return Err(ServiceError::Invalid(format!(
                "name: the body says {n:?} but the path says {name:?} (to rename, POST /api/providers/{name}/rename)"
            )));
        }
        _ => {}
    }
    obj.insert("name".into(), Value::String(name.to_owned()));
    Ok(body)
}

/// Creates or updates a provider; fields left out keep their stored value.
pub async fn put_provider(engine: &Engine, name: &str, body: Value) -> Result<(), ServiceError> {
    let body = named(body, name)?;
    let file = parse_doc(&json!({ "providers": [body] }), "providers[0].")?;
    if let Some(url) = file.providers.iter().find_map(|p| p.base_url.as_deref())
        && loops_back(&engine.base_url, url)
    {
        return Err(ServiceError::Invalid(format!(
            "base_url: {url} is this gateway itself ({}): every request would come back to it",
            engine.base_url
        )));
    }
    apply(engine, file).await.map_err(|e| match e {
        // The import's own check (a new provider needs a base_url) speaks of config lines.
        ServiceError::Store(store::StoreError::Invalid(m)) if m.contains("base_url") => {
            ServiceError::Invalid("base_url: a new provider needs one".into())
        }
        other => other,
    })?;
    Ok(())
}

/// Whether `base_url` reaches the gateway at `ours` (a loopback or any-address host, and our
/// port): a provider there would send each request back in, over and over.
pub(crate) fn loops_back(ours: &str, base_url: &str) -> bool {
    let (Ok(ours), Ok(url)) = (reqwest::Url::parse(ours), reqwest::Url::parse(base_url)) else {
        return false;
    };
    let local = |u: &reqwest::Url| {
        u.host_str().is_some_and(|h| {
            crate::catalog::is_loopback_host(h)
                || h.trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_unspecified())
        })
    };
    local(&url) && url.port_or_known_default() == ours.port_or_known_default()
}

/// Renames a provider; the models that name it follow. Its stored key, synced models and
/// breakers belong to its uid and stay with it.
pub async fn rename_provider(engine: &Engine, from: &str, to: &str) -> Result<(), ServiceError> {
    let to = to.trim();
    config::validate_provider_name(to).map_err(|m| ServiceError::Invalid(format!("name: {m}")))?;
    let (f, t) = (from.to_owned(), to.to_owned());
    match engine
        .store
        .call(move |c| store::rename_provider(c, &f, &t))
        .await?
    {
        store::Rename::Done => {}
        store::Rename::NoSuchProvider => {
            return Err(ServiceError::UnknownProvider(from.to_owned()));
        }
        store::Rename::NameTaken => {
            return Err(ServiceError::Conflict(format!(
                "name: a provider named '{to}' exists"
            )));
        }
    }
    tracing::info!("provider '{from}' renamed to '{to}'");
    engine.reload().await?;
    Ok(())
}

pub async fn delete_provider(engine: &Engine, name: &str) -> Result<(), ServiceError> {
    let n = name.to_owned();
    let uid = engine
        .store
        .call(move |c| store::delete_provider(c, &n))
        .await?;
    let Some(uid) = uid else {
        return Err(ServiceError::UnknownProvider(name.to_owned()));
    };
    let secrets = engine.secrets.clone();
    let account = uid.clone();
    match tokio::task::spawn_blocking(move || secrets.delete(&account)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("provider '{name}': cannot delete its stored key: {e}"),
        Err(e) => tracing::warn!("provider '{name}': cannot delete its stored key: {e}"),
    }
    engine.reload().await?;
    Ok(())
}

pub async fn models(engine: &Engine) -> Result<Vec<ModelView>, ServiceError> {
    let state = engine.store.call(|c| store::load(c)).await?;
    Ok(state
        .models
        .into_iter()
        .map(|m| ModelView {
            name: m.name,
            rules: m
                .rules
                .into_iter()
                .map(|r| RuleView {
                    kind: r.kind.as_str().to_owned(),
                    value: r.value,
                })
                .collect(),
            include: m
                .include
                .into_iter()
                .map(|i| format!("{}/{}", i.provider, i.model))
                .collect(),
            exclude_providers: m.exclude_providers,
            protocol: m.protocol.map(|p| p.as_str().to_owned()),
            default_params: m.default_params,
            override_params: m.override_params,
            probe: m.probe,
            strategy: m.strategy.as_str().to_owned(),
            sort: m.sort,
            group: m.group,
            classifier: m.tiers.as_ref().map(|t| t.classifier.clone()),
            tiers: m.tiers.map(|t| t.tiers).unwrap_or_default(),
        })
        .collect())
}

/// Creates or updates a unified model; an invalid rule is refused with its index and reason.
pub async fn put_model(engine: &Engine, name: &str, body: Value) -> Result<(), ServiceError> {
    let body = named(body, name)?;
    let file = parse_doc(&json!({ "models": [body] }), "models[0].")?;
    apply(engine, file).await?;
    Ok(())
}

pub async fn delete_model(engine: &Engine, name: &str) -> Result<(), ServiceError> {
    let n = name.to_owned();
    if !engine
        .store
        .call(move |c| store::delete_model(c, &n))
        .await?
    {
        return Err(ServiceError::NotFound(format!("no model named '{name}'")));
    }
    engine.reload().await?;
    Ok(())
}

pub async fn client_keys(engine: &Engine) -> Result<Vec<ClientKeyView>, ServiceError> {
    let keys = engine.store.call(|c| store::client_keys(c)).await?;
    let now = crate::protocol::unix_now();
    Ok(keys
        .into_iter()
        .map(|k| ClientKeyView {
            budget_use: engine
                .log
                .spend()
                .get(&k.name)
                .filter(|_| k.budget.is_some())
                .map(|s| s.uses(crate::protocol::unix_now_ms()))
                .unwrap_or_default(),
            // Memory is fresher than the database, which is written every few seconds.
            last_used_at: engine.key_usage.last_used(&k.key_hash).or(k.last_used_at),
            expired: k.expires_at.is_some_and(|t| t <= now),
            name: k.name,
            models: k.models,
            created_at: k.created_at,
            revoked: k.revoked_at.is_some(),
            rpm: k.rpm,
            expires_at: k.expires_at,
            capture_bodies: k.capture_bodies,
            pin_providers: k.pin_providers,
            budget: k.budget,
        })
        .collect())
}

/// Makes a new client key from the OS RNG; the answer is the only time it is shown.
pub async fn create_client_key(
    engine: &Engine,
    req: CreateClientKey,
) -> Result<CreatedClientKey, ServiceError> {
    let name = req.name.as_str();
    let exists = engine
        .store
        .call(|c| store::client_keys(c))
        .await?
        .iter()
        .any(|k| k.name == name);
    if exists {
        return Err(ServiceError::Conflict(format!(
            "a client key named '{name}' exists; revoke it or pick another name"
        )));
    }
    let mut entry = json!({ "name": name });
    if let Some(models) = req.models {
        entry["models"] = json!(models);
    }
    if let Some(rpm) = req.rpm {
        entry["rpm"] = json!(rpm);
    }
    if let Some(at) = req.expires_at {
        entry["expires_at"] = at;
    }
    if let Some(on) = req.capture_bodies {
        entry["capture_bodies"] = json!(on);
    }
    if let Some(b) = &req.budget {
        entry["budget"] = json!(b);
    }
    if let Some(on) = req.pin_providers {
        entry["pin_providers"] = json!(on);
    }
    let file = parse_doc(&json!({ "client_keys": [entry] }), "client_keys[0].")?;
    let report = apply(engine, file).await?;
    let (name, key) = report
        .generated_keys
        .into_iter()
        .next()
        .ok_or_else(|| ServiceError::Invalid("no key was generated".into()))?;
    Ok(CreatedClientKey {
        name,
        key: key.expose().to_owned(),
    })
}

pub async fn revoke_client_key(engine: &Engine, name: &str) -> Result<(), ServiceError> {
    let n = name.to_owned();
    if !engine
        .store
        .call(move |c| store::revoke_client_key(c, &n))
        .await?
    {
        return Err(ServiceError::NotFound(format!(
            "no client key named '{name}'"
        )));
    }
    engine.reload().await?;
    Ok(())
}

/// Sets a client key's budget (an empty object takes it away); the key must exist.
pub async fn put_budget(engine: &Engine, name: &str, budget: Value) -> Result<(), ServiceError> {
    let exists = engine
        .store
        .call(|c| store::client_keys(c))
        .await?
        .iter()
        .any(|k| k.name == name && k.revoked_at.is_none());
    if !exists {
        return Err(ServiceError::NotFound(format!(
            "no client key named '{name}'"
        )));
    }
    let file = parse_doc(
        &json!({ "client_keys": [{ "name": name, "budget": budget }] }),
        "client_keys[0].",
    )?;
    apply(engine, file).await?;
    Ok(())
}

/// The configuration as a config file, without secrets (see `store::export`).
pub async fn export(engine: &Engine) -> Result<String, ServiceError> {
    Ok(engine.store.call(|c| store::export(c)).await?)
}

pub fn settings(engine: &Engine) -> config::Settings {
    engine.snapshot().settings.clone()
}

/// Changes settings, given in the config file's sections (`{"server": {...}, "routing": {...},
/// ...}`, as `config::SECTIONS` names them). Host and port apply at the next start.
pub async fn patch_settings(engine: &Engine, body: Value) -> Result<(), ServiceError> {
    let Some(obj) = body.as_object() else {
        return Err(ServiceError::Invalid(
            "the body must be a JSON object".into(),
        ));
    };
    let sections = config::SECTIONS.map(|(name, _)| name);
    if let Some(k) = obj.keys().find(|k| !sections.contains(&k.as_str())) {
        return Err(ServiceError::Invalid(format!(
            "{k}: unknown section (expected one of {})",
            sections.join(", ")
        )));
    }
    let file = parse_doc(&body, "")?;
    apply(engine, file).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::loops_back;

    #[test]
    fn a_provider_at_the_gateways_own_address_loops() {
        let ours = "http://127.0.0.1:7340";
        for url in [
            "http://127.0.0.1:7340/v1",
            "http://localhost:7340",
            "http://[::1]:7340/v1",
            "http://0.0.0.0:7340",
        ] {
            assert!(loops_back(ours, url), "{url}");
        }
        for url in [
            "http://127.0.0.1:7341/v1",
            "https://api.openai.com/v1",
            "http://127.0.0.1/v1",
            "not a url",
        ] {
            assert!(!loops_back(ours, url), "{url}");
        }
    }
}
