//! The list of model prices: genai-prices' data (bundled, or fetched from the user's URL),
//! parsed once into matchers, and the lookup of an upstream model id in it.
//!
//! The data's own lookup (its `find_provider`, `find_model`) is followed: a provider by the
//! API's base URL, else by its model match; then its models' match rules, then its fallback
//! providers'. Relays name models their own way, so the id is also tried without a vendor
//! prefix, a variant in brackets, a thinking suffix, and with a date written `2025-09-29`; and
//! at last every provider's models are searched.

use std::sync::{Arc, OnceLock};

use fancy_regex::{Regex, RegexBuilder};
use serde::Deserialize;

use super::{Rate, Rates};

const BUNDLED: &str = include_str!("../../data/prices.json");
const BUNDLED_VERSION: &str = include_str!("../../data/prices.VERSION");

/// The most a fetched list may hold: the whole list is about 350 KB today.
pub const MAX_LIST_BYTES: usize = 16 << 20;
const MAX_MODELS: usize = 100_000;
const MAX_TIERS: usize = 16;
/// Steps a regex of the list may take on one id: a list from a URL cannot stall the writer.
const BACKTRACK_LIMIT: usize = 100_000;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("the price list is not genai-prices' data: {0}")]
    Shape(String),
    #[error("the price list holds more than {MAX_MODELS} models")]
    TooMany,
}

/// A parsed price list.
#[derive(Debug)]
pub struct PriceBook {
    /// `genai-prices 0.1.8 (bundled)`, or the URL the list came from.
    pub source: String,
    providers: Vec<BookProvider>,
    models: usize,
    /// Entries left out because a rule or a price did not parse.
    pub skipped: usize,
}

#[derive(Debug)]
struct BookProvider {
    id: String,
    api_pattern: Option<Regex>,
    model_match: Option<Matcher>,
    /// Indexes of the providers whose models this one also sells.
    fallbacks: Vec<usize>,
    models: Vec<BookModel>,
}

#[derive(Debug)]
struct BookModel {
    id: String,
    matcher: Matcher,
    /// In the list's order; the last that applies at a time wins.
    prices: Vec<(When, Rates)>,
    /// Tokens the model holds, input and output together, when the list says.
    context_window: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum When {
    Always,
    /// From this unix second on.
    From(u64),
    /// Seconds of the UTC day, `start..end` (wrapping past midnight when end < start).
    TimeOfDay(u32, u32),
}

/// A match rule, strings lower-cased: the data compares ids without case.
#[derive(Debug)]
enum Matcher {
    Equals(String),
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    Regex(Box<Regex>),
    Or(Vec<Matcher>),
    And(Vec<Matcher>),
}

impl Matcher {
    /// `id` is lower case already.
    fn is_match(&self, id: &str) -> bool {
        match self {
            Matcher::Equals(s) => id == s,
            Matcher::StartsWith(s) => id.starts_with(s.as_str()),
            Matcher::EndsWith(s) => id.ends_with(s.as_str()),
            Matcher::Contains(s) => id.contains(s.as_str()),
            // A regex that runs out of steps does not match.
            Matcher::Regex(r) => r.is_match(id).unwrap_or(false),
            Matcher::Or(all) => all.iter().any(|m| m.is_match(id)),
            Matcher::And(all) => all.iter().all(|m| m.is_match(id)),
        }
    }
}

/// Where a price was found in the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    provider: usize,
    model: usize,
}

impl PriceBook {
    /// The list bundled with the app, parsed once per process.
    pub fn bundled() -> Arc<PriceBook> {
        static BOOK: OnceLock<Arc<PriceBook>> = OnceLock::new();
        BOOK.get_or_init(|| {
            let source = format!("{} (bundled)", BUNDLED_VERSION.trim());
            match PriceBook::parse(BUNDLED.as_bytes(), source) {
                Ok(book) => Arc::new(book),
                // The bundled file is checked by a test; this is a build gone wrong.
                Err(e) => {
                    tracing::error!("the bundled price list: {e}");
                    Arc::new(PriceBook::empty())
                }
            }
        })
        .clone()
    }

