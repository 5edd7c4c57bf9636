//! Has a stream started? Each protocol's first event that carries content (text, a tool call,
//! a finish reason, or the end), or its error event: until then a stream can still be failed
//! over, so the gateway holds its preamble.

use crate::protocol::Api;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    NeedMore,
    Content,
    Error(String),
}

/// Looks through the complete SSE events in `buf` for the first one that carries content (text,
/// a tool call, a finish reason, or the end), or an error event.
pub(crate) fn first_content(api: Api, buf: &[u8]) -> Scan {
    let text = String::from_utf8_lossy(buf);
    let text = text.replace("\r\n", "\n");
    let Some(end) = text.rfind("\n\n") else {
        return Scan::NeedMore;
    };
    for event in text[..end].split("\n\n") {
        for line in event.lines() {
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                return Scan::Content;
            }
            let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
                // Not JSON we understand: do not hold the stream back on a guess.
                return Scan::Content;
            };
            let scan = match api {
                Api::Messages => anthropic_event(&v),
                Api::Responses => responses_event(&v),
                Api::Gemini => gemini_chunk(&v),
                _ => chat_chunk(&v),
            };
            if scan != Scan::NeedMore {
                return scan;
            }
        }
    }
    Scan::NeedMore
}

fn error_message(e: &serde_json::Value) -> Scan {
    Scan::Error(
        e.get("message")
            .and_then(|m| m.as_str())
            .map_or_else(|| e.to_string(), str::to_owned),
    )
}

fn chat_chunk(v: &serde_json::Value) -> Scan {
    if let Some(e) = v.get("error") {
        return error_message(e);
    }
    let choices = v.get("choices").and_then(|c| c.as_array());
    let has_content = choices.is_some_and(|cs| {
        cs.iter().any(|c| {
            let d = c.get("delta");
            d.and_then(|d| d.get("content"))
                .and_then(|s| s.as_str())
                .is_some_and(|s| !s.is_empty())
                || d.and_then(|d| d.get("tool_calls"))
                    .is_some_and(|t| !t.is_null())
                || ["reasoning_content", "reasoning"].iter().any(|k| {
                    d.and_then(|d| d.get(*k))
                        .and_then(|s| s.as_str())
                        .is_some_and(|s| !s.is_empty())
                })
                || c.get("finish_reason").is_some_and(|f| !f.is_null())
        })
    });
    // A chunk with no choices at all (usage only) also counts: nothing to hold for.
    if has_content || choices.is_none_or(|c| c.is_empty()) {
        Scan::Content
    } else {
        Scan::NeedMore
    }
}

fn anthropic_event(v: &serde_json::Value) -> Scan {
    match v.get("type").and_then(|t| t.as_str()) {
        Some("error") => error_message(v.get("error").unwrap_or(v)),
        Some("message_start" | "ping") => Scan::NeedMore,
        Some("content_block_start") => {
            let b = v.get("content_block");
            let kind = b.and_then(|b| b.get("type")).and_then(|t| t.as_str());
            let text = b
                .and_then(|b| b.get("text"))
                .and_then(|t| t.as_str())
                .unwrap_or("");
            if matches!(kind, Some("text" | "thinking")) && text.is_empty() {
                Scan::NeedMore
            } else {
                Scan::Content
            }
        }
        _ => Scan::Content,
    }
}

fn responses_event(v: &serde_json::Value) -> Scan {
    match v.get("type").and_then(|t| t.as_str()) {
        Some("error") => error_message(v),
        Some("response.failed") => error_message(
            v.pointer("/response/error")
                .unwrap_or(&serde_json::Value::Null),
        ),
        Some(
            "response.created"
            | "response.in_progress"
            | "response.queued"
            | "response.content_part.added"
            | "response.reasoning_summary_part.added",
        ) => Scan::NeedMore,
        // A message item opens before its text; reasoning and calls are the model at work.
        Some("response.output_item.added")
            if v.pointer("/item/type").and_then(|t| t.as_str()) == Some("message") =>
        {
            Scan::NeedMore
        }
        _ => Scan::Content,
    }
}

fn gemini_chunk(v: &serde_json::Value) -> Scan {
    match v.get("error") {
        Some(e) => error_message(e),
        None => Scan::Content,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preamble_is_held_until_content() {
        let role = br#"data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

"#;
        assert_eq!(first_content(Api::Chat, role), Scan::NeedMore);
        assert_eq!(
            first_content(
                Api::Chat,
                b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi"
            ),
            Scan::NeedMore
        );
        let mut both = role.to_vec();
        both.extend_from_slice(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n");
        assert_eq!(first_content(Api::Chat, &both), Scan::Content);
        assert_eq!(first_content(Api::Chat, b"data: [DONE]\n\n"), Scan::Content);
        assert_eq!(
            first_content(
                Api::Chat,
                b"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0}]}}]}\r\n\r\n"
            ),
            Scan::Content
        );
        assert_eq!(
            first_content(
                Api::Chat,
                b"data: {\"error\":{\"message\":\"overloaded\"}}\n\n"
            ),
            Scan::Error("overloaded".into())
        );
    }
}
