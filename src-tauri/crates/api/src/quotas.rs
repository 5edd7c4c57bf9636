//! `[[quotas]]`: a provider's (or one of its models') limits per day and month, in requests,
//! tokens or USD, counted in the provider's own time zone from its own reset time (free tiers
//! reset at their own midnight). A candidate at a limit is skipped until the reset.

use serde::{Deserialize, Serialize};

use crate::budget::Budget;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaEntry {
    pub provider: String,
    /// An upstream model id of that provider; absent: the provider as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    // The limits spelled out (as `Budget` has them): serde cannot refuse an unknown key through
    // a flattened struct.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<String>,
}

impl QuotaEntry {
    pub fn limits(&self) -> Budget {
        Budget {
            daily_usd: self.daily_usd,
            monthly_usd: self.monthly_usd,
            daily_tokens: self.daily_tokens,
            monthly_tokens: self.monthly_tokens,
            daily_requests: self.daily_requests,
            monthly_requests: self.monthly_requests,
            warn_at: self.warn_at,
            tz: self.tz.clone(),
            reset: self.reset.clone(),
        }
    }

    /// The counter's name: the provider, or `provider/model` (a provider's name has no `/`).
    pub fn scope(&self) -> String {
        match &self.model {
            Some(m) => format!("{}/{m}", self.provider),
            None => self.provider.clone(),
        }
    }

    pub fn check(&self) -> Result<(), String> {
        if self.provider.trim().is_empty() {
            return Err("needs a provider".into());
        }
        if self.model.as_ref().is_some_and(|m| m.trim().is_empty()) {
            return Err("model is empty (leave it out for the whole provider)".into());
        }
        let l = self.limits();
        if l.is_empty() {
            return Err("sets no limit (daily_ or monthly_ requests, tokens or usd)".into());
        }
        l.check()
    }
}

/// `GET /api/quotas`: the entries, and where each stands now.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QuotasView {
    pub entries: Vec<QuotaEntry>,
    pub standing: Vec<QuotaStanding>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QuotaStanding {
    /// `provider` or `provider/model`.
    pub scope: String,
    pub uses: Vec<crate::budget::BudgetUse>,
    /// At a limit until then (RFC 3339); absent: not at one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// `PUT /api/quotas`: every entry (those left out are removed).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasUpdate {
    pub entries: Vec<QuotaEntry>,
}
