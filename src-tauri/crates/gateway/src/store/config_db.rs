//! The config database: import of a config file (upsert by name, idempotent) and loading the
//! whole state for a snapshot.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::StoreError;
use crate::auth::{KeyHash, generate_client_key};
use crate::config::{
    ClientKeySpec, ConfigFile, Include, JsonObject, KeySpec, ModelSpec, Protocol, ProviderSpec,
    Rule, RuleKind, Settings, Strategy,
};
use crate::secrets::Secret;
use switchboard_api::capabilities::{Capabilities, CapabilityEntry};
use switchboard_api::prices::PriceEntry;

/// How a provider's key is referenced in the database. The key itself is never stored here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    None,
    Env(String),
    /// In the secret store, under the provider's uid.
    Stored,
}

impl KeyRef {
    fn to_sql(&self) -> Option<String> {
        match self {
            Self::None => None,
            Self::Env(name) => Some(format!("env:{name}")),
            Self::Stored => Some("keychain".into()),
        }
    }

    fn from_sql(s: Option<String>) -> Self {
        match s.as_deref() {
            None => Self::None,
            Some("keychain") => Self::Stored,
            Some(s) => s
                .strip_prefix("env:")
                .map_or(Self::None, |n| Self::Env(n.to_owned())),
        }
    }
}

#[derive(Clone, Debug)]
pub struct StoredProvider {
    pub id: i64,
    pub uid: String,
    pub name: String,
    pub base_url: String,
    pub protocols: Vec<Protocol>,
    pub key_ref: KeyRef,
    pub weight: u32,
    pub priority: u32,
    pub enabled: bool,
    pub paused: bool,
    /// Unix seconds when a timed pause ends by itself.
    pub paused_until: Option<u64>,
    pub headers: BTreeMap<String, String>,
    pub models: Vec<String>,
    /// OpenAI's Responses API is there (false: chat completions only).
    pub responses: bool,
}

#[derive(Clone, Debug)]
pub struct StoredModel {
    pub id: i64,
    pub name: String,
    pub rules: Vec<Rule>,
    pub include: Vec<Include>,
    pub exclude_providers: Vec<String>,
    pub protocol: Option<Protocol>,
    pub default_params: JsonObject,
    pub override_params: JsonObject,
    pub probe: bool,
    pub strategy: Strategy,
    pub sort: Vec<switchboard_api::sort::SortKey>,
    pub group: Option<switchboard_api::groups::GroupFilter>,
    pub tiers: Option<switchboard_api::tiers::Tiering>,
}

#[derive(Clone, Debug)]
pub struct StoredClientKey {
    pub id: i64,
    pub name: String,
    pub key_hash: KeyHash,
    pub models: Vec<String>,
    pub revoked: bool,
    pub rpm: Option<u32>,
    pub expires_at: Option<u64>,
    pub capture_bodies: Option<bool>,
    pub pin_providers: bool,
    pub budget: Option<switchboard_api::budget::Budget>,
}

#[derive(Clone, Debug, Default)]
pub struct StoredState {
    pub settings: Settings,
    pub providers: Vec<StoredProvider>,
    pub models: Vec<StoredModel>,
    pub client_keys: Vec<StoredClientKey>,
    pub prices: Vec<PriceEntry>,
    pub capabilities: Vec<CapabilityEntry>,
    pub quotas: Vec<switchboard_api::quotas::QuotaEntry>,
}

/// What an import did, for the caller to act on outside the database thread.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Rows written; 0 when the file matched the database already.
    pub changes: u64,
    /// Literal provider keys, by provider uid, for the secret store (never written to SQLite).
    pub literal_keys: Vec<(String, Secret)>,
    /// Client keys generated for entries without a key: (name, key), to be shown once.
    pub generated_keys: Vec<(String, Secret)>,
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Invalid(format!("corrupt {what}: {e}")))
}

fn new_uid() -> Result<String, StoreError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| StoreError::Invalid(format!("no randomness: {e}")))?;
    Ok(hex::encode(b))
}

