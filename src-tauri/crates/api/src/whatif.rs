//! `POST /api/whatif`: the logged requests of the last days replayed through another strategy,
//! with their logged tokens, today's prices and the latencies the log measured, beside what
//! happened.

use serde::{Deserialize, Serialize};

use crate::sort::SortKey;

pub const MAX_DAYS: u32 = 30;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatIfRequest {
    /// How many days back (1 to 30; default 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// The strategy to replay them through (`cost`, `latency`, `sort`, ...).
    pub strategy: String,
    /// For `sort`: its factors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sort: Vec<SortKey>,
    /// Only this unified model's requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Another tier map: a tiered request that took tier `T1` goes to this unified model (or
    /// group) instead of the one its tier named.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tiers: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub cost_usd: f64,
    /// Requests no price was known for (left out of `cost_usd`).
    pub unpriced: u64,
    /// Mean latency, where known.
    pub latency_ms: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WhatIfModel {
    pub model: String,
    pub requests: u64,
    /// What happened.
    pub actual: Outcome,
    /// What the strategy would have done.
    pub replayed: Outcome,
    /// Requests that would have gone to another (provider, model).
    pub moved: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WhatIf {
    pub since_ms: i64,
    pub until_ms: i64,
    pub strategy: String,
    /// Requests replayed, and those that could not be (their model is gone, or they are
    /// beyond the most read at once).
    pub requests: u64,
    pub skipped: u64,
    pub total: WhatIfModel,
    pub models: Vec<WhatIfModel>,
}
