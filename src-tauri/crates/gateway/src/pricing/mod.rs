//! What a request cost: the price list (`book`), the user's `[[prices]]` entries over it, and
//! the arithmetic. Used off the request path, by the log's writer and the admin API.

pub mod book;
pub mod list;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use switchboard_api::prices::PriceEntry;

pub use book::PriceBook;
pub use list::PriceList;

use crate::protocol::usage::Tokens;
use book::Found;

/// USD per million tokens: one rate, or cliff tiers on the request's input tokens (the whole
/// request at the rate of the last tier its input passed), as the list gives them.
#[derive(Clone, Debug, PartialEq)]
pub struct Rate {
    base: f64,
    tiers: Vec<(u64, f64)>,
}

impl Rate {
    /// A rate, when it is one: finite and not negative.
    pub fn flat(usd: f64) -> Option<Rate> {
        (usd.is_finite() && usd >= 0.0).then(|| Rate {
            base: usd,
            tiers: Vec::new(),
        })
    }

    fn tiered(base: f64, tiers: Vec<(u64, f64)>) -> Rate {
        Rate { base, tiers }
    }

    fn base(&self) -> f64 {
        self.base
    }

    /// The rate for a request of `input` tokens.
    pub fn at(&self, input: u64) -> f64 {
        self.tiers
            .iter()
            .rfind(|(start, _)| input > *start)
            .map_or(self.base, |&(_, usd)| usd)
    }
}

/// A model's rates per kind of token. A kind without a rate: cached input is charged as input;
/// no input rate means the model is priced in other units (images, audio) and its cost unknown.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates {
    pub input: Option<Rate>,
    pub output: Option<Rate>,
    pub cache_read: Option<Rate>,
    pub cache_write: Option<Rate>,
}

impl Rates {
    /// The rates a request of `input` tokens pays, times `multiplier`.
    fn applied(&self, input: u64, multiplier: f64) -> Applied {
        let at = |r: &Option<Rate>| r.as_ref().map(|r| r.at(input) * multiplier);
        Applied {
            input: at(&self.input),
            output: at(&self.output),
            cache_read: at(&self.cache_read),
            cache_write: at(&self.cache_write),
        }
    }
}

/// The rates one request paid, USD per million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Applied {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
}

impl Applied {
    fn of_entry(e: &PriceEntry) -> Applied {
        Applied {
            input: e.input,
            output: e.output,
            cache_read: e.cache_read,
            cache_write: e.cache_write,
        }
    }

    /// USD for `t`; None when a kind of token it used has no rate.
    pub fn cost(&self, t: &Tokens) -> Option<f64> {
        let input_rate = self.input?;
        let cache_read = t.cache_read.min(t.input);
        let cache_write = t.cache_write.min(t.input - cache_read);
        let mut plain = t.input - cache_read - cache_write;
        let mut usd = 0.0;
        for (tokens, rate) in [
            (cache_read, self.cache_read),
            (cache_write, self.cache_write),
        ] {
            match rate {
                Some(r) => usd += tokens as f64 * r,
                None => plain += tokens,
            }
        }
        usd += plain as f64 * input_rate;
        match self.output {
            Some(r) => usd += t.output as f64 * r,
            None if t.output > 0 => return None,
            None => {}
        }
        Some(usd / 1e6)
    }
}

/// The price a request's cost used, kept with the row as JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PriceUsed {
    /// `list` (the price list, times `multiplier`) or `entry` (the user's own price).
    pub source: &'static str,
    /// The list's provider and model that priced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<f64>,
    #[serde(flatten)]
    pub rates: Applied,
}

/// Lookups the list remembers; past this many the memory starts over (ids come from the
/// configuration, so it is rarely reached).
const MAX_REMEMBERED: usize = 10_000;

/// The list and the entries, with each provider's base URL (the list knows providers by it).
#[derive(Debug)]
pub struct Pricing {
    book: Arc<PriceBook>,
    base_urls: HashMap<String, String>,
    /// By (provider, lower-cased model), "" for every.
    entries: HashMap<(String, String), PriceEntry>,
    found: Mutex<HashMap<(String, String), Option<Found>>>,
}