/// Upserts everything the file names, by name; leaves alone whatever it does not name.
pub fn import(conn: &mut Connection, file: &ConfigFile) -> Result<ImportReport, StoreError> {
    let before = conn.total_changes();
    let tx = conn.transaction()?;
    let mut report = ImportReport::default();
    for (key, value) in file.settings.entries() {
        tx.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE value <> excluded.value",
            params![key, value.to_string()],
        )?;
    }
    for p in &file.providers {
        import_provider(&tx, p, &mut report)?;
    }
    for m in &file.models {
        import_model(&tx, m)?;
    }
    for k in &file.client_keys {
        import_client_key(&tx, k, &mut report)?;
    }
    for p in &file.prices {
        upsert_price(&tx, p)?;
    }
    for c in &file.capabilities {
        upsert_capabilities(&tx, c)?;
    }
    for q in &file.quotas {
        upsert_quota(&tx, q)?;
    }
    tx.commit()?;
    report.changes = conn.total_changes().saturating_sub(before);
    Ok(report)
}

fn import_provider(
    tx: &Transaction<'_>,
    p: &ProviderSpec,
    report: &mut ImportReport,
) -> Result<(), StoreError> {
    let key_ref = p.api_key.as_ref().map(|k| match k {
        KeySpec::Env(name) => KeyRef::Env(name.clone()),
        KeySpec::Literal(_) => KeyRef::Stored,
    });
    let existing: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, uid FROM providers WHERE name = ?1",
            [&p.name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (id, uid) = match existing {
        Some(found) => found,
        None => {
            let base_url = p.base_url.as_ref().ok_or_else(|| {
                StoreError::Invalid(format!(
                    "line {}: provider {:?} is new, so it needs a base_url",
                    p.line, p.name
                ))
            })?;
            let uid = new_uid()?;
            let protocols = p
                .protocols
                .clone()
                .unwrap_or_else(|| vec![Protocol::OpenAi]);
            tx.execute(
                "INSERT INTO providers (uid, name, base_url, protocols) VALUES (?1, ?2, ?3, ?4)",
                params![uid, p.name, base_url, json(&protocols)?],
            )?;
            (tx.last_insert_rowid(), uid)
        }
    };
    // Each column is written only when it differs, so that a second import writes nothing.
    let set = |column: &str, value: rusqlite::types::Value| -> Result<(), StoreError> {
        tx.execute(
            &format!("UPDATE providers SET {column} = ?1 WHERE id = ?2 AND {column} IS NOT ?1"),
            params![value, id],
        )?;
        Ok(())
    };
    use rusqlite::types::Value as V;
    if let Some(u) = &p.base_url {
        set("base_url", V::Text(u.clone()))?;
    }
    if let Some(list) = &p.protocols {
        set("protocols", V::Text(json(list)?))?;
    }
    if let Some(k) = &key_ref {
        set("key_ref", k.to_sql().map_or(V::Null, V::Text))?;
    }
    if let Some(w) = p.weight {
        set("weight", V::Integer(w.into()))?;
    }
    if let Some(w) = p.priority {
        set("priority", V::Integer(w.into()))?;
    }
    if let Some(e) = p.enabled {
        set("enabled", V::Integer(e.into()))?;
    }
    if let Some(r) = p.responses {
        set("responses", V::Integer(r.into()))?;
    }
    if let Some(h) = &p.headers {
        set("headers", V::Text(json(h)?))?;
    }
    if let Some(models) = &p.models {
        replace_provider_models(tx, id, models)?;
        tx.execute(
            "INSERT INTO provider_sync (provider_id, source) VALUES (?1, 'config')
             ON CONFLICT (provider_id) DO UPDATE SET source = 'config' WHERE source <> 'config'",
            [id],
        )?;
    }
    if let Some(KeySpec::Literal(secret)) = &p.api_key {
        report.literal_keys.push((uid, secret.clone()));
    }
    Ok(())
}

/// Sets a provider's model list; writes (and answers true) only when it differs.
fn replace_provider_models(
    conn: &Connection,
    id: i64,
    models: &[String],
) -> Result<bool, StoreError> {
    let mut wanted: Vec<&str> = models.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let current = provider_models(conn, id)?;
    if current
        .iter()
        .map(String::as_str)
        .eq(wanted.iter().copied())
    {
        return Ok(false);
    }
    conn.execute("DELETE FROM provider_models WHERE provider_id = ?1", [id])?;
    let mut ins =
        conn.prepare_cached("INSERT INTO provider_models (provider_id, model_id) VALUES (?1, ?2)")?;
    for m in wanted {
        ins.execute(params![id, m])?;
    }
    Ok(true)
}

fn provider_models(conn: &Connection, id: i64) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT model_id FROM provider_models WHERE provider_id = ?1 ORDER BY model_id",
    )?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Rules, includes and provider exclusions share one ordered table.
