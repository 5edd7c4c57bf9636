//! A client key's budget: USD and tokens per day and per month, with a soft limit that warns and
//! a hard limit that refuses (429) until the period resets.

use serde::{Deserialize, Serialize};

/// The largest amount a budget may set: far above any real spend, and exact in the counters.
pub const MAX_USD: f64 = 1_000_000.0;
pub const MAX_TOKENS: u64 = 1_000_000_000_000;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_usd: Option<f64>,
    /// Input and output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_tokens: Option<u64>,
    /// Requests answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_requests: Option<u64>,
    /// The share of a limit at which answers carry a warning (`x-switchboard-budget`) and a
    /// notification is sent: 0.8 unless given (0.01 to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_at: Option<f64>,
    /// The time zone the days and months are counted in (an IANA name: `Europe/Berlin`);
    /// default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// When a day begins, `HH:MM` in that zone (default `00:00`); a month begins on its first
    /// day at that time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<String>,
}

/// One of a budget's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetLimit {
    DailyUsd,
    MonthlyUsd,
    DailyTokens,
    MonthlyTokens,
    DailyRequests,
    MonthlyRequests,
}

impl BudgetLimit {
    pub const ALL: [BudgetLimit; 6] = [
        BudgetLimit::DailyUsd,
        BudgetLimit::MonthlyUsd,
        BudgetLimit::DailyTokens,
        BudgetLimit::MonthlyTokens,
        BudgetLimit::DailyRequests,
        BudgetLimit::MonthlyRequests,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BudgetLimit::DailyUsd => "daily_usd",
            BudgetLimit::MonthlyUsd => "monthly_usd",
            BudgetLimit::DailyTokens => "daily_tokens",
            BudgetLimit::MonthlyTokens => "monthly_tokens",
            BudgetLimit::DailyRequests => "daily_requests",
            BudgetLimit::MonthlyRequests => "monthly_requests",
        }
    }

    pub fn monthly(self) -> bool {
        matches!(
            self,
            BudgetLimit::MonthlyUsd | BudgetLimit::MonthlyTokens | BudgetLimit::MonthlyRequests
        )
    }

    pub fn requests(self) -> bool {
        matches!(
            self,
            BudgetLimit::DailyRequests | BudgetLimit::MonthlyRequests
        )
    }

    pub fn usd(self) -> bool {
        matches!(self, BudgetLimit::DailyUsd | BudgetLimit::MonthlyUsd)
    }
}

impl Budget {
    /// The limit's amount (USD or tokens), if set.
    pub fn amount(&self, l: BudgetLimit) -> Option<f64> {
        match l {
            BudgetLimit::DailyUsd => self.daily_usd,
            BudgetLimit::MonthlyUsd => self.monthly_usd,
            BudgetLimit::DailyTokens => self.daily_tokens.map(|t| t as f64),
            BudgetLimit::MonthlyTokens => self.monthly_tokens.map(|t| t as f64),
            BudgetLimit::DailyRequests => self.daily_requests.map(|t| t as f64),
            BudgetLimit::MonthlyRequests => self.monthly_requests.map(|t| t as f64),
        }
    }

    pub fn is_empty(&self) -> bool {
        BudgetLimit::ALL.iter().all(|l| self.amount(*l).is_none())
    }

    pub fn warn_at(&self) -> f64 {
        self.warn_at.unwrap_or(0.8)
    }

    /// `reset` as minutes after midnight.
    pub fn reset_minutes(&self) -> Result<u32, String> {
        let Some(r) = &self.reset else { return Ok(0) };
        let bad = || format!("reset {r:?} is not a time of day HH:MM");
        let (h, m) = r.split_once(':').ok_or_else(bad)?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 || r.len() != 5 {
            return Err(bad());
        }
        Ok(h * 60 + m)
    }

    /// The bounds of each field (the time zone's name is the gateway's to check).
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("daily_usd", self.daily_usd),
            ("monthly_usd", self.monthly_usd),
        ] {
            if let Some(v) = v
                && !(v > 0.0 && v <= MAX_USD)
            {
                return Err(format!("{name} is {v} (above 0, at most {MAX_USD})"));
            }
        }
        for (name, v) in [
            ("daily_tokens", self.daily_tokens),
            ("monthly_tokens", self.monthly_tokens),
            ("daily_requests", self.daily_requests),
            ("monthly_requests", self.monthly_requests),
        ] {
            if let Some(v) = v
                && !(1..=MAX_TOKENS).contains(&v)
            {
                return Err(format!("{name} is {v} (from 1 to {MAX_TOKENS})"));
            }
        }
        if let Some(w) = self.warn_at
            && !(0.01..=1.0).contains(&w)
        {
            return Err(format!("warn_at is {w} (from 0.01 to 1)"));
        }
        self.reset_minutes()?;
        Ok(())
    }
}

/// A budget's state now, for the admin API and the UI.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetUse {
    pub limit: String,
    pub used: f64,
    pub amount: f64,
    /// RFC 3339, in the budget's time zone.
    pub resets_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_reset_times() {
        let b = Budget {
            daily_usd: Some(2.0),
            reset: Some("07:30".into()),
            ..Default::default()
        };
        assert_eq!(b.check(), Ok(()));
        assert_eq!(b.reset_minutes(), Ok(450));
        assert!(!b.is_empty() && Budget::default().is_empty());
        for bad in ["24:00", "7:30", "07-30", "ab:cd"] {
            let b = Budget {
                reset: Some(bad.into()),
                ..Default::default()
            };
            assert!(b.check().is_err(), "{bad}");
        }
        let zero = Budget {
            monthly_usd: Some(0.0),
            ..Default::default()
        };
        assert!(zero.check().unwrap_err().contains("monthly_usd"));
        let warn = Budget {
            warn_at: Some(1.5),
            ..Default::default()
        };
        assert!(warn.check().unwrap_err().contains("warn_at"));
    }
}
