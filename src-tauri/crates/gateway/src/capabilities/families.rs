//! What well-known model families can do, for the models the price list does not describe
//! (it gives context windows only). Patterns are matched against the lower-cased upstream id
//! with `*` for any run; the first match wins, so specific patterns come first. A family left
//! out is simply unknown: nothing is kept from it.

use switchboard_api::capabilities::Capabilities;

const fn caps(tools: bool, vision: bool, reasoning: bool) -> Capabilities {
    Capabilities {
        context_window: None,
        max_output: None,
        tools: Some(tools),
        vision: Some(vision),
        reasoning: Some(reasoning),
        structured_output: None,
    }
}

/// (pattern, what the family can do).
pub const FAMILIES: &[(&str, Capabilities)] = &[
    // Embeddings, speech and image models answer no chat at all.
    ("*embedding*", caps(false, false, false)),
    ("*whisper*", caps(false, false, false)),
    ("*tts*", caps(false, false, false)),
    ("dall-e*", caps(false, false, false)),
    ("gpt-3.5*", caps(true, false, false)),
    ("gpt-4o*", caps(true, true, false)),
    ("gpt-4.1*", caps(true, true, false)),
    ("gpt-4-turbo*", caps(true, true, false)),
    ("gpt-5*", caps(true, true, true)),
    ("o1*", caps(true, true, true)),
    ("o3*", caps(true, true, true)),
    ("o4*", caps(true, true, true)),
    ("claude-3-7*", caps(true, true, true)),
    ("claude-3*", caps(true, true, false)),
    ("claude-*-4*", caps(true, true, true)),
    ("claude-opus-4*", caps(true, true, true)),
    ("claude-sonnet-4*", caps(true, true, true)),
    ("claude-haiku-4*", caps(true, true, true)),
    ("gemini-2.5*", caps(true, true, true)),
    ("gemini-3*", caps(true, true, true)),
    ("gemini-*", caps(true, true, false)),
    ("deepseek-reasoner*", caps(true, false, true)),
    ("deepseek-r1*", caps(false, false, true)),
    ("deepseek-chat*", caps(true, false, false)),
    ("deepseek-v3*", caps(true, false, false)),
];

/// The family `model` (lower case) belongs to, if it is a known one.
pub fn of(model: &str) -> Option<Capabilities> {
    FAMILIES
        .iter()
        .find(|(pattern, _)| crate::catalog::wildcard_match(pattern, model))
        .map(|(_, c)| *c)
}