fn rule_rows(m: &ModelSpec, current: &[(String, String)]) -> Vec<(String, String)> {
    let (mut rules, mut include, mut exclude) = (Vec::new(), Vec::new(), Vec::new());
    for (kind, value) in current {
        match kind.as_str() {
            "include" => include.push((kind.clone(), value.clone())),
            "exclude_provider" => exclude.push((kind.clone(), value.clone())),
            _ => rules.push((kind.clone(), value.clone())),
        }
    }
    if let Some(r) = &m.rules {
        rules = r
            .iter()
            .map(|r| (r.kind.as_str().to_owned(), r.value.clone()))
            .collect();
    }
    if let Some(i) = &m.include {
        include = i
            .iter()
            .map(|i| ("include".to_owned(), format!("{}/{}", i.provider, i.model)))
            .collect();
    }
    if let Some(e) = &m.exclude_providers {
        exclude = e
            .iter()
            .map(|p| ("exclude_provider".to_owned(), p.clone()))
            .collect();
    }
    rules.into_iter().chain(include).chain(exclude).collect()
}

fn model_rule_rows(conn: &Connection, id: i64) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, value FROM model_rules WHERE model_id = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn import_model(tx: &Transaction<'_>, m: &ModelSpec) -> Result<(), StoreError> {
    let existing: Option<i64> = tx
        .query_row("SELECT id FROM models WHERE name = ?1", [&m.name], |r| {
            r.get(0)
        })
        .optional()?;
    let id = match existing {
        Some(id) => id,
        None => {
            tx.execute("INSERT INTO models (name) VALUES (?1)", [&m.name])?;
            tx.last_insert_rowid()
        }
    };
    use rusqlite::types::Value as V;
    let set = |column: &str, value: V| -> Result<(), StoreError> {
        tx.execute(
            &format!("UPDATE models SET {column} = ?1 WHERE id = ?2 AND {column} IS NOT ?1"),
            params![value, id],
        )?;
        Ok(())
    };
    if let Some(p) = m.protocol {
        set("protocol", V::Text(p.as_str().to_owned()))?;
    }
    if let Some(p) = &m.default_params {
        set("default_params", V::Text(json(p)?))?;
    }
    if let Some(p) = &m.override_params {
        set("override_params", V::Text(json(p)?))?;
    }
    if let Some(p) = m.probe {
        set("probe", V::Integer(p.into()))?;
    }
    if let Some(s) = m.strategy {
        set("strategy", V::Text(s.as_str().to_owned()))?;
    }
    if let Some(keys) = &m.sort {
        set(
            "sort",
            V::Text(serde_json::to_string(keys).map_err(|e| StoreError::Invalid(e.to_string()))?),
        )?;
    } else if m.strategy.is_some_and(|s| s != Strategy::Sort) {
        // Another strategy: the sort factors have nothing to do any more.
        set("sort", V::Null)?;
    }
    match &m.group {
        Some(g) if *g == Default::default() => set("\"group\"", V::Null)?,
        Some(g) => set(
            "\"group\"",
            V::Text(serde_json::to_string(g).map_err(|e| StoreError::Invalid(e.to_string()))?),
        )?,
        None => {}
    }
    match &m.tiers {
        Some(t) if t.tiers.is_empty() => set("tiers", V::Null)?,
        Some(t) => set(
            "tiers",
            V::Text(serde_json::to_string(t).map_err(|e| StoreError::Invalid(e.to_string()))?),
        )?,
        None => {}
    }
    let current = model_rule_rows(tx, id)?;
    let wanted = rule_rows(m, &current);
    if wanted != current {
        tx.execute("DELETE FROM model_rules WHERE model_id = ?1", [id])?;
        let mut ins = tx.prepare_cached(
            "INSERT INTO model_rules (model_id, position, kind, value) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (pos, (kind, value)) in wanted.iter().enumerate() {
            ins.execute(params![id, pos as i64, kind, value])?;
        }
    }
    Ok(())
}