impl Default for Pricing {
    fn default() -> Self {
        Pricing::new(Arc::new(PriceBook::empty()), std::iter::empty(), &[])
    }
}

impl Pricing {
    /// `providers`: (name, base URL).
    pub fn new<'a>(
        book: Arc<PriceBook>,
        providers: impl Iterator<Item = (&'a str, &'a str)>,
        entries: &[PriceEntry],
    ) -> Pricing {
        Pricing {
            book,
            base_urls: providers
                .map(|(n, u)| (n.to_owned(), u.to_owned()))
                .collect(),
            entries: entries
                .iter()
                .map(|e| {
                    let (p, m) = e.key();
                    ((p.to_owned(), m.to_lowercase()), e.clone())
                })
                .collect(),
            found: Mutex::new(HashMap::new()),
        }
    }

    pub fn book(&self) -> &Arc<PriceBook> {
        &self.book
    }

    /// What `tokens` of `model` from `provider` cost at `unix_s`, and the price used; None when
    /// nothing prices it.
    pub fn cost(
        &self,
        provider: &str,
        model: &str,
        tokens: &Tokens,
        unix_s: u64,
    ) -> Option<(f64, PriceUsed)> {
        let price = self.price(provider, model, tokens.input, unix_s)?;
        let usd = price.rates.cost(tokens)?;
        Some((usd, price))
    }

    /// What the `cost` strategy compares: USD per million input plus per million output tokens
    /// (a missing output rate counts as zero), multiplier applied; None when unpriced.
    pub fn blended(&self, provider: &str, model: &str, unix_s: u64) -> Option<f64> {
        let r = self.price(provider, model, 0, unix_s)?.rates;
        Some(r.input? + r.output.unwrap_or(0.0))
    }

    /// Whether a price (with an input rate) is known for `model` from `provider`.
    pub fn is_priced(&self, provider: &str, model: &str, unix_s: u64) -> bool {
        self.price(provider, model, 0, unix_s)
            .is_some_and(|p| p.rates.input.is_some())
    }

    /// The most specific entry wins: provider and model, model, provider, every.
    fn price(&self, provider: &str, model: &str, input: u64, unix_s: u64) -> Option<PriceUsed> {
        let lower = model.to_lowercase();
        let entry = [
            (provider, lower.as_str()),
            ("", lower.as_str()),
            (provider, ""),
            ("", ""),
        ]
        .into_iter()
        .find_map(|(p, m)| self.entries.get(&(p.to_owned(), m.to_owned())));
        let multiplier = match entry {
            Some(e) if e.multiplier.is_none() => {
                return Some(PriceUsed {
                    source: "entry",
                    list_provider: None,
                    list_model: None,
                    multiplier: None,
                    rates: Applied::of_entry(e),
                });
            }
            Some(e) => e.multiplier,
            None => None,
        };
        let found = self.find(provider, model)?;
        let (list_provider, list_model) = self.book.names(found);
        Some(PriceUsed {
            source: "list",
            list_provider: Some(list_provider.to_owned()),
            list_model: Some(list_model.to_owned()),
            multiplier,
            rates: self
                .book
                .rates(found, unix_s)
                .applied(input, multiplier.unwrap_or(1.0)),
        })
    }

    /// The price list's context window for `model` at `provider`.
    pub fn context_window(&self, provider: &str, model: &str) -> Option<u32> {
        self.find(provider, model)
            .and_then(|f| self.book.context_window(f))
    }

    fn find(&self, provider: &str, model: &str) -> Option<Found> {
        let key = (provider.to_owned(), model.to_owned());
        // A poisoned memory is only a memory: start it over.
        let mut found = self.found.lock().unwrap_or_else(|p| {
            let mut g = p.into_inner();
            g.clear();
            g
        });
        if let Some(f) = found.get(&key) {
            return *f;
        }
        let base_url = self.base_urls.get(provider).map_or("", String::as_str);
        let f = self.book.find(base_url, model);
        if found.len() >= MAX_REMEMBERED {
            found.clear();
        }
        found.insert(key, f);
        f
    }
}

#[cfg(test)]
mod tests;