    pub fn empty() -> PriceBook {
        PriceBook {
            source: "none".into(),
            providers: Vec::new(),
            models: 0,
            skipped: 0,
        }
    }

    /// Parses a list in genai-prices' `data.json` shape. Entries whose rules or prices do not
    /// parse are skipped (and counted); a body of another shape is refused whole.
    pub fn parse(body: &[u8], source: String) -> Result<PriceBook, BookError> {
        let raw: Vec<raw::Provider> =
            serde_json::from_slice(body).map_err(|e| BookError::Shape(e.to_string()))?;
        let models: usize = raw.iter().map(|p| p.models.len()).sum();
        if models > MAX_MODELS {
            return Err(BookError::TooMany);
        }
        let mut skipped = 0;
        let ids: Vec<String> = raw.iter().map(|p| p.id.to_lowercase()).collect();
        let providers = raw
            .into_iter()
            .map(|p| {
                let api_pattern = p.api_pattern.as_deref().and_then(|pattern| {
                    let r = regex(&format!("^(?:{pattern})"));
                    skipped += usize::from(r.is_none());
                    r
                });
                let model_match = p.model_match.and_then(|m| {
                    let r = Matcher::compile(m);
                    skipped += usize::from(r.is_none());
                    r
                });
                let fallbacks = p
                    .fallback_model_providers
                    .iter()
                    .filter_map(|f| ids.iter().position(|id| *id == f.to_lowercase()))
                    .collect();
                let models = p
                    .models
                    .into_iter()
                    .filter_map(|m| {
                        // One entry of a shape this version does not know leaves out that
                        // entry, not the list.
                        let model = serde_json::from_value(m).ok().and_then(BookModel::compile);
                        skipped += usize::from(model.is_none());
                        model
                    })
                    .collect();
                BookProvider {
                    id: p.id,
                    api_pattern,
                    model_match,
                    fallbacks,
                    models,
                }
            })
            .collect::<Vec<_>>();
        let models = providers.iter().map(|p| p.models.len()).sum();
        Ok(PriceBook {
            source,
            providers,
            models,
            skipped,
        })
    }

    pub fn models(&self) -> usize {
        self.models
    }

    /// The list's entry for a model an upstream at `base_url` names `model`.
    pub fn find(&self, base_url: &str, model: &str) -> Option<Found> {
        let names = variants(model);
        let by_url = self
            .providers
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.api_pattern
                    .as_ref()
                    .is_some_and(|r| r.is_match(base_url).unwrap_or(false))
            })
            .map(|(i, _)| i);
        for p in by_url {
            if let Some(found) = names.iter().find_map(|n| self.in_provider(p, n, true)) {
                return Some(found);
            }
        }
        for n in &names {
            let by_model = self
                .providers
                .iter()
                .enumerate()
                .filter(|(_, p)| p.model_match.as_ref().is_some_and(|m| m.is_match(n)));
            for (p, _) in by_model {
                if let Some(found) = self.in_provider(p, n, true) {
                    return Some(found);
                }
            }
        }
        names
            .iter()
            .find_map(|n| (0..self.providers.len()).find_map(|p| self.in_provider(p, n, false)))
    }

    fn in_provider(&self, p: usize, name: &str, fallbacks: bool) -> Option<Found> {
        let provider = &self.providers[p];
        if let Some(model) = provider
            .models
            .iter()
            .position(|m| m.matcher.is_match(name))
        {
            return Some(Found { provider: p, model });
        }
        if !fallbacks {
            return None;
        }
        provider
            .fallbacks
            .iter()
            .find_map(|&f| self.in_provider(f, name, false))
    }

    /// The model's context window in tokens, when the list gives one.
    pub fn context_window(&self, found: Found) -> Option<u32> {
        self.providers[found.provider].models[found.model].context_window
    }

    /// The provider's and the model's ids in the list.
    pub fn names(&self, found: Found) -> (&str, &str) {
        let p = &self.providers[found.provider];
        (&p.id, &p.models[found.model].id)
    }

    /// The model's prices at `unix_s`: the last entry that applies (the list's own rule), else
    /// its first.
    pub fn rates(&self, found: Found, unix_s: u64) -> &Rates {
        let prices = &self.providers[found.provider].models[found.model].prices;
        let second_of_day = u32::try_from(unix_s % 86_400).unwrap_or(0);
        prices
            .iter()
            .rev()
            .find(|(when, _)| match *when {
                When::Always => true,
                When::From(t) => unix_s >= t,
                When::TimeOfDay(start, end) if end < start => {
                    second_of_day >= start || second_of_day < end
                }
                When::TimeOfDay(start, end) => (start..end).contains(&second_of_day),
            })
            .or(prices.first())
            .map(|(_, r)| r)
            .unwrap_or(&EMPTY)
    }
}

