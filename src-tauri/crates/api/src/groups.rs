//! A unified model defined by filters instead of rules (`group = { ... }`): every model the
//! user's providers list that passes them, rebuilt as prices and capabilities change.

use serde::{Deserialize, Serialize};

use crate::capabilities::Capabilities;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFilter {
    /// The highest effective price (USD per million input plus output tokens); 0: free ones
    /// only. A model with no known price is left out when a ceiling is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<f64>,
    /// The smallest context window (tokens); a model whose window is not known is left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_context: Option<u32>,
    /// true: only models known to call tools (take images, reason); false: only models not
    /// known to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<bool>,
    /// Only these providers' models (empty: every provider's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    /// Upstream model ids like this (`*` for any run of characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

impl GroupFilter {
    pub fn check(&self) -> Result<(), String> {
        if let Some(p) = self.max_price
            && !(p >= 0.0 && p.is_finite())
        {
            return Err(format!("group.max_price is {p} (0 or more)"));
        }
        if self
            .pattern
            .as_ref()
            .is_some_and(|p| p.is_empty() || p.len() > 200)
        {
            return Err("group.pattern is empty or longer than 200 bytes".into());
        }
        if self.providers.len() > 1000 {
            return Err("group.providers has more than 1000 names".into());
        }
        Ok(())
    }

    /// Whether a provider's model passes, with what is known of it (`wildcard` matches the
    /// pattern).
    pub fn keeps(
        &self,
        provider: &str,
        caps: &Capabilities,
        price: Option<f64>,
        pattern_matches: impl Fn(&str) -> bool,
    ) -> bool {
        let known = |want: Option<bool>, has: Option<bool>| match want {
            None => true,
            Some(true) => has == Some(true),
            Some(false) => has != Some(true),
        };
        self.max_price
            .is_none_or(|max| price.is_some_and(|p| p <= max))
            && self
                .min_context
                .is_none_or(|min| caps.context_window.is_some_and(|w| w >= min))
            && known(self.tools, caps.tools)
            && known(self.vision, caps.vision)
            && known(self.reasoning, caps.reasoning)
            && (self.providers.is_empty() || self.providers.iter().any(|p| p == provider))
            && self.pattern.as_deref().is_none_or(&pattern_matches)
    }
}

/// `GET /api/groups`: the ready-made `auto:*` groups and the user's own, as built now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupView {
    pub name: String,
    /// A ready-made group (else one of the user's, a model with `group`).
    pub ready_made: bool,
    pub strategy: String,
    /// How many (provider, model) pairs it holds, and the first of them (`provider/model`).
    pub count: usize,
    pub candidates: Vec<String>,
}

/// The most candidates a group's view lists.
pub const VIEW_CANDIDATES: usize = 50;
