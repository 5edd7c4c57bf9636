//! The mock upstream's own answers in each protocol it speaks: OpenAI chat, Responses,
//! embeddings and images, Anthropic messages, Gemini generateContent. Like a real model it
//! calls the first declared tool when the conversation ends with a user's question, and
//! answers with the tool's result once it has one. It checks what a real provider checks:
//! that every tool result answers a call made earlier in the history (by id, or for Gemini by
//! name), else it answers 400 as a provider would.

use serde_json::{Value, json};

/// The tool call the mock makes: `{"city":"Paris"}` to the first tool.
pub const TOOL_ARGS: &str = r#"{"city":"Paris"}"#;
/// What the mock says after a tool result: this prefix and the result's text.
pub const AFTER_TOOL: &str = "The tool said: ";
pub const HELLO: [&str; 3] = ["Hello", ", ", "world"];

/// An answer: status, content type and body chunks (sent as they are, one write each).
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub chunks: Vec<String>,
}

fn whole(status: u16, body: Value) -> Answer {
    Answer {
        status,
        content_type: "application/json",
        chunks: vec![body.to_string()],
    }
}

fn events(chunks: Vec<String>) -> Answer {
    Answer {
        status: 200,
        content_type: "text/event-stream",
        chunks,
    }
}

/// What the mock decides to do for a chat: call a tool, or say something.
enum Turn {
    Call { name: String },
    Say(String),
}

fn bad(message: String) -> Answer {
    whole(
        400,
        json!({"error": {"message": message, "type": "invalid_request_error"}}),
    )
}

/// Splits tool arguments into pieces of three characters, as models stream them.
fn pieces(s: &str) -> Vec<String> {
    s.chars()
        .collect::<Vec<_>>()
        .chunks(3)
        .map(|c| c.iter().collect())
        .collect()
}

pub fn answer(path: &str, query: &str, req: &Value) -> Answer {
    if path.ends_with("/chat/completions") {
        return openai_chat(req);
    }
    if path.ends_with("/messages/count_tokens") {
        return whole(200, json!({"input_tokens": 42}));
    }
    if path.ends_with("/messages") {
        return anthropic(req);
    }
    if path.ends_with("/responses") {
        return responses(req);
    }
    if path.ends_with("/embeddings") {
        return whole(
            200,
            json!({"object": "list", "model": req["model"],
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
                "usage": {"prompt_tokens": 2, "total_tokens": 2}}),
        );
    }
    if path.ends_with("/images/generations") {
        return whole(
            200,
            json!({"created": 1_700_000_000, "data": [{"url": "https://example.com/cat.png"}]}),
        );
    }
    if let Some(rest) = path.strip_prefix("/v1beta/models/") {
        let (model, action) = rest.rsplit_once(':').unwrap_or((rest, ""));
        return gemini(model, action == "streamGenerateContent", query, req);
    }
    whole(
        404,
        json!({"error": {"message": format!("mock: no route {path}")}}),
    )
}