fn import_client_key(
    tx: &Transaction<'_>,
    k: &ClientKeySpec,
    report: &mut ImportReport,
) -> Result<(), StoreError> {
    let existing: Option<i64> = tx
        .query_row(
            "SELECT id FROM client_keys WHERE name = ?1",
            [&k.name],
            |r| r.get(0),
        )
        .optional()?;
    let hash = match (&k.key, existing) {
        (Some(key), _) => Some(KeyHash::of(key.expose())),
        (None, Some(_)) => None,
        (None, None) => {
            let key = generate_client_key()
                .map_err(|e| StoreError::Invalid(format!("no randomness: {e}")))?;
            let hash = KeyHash::of(&key);
            report
                .generated_keys
                .push((k.name.clone(), Secret::new(key)));
            Some(hash)
        }
    };
    let models = k.models.as_ref().map(json).transpose()?;
    match existing {
        None => {
            let Some(hash) = hash else {
                return Err(StoreError::Invalid("client key without a hash".into()));
            };
            tx.execute(
                "INSERT INTO client_keys (name, key_hash, models) VALUES (?1, ?2, ?3)",
                params![
                    k.name,
                    hash.to_hex(),
                    models.unwrap_or_else(|| r#"["*"]"#.into())
                ],
            )?;
        }
        Some(id) => {
            if let Some(hash) = hash {
                tx.execute(
                    "UPDATE client_keys SET key_hash = ?1, revoked_at = NULL
                     WHERE id = ?2 AND (key_hash <> ?1 OR revoked_at IS NOT NULL)",
                    params![hash.to_hex(), id],
                )?;
            }
            if let Some(models) = models {
                tx.execute(
                    "UPDATE client_keys SET models = ?1 WHERE id = ?2 AND models <> ?1",
                    params![models, id],
                )?;
            }
        }
    }
    // Given: set; left out: kept.
    if let Some(on) = k.capture_bodies {
        tx.execute(
            "UPDATE client_keys SET capture_bodies = ?1 WHERE name = ?2 AND capture_bodies IS NOT ?1",
            params![on, k.name],
        )?;
    }
    if let Some(on) = k.pin_providers {
        tx.execute(
            "UPDATE client_keys SET pin_providers = ?1 WHERE name = ?2 AND pin_providers IS NOT ?1",
            params![on, k.name],
        )?;
    }
    if let Some(b) = &k.budget {
        let text = if b.is_empty() {
            None
        } else {
            Some(serde_json::to_string(b).map_err(|e| StoreError::Invalid(e.to_string()))?)
        };
        tx.execute(
            "UPDATE client_keys SET budget = ?1 WHERE name = ?2 AND budget IS NOT ?1",
            params![text, k.name],
        )?;
    }
    for (column, value) in [("rpm", k.rpm.map(u64::from)), ("expires_at", k.expires_at)] {
        if let Some(v) = value {
            tx.execute(
                &format!(
                    "UPDATE client_keys SET {column} = ?1 WHERE name = ?2 AND {column} IS NOT ?1"
                ),
                params![v, k.name],
            )?;
        }
    }
    Ok(())
}

pub fn load(conn: &Connection) -> Result<StoredState, StoreError> {
    let mut settings = serde_json::Map::new();
    {
        let mut stmt = conn.prepare_cached("SELECT key, value FROM settings")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (k, v) = row?;
            settings.insert(k, from_json(&v, "setting")?);
        }
    }
    let settings: Settings = serde_json::from_value(serde_json::Value::Object(settings))
        .map_err(|e| StoreError::Invalid(format!("corrupt settings: {e}")))?;

    let mut providers = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT id, uid, name, base_url, protocols, key_ref, weight, enabled, paused, headers, paused_until, responses, priority
             FROM providers ORDER BY name",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            providers.push(StoredProvider {
                id,
                uid: r.get(1)?,
                name: r.get(2)?,
                base_url: r.get(3)?,
                protocols: from_json(&r.get::<_, String>(4)?, "protocols")?,
                key_ref: KeyRef::from_sql(r.get(5)?),
                weight: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(1).max(1),
                enabled: r.get(7)?,
                paused: r.get(8)?,
                paused_until: r
                    .get::<_, Option<i64>>(10)?
                    .and_then(|t| u64::try_from(t).ok()),
                headers: from_json(&r.get::<_, String>(9)?, "headers")?,
                models: provider_models(conn, id)?,
                responses: r.get(11)?,
                priority: u32::try_from(r.get::<_, i64>(12)?).unwrap_or(0),
            });
        }
    }

    let mut models = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, protocol, default_params, override_params, probe, strategy, tiers, sort, \"group\" FROM models ORDER BY name",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let mut m = StoredModel {
                id,
                name: r.get(1)?,
                rules: Vec::new(),
                include: Vec::new(),
                exclude_providers: Vec::new(),
                protocol: r
                    .get::<_, Option<String>>(2)?
                    .map(|p| p.parse().map_err(StoreError::Invalid))
                    .transpose()?,
                default_params: from_json(&r.get::<_, String>(3)?, "default_params")?,
                override_params: from_json(&r.get::<_, String>(4)?, "override_params")?,
                probe: r.get(5)?,
                strategy: r
                    .get::<_, String>(6)?
                    .parse()
                    .map_err(StoreError::Invalid)?,
                tiers: r
                    .get::<_, Option<String>>(7)?
                    .map(|t| {
                        serde_json::from_str(&t)
                            .map_err(|e| StoreError::Invalid(format!("models.tiers: {e}")))
                    })
                    .transpose()?,
                sort: r
                    .get::<_, Option<String>>(8)?
                    .map(|t| {
                        serde_json::from_str(&t)
                            .map_err(|e| StoreError::Invalid(format!("models.sort: {e}")))
                    })
                    .transpose()?
                    .unwrap_or_default(),
                group: r
                    .get::<_, Option<String>>(9)?
                    .map(|t| {
                        serde_json::from_str(&t)
                            .map_err(|e| StoreError::Invalid(format!("models.group: {e}")))
                    })
                    .transpose()?,
            };
            for (kind, value) in model_rule_rows(conn, id)? {
                match kind.as_str() {
                    "include" => m
                        .include
                        .push(crate::config::parse_include(&value).map_err(StoreError::Invalid)?),
                    "exclude_provider" => m.exclude_providers.push(value),
                    k => m.rules.push(Rule {
                        kind: k.parse::<RuleKind>().map_err(StoreError::Invalid)?,
                        value,
                    }),
                }
            }
            models.push(m);
        }
    }

    let mut client_keys = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, key_hash, models, revoked_at IS NOT NULL, rpm, expires_at, capture_bodies,
                pin_providers, budget
             FROM client_keys ORDER BY name",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let hash: String = r.get(2)?;
            client_keys.push(StoredClientKey {
                id: r.get(0)?,
                name: r.get(1)?,
                key_hash: KeyHash::from_hex(&hash)
                    .ok_or_else(|| StoreError::Invalid("corrupt client key hash".into()))?,
                models: from_json(&r.get::<_, String>(3)?, "client key models")?,
                revoked: r.get(4)?,
                rpm: r.get(5)?,
                expires_at: r.get(6)?,
                capture_bodies: r.get(7)?,
                pin_providers: r.get(8)?,
                budget: budget_of(r.get(9)?)?,
            });
        }
    }
    Ok(StoredState {
        settings,
        providers,
        models,
        client_keys,
        prices: prices(conn)?,
        capabilities: capabilities(conn)?,
        quotas: quotas(conn)?,
    })
}

