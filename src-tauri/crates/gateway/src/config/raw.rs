//! The config file as written: strict serde types, no validation beyond shape.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use switchboard_api::prices::PriceEntry;

use super::settings::{
    AdminPatch, AppPatch, CooldownPatch, LogsPatch, PricingPatch, RoutingPatch, ServerPatch,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: Option<Spanned<ServerPatch>>,
    pub routing: Option<Spanned<RoutingPatch>>,
    pub cooldown: Option<Spanned<CooldownPatch>>,
    pub app: Option<Spanned<AppPatch>>,
    pub admin: Option<Spanned<AdminPatch>>,
    pub logs: Option<Spanned<LogsPatch>>,
    pub pricing: Option<Spanned<PricingPatch>>,
    #[serde(default)]
    pub providers: Vec<Spanned<RawProvider>>,
    #[serde(default)]
    pub models: Vec<Spanned<RawModel>>,
    #[serde(default)]
    pub client_keys: Vec<Spanned<RawClientKey>>,
    #[serde(default)]
    pub prices: Vec<Spanned<PriceEntry>>,
    #[serde(default)]
    pub capabilities: Vec<Spanned<switchboard_api::capabilities::CapabilityEntry>>,
    #[serde(default)]
    pub quotas: Vec<Spanned<switchboard_api::quotas::QuotaEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    pub base_url: Option<String>,
    pub protocols: Option<Vec<String>>,
    pub api_key: Option<String>,
    pub weight: Option<u32>,
    pub priority: Option<u32>,
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
    pub strategy: Option<String>,
    pub sort: Option<Vec<switchboard_api::sort::SortKey>>,
    /// A model defined by filters instead of rules (`group = {}` takes them away).
    pub group: Option<switchboard_api::groups::GroupFilter>,
    /// Intent tiers: this model sends each request on to one tier's target.
    pub tiers: Option<Vec<switchboard_api::tiers::TierSpec>>,
    pub classifier: Option<switchboard_api::tiers::Classifier>,
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
    /// Keep this key's request and answer bodies (true) or never (false), whatever
    /// `[logs] capture_bodies` says; absent: as it says.
    pub capture_bodies: Option<bool>,
    /// May name a provider in a request (`model: "relay/gpt-4o"`), past the unified models.
    pub pin_providers: Option<bool>,
    /// USD and token limits per day and month (`budget = {}` takes them away).
    pub budget: Option<switchboard_api::budget::Budget>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawTime {
    Unix(i64),
    Text(String),
}