fn openai_chat(req: &Value) -> Answer {
    let model = req["model"].as_str().unwrap_or("?");
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let mut calls: Vec<String> = Vec::new();
    for m in &messages {
        for c in m["tool_calls"].as_array().into_iter().flatten() {
            calls.push(c["id"].as_str().unwrap_or("").to_owned());
        }
        if m["role"] == "tool" {
            let id = m["tool_call_id"].as_str().unwrap_or("");
            if !calls.iter().any(|c| c == id) {
                return bad(format!("tool_call_id {id} answers no tool call"));
            }
        }
    }
    let turn = match messages.last() {
        Some(m) if m["role"] == "tool" => Turn::Say(format!(
            "{AFTER_TOOL}{}",
            m["content"].as_str().unwrap_or("")
        )),
        _ => match req["tools"][0]["function"]["name"].as_str() {
            Some(name) => Turn::Call {
                name: name.to_owned(),
            },
            None => Turn::Say(HELLO.concat()),
        },
    };
    let usage = json!({"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 3}});
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000,
                "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    if req["stream"] == true {
        let mut out = vec![chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )];
        let finish = match &turn {
            Turn::Call { name } => {
                out.push(chunk(
                    json!({"tool_calls": [{"index": 0, "id": "call_mock_1", "type": "function",
                        "function": {"name": name, "arguments": ""}}]}),
                    Value::Null,
                ));
                for p in pieces(TOOL_ARGS) {
                    out.push(chunk(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}),
                        Value::Null,
                    ));
                }
                "tool_calls"
            }
            Turn::Say(text) => {
                for p in split_words(text) {
                    out.push(chunk(json!({"content": p}), Value::Null));
                }
                "stop"
            }
        };
        out.push(chunk(json!({}), json!(finish)));
        if req["stream_options"]["include_usage"] == true {
            out.push(format!(
                "data: {}\n\n",
                json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk",
                    "created": 1_700_000_000, "model": model, "choices": [], "usage": usage})
            ));
        }
        out.push("data: [DONE]\n\n".into());
        return events(out);
    }
    let (message, finish) = match turn {
        Turn::Call { name } => (
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_mock_1",
                "type": "function", "function": {"name": name, "arguments": TOOL_ARGS}}]}),
            "tool_calls",
        ),
        Turn::Say(text) => (json!({"role": "assistant", "content": text}), "stop"),
    };
    whole(
        200,
        json!({"id": "chatcmpl-mock", "object": "chat.completion", "created": 1_700_000_000,
            "model": model, "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage}),
    )
}

/// Text in three pieces or so, as a stream would carry it.
fn split_words(text: &str) -> Vec<String> {
    if text == HELLO.concat() {
        return HELLO.iter().map(|s| (*s).to_owned()).collect();
    }
    let mid = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    vec![text[..mid].to_owned(), text[mid..].to_owned()]
}

fn anthropic(req: &Value) -> Answer {
    let model = req["model"].as_str().unwrap_or("?");
    if req["max_tokens"].as_u64().is_none() {
        return bad("max_tokens: Field required".into());
    }
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let mut calls: Vec<String> = Vec::new();
    let mut last_result: Option<String> = None;
    for m in &messages {
        last_result = None;
        for b in m["content"].as_array().into_iter().flatten() {
            match b["type"].as_str() {
                Some("tool_use") => calls.push(b["id"].as_str().unwrap_or("").to_owned()),
                Some("tool_result") => {
                    let id = b["tool_use_id"].as_str().unwrap_or("");
                    if !calls.iter().any(|c| c == id) {
                        return bad(format!("tool_use_id {id} answers no tool_use block"));
                    }
                    last_result = Some(match &b["content"] {
                        Value::String(s) => s.clone(),
                        other => other[0]["text"].as_str().unwrap_or("").to_owned(),
                    });
                }
                _ => {}
            }
        }
    }
    let turn = match last_result {
        Some(r) => Turn::Say(format!("{AFTER_TOOL}{r}")),
        None => match req["tools"][0]["name"].as_str() {
            Some(name) => Turn::Call {
                name: name.to_owned(),
            },
            None => Turn::Say(HELLO.concat()),
        },
    };
    let id = "msg_mock_1";
    if req["stream"] == true {
        let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
        let mut out = vec![
            ev(
                "message_start",
                json!({"type": "message_start", "message": {"id": id, "type": "message",
                    "role": "assistant", "content": [], "model": model, "stop_reason": null,
                    "stop_sequence": null, "usage": {"input_tokens": 8, "cache_read_input_tokens": 3,
                    "output_tokens": 1}}}),
            ),
            ev("ping", json!({"type": "ping"})),
        ];
        let stop = match &turn {
            Turn::Call { name } => {
                out.push(ev(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0, "content_block":
                        {"type": "tool_use", "id": "toolu_mock_1", "name": name, "input": {}}}),
                ));
                for p in pieces(TOOL_ARGS) {
                    out.push(ev(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": 0,
                            "delta": {"type": "input_json_delta", "partial_json": p}}),
                    ));
                }
                "tool_use"
            }
            Turn::Say(text) => {
                out.push(ev(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0,
                        "content_block": {"type": "text", "text": ""}}),
                ));
                for p in split_words(text) {
                    out.push(ev(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": 0,
                            "delta": {"type": "text_delta", "text": p}}),
                    ));
                }
                "end_turn"
            }
        };
        out.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ));
        out.push(ev(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
                "usage": {"output_tokens": 7}}),
        ));
        out.push(ev("message_stop", json!({"type": "message_stop"})));
        return events(out);
    }
    let (content, stop) = match turn {
        Turn::Call { name } => (
            json!([{"type": "tool_use", "id": "toolu_mock_1", "name": name,
                "input": serde_json::from_str::<Value>(TOOL_ARGS).unwrap_or_default()}]),
            "tool_use",
        ),
        Turn::Say(text) => (json!([{"type": "text", "text": text}]), "end_turn"),
    };
    whole(
        200,
        json!({"id": id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": {"input_tokens": 8, "cache_read_input_tokens": 3, "output_tokens": 7}}),
    )
}

fn gemini(model: &str, stream: bool, query: &str, req: &Value) -> Answer {
    let contents = req["contents"].as_array().cloned().unwrap_or_default();
    let mut calls: Vec<(String, String)> = Vec::new();
    let mut last_result: Option<String> = None;
    for c in &contents {
        last_result = None;
        for p in c["parts"].as_array().into_iter().flatten() {
            if let Some(f) = p.get("functionCall") {
                calls.push((
                    f["name"].as_str().unwrap_or("").to_owned(),
                    f["id"].as_str().unwrap_or("").to_owned(),
                ));
            }
            if let Some(r) = p.get("functionResponse") {
                let name = r["name"].as_str().unwrap_or("");
                let id = r["id"].as_str().unwrap_or("");
                if !calls
                    .iter()
                    .any(|(n, i)| n == name && (id.is_empty() || i.is_empty() || i == id))
                {
                    return whole(
                        400,
                        json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
                            "message": format!("functionResponse {name} ({id}) answers no functionCall")}}),
                    );
                }
                last_result = Some(match &r["response"]["output"] {
                    Value::String(s) => s.clone(),
                    _ => r["response"].to_string(),
                });
            }
        }
    }
    let turn = match last_result {
        Some(r) => Turn::Say(format!("{AFTER_TOOL}{r}")),
        None => match req["tools"][0]["functionDeclarations"][0]["name"].as_str() {
            Some(name) => Turn::Call {
                name: name.to_owned(),
            },
            None => Turn::Say(HELLO.concat()),
        },
    };
    let usage = json!({"promptTokenCount": 11, "candidatesTokenCount": 7, "totalTokenCount": 18,
        "cachedContentTokenCount": 3});
    let chunk = |parts: Value, finish: Option<&str>, usage: Option<&Value>| {
        let mut cand = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if let Some(f) = finish {
            cand["finishReason"] = f.into();
        }
        let mut v =
            json!({"candidates": [cand], "modelVersion": model, "responseId": "gemini-mock-1"});
        if let Some(u) = usage {
            v["usageMetadata"] = u.clone();
        }
        v
    };
    let call_part = |name: &str| {
        json!({"functionCall": {"name": name,
            "args": serde_json::from_str::<Value>(TOOL_ARGS).unwrap_or_default()}})
    };
    if stream {
        let pieces: Vec<Value> = match &turn {
            Turn::Call { name } => vec![
                chunk(json!([call_part(name)]), None, None),
                chunk(json!([{"text": ""}]), Some("STOP"), Some(&usage)),
            ],
            Turn::Say(text) => {
                let words = split_words(text);
                let n = words.len();
                words
                    .into_iter()
                    .enumerate()
                    .map(|(i, w)| {
                        let last = i + 1 == n;
                        chunk(
                            json!([{"text": w}]),
                            last.then_some("STOP"),
                            last.then_some(&usage),
                        )
                    })
                    .collect()
            }
        };
        if query.split('&').any(|q| q == "alt=sse") {
            return events(
                pieces
                    .iter()
                    .map(|p| format!("data: {p}\r\n\r\n"))
                    .collect(),
            );
        }
        let body = Value::Array(pieces).to_string();
        return whole(200, serde_json::from_str(&body).unwrap_or_default());
    }
    let parts = match turn {
        Turn::Call { name } => json!([call_part(&name)]),
        Turn::Say(text) => json!([{"text": text}]),
    };
    whole(200, chunk(parts, Some("STOP"), Some(&usage)))
}

fn responses(req: &Value) -> Answer {
    let model = req["model"].as_str().unwrap_or("?");
    let text = HELLO.concat();
    let item = json!({"type": "message", "id": "msg_mock", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]});
    let response = json!({"id": "resp_mock", "object": "response", "created_at": 1_700_000_000,
        "status": "completed", "model": model, "output": [item],
        "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}});
    if req["stream"] == true {
        let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
        let mut out = vec![ev(
            "response.created",
            json!({"type": "response.created", "sequence_number": 0, "response": response}),
        )];
        for (i, w) in HELLO.iter().enumerate() {
            out.push(ev(
                "response.output_text.delta",
                json!({"type": "response.output_text.delta", "sequence_number": i + 1,
                    "item_id": "msg_mock", "output_index": 0, "content_index": 0, "delta": w}),
            ));
        }
        out.push(ev(
            "response.completed",
            json!({"type": "response.completed", "sequence_number": 4, "response": response}),
        ));
        return events(out);
    }
    whole(200, response)
}
