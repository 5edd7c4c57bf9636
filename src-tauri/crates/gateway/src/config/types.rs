//! Checked config: what the rest of the engine works with.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::SettingsPatch;
use crate::secrets::Secret;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[serde(rename = "openai")]
    OpenAi,
    Anthropic,
    Gemini,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown protocol {s:?} (expected openai, anthropic or gemini)"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Exact,
    Prefix,
    Keyword,
    Regex,
    ExcludeKeyword,
}

impl RuleKind {
    pub const ALL: [RuleKind; 5] = [
        RuleKind::Exact,
        RuleKind::Prefix,
        RuleKind::Keyword,
        RuleKind::Regex,
        RuleKind::ExcludeKeyword,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Prefix => "prefix",
            Self::Keyword => "keyword",
            Self::Regex => "regex",
            Self::ExcludeKeyword => "exclude_keyword",
        }
    }
}

impl FromStr for RuleKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!(
                "unknown rule type {s:?} (expected exact, prefix, keyword, regex or exclude_keyword)"
            )
        })
    }
}

/// How a unified model picks among its candidates (`balance::strategy` has each one's steps).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    #[default]
    Weighted,
    Priority,
    RoundRobin,
    Latency,
    Cost,
    LeastBusy,
    /// Several factors, weighted (the model's `sort`).
    Sort,
}

impl Strategy {
    pub const ALL: [Strategy; 7] = [
        Strategy::Weighted,
        Strategy::Priority,
        Strategy::RoundRobin,
        Strategy::Latency,
        Strategy::Cost,
        Strategy::LeastBusy,
        Strategy::Sort,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weighted => "weighted",
            Self::Priority => "priority",
            Self::RoundRobin => "round_robin",
            Self::Latency => "latency",
            Self::Cost => "cost",
            Self::LeastBusy => "least_busy",
            Self::Sort => "sort",
        }
    }
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!(
                "unknown strategy {s:?} (expected weighted, priority, round_robin, latency, cost, least_busy or sort)"
            )
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub kind: RuleKind,
    pub value: String,
}

/// A manual `provider/model` pair of a unified model.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Include {
    pub provider: String,
    pub model: String,
}

/// A provider key as the config file gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySpec {
    Env(String),
    Literal(Secret),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProviderSpec {
    pub name: String,
    /// Line in the config file, for errors found later (at import).
    pub line: usize,
    pub base_url: Option<String>,
    pub protocols: Option<Vec<Protocol>>,
    pub api_key: Option<KeySpec>,
    pub weight: Option<u32>,
    /// For the `priority` strategy: lower is tried first (default 0).
    pub priority: Option<u32>,
    pub enabled: Option<bool>,
    /// Whether an `openai` provider has OpenAI's Responses API; false for a relay with chat
    /// completions only, to which Responses requests go converted.
    pub responses: Option<bool>,
    pub models: Option<Vec<String>>,
    pub headers: Option<BTreeMap<String, String>>,
}

pub type JsonObject = serde_json::Map<String, serde_json::Value>;

#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub name: String,
    pub rules: Option<Vec<Rule>>,
    pub include: Option<Vec<Include>>,
    pub exclude_providers: Option<Vec<String>>,
    pub protocol: Option<Protocol>,
    pub default_params: Option<JsonObject>,
    pub override_params: Option<JsonObject>,
    /// Active health probes for this model's candidates (when probes are on); false for
    /// models too expensive to ping.
    pub probe: Option<bool>,
    pub strategy: Option<Strategy>,
    /// The `sort` strategy's factors.
    pub sort: Option<Vec<switchboard_api::sort::SortKey>>,
    /// Filters instead of rules; Some(empty): none any more (the admin API's edit).
    pub group: Option<switchboard_api::groups::GroupFilter>,
    /// A tiered model: its tiers and classifier (then it has no rules of its own).
    pub tiers: Option<switchboard_api::tiers::Tiering>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClientKeySpec {
    pub name: String,
    pub key: Option<Secret>,
    pub models: Option<Vec<String>>,
    pub rpm: Option<u32>,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    /// Overrides `[logs] capture_bodies` for this key.
    pub capture_bodies: Option<bool>,
    /// May pin a provider (`provider/model`); None: kept as stored (false for a new key).
    pub pin_providers: Option<bool>,
    /// Some(empty): no budget any more; None: kept as stored.
    pub budget: Option<switchboard_api::budget::Budget>,
}

/// A parsed and validated config file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigFile {
    pub settings: SettingsPatch,
    pub providers: Vec<ProviderSpec>,
    pub models: Vec<ModelSpec>,
    pub client_keys: Vec<ClientKeySpec>,
    /// `[[prices]]`, each checked, no two for the same provider and model.
    pub prices: Vec<switchboard_api::prices::PriceEntry>,
    /// `[[capabilities]]`, each checked, no two for the same provider and model.
    pub capabilities: Vec<switchboard_api::capabilities::CapabilityEntry>,
    /// `[[quotas]]`, each checked, no two for the same provider and model.
    pub quotas: Vec<switchboard_api::quotas::QuotaEntry>,
}
