//! `GET /api/stats`: the request log summed over a window, in buckets, optionally by group.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub since_ms: i64,
    pub until_ms: i64,
    /// `minute`, `hour` or `day`.
    pub bucket: String,
    pub bucket_ms: i64,
    /// `model` (unified), `provider` or `client_key`; None: not grouped.
    pub group_by: Option<String>,
    pub totals: Point,
    /// One point per bucket (and group) that had requests, oldest first.
    pub series: Vec<SeriesPoint>,
    /// With `group_by`: each group's totals, most requests first.
    pub groups: Vec<GroupTotal>,
    /// Tiered models' requests by tier, most first (from the log's rows, as long as it keeps
    /// them).
    #[serde(default)]
    pub tiers: Vec<TierTotal>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TierTotal {
    /// The tiered model.
    pub model: String,
    pub tier: String,
    pub requests: u64,
    /// What they cost, where known.
    pub cost_usd: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// The bucket's start, unix milliseconds.
    pub t_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(flatten)]
    pub point: Point,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupTotal {
    pub group: String,
    #[serde(flatten)]
    pub point: Point,
}

/// What a set of requests did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub requests: u64,
    /// Requests answered with an error (what users saw fail).
    pub errors: u64,
    /// Requests that succeeded after a failed attempt: failover saved them.
    pub saved: u64,
    pub attempts: u64,
    pub failed_attempts: u64,
    /// Successful requests over requests (a request saved by failover is one success).
    pub success_rate: Option<f64>,
    /// Failed attempts over attempts: how often an upstream failed.
    pub error_rate: Option<f64>,
    pub latency_ms: Percentiles,
    /// Streams' time to first content.
    pub ttfc_ms: Percentiles,
    pub tokens: TokenTotals,
    /// The cost of the priced requests, USD.
    pub cost_usd: f64,
    /// Requests with tokens and no price: `cost_usd` leaves them out.
    pub unpriced: u64,
}

/// From a histogram of about 12 % wide buckets: each is within 12 % of the true value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenTotals {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub reasoning: u64,
    /// Requests whose tokens were estimated here.
    pub estimated: u64,
}
