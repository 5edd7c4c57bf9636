//! Intent tiers: a unified model that sends each request on to one of several others (a model
//! or an `auto:*` group), picked per request by a classifier. In the config file they are a
//! model's `[[models.tiers]]` and its `classifier`; in the admin API, a model's `tiers`.

use serde::{Deserialize, Serialize};

/// At most this many tiers per model.
pub const MAX_TIERS: usize = 16;
/// At most this many keywords, and patterns, per tier.
pub const MAX_KEYWORDS: usize = 256;
pub const MAX_PATTERNS: usize = 32;
/// The longest keyword, pattern and description (bytes).
pub const MAX_KEYWORD_LEN: usize = 100;
pub const MAX_PATTERN_LEN: usize = 500;
pub const MAX_DESCRIPTION_LEN: usize = 300;
/// The small-model classifier's timeout: default and bounds (milliseconds).
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;
pub const MAX_TIMEOUT_MS: u64 = 30_000;
pub const MIN_TIMEOUT_MS: u64 = 50;

/// A tiered model's tiers and how one is picked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tiering {
    #[serde(default)]
    pub classifier: Classifier,
    pub tiers: Vec<TierSpec>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassifierMode {
    /// Each tier's triggers, in the order the tiers are listed: the first tier with a trigger
    /// that matches takes the request; none: the default tier.
    #[default]
    Rules,
    /// A small model (a unified model, called through the gateway) names the tier; on a
    /// timeout or a failure the fallback tier, or the rules, decide.
    Model,
    /// No classification: a tier drawn by weight (load spreading).
    Off,
}

impl ClassifierMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ClassifierMode::Rules => "rules",
            ClassifierMode::Model => "model",
            ClassifierMode::Off => "off",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classifier {
    #[serde(default)]
    pub mode: ClassifierMode,
    /// `model` mode: the unified model asked to name the tier (not a tiered one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `model` mode: how long to wait for its answer (default 2000 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// `model` mode: the tier taken when the classifier fails or times out (absent: the rules
    /// decide).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// The tier taken when no trigger matches (absent: the first tier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

impl Classifier {
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
            .unwrap_or(DEFAULT_TIMEOUT_MS)
            .clamp(MIN_TIMEOUT_MS, MAX_TIMEOUT_MS)
    }
}

/// One tier: where its requests go, and what sends a request to it. Every trigger is optional;
/// any one that matches is enough.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSpec {
    /// `T1`, `simple`, ...: letters, digits, `_`, `-` and `.`.
    pub name: String,
    /// A unified model or an `auto:*` group.
    pub target: String,
    /// What this tier is for, told to a small-model classifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Words or phrases in the last user turn (ASCII letters in any case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// Regular expressions over the last user turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
    /// A conversation of at least this many (estimated) tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tokens: Option<u32>,
    /// The request declares tools.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tools: bool,
    /// The request holds images.
    #[serde(default, skip_serializing_if = "is_false")]
    pub images: bool,
    /// The request asks the model to reason or think.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reasoning: bool,
    /// A small or background model was asked for (a name with `haiku`, `mini`, `nano`, `lite`,
    /// `small` or `fast`), or an answer of at most 512 tokens.
    #[serde(default, skip_serializing_if = "is_false")]
    pub small: bool,
    /// `off` mode: this tier's share (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl TierSpec {
    pub fn has_triggers(&self) -> bool {
        !self.keywords.is_empty()
            || !self.patterns.is_empty()
            || self.min_tokens.is_some()
            || self.tools
            || self.images
            || self.reasoning
            || self.small
    }
}

