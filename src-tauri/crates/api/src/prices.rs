//! `[[prices]]` and `/api/prices`: what the user says a model costs, over the bundled list.

use serde::{Deserialize, Serialize};

/// The most a price or a multiplier may be: far above any real one, low enough that a typo
/// (a price per token written per million) is refused rather than booked.
pub const MAX_USD_PER_MTOK: f64 = 100_000.0;
pub const MAX_MULTIPLIER: f64 = 100.0;

/// One entry: for a provider (absent: every provider) and an upstream model id (absent: every
/// model), either a multiplier of the list price or the model's own price, in USD per million
/// tokens. The most specific entry for a request wins: provider and model, then the model on
/// any provider, then the provider, then every provider and model. An own price is final (no
/// multiplier applies to it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// List price times this (a relay selling at 0.8 of list price: 0.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<f64>,
    /// Absent: cached input is charged as input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<f64>,
    /// Absent: input written to the cache is charged as input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
}

impl PriceEntry {
    /// What the entry applies to, with "" for "every".
    pub fn key(&self) -> (&str, &str) {
        (
            self.provider.as_deref().unwrap_or(""),
            self.model.as_deref().unwrap_or(""),
        )
    }

    /// Whether it is a whole entry: a multiplier, or an input and an output price (and the
    /// field at fault when not).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        for (field, name) in [("provider", &self.provider), ("model", &self.model)] {
            if let Some(n) = name
                && (n.trim().is_empty() || n.len() > 256 || n.chars().any(char::is_control))
            {
                return Err((
                    field,
                    "must be a name of 1 to 256 characters (leave it out for every one)".into(),
                ));
            }
        }
        let rates = [
            ("input", self.input),
            ("output", self.output),
            ("cache_read", self.cache_read),
            ("cache_write", self.cache_write),
        ];
        for (field, v) in rates {
            if let Some(v) = v
                && !(v.is_finite() && (0.0..=MAX_USD_PER_MTOK).contains(&v))
            {
                return Err((
                    field,
                    format!("must be between 0 and {MAX_USD_PER_MTOK} USD per million tokens"),
                ));
            }
        }
        let any_rate = rates.iter().any(|(_, v)| v.is_some());
        match self.multiplier {
            Some(_) if any_rate => Err((
                "multiplier",
                "give either a multiplier or prices, not both".into(),
            )),
            Some(m) if !(m.is_finite() && (0.0..=MAX_MULTIPLIER).contains(&m)) => Err((
                "multiplier",
                format!("must be between 0 and {MAX_MULTIPLIER}"),
            )),
            Some(_) => Ok(()),
            None if self.input.is_none() => Err((
                "input",
                "give a multiplier, or an input and an output price (USD per million tokens)"
                    .into(),
            )),
            None if self.output.is_none() => Err((
                "output",
                "an own price needs an output price too (0 for a model that outputs no tokens)"
                    .into(),
            )),
            None => Ok(()),
        }
    }
}

/// `GET /api/prices`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PricesView {
    pub list: PriceListView,
    pub entries: Vec<PriceEntry>,
    /// Models the providers serve that neither the list nor an entry prices: their requests'
    /// cost is unknown until one is set.
    pub unpriced: Vec<UnpricedModel>,
}

/// The list of prices in use.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PriceListView {
    /// `genai-prices 0.1.8 (bundled)`, or the URL it was fetched from.
    pub source: String,
    pub models: usize,
    /// Entries of the list left out because this version cannot read them.
    pub skipped: usize,
    /// Unix seconds of the last fetch from `refresh_url` (None: the bundled list).
    pub fetched_at: Option<u64>,
    /// Why the last fetch failed, if it did.
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnpricedModel {
    pub provider: String,
    pub model: String,
}

/// `PUT /api/prices`: the entries, all of them (those left out are deleted).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricesUpdate {
    pub entries: Vec<PriceEntry>,
}
