//! The `sort` strategy's factors: a unified model's `sort = [{ by = "cost" }, ...]`.

use serde::{Deserialize, Serialize};

/// At most this many factors.
pub const MAX_KEYS: usize = 5;
pub const MAX_WEIGHT: f64 = 1000.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    /// Effective price (list price times the provider's multiplier); lower is better.
    Cost,
    /// Moving average latency (time to first content for streams); lower is better.
    Latency,
    /// The health score (recent outcomes, decaying); higher is better.
    Success,
    /// The share of its quota left (1 without one); higher is better.
    Quota,
    /// The provider's priority; lower is better.
    Priority,
}

impl SortBy {
    pub fn as_str(self) -> &'static str {
        match self {
            SortBy::Cost => "cost",
            SortBy::Latency => "latency",
            SortBy::Success => "success",
            SortBy::Quota => "quota",
            SortBy::Priority => "priority",
        }
    }

    /// Whether higher values are better unless the key says otherwise.
    pub fn higher_is_better(self) -> bool {
        matches!(self, SortBy::Success | SortBy::Quota)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    Asc,
    Desc,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SortKey {
    pub by: SortBy,
    /// `asc` (lowest first) or `desc`; absent: the better way for the factor (cost, latency
    /// and priority ascending; success and quota descending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<SortOrder>,
    /// How much this factor counts against the others (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
}

impl SortKey {
    pub fn weight(&self) -> f64 {
        self.weight.unwrap_or(1.0)
    }

    /// Whether the lowest value is best.
    pub fn ascending(&self) -> bool {
        match self.order {
            Some(o) => o == SortOrder::Asc,
            None => !self.by.higher_is_better(),
        }
    }
}

/// A list's rules: 1 to [`MAX_KEYS`] factors, none twice, weights above 0.
pub fn check(keys: &[SortKey]) -> Result<(), String> {
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(format!("sort has {} factors (1 to {MAX_KEYS})", keys.len()));
    }
    for (i, k) in keys.iter().enumerate() {
        if keys[..i].iter().any(|o| o.by == k.by) {
            return Err(format!("sort names {} twice", k.by.as_str()));
        }
        let w = k.weight();
        if !(w > 0.0 && w <= MAX_WEIGHT) {
            return Err(format!(
                "sort: {}'s weight is {w} (above 0, at most {MAX_WEIGHT})",
                k.by.as_str()
            ));
        }
    }
    Ok(())
}