impl Tiering {
    /// The shape's rules (names, counts, lengths, references between tiers); whether the
    /// patterns compile and the targets exist is the gateway's to check.
    pub fn check(&self) -> Result<(), String> {
        if self.tiers.is_empty() {
            return Err("needs at least one tier".into());
        }
        if self.tiers.len() > MAX_TIERS {
            return Err(format!(
                "has {} tiers (at most {MAX_TIERS})",
                self.tiers.len()
            ));
        }
        for (i, t) in self.tiers.iter().enumerate() {
            let at = |m: String| format!("tier {:?}: {m}", t.name);
            if t.name.is_empty()
                || t.name.len() > 64
                || !t
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            {
                return Err(format!(
                    "tier {:?}: a name is 1 to 64 letters, digits, '_', '-' or '.'",
                    t.name
                ));
            }
            if self.tiers[..i].iter().any(|o| o.name == t.name) {
                return Err(at("named twice".into()));
            }
            if t.target.trim().is_empty() {
                return Err(at(
                    "needs a target (a unified model or an auto:* group)".into()
                ));
            }
            if t.keywords.len() > MAX_KEYWORDS || t.patterns.len() > MAX_PATTERNS {
                return Err(at(format!(
                    "at most {MAX_KEYWORDS} keywords and {MAX_PATTERNS} patterns"
                )));
            }
            if let Some(k) = t
                .keywords
                .iter()
                .find(|k| k.trim().is_empty() || k.len() > MAX_KEYWORD_LEN)
            {
                return Err(at(format!(
                    "keyword {k:?} is empty or longer than {MAX_KEYWORD_LEN} bytes"
                )));
            }
            if let Some(p) = t
                .patterns
                .iter()
                .find(|p| p.is_empty() || p.len() > MAX_PATTERN_LEN)
            {
                return Err(at(format!(
                    "pattern {p:?} is empty or longer than {MAX_PATTERN_LEN} bytes"
                )));
            }
            if t.description
                .as_ref()
                .is_some_and(|d| d.len() > MAX_DESCRIPTION_LEN)
            {
                return Err(at(format!(
                    "a description is at most {MAX_DESCRIPTION_LEN} bytes"
                )));
            }
        }
        let known = |name: &Option<String>, what: &str| match name {
            Some(n) if !self.tiers.iter().any(|t| &t.name == n) => {
                Err(format!("classifier.{what} names no tier: {n:?}"))
            }
            _ => Ok(()),
        };
        known(&self.classifier.default, "default")?;
        known(&self.classifier.fallback, "fallback")?;
        let c = &self.classifier;
        if let Some(ms) = c.timeout_ms
            && !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&ms)
        {
            return Err(format!(
                "classifier.timeout_ms is {ms} (from {MIN_TIMEOUT_MS} to {MAX_TIMEOUT_MS})"
            ));
        }
        match c.mode {
            ClassifierMode::Model if c.model.as_deref().is_none_or(|m| m.trim().is_empty()) => {
                Err("classifier mode \"model\" needs classifier.model (a unified model)".into())
            }
            ClassifierMode::Off if self.tiers.iter().all(|t| t.weight == Some(0)) => {
                Err("classifier mode \"off\" needs a tier with a weight above 0".into())
            }
            _ => Ok(()),
        }
    }

    /// The tier taken when nothing matches.
    pub fn default_tier(&self) -> usize {
        self.classifier
            .default
            .as_ref()
            .and_then(|d| self.tiers.iter().position(|t| &t.name == d))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(name: &str) -> TierSpec {
        TierSpec {
            name: name.into(),
            target: "m".into(),
            ..Default::default()
        }
    }

    #[test]
    fn checks_names_references_and_modes() {
        let ok = Tiering {
            classifier: Classifier {
                default: Some("T2".into()),
                ..Default::default()
            },
            tiers: vec![tier("T1"), tier("T2")],
        };
        assert_eq!(ok.check(), Ok(()));
        assert_eq!(ok.default_tier(), 1);
        let mut twice = ok.clone();
        twice.tiers[1].name = "T1".into();
        assert!(twice.check().unwrap_err().contains("named twice"));
        let mut nowhere = ok.clone();
        nowhere.classifier.default = Some("T9".into());
        assert!(nowhere.check().unwrap_err().contains("names no tier"));
        let mut model = ok.clone();
        model.classifier.mode = ClassifierMode::Model;
        assert!(
            model
                .check()
                .unwrap_err()
                .contains("needs classifier.model")
        );
        let mut bad = ok.clone();
        bad.tiers[0].name = "a b".into();
        assert!(bad.check().is_err());
        let mut slow = ok;
        slow.classifier.timeout_ms = Some(60_000);
        assert!(slow.check().unwrap_err().contains("timeout_ms"));
        assert_eq!(
            Tiering::default().check(),
            Err("needs at least one tier".into())
        );
    }
}
