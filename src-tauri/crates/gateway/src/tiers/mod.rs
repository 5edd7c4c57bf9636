//! Intent tiers: a tiered unified model sends each request on to one tier's target (a unified
//! model or an `auto:*` group). This module is the pure part: a tiered model compiled for
//! matching (`Tiered`), what a request shows (`signals.rs`), the rules classifier, the draw by
//! weight, and the small-model classifier's prompt, answer and cache (`model.rs`). Calling the
//! small model is the pipeline's (`dispatch::classify`).

mod model;
mod signals;

use std::fmt;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Regex, RegexBuilder};
use switchboard_api::tiers::{ClassifierMode, Tiering};

pub use model::{Cache, answer_tier, prompt};
#[cfg(test)]
use signals::last_user_turn;
pub use signals::{Signals, Wants};

/// A compiled regex may take at most this much memory, so a pattern from the config cannot
/// make matching slow or large.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A tiered model, compiled: its keywords in one automaton, its patterns, what its triggers
/// need measured.
#[derive(Debug)]
pub struct Tiered {
    pub name: Arc<str>,
    pub spec: Tiering,
    keywords: Option<AhoCorasick>,
    /// Per automaton pattern: its tier and its keyword's index in that tier.
    keyword_at: Vec<(usize, usize)>,
    /// Per tier: its patterns.
    patterns: Vec<Vec<Regex>>,
    pub wants: Wants,
}

/// The tier a request takes, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Pick {
    pub tier: usize,
    pub reason: Reason,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Reason {
    Small,
    Keyword(String),
    Pattern(String),
    Reasoning,
    Tools,
    Images,
    Tokens(u32),
    /// No trigger matched.
    Default,
    /// `off` mode.
    Drawn,
    /// The small model's answer (`cached`: from an earlier identical turn).
    Classifier {
        cached: bool,
    },
    /// The small model failed (`why`); `then` is what decided instead.
    ClassifierFailed {
        why: String,
        then: Box<Reason>,
    },
    /// The small model failed and the fallback tier was taken.
    Fallback {
        why: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Small => f.write_str("a small model or a short answer was asked for"),
            Reason::Keyword(k) => write!(f, "keyword {k:?}"),
            Reason::Pattern(p) => write!(f, "pattern {p:?}"),
            Reason::Reasoning => f.write_str("reasoning asked for"),
            Reason::Tools => f.write_str("tools declared"),
            Reason::Images => f.write_str("images in the request"),
            Reason::Tokens(n) => write!(f, "about {n} tokens"),
            Reason::Default => f.write_str("no trigger matched (default tier)"),
            Reason::Drawn => f.write_str("drawn by weight"),
            Reason::Classifier { cached: false } => f.write_str("classifier model"),
            Reason::Classifier { cached: true } => f.write_str("classifier model (cached)"),
            Reason::ClassifierFailed { why, then } => write!(f, "{why}; rules: {then}"),
            Reason::Fallback { why } => write!(f, "{why}; fallback tier"),
        }
    }
}

