//! Model lists: where each protocol lists its models, and what its answer looks like.

use serde_json::Value;

use crate::config::Protocol;

/// The most models taken from one list, and the longest id kept.
pub(crate) const MAX_MODELS: usize = 20_000;
const MAX_ID: usize = 256;

/// The list's URL under a provider's base URL (as large a page as each protocol allows).
pub(crate) fn list_url(protocol: Protocol, base_url: &str) -> String {
    match protocol {
        Protocol::OpenAi => format!("{base_url}/v1/models"),
        Protocol::Anthropic => format!("{base_url}/v1/models?limit=1000"),
        Protocol::Gemini => format!("{base_url}/v1beta/models?pageSize=1000"),
    }
}

/// The ids in a list answer; ids no client could type, or that would forge a log line, are left
/// out.
pub(crate) fn parse_list(protocol: Protocol, body: &Value) -> Result<Vec<String>, String> {
    let (list, field) = match protocol {
        Protocol::Gemini => (body.get("models"), "name"),
        _ => (body.get("data"), "id"),
    };
    let list = list
        .and_then(Value::as_array)
        .ok_or_else(|| "the model list has no data array".to_owned())?;
    Ok(list
        .iter()
        .filter_map(|m| m.get(field).and_then(Value::as_str))
        .map(|id| id.strip_prefix("models/").unwrap_or(id))
        // An id no client could type, or one that would forge a log line, is no model.
        .filter(|id| !id.is_empty() && id.len() <= MAX_ID && !id.chars().any(char::is_control))
        .take(MAX_MODELS)
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_protocols_list() {
        let openai = json!({"object": "list", "data": [{"id": "gpt-4o"}, {"id": "o3"}]});
        assert_eq!(
            parse_list(Protocol::OpenAi, &openai).unwrap(),
            ["gpt-4o", "o3"]
        );
        let anthropic = json!({"data": [{"type": "model", "id": "claude-opus-4-5-20251101"}], "has_more": false});
        assert_eq!(
            parse_list(Protocol::Anthropic, &anthropic).unwrap(),
            ["claude-opus-4-5-20251101"]
        );
        let gemini = json!({"models": [{"name": "models/gemini-2.5-pro"}]});
        assert_eq!(
            parse_list(Protocol::Gemini, &gemini).unwrap(),
            ["gemini-2.5-pro"]
        );
        assert!(parse_list(Protocol::OpenAi, &json!({"x": 1})).is_err());
        let odd =
            json!({"data": [{"id": "a\nb"}, {"id": ""}, {"id": "x".repeat(300)}, {"id": "ok"}]});
        assert_eq!(parse_list(Protocol::OpenAi, &odd).unwrap(), ["ok"]);
        let many: Vec<Value> = (0..MAX_MODELS + 5)
            .map(|i| json!({"id": format!("m{i}")}))
            .collect();
        assert_eq!(
            parse_list(Protocol::OpenAi, &json!({"data": many}))
                .unwrap()
                .len(),
            MAX_MODELS
        );
    }
}