static EMPTY: Rates = Rates {
    input: None,
    output: None,
    cache_read: None,
    cache_write: None,
};

/// The names to look a model up by, most literal first (lower case, at most a dozen).
fn variants(model: &str) -> Vec<String> {
    const SUFFIXES: [&str; 4] = ["-thinking", ":thinking", "-nothinking", "-non-thinking"];
    let mut out: Vec<String> = vec![model.trim().to_lowercase()];
    let mut i = 0;
    while i < out.len() && out.len() < 12 {
        let name = out[i].clone();
        let mut more = Vec::new();
        if let Some(base) = name
            .strip_suffix(']')
            .and_then(|n| n.rsplit_once('['))
            .map(|(b, _)| b)
        {
            more.push(base.to_owned());
        }
        if let Some((_, last)) = name.rsplit_once('/') {
            more.push(last.to_owned());
        }
        more.extend(
            SUFFIXES
                .iter()
                .filter_map(|s| name.strip_suffix(s).map(str::to_owned)),
        );
        if let Some(dated) = dashed_date(&name) {
            more.push(dated);
        }
        for m in more {
            if !m.is_empty() && !out.contains(&m) {
                out.push(m);
            }
        }
        i += 1;
    }
    out.truncate(12);
    out
}

/// `x-20250929` -> `x-2025-09-29` (the list writes some dates so), when the id has such a date.
fn dashed_date(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    (0..bytes.len().saturating_sub(8)).find_map(|i| {
        let digits = bytes.get(i + 1..i + 9)?;
        let after = bytes.get(i + 9).copied();
        let date_like = bytes[i] == b'-'
            && digits.iter().all(u8::is_ascii_digit)
            && digits.starts_with(b"20")
            && matches!(after, None | Some(b'-' | b':'))
            && (b"01".as_slice()..=b"12".as_slice()).contains(&&digits[4..6])
            && (b"01".as_slice()..=b"31".as_slice()).contains(&&digits[6..8]);
        date_like.then(|| {
            let d = &name[i + 1..i + 9];
            format!(
                "{}-{}-{}-{}{}",
                &name[..i],
                &d[..4],
                &d[4..6],
                &d[6..8],
                &name[i + 9..]
            )
        })
    })
}

fn regex(pattern: &str) -> Option<Regex> {
    RegexBuilder::new(pattern)
        .backtrack_limit(BACKTRACK_LIMIT)
        .delegate_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .ok()
}

impl Matcher {
    fn compile(m: raw::Match) -> Option<Matcher> {
        Some(match m {
            raw::Match::Equals(s) => Matcher::Equals(s.to_lowercase()),
            raw::Match::StartsWith(s) => Matcher::StartsWith(s.to_lowercase()),
            raw::Match::EndsWith(s) => Matcher::EndsWith(s.to_lowercase()),
            raw::Match::Contains(s) => Matcher::Contains(s.to_lowercase()),
            raw::Match::Regex(s) => Matcher::Regex(Box::new(regex(&s)?)),
            raw::Match::Or(all) => Matcher::Or(
                all.into_iter()
                    .map(Matcher::compile)
                    .collect::<Option<_>>()?,
            ),
            raw::Match::And(all) => Matcher::And(
                all.into_iter()
                    .map(Matcher::compile)
                    .collect::<Option<_>>()?,
            ),
        })
    }
}