const PRICE_COLUMNS: &str = "provider, model, multiplier, input, output, cache_read, cache_write";

/// Writes one `[[prices]]` entry, replacing the one for the same provider and model.
fn upsert_price(tx: &Connection, p: &PriceEntry) -> Result<(), StoreError> {
    let (provider, model) = p.key();
    tx.execute(
        &format!(
            "INSERT INTO prices ({PRICE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (provider, model) DO UPDATE SET multiplier = excluded.multiplier,
               input = excluded.input, output = excluded.output,
               cache_read = excluded.cache_read, cache_write = excluded.cache_write
             WHERE (multiplier, input, output, cache_read, cache_write)
               IS NOT (excluded.multiplier, excluded.input, excluded.output,
                       excluded.cache_read, excluded.cache_write)"
        ),
        params![
            provider,
            model,
            p.multiplier,
            p.input,
            p.output,
            p.cache_read,
            p.cache_write
        ],
    )?;
    Ok(())
}

pub fn prices(conn: &Connection) -> Result<Vec<PriceEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PRICE_COLUMNS} FROM prices ORDER BY provider, model"
    ))?;
    let named = |s: String| (!s.is_empty()).then_some(s);
    let rows = stmt.query_map([], |r| {
        Ok(PriceEntry {
            provider: named(r.get(0)?),
            model: named(r.get(1)?),
            multiplier: r.get(2)?,
            input: r.get(3)?,
            output: r.get(4)?,
            cache_read: r.get(5)?,
            cache_write: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Replaces every price entry with `entries` (already checked), in one transaction.
pub fn replace_prices(conn: &mut Connection, entries: &[PriceEntry]) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM prices", [])?;
    for p in entries {
        upsert_price(&tx, p)?;
    }
    tx.commit()?;
    Ok(())
}

/// Writes one `[[capabilities]]` entry, replacing the one for the same provider and model.
fn upsert_capabilities(tx: &Connection, c: &CapabilityEntry) -> Result<(), StoreError> {
    let caps = serde_json::to_string(&c.capabilities())
        .map_err(|e| StoreError::Invalid(format!("capabilities: {e}")))?;
    tx.execute(
        "INSERT INTO capabilities (provider, model, capabilities) VALUES (?1, ?2, ?3)
         ON CONFLICT (provider, model) DO UPDATE SET capabilities = excluded.capabilities
         WHERE capabilities IS NOT excluded.capabilities",
        params![c.provider.as_deref().unwrap_or(""), c.model, caps],
    )?;
    Ok(())
}

pub fn capabilities(conn: &Connection) -> Result<Vec<CapabilityEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT provider, model, capabilities FROM capabilities ORDER BY provider, model",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let provider: String = r.get(0)?;
        let caps: Capabilities = from_json(&r.get::<_, String>(2)?, "capabilities")?;
        out.push(CapabilityEntry {
            provider: (!provider.is_empty()).then_some(provider),
            model: r.get(1)?,
            context_window: caps.context_window,
            max_output: caps.max_output,
            tools: caps.tools,
            vision: caps.vision,
            reasoning: caps.reasoning,
            structured_output: caps.structured_output,
        });
    }
    Ok(out)
}

/// Writes one `[[quotas]]` entry, replacing the one for the same provider and model.
fn upsert_quota(
    tx: &Connection,
    q: &switchboard_api::quotas::QuotaEntry,
) -> Result<(), StoreError> {
    let limits = serde_json::to_string(&q.limits())
        .map_err(|e| StoreError::Invalid(format!("quotas: {e}")))?;
    tx.execute(
        "INSERT INTO quotas (provider, model, limits) VALUES (?1, ?2, ?3)
         ON CONFLICT (provider, model) DO UPDATE SET limits = excluded.limits
         WHERE limits IS NOT excluded.limits",
        params![q.provider, q.model.as_deref().unwrap_or(""), limits],
    )?;
    Ok(())
}

pub fn quotas(conn: &Connection) -> Result<Vec<switchboard_api::quotas::QuotaEntry>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT provider, model, limits FROM quotas ORDER BY provider, model")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let model: String = r.get(1)?;
        let l: switchboard_api::budget::Budget = from_json(&r.get::<_, String>(2)?, "quotas")?;
        out.push(switchboard_api::quotas::QuotaEntry {
            provider: r.get(0)?,
            model: (!model.is_empty()).then_some(model),
            daily_requests: l.daily_requests,
            monthly_requests: l.monthly_requests,
            daily_tokens: l.daily_tokens,
            monthly_tokens: l.monthly_tokens,
            daily_usd: l.daily_usd,
            monthly_usd: l.monthly_usd,
            warn_at: l.warn_at,
            tz: l.tz,
            reset: l.reset,
        });
    }
    Ok(out)
}