impl Tiered {
    /// Compiles a tiered model whose shape `Tiering::check` passed; a pattern that does not
    /// compile is refused with its tier.
    pub fn compile(name: &str, spec: Tiering) -> Result<Self, String> {
        spec.check()?;
        let mut words = Vec::new();
        let mut keyword_at = Vec::new();
        let mut patterns = Vec::with_capacity(spec.tiers.len());
        for (t, tier) in spec.tiers.iter().enumerate() {
            for (k, word) in tier.keywords.iter().enumerate() {
                words.push(word.as_str());
                keyword_at.push((t, k));
            }
            let compiled = tier
                .patterns
                .iter()
                .map(|p| {
                    RegexBuilder::new(p)
                        .size_limit(REGEX_SIZE_LIMIT)
                        .dfa_size_limit(REGEX_SIZE_LIMIT)
                        .build()
                        .map_err(|e| format!("tier {:?}: pattern {p:?}: {e}", tier.name))
                })
                .collect::<Result<Vec<_>, _>>()?;
            patterns.push(compiled);
        }
        let keywords = if words.is_empty() {
            None
        } else {
            // Standard semantics with overlapping search: every keyword that occurs is seen,
            // so a keyword of a later tier never hides one of an earlier tier.
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&words)
                    .map_err(|e| format!("keywords: {e}"))?,
            )
        };
        let wants = Wants {
            images: spec.tiers.iter().any(|t| t.images),
            tokens: spec.tiers.iter().any(|t| t.min_tokens.is_some()),
        };
        Ok(Self {
            name: name.into(),
            spec,
            keywords,
            keyword_at,
            patterns,
            wants,
        })
    }

    pub fn mode(&self) -> ClassifierMode {
        self.spec.classifier.mode
    }

    pub fn tier_name(&self, tier: usize) -> &str {
        self.spec.tiers.get(tier).map_or("", |t| t.name.as_str())
    }

    pub fn target(&self, tier: usize) -> &str {
        self.spec.tiers.get(tier).map_or("", |t| t.target.as_str())
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.spec.tiers.iter().position(|t| t.name == name)
    }

    /// The rules classifier, in these steps:
    /// - the tiers are looked at in the order they are listed; the first with a trigger that
    ///   matches takes the request;
    /// - within a tier the triggers are read in this order, and the first that matches is the
    ///   reason: a small model asked for, a keyword, a pattern, reasoning asked for, tools,
    ///   images, the conversation's size;
    /// - keywords are found in one pass over the last user turn for every tier together;
    ///   patterns run only for tiers listed before the best match so far;
    /// - no trigger matches: the default tier.
    pub fn by_rules(&self, s: &Signals<'_>) -> Pick {
        let cheap = |t: &switchboard_api::tiers::TierSpec| {
            if t.small && s.small {
                Some(Reason::Small)
            } else {
                None
            }
        };
        let late = |t: &switchboard_api::tiers::TierSpec| {
            if t.reasoning && s.reasoning {
                Some(Reason::Reasoning)
            } else if t.tools && s.tools {
                Some(Reason::Tools)
            } else if t.images && s.images {
                Some(Reason::Images)
            } else {
                t.min_tokens
                    .filter(|&n| s.tokens >= n)
                    .map(|_| Reason::Tokens(s.tokens))
            }
        };
        // The best tier the keywords give, and its keyword: the earliest tier hit.
        let mut keyword: Option<(usize, usize)> = None;
        if let Some(ac) = &self.keywords {
            for m in ac.find_overlapping_iter(s.turn) {
                let Some(&(t, k)) = self.keyword_at.get(m.pattern().as_usize()) else {
                    continue;
                };
                if keyword.is_none_or(|(best, _)| t < best) {
                    keyword = Some((t, k));
                    if t == 0 {
                        break;
                    }
                }
            }
        }
        for (i, t) in self.spec.tiers.iter().enumerate() {
            if let Some(reason) = cheap(t) {
                return Pick { tier: i, reason };
            }
            if let Some((kt, k)) = keyword
                && kt == i
            {
                return Pick {
                    tier: i,
                    reason: Reason::Keyword(t.keywords[k].clone()),
                };
            }
            if let Some(p) = self.patterns[i].iter().find(|p| p.is_match(s.turn)) {
                return Pick {
                    tier: i,
                    reason: Reason::Pattern(p.as_str().to_owned()),
                };
            }
            if let Some(reason) = late(t) {
                return Pick { tier: i, reason };
            }
        }
        Pick {
            tier: self.spec.default_tier(),
            reason: Reason::Default,
        }
    }

    /// The small model's answer for this turn, if it was asked before.
    pub fn cached(&self, cache: &Cache, turn: &str) -> Option<Pick> {
        let name = cache.get(Cache::key(&self.name, turn))?;
        Some(Pick {
            tier: self.position(&name)?,
            reason: Reason::Classifier { cached: true },
        })
    }

    /// `off` mode: a tier drawn by weight (default 1 each).
    pub fn drawn(&self, rng: &mut fastrand::Rng) -> Pick {
        let weight = |t: &switchboard_api::tiers::TierSpec| u64::from(t.weight.unwrap_or(1));
        let total: u64 = self.spec.tiers.iter().map(weight).sum();
        let mut at = rng.u64(0..total.max(1));
        for (i, t) in self.spec.tiers.iter().enumerate() {
            let w = weight(t);
            if at < w {
                return Pick {
                    tier: i,
                    reason: Reason::Drawn,
                };
            }
            at -= w;
        }
        Pick {
            tier: self.spec.default_tier(),
            reason: Reason::Drawn,
        }
    }
}

#[cfg(test)]
mod tests;