impl BookModel {
    fn compile(m: raw::Model) -> Option<BookModel> {
        let matcher = Matcher::compile(m.matches)?;
        let prices = match m.prices {
            raw::Prices::One(r) => vec![(When::Always, r.compile()?)],
            raw::Prices::Dated(list) => list
                .into_iter()
                .map(|c| {
                    let when = match c.constraint {
                        None => When::Always,
                        Some(raw::Constraint::StartDate { start_date }) => {
                            When::From(crate::config::unix_of_utc_date(&start_date).ok()?)
                        }
                        Some(raw::Constraint::TimeOfDate {
                            start_time,
                            end_time,
                        }) => {
                            When::TimeOfDay(second_of_day(&start_time)?, second_of_day(&end_time)?)
                        }
                    };
                    Some((when, c.prices.compile()?))
                })
                .collect::<Option<Vec<_>>>()?,
        };
        (!prices.is_empty()).then_some(BookModel {
            id: m.id,
            matcher,
            prices,
            context_window: m.context_window.and_then(|c| u32::try_from(c).ok()),
        })
    }
}

/// `HH:MM` or `HH:MM:SS`, UTC, with or without a `Z`, as seconds of the day.
fn second_of_day(t: &str) -> Option<u32> {
    let t = t.strip_suffix('Z').unwrap_or(t);
    let mut parts = t.splitn(3, ':').map(|p| p.parse::<u32>().ok());
    let (h, m) = (parts.next()??, parts.next()??);
    let s = parts.next().unwrap_or(Some(0))?;
    (h <= 24 && m < 60 && s < 60).then_some(h * 3600 + m * 60 + s)
}

impl raw::Rates {
    fn compile(self) -> Option<Rates> {
        let rate = |r: Option<raw::Rate>| -> Option<Option<Rate>> {
            match r {
                None => Some(None),
                Some(raw::Rate::Flat(v)) => Some(Some(Rate::flat(v)?)),
                Some(raw::Rate::Tiered { base, tiers }) => {
                    if tiers.len() > MAX_TIERS {
                        return None;
                    }
                    let tiers = tiers
                        .into_iter()
                        .map(|t| Some((t.start, Rate::flat(t.price)?.base())))
                        .collect::<Option<Vec<_>>>()?;
                    Some(Some(Rate::tiered(Rate::flat(base)?.base(), tiers)))
                }
            }
        };
        Some(Rates {
            input: rate(self.input_mtok)?,
            output: rate(self.output_mtok)?,
            cache_read: rate(self.cache_read_mtok)?,
            cache_write: rate(self.cache_write_mtok)?,
        })
    }
}

/// The data's shape, as far as it is read (other keys are left alone).
mod raw {
    use super::Deserialize;

    #[derive(Deserialize)]
    pub struct Provider {
        pub id: String,
        pub api_pattern: Option<String>,
        pub model_match: Option<Match>,
        #[serde(default)]
        pub fallback_model_providers: Vec<String>,
        pub models: Vec<serde_json::Value>,
    }

    #[derive(Deserialize)]
    pub struct Model {
        pub id: String,
        #[serde(rename = "match")]
        pub matches: Match,
        pub prices: Prices,
        #[serde(default)]
        pub context_window: Option<u64>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Match {
        Equals(String),
        StartsWith(String),
        EndsWith(String),
        Contains(String),
        Regex(String),
        Or(Vec<Match>),
        And(Vec<Match>),
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Prices {
        One(Rates),
        Dated(Vec<Conditional>),
    }

    #[derive(Deserialize)]
    pub struct Conditional {
        pub constraint: Option<Constraint>,
        pub prices: Rates,
    }

    #[derive(Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    pub enum Constraint {
        StartDate {
            start_date: String,
        },
        TimeOfDate {
            start_time: String,
            end_time: String,
        },
    }

    #[derive(Deserialize)]
    pub struct Rates {
        pub input_mtok: Option<Rate>,
        pub output_mtok: Option<Rate>,
        pub cache_read_mtok: Option<Rate>,
        pub cache_write_mtok: Option<Rate>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Rate {
        Flat(f64),
        Tiered { base: f64, tiers: Vec<Tier> },
    }

    #[derive(Deserialize)]
    pub struct Tier {
        pub start: u64,
        pub price: f64,
    }
}

#[cfg(test)]
mod tests;
