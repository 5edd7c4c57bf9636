//! Wire formats of the protocols the gateway speaks, and conversion between them through a
//! neutral form (`ir`). Each protocol module knows only its own wire form and `ir`.

pub mod anthropic;
pub mod chat;
pub mod convert;
pub mod errors;
pub(crate) mod first_content;
pub mod gemini;
pub mod ir;
pub mod json;
pub(crate) mod models;
pub mod openai;
pub mod responses;
pub mod sequence;
pub mod sse;
pub mod usage;

use serde_json::Value;

/// A string field, or "" when absent: ids and names that a lenient reader tolerates missing.
pub(crate) fn obj_str<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Text content given either as a string or as an array of text parts (`{"type":"text",
/// "text"}`, also Responses' `input_text`/`output_text`); other parts are skipped. Parts are
/// separate paragraphs (Claude Code's system prompt is several blocks): joined by a blank line.
pub(crate) fn str_or_parts(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| match p {
                    Value::String(s) => Some(s.as_str()),
                    _ => p.get("text").and_then(Value::as_str),
                })
                .collect::<Vec<_>>()
                .join("\n\n"),
        ),
        _ => None,
    }
}

/// A string, or an array of strings (other items skipped), as a list: `stop` takes both.
pub(crate) fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// A float as JSON, keeping integers integral (`1` rather than `1.0`) so that a value passed
/// through reads as the client wrote it.
pub(crate) fn num(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

pub(crate) fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The API a client called (or an upstream is called with): the four chat protocols, and
/// OpenAI's other endpoints, which are carried natively only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Chat,
    Responses,
    Messages,
    Gemini,
    Embeddings,
    Images,
    CountTokens,
}

impl Api {
    /// The provider protocol that serves this API natively.
    pub fn family(self) -> crate::config::Protocol {
        use crate::config::Protocol;
        match self {
            Self::Chat | Self::Responses | Self::Embeddings | Self::Images => Protocol::OpenAi,
            Self::Messages | Self::CountTokens => Protocol::Anthropic,
            Self::Gemini => Protocol::Gemini,
        }
    }

    /// Whether a provider of another protocol can serve it through conversion.
    pub fn convertible(self) -> bool {
        matches!(
            self,
            Self::Chat | Self::Responses | Self::Messages | Self::Gemini
        )
    }

    /// The API a converted request is sent to, for a provider protocol.
    pub fn chat_of(p: crate::config::Protocol) -> Self {
        use crate::config::Protocol;
        match p {
            Protocol::OpenAi => Self::Chat,
            Protocol::Anthropic => Self::Messages,
            Protocol::Gemini => Self::Gemini,
        }
    }

    /// The shape errors take for a client of this API.
    pub fn error_shape(self) -> ErrorShape {
        match self {
            Self::Chat | Self::Embeddings | Self::Images => ErrorShape::OpenAi,
            Self::Responses => ErrorShape::Responses,
            Self::Messages | Self::CountTokens => ErrorShape::Anthropic,
            Self::Gemini => ErrorShape::Gemini,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorShape {
    OpenAi,
    Responses,
    Anthropic,
    Gemini,
}
