//! The config file as written: strict serde types, no validation beyond shape.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: Option<Spanned<RawServer>>,
    pub routing: Option<Spanned<RawRouting>>,
    pub cooldown: Option<Spanned<RawCooldown>>,
    pub app: Option<Spanned<RawApp>>,
    pub admin: Option<Spanned<RawAdmin>>,
    #[serde(default)]
    pub providers: Vec<Spanned<RawProvider>>,
    #[serde(default)]
    pub models: Vec<Spanned<RawModel>>,
    #[serde(default)]
    pub client_keys: Vec<Spanned<RawClientKey>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub request_timeout_s: Option<u64>,
    pub max_body_mb: Option<u64>,
    pub allowed_origins: Option<Vec<String>>,
    pub header_timeout_s: Option<u64>,
    pub body_timeout_s: Option<u64>,
    pub max_connections: Option<u32>,
    pub body_budget_mb: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    pub retry_on_keywords: Option<Vec<String>>,
    pub max_attempts: Option<u32>,
    pub first_byte_timeout_s: Option<u64>,
    pub stream_idle_timeout_s: Option<u64>,
    pub sync_interval_s: Option<u64>,
    pub network_failure_threshold: Option<u32>,
    pub server_error_threshold: Option<u32>,
    pub probe_interval_s: Option<u64>,
}

/// The desktop app's own preferences; `serve` keeps them but does not use them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    pub notifications: Option<bool>,
    pub start_at_login: Option<bool>,
}

/// Admin login: how many failed attempts lock it, for how long, and how long a session lasts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub max_failed_logins: Option<u32>,
    pub lockout_s: Option<u64>,
    pub session_ttl_s: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCooldown {
    pub rate_limited: Option<u64>,
    pub server_error: Option<u64>,
    pub timeout: Option<u64>,
    pub network_error: Option<u64>,
    pub model_not_found: Option<u64>,
    pub max_multiplier: Option<u32>,
    pub decay: Option<u64>,
    pub max_retry_after: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    pub base_url: Option<String>,
    pub protocols: Option<Vec<String>>,
    pub api_key: Option<String>,
    pub weight: Option<u32>,
    pub enabled: Option<bool>,
    pub responses: Option<bool>,
    pub models: Option<Vec<String>>,
    pub headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub name: String,
    pub rules: Option<Vec<RawRule>>,
    pub include: Option<Vec<String>>,
    pub exclude_providers: Option<Vec<String>>,
    pub protocol: Option<String>,
    pub default_params: Option<toml::Table>,
    pub probe: Option<bool>,
    pub override_params: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientKey {
    pub name: String,
    pub key: Option<String>,
    pub models: Option<Vec<String>>,
    /// Requests per minute; absent: no limit.
    pub rpm: Option<i64>,
    /// Unix seconds, or a UTC date `YYYY-MM-DD` / `YYYY-MM-DDTHH:MM:SSZ`.
    pub expires_at: Option<RawTime>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawTime {
    Unix(i64),
    Text(String),
}