/// Replaces every quota with `entries` (already checked), in one transaction.
pub fn replace_quotas(
    conn: &mut Connection,
    entries: &[switchboard_api::quotas::QuotaEntry],
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM quotas", [])?;
    for q in entries {
        upsert_quota(&tx, q)?;
    }
    tx.commit()?;
    Ok(())
}

/// Replaces every capabilities entry with `entries` (already checked), in one transaction.
pub fn replace_capabilities(
    conn: &mut Connection,
    entries: &[CapabilityEntry],
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM capabilities", [])?;
    for c in entries {
        upsert_capabilities(&tx, c)?;
    }
    tx.commit()?;
    Ok(())
}

/// Pauses or resumes a provider; false if no provider has that name.
pub fn set_paused(
    conn: &Connection,
    name: &str,
    paused: bool,
    until: Option<u64>,
) -> Result<bool, StoreError> {
    let until = until.and_then(|u| i64::try_from(u).ok());
    let n = conn.execute(
        "UPDATE providers SET paused = ?1, paused_until = ?2 WHERE name = ?3",
        params![paused, until, name],
    )?;
    Ok(n > 0 || provider_id(conn, name)?.is_some())
}

/// Records whether a provider (by uid, so a rename meanwhile cannot misdirect it) has the
/// Responses API.
pub fn set_responses(conn: &Connection, uid: &str, responses: bool) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE providers SET responses = ?1 WHERE uid = ?2",
        params![responses, uid],
    )?;
    Ok(())
}

