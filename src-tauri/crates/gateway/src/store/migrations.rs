//! Versioned schema migrations of the config database, tracked in `PRAGMA user_version`.

use rusqlite::Connection;

use super::StoreError;

/// Each entry moves the schema from version `i` to `i + 1`. Append only: a released migration is
/// never edited, since existing databases already ran it.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the config database.
    r#"
    CREATE TABLE providers (
        id         INTEGER PRIMARY KEY,
        uid        TEXT NOT NULL UNIQUE,     -- stable id: the keychain account, survives renames
        name       TEXT NOT NULL UNIQUE,
        base_url   TEXT NOT NULL,
        protocols  TEXT NOT NULL,            -- JSON array of openai | anthropic | gemini
        key_ref    TEXT,                     -- NULL, 'env:NAME' or 'keychain'; never the key
        weight     INTEGER NOT NULL DEFAULT 1 CHECK (weight >= 1),
        enabled    INTEGER NOT NULL DEFAULT 1,
        paused     INTEGER NOT NULL DEFAULT 0,
        headers    TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
    );
    CREATE TABLE provider_models (
        provider_id INTEGER NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
        model_id    TEXT NOT NULL,
        PRIMARY KEY (provider_id, model_id)
    ) WITHOUT ROWID;
    CREATE TABLE provider_sync (
        provider_id INTEGER PRIMARY KEY REFERENCES providers(id) ON DELETE CASCADE,
        source      TEXT NOT NULL,           -- 'config' or 'upstream'
        synced_at   TEXT,
        last_error  TEXT
    );
    CREATE TABLE models (
        id              INTEGER PRIMARY KEY,
        name            TEXT NOT NULL UNIQUE,
        protocol        TEXT,
        default_params  TEXT NOT NULL DEFAULT '{}',
        override_params TEXT NOT NULL DEFAULT '{}',
        created_at      TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
    );
    CREATE TABLE model_rules (
        model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        kind     TEXT NOT NULL CHECK (kind IN
                 ('exact', 'prefix', 'keyword', 'regex', 'exclude_keyword',
                  'include', 'exclude_provider')),
        value    TEXT NOT NULL,
        PRIMARY KEY (model_id, position)
    ) WITHOUT ROWID;
    CREATE TABLE client_keys (
        id         INTEGER PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        key_hash   TEXT NOT NULL UNIQUE,     -- hex SHA-256; the key itself is never stored
        models     TEXT NOT NULL DEFAULT '["*"]',
        created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
        revoked_at TEXT
    );
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL                  -- JSON
    ) WITHOUT ROWID;
    "#,
    // 2: per-model opt-out of active health probes.
    r#"
    ALTER TABLE models ADD COLUMN probe INTEGER NOT NULL DEFAULT 1;
    "#,
    // 3: a pause can end by itself (unix seconds; NULL: until resumed).
    r#"
    ALTER TABLE providers ADD COLUMN paused_until INTEGER;
    "#,
    // 4: client keys get a requests-per-minute limit, an expiry and a last-used time (unix s).
    r#"
    ALTER TABLE client_keys ADD COLUMN rpm INTEGER;
    ALTER TABLE client_keys ADD COLUMN expires_at INTEGER;
    ALTER TABLE client_keys ADD COLUMN last_used_at INTEGER;
    "#,
    // 5: whether an OpenAI-compatible provider has the Responses API (0: chat completions
    // only, set in the config or learned from a 404).
    r#"
    ALTER TABLE providers ADD COLUMN responses INTEGER NOT NULL DEFAULT 1;
    "#,
    // 6: `[[prices]]`: per provider ('' every provider) and upstream model ('' every model),
    // a multiplier of the list price or an own price in USD per million tokens.
    r#"
    CREATE TABLE prices (
        provider    TEXT NOT NULL DEFAULT '',
        model       TEXT NOT NULL DEFAULT '',
        multiplier  REAL,
        input       REAL,
        output      REAL,
        cache_read  REAL,
        cache_write REAL,
        PRIMARY KEY (provider, model)
    ) WITHOUT ROWID;
    "#,
    // 7: a client key's own body capture (1 on, 0 off, NULL: as `[logs] capture_bodies`).
    r#"
    ALTER TABLE client_keys ADD COLUMN capture_bodies INTEGER;
    "#,
    // 8: how a unified model chooses (`weighted` as before) and a provider's tier for the
    // `priority` strategy (lower first).
    r#"
    ALTER TABLE models ADD COLUMN strategy TEXT NOT NULL DEFAULT 'weighted';
    ALTER TABLE providers ADD COLUMN priority INTEGER NOT NULL DEFAULT 0 CHECK (priority >= 0);
    "#,
    // 9: a client key that may name a provider in its requests (`provider/model`).
    r#"
    ALTER TABLE client_keys ADD COLUMN pin_providers INTEGER NOT NULL DEFAULT 0;
    "#,
    // 10: `[[capabilities]]`: what a model can take, per provider ('' for every one) and model
    // pattern; the capabilities as a JSON object.
    r#"
    CREATE TABLE capabilities (
        provider     TEXT NOT NULL DEFAULT '',
        model        TEXT NOT NULL,
        capabilities TEXT NOT NULL,
        PRIMARY KEY (provider, model)
    ) WITHOUT ROWID;
    "#,
    // 11: intent tiers: a tiered model's tiers and classifier, as one JSON object (NULL: none).
    r#"
    ALTER TABLE models ADD COLUMN tiers TEXT;
    "#,
    // 12: a client key's budget (USD and tokens per day and month) as JSON; NULL: none.
    r#"
    ALTER TABLE client_keys ADD COLUMN budget TEXT;
    "#,
    // 13: `[[quotas]]`: a provider's ('' model: the whole provider) or one of its models'
    // limits per day and month, as a JSON object.
    r#"
    CREATE TABLE quotas (
        provider TEXT NOT NULL,
        model    TEXT NOT NULL DEFAULT '',
        limits   TEXT NOT NULL,
        PRIMARY KEY (provider, model)
    ) WITHOUT ROWID;
    "#,
    // 14: the `sort` strategy's factors, as a JSON list (NULL: none).
    r#"
    ALTER TABLE models ADD COLUMN sort TEXT;
    "#,
    // 15: a model defined by filters instead of rules, as a JSON object (NULL: none).
    r#"
    ALTER TABLE models ADD COLUMN "group" TEXT;
    "#,
];

#[cfg(test)]
pub const LATEST: u32 = MIGRATIONS.len() as u32;

/// Brings the database to the latest version, one transaction per step. Refuses a database
/// written by a newer Switchboard rather than guess at its schema.
pub fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    migrate_with(conn, MIGRATIONS)
}

/// The same for any database of ours: `migrations[i]` moves it from version `i` to `i + 1`.
pub(super) fn migrate_with(conn: &mut Connection, migrations: &[&str]) -> Result<u32, StoreError> {
    let current: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let latest = migrations.len() as u32;
    if current > latest {
        return Err(StoreError::TooNew {
            found: current,
            supported: latest,
        });
    }
    for (i, sql) in migrations.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as u32 + 1)?;
        tx.commit()?;
    }
    Ok(current)
}
