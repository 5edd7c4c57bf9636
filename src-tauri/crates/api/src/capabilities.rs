//! `[[capabilities]]` and `/api/capabilities`: what a model can take, over what the price list
//! and the bundled families say, so a request goes only where it can be served.

use serde::{Deserialize, Serialize};

/// The largest context window an entry may give (tokens): far above any model's.
pub const MAX_CONTEXT: u32 = 100_000_000;

/// What one model can do. Every field is optional: unknown is not "no", and only a known "no"
/// (or a known window too small) keeps a request away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Tokens the model holds, prompt and answer together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u32>,
    /// The most tokens one answer may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output: Option<u32>,
    /// Calls tools (function calling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<bool>,
    /// Takes images (and, for Gemini, other inline media) as input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision: Option<bool>,
    /// Thinks before it answers (a reasoning or thinking model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<bool>,
    /// Answers in a JSON schema it is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_output: Option<bool>,
}

impl Capabilities {
    /// `over`'s known fields replace these.
    pub fn overlaid(self, over: &Capabilities) -> Capabilities {
        Capabilities {
            context_window: over.context_window.or(self.context_window),
            max_output: over.max_output.or(self.max_output),
            tools: over.tools.or(self.tools),
            vision: over.vision.or(self.vision),
            reasoning: over.reasoning.or(self.reasoning),
            structured_output: over.structured_output.or(self.structured_output),
        }
    }
}

/// One override: for a provider (absent: every provider) and an upstream model id (a `*`
/// matches any run of characters), the capabilities it gives. A provider-and-model entry wins
/// over a model-only one; among several that match, the longest model pattern wins.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub model: String,
    // The fields of `Capabilities` spelled out: serde cannot refuse unknown keys (a typo in the
    // config file) through a flattened struct.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_output: Option<bool>,
}

impl CapabilityEntry {
    pub fn capabilities(&self) -> Capabilities {
        Capabilities {
            context_window: self.context_window,
            max_output: self.max_output,
            tools: self.tools,
            vision: self.vision,
            reasoning: self.reasoning,
            structured_output: self.structured_output,
        }
    }

    /// The field at fault when the entry cannot be used.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let name_ok =
            |n: &str| !n.trim().is_empty() && n.len() <= 256 && !n.chars().any(char::is_control);
        if !name_ok(&self.model) {
            return Err((
                "model",
                "must be a model id (or pattern with *) of 1 to 256 characters".into(),
            ));
        }
        if let Some(p) = &self.provider
            && !name_ok(p)
        {
            return Err((
                "provider",
                "must be a provider name of 1 to 256 characters (leave it out for every one)"
                    .into(),
            ));
        }
        let c = &self.capabilities();
        for (field, v) in [
            ("context_window", c.context_window),
            ("max_output", c.max_output),
        ] {
            if let Some(v) = v
                && !(1..=MAX_CONTEXT).contains(&v)
            {
                return Err((field, format!("must be between 1 and {MAX_CONTEXT} tokens")));
            }
        }
        if *c == Capabilities::default() {
            return Err(("model", "the entry gives no capability".into()));
        }
        Ok(())
    }
}

/// `GET /api/capabilities`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CapabilitiesView {
    pub entries: Vec<CapabilityEntry>,
    /// Every (provider, model) a unified model routes to, with what is known of it.
    pub pairs: Vec<PairCapabilities>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PairCapabilities {
    pub provider: String,
    pub model: String,
    #[serde(flatten)]
    pub capabilities: Capabilities,
}

/// `PUT /api/capabilities`: the whole list of entries.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesUpdate {
    pub entries: Vec<CapabilityEntry>,
}