fn provider_id(conn: &Connection, name: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_row("SELECT id FROM providers WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?)
}

/// The outcome of a model-list sync: a new list replaces the old one; a failure keeps the last
/// good list and records the error.
/// Records a model-list fetch for the provider with this uid (not its name: a rename while the
/// fetch ran must not send the list to whichever provider has the name now).
pub fn record_sync(
    conn: &mut Connection,
    uid: &str,
    result: Result<&[String], &str>,
) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let id: Option<i64> = tx
        .query_row("SELECT id FROM providers WHERE uid = ?1", [uid], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(id) = id else {
        return Ok(false);
    };
    let mut changed = false;
    match result {
        Ok(models) => {
            changed = replace_provider_models(&tx, id, models)?;
            tx.execute(
                "INSERT INTO provider_sync (provider_id, source, synced_at, last_error)
                 VALUES (?1, 'upstream', CURRENT_TIMESTAMP, NULL)
                 ON CONFLICT (provider_id) DO UPDATE SET
                   source = 'upstream', synced_at = CURRENT_TIMESTAMP, last_error = NULL",
                [id],
            )?;
        }
        Err(e) => {
            tx.execute(
                "INSERT INTO provider_sync (provider_id, source, last_error) VALUES (?1, 'upstream', ?2)
                 ON CONFLICT (provider_id) DO UPDATE SET last_error = ?2",
                params![id, e],
            )?;
        }
    }
    tx.commit()?;
    Ok(changed)
}

#[derive(Clone, Debug, Default)]
pub struct SyncInfo {
    /// 'config' (the file gives the list) or 'upstream' (fetched).
    pub source: Option<String>,
    pub synced_at: Option<String>,
    pub last_error: Option<String>,
}

pub fn sync_info(conn: &Connection) -> Result<Vec<(String, SyncInfo)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT p.name, s.source, s.synced_at, s.last_error
         FROM providers p LEFT JOIN provider_sync s ON s.provider_id = p.id ORDER BY p.name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            SyncInfo {
                source: r.get(1)?,
                synced_at: r.get(2)?,
                last_error: r.get(3)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

const ADMIN_HASH_KEY: &str = "admin_password_hash";

pub fn admin_password_hash(conn: &Connection) -> Result<Option<String>, StoreError> {
    let v: Option<String> = conn
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [ADMIN_HASH_KEY],
            |r| r.get(0),
        )
        .optional()?;
    v.map(|v| from_json(&v, "admin password hash")).transpose()
}

pub fn set_admin_password_hash(conn: &Connection, hash: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![ADMIN_HASH_KEY, json(&hash)?],
    )?;
    Ok(())
}

/// Stores the first admin password's hash; false when one is there already (it stays).
pub fn set_first_admin_password_hash(conn: &Connection, hash: &str) -> Result<bool, StoreError> {
    let added = conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        params![ADMIN_HASH_KEY, json(&hash)?],
    )?;
    Ok(added == 1)
}

/// Deletes a provider (its model list, sync record and price entries go with it); answers its
/// uid, whose keychain entry the caller deletes.
pub fn delete_provider(conn: &Connection, name: &str) -> Result<Option<String>, StoreError> {
    let uid: Option<String> = conn
        .query_row("SELECT uid FROM providers WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?;
    if uid.is_some() {
        let tx = conn.unchecked_transaction()?;
        tx.execute("DELETE FROM providers WHERE name = ?1", [name])?;
        // Rules naming it go too: a later provider of the same name must not inherit them.
        tx.execute(
            "DELETE FROM model_rules WHERE (kind = 'exclude_provider' AND value = ?1)
               OR (kind = 'include' AND instr(value, '/') > 0
                   AND substr(value, 1, instr(value, '/') - 1) = ?1)",
            [name],
        )?;
        tx.execute("DELETE FROM prices WHERE provider = ?1", [name])?;
        tx.execute("DELETE FROM capabilities WHERE provider = ?1", [name])?;
        tx.execute("DELETE FROM quotas WHERE provider = ?1", [name])?;
        tx.commit()?;
    }
    Ok(uid)
}

/// Why a provider could not be renamed.
#[derive(Debug, PartialEq, Eq)]
pub enum Rename {
    Done,
    NoSuchProvider,
    NameTaken,
}

/// Renames a provider in one transaction, with the unified models' `include` (`name/model`)
/// and `exclude_providers` entries and the price entries that name it. Its uid stays, and with
/// it the keychain entry, the synced model list and the breakers.
pub fn rename_provider(conn: &mut Connection, from: &str, to: &str) -> Result<Rename, StoreError> {
    let tx = conn.transaction()?;
    let exists = |name: &str| -> Result<bool, StoreError> {
        Ok(tx
            .query_row(
                "SELECT 1 FROM providers WHERE name = ?1",
                [name],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    };
    if !exists(from)? {
        return Ok(Rename::NoSuchProvider);
    }
    if from == to {
        return Ok(Rename::Done);
    }
    if exists(to)? {
        return Ok(Rename::NameTaken);
    }
    tx.execute(
        "UPDATE providers SET name = ?2 WHERE name = ?1",
        params![from, to],
    )?;
    // The provider part is read as the config does (up to the first '/'), and compared with
    // substr, not LIKE: a name may hold % or _.
    tx.execute(
        "UPDATE model_rules SET value = ?2 || substr(value, instr(value, '/'))
         WHERE kind = 'include' AND instr(value, '/') > 0
           AND substr(value, 1, instr(value, '/') - 1) = ?1",
        params![from, to],
    )?;
    tx.execute(
        "UPDATE model_rules SET value = ?2 WHERE kind = 'exclude_provider' AND value = ?1",
        params![from, to],
    )?;
    // OR REPLACE: entries already under the new name were for no provider.
    tx.execute(
        "UPDATE OR REPLACE prices SET provider = ?2 WHERE provider = ?1",
        params![from, to],
    )?;
    tx.execute(
        "UPDATE OR REPLACE capabilities SET provider = ?2 WHERE provider = ?1",
        params![from, to],
    )?;
    tx.execute(
        "UPDATE OR REPLACE quotas SET provider = ?2 WHERE provider = ?1",
        params![from, to],
    )?;
    tx.commit()?;
    Ok(Rename::Done)
}

pub fn delete_model(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM models WHERE name = ?1", [name])? > 0)
}

pub fn revoke_client_key(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    let found = conn.execute(
        "UPDATE client_keys SET revoked_at = COALESCE(revoked_at, CURRENT_TIMESTAMP) WHERE name = ?1",
        [name],
    )?;
    Ok(found > 0)
}

#[derive(Clone, Debug)]
pub struct ClientKeyInfo {
    pub name: String,
    pub key_hash: KeyHash,
    pub models: Vec<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub rpm: Option<u32>,
    pub expires_at: Option<u64>,
    pub last_used_at: Option<u64>,
    pub capture_bodies: Option<bool>,
    pub pin_providers: bool,
    pub budget: Option<switchboard_api::budget::Budget>,
}

fn budget_of(text: Option<String>) -> Result<Option<switchboard_api::budget::Budget>, StoreError> {
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| StoreError::Invalid(format!("client key budget: {e}")))
    })
    .transpose()
}

pub fn client_keys(conn: &Connection) -> Result<Vec<ClientKeyInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, models, created_at, revoked_at, key_hash, rpm, expires_at, last_used_at,
            capture_bodies, pin_providers, budget
         FROM client_keys ORDER BY name",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(ClientKeyInfo {
            name: r.get(0)?,
            models: from_json(&r.get::<_, String>(1)?, "client key models")?,
            created_at: r.get(2)?,
            revoked_at: r.get(3)?,
            key_hash: KeyHash::from_hex(&r.get::<_, String>(4)?)
                .ok_or_else(|| StoreError::Invalid("corrupt client key hash".into()))?,
            rpm: r.get(5)?,
            expires_at: r.get(6)?,
            last_used_at: r.get(7)?,
            capture_bodies: r.get(8)?,
            pin_providers: r.get(9)?,
            budget: budget_of(r.get(10)?)?,
        });
    }
    Ok(out)
}

/// Records when keys were last used (written in batches, off the request path).
pub fn record_key_use(conn: &mut Connection, used: &[(KeyHash, u64)]) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE client_keys SET last_used_at = ?1
             WHERE key_hash = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
        )?;
        for (hash, at) in used {
            stmt.execute(params![at, hash.to_hex()])?;
        }
    }
    tx.commit()?;
    Ok(())
}
