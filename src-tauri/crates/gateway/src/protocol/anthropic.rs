//! Anthropic messages in the neutral form: requests both ways, replies both ways, and streams
//! both ways.

use std::borrow::Cow;

use bytes::BytesMut;
use serde_json::{Map, Value, json};

use super::ir::{
    self, ChatRequest, Effort, Event, Finish, Image, Message, Notes, Part, Reply, ResponseFormat,
    Role, Tool, ToolCall, ToolChoice, ToolResult, Unsupported, Usage,
};
use super::sse::{self, Frame};
use super::{num, obj_str, str_or_parts, string_list};

/// Anthropic requires `max_tokens`; this is what a converted request without one gets.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;
pub const DEFAULT_VERSION: &str = "2023-06-01";
const TARGET: &str = "Anthropic messages";

const QUIET: &[&str] = &[
    "model",
    "metadata",
    // Claude Code's: how Anthropic's server trims old thinking; nothing to carry elsewhere.
    "context_management",
    "service_tier",
    "container",
    "mcp_servers",
];

pub fn decode_request(body: &Value, notes: &mut Notes) -> Result<ChatRequest, Unsupported> {
    let obj = body
        .as_object()
        .ok_or_else(|| Unsupported::new("body", "expected a JSON object"))?;
    let mut req = ChatRequest::default();
    let mut names: Vec<(String, String)> = Vec::new();
    let mut effort: Option<Effort> = None;
    for (key, v) in obj {
        match key.as_str() {
            "system" => {
                if let Some(s) = str_or_parts(v).filter(|s| !s.is_empty()) {
                    req.system.push(s);
                }
            }
            "messages" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| Unsupported::new("messages", "expected an array"))?;
                for (i, m) in list.iter().enumerate() {
                    let role = match m.get("role").and_then(Value::as_str) {
                        Some("assistant") => Role::Assistant,
                        Some("user") | None => Role::User,
                        // The mid-conversation-system beta: a system message in place.
                        Some("system") => Role::System,
                        Some(other) => {
                            return Err(Unsupported::new(
                                format!("messages[{i}].role"),
                                format!("unknown role '{other}'"),
                            ));
                        }
                    };
                    let parts = decode_content(i, m.get("content"), &mut names, notes)?;
                    req.messages.push(Message { role, parts });
                }
            }
            "tools" => {
                for (i, t) in v.as_array().into_iter().flatten().enumerate() {
                    match t.get("type").and_then(Value::as_str) {
                        None | Some("custom") => req.tools.push(Tool {
                            name: obj_str(t, "name").to_owned(),
                            description: t
                                .get("description")
                                .and_then(Value::as_str)
                                .map(str::to_owned),
                            parameters: t
                                .get("input_schema")
                                .cloned()
                                .unwrap_or_else(|| json!({"type": "object"})),
                        }),
                        // Server tools (`web_search_20250305`) and Anthropic-defined ones: no
                        // other provider has them, so the turn goes on without.
                        Some(other) => req
                            .dropped_tools
                            .push(format!("tools[{i}]: {} ({other})", obj_str(t, "name"))),
                    }
                }
            }
            "tool_choice" => {
                req.tool_choice = match v.get("type").and_then(Value::as_str) {
                    Some("auto") => Some(ToolChoice::Auto),
                    Some("any") => Some(ToolChoice::Required),
                    Some("none") => Some(ToolChoice::None),
                    Some("tool") => Some(ToolChoice::Named(obj_str(v, "name").to_owned())),
                    _ => None,
                };
                if v.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
                    req.parallel_tool_calls = Some(false);
                }
            }
            "max_tokens" => req.max_tokens = v.as_u64(),
            "temperature" => req.temperature = v.as_f64(),
            "top_p" => req.top_p = v.as_f64(),
            "top_k" => req.top_k = v.as_u64(),
            "stop_sequences" => {
                req.stop = string_list(v);
            }
            "stream" => req.stream = v.as_bool().unwrap_or(false),
            "thinking" => {
                req.reasoning = match v.get("type").and_then(Value::as_str) {
                    Some("enabled") => Some(Effort::from_budget(
                        v.get("budget_tokens")
                            .and_then(Value::as_i64)
                            .unwrap_or(4096),
                    )),
                    // The model decides how much to think; `output_config.effort` says how hard.
                    Some("adaptive") => Some(Effort::Medium),
                    Some("disabled") => Some(Effort::Off),
                    _ => None,
                };
            }
            "output_config" => {
                effort = v
                    .get("effort")
                    .and_then(Value::as_str)
                    .and_then(|e| Effort::parse(if e == "max" { "high" } else { e }));
                if let Some(f) = v.get("format") {
                    req.response_format = decode_output_format(f);
                }
            }
            // The structured-outputs beta's earlier name for `output_config.format`.
            "output_format" => req.response_format = decode_output_format(v),
            k if QUIET.contains(&k) => {}
            k => notes.dropped(k, "the target protocol"),
        }
    }
    // An effort applies to thinking that is on (adaptive or budgeted), never turns it on.
    if let (Some(e), Some(r)) = (effort, req.reasoning.as_mut())
        && *r != Effort::Off
    {
        *r = e;
    }
    if let Some(ToolChoice::Named(n)) = &req.tool_choice
        && let Some(d) = req
            .dropped_tools
            .iter()
            .find(|d| d.contains(&format!(": {n} (")))
    {
        return Err(Unsupported::new(
            "tool_choice",
            format!("it forces {d}, a tool only Anthropic runs"),
        ));
    }
    for d in &req.dropped_tools {
        notes
            .0
            .push(format!("{d} runs on Anthropic's side only; dropped"));
    }
    Ok(req)
}

/// `{"type": "json_schema", "schema": {...}}`: structured output.
fn decode_output_format(f: &Value) -> Option<ResponseFormat> {
    match f.get("type").and_then(Value::as_str)? {
        "json_schema" => Some(ResponseFormat::Schema {
            name: f
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("response")
                .to_owned(),
            schema: f.get("schema").cloned().unwrap_or_else(|| json!({})),
            strict: None,
        }),
        _ => None,
    }
}

fn decode_content(
    i: usize,
    content: Option<&Value>,
    names: &mut Vec<(String, String)>,
    notes: &mut Notes,
) -> Result<Vec<Part>, Unsupported> {
    let blocks = match content {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(b)) => b,
        Some(_) => {
            return Err(Unsupported::new(
                format!("messages[{i}].content"),
                "expected a string or an array of blocks",
            ));
        }
    };
    let mut parts = Vec::with_capacity(blocks.len());
    for (j, b) in blocks.iter().enumerate() {
        match b.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => parts.push(Part::Text(obj_str(b, "text").to_owned())),
            "image" => {
                let src = b.get("source").unwrap_or(&Value::Null);
                let img = match src.get("type").and_then(Value::as_str) {
                    Some("base64") => Image::Base64 {
                        media_type: obj_str(src, "media_type").to_owned(),
                        data: obj_str(src, "data").to_owned(),
                    },
                    Some("url") => Image::Url(obj_str(src, "url").to_owned()),
                    _ => {
                        return Err(Unsupported::new(
                            format!("messages[{i}].content[{j}].source"),
                            "only base64 and url images can be converted",
                        ));
                    }
                };
                parts.push(Part::Image(img));
            }
            "tool_use" => {
                let call = ToolCall {
                    id: obj_str(b, "id").to_owned(),
                    name: obj_str(b, "name").to_owned(),
                    arguments: b
                        .get("input")
                        .map_or_else(|| "{}".to_owned(), Value::to_string),
                };
                names.push((call.id.clone(), call.name.clone()));
                parts.push(Part::ToolCall(call));
            }
            "tool_result" => {
                let id = obj_str(b, "tool_use_id").to_owned();
                let name = names
                    .iter()
                    .rev()
                    .find(|(cid, _)| *cid == id)
                    .map(|(_, n)| n.clone());
                if let Some(Value::Array(inner)) = b.get("content")
                    && inner
                        .iter()
                        .any(|x| x.get("type").and_then(Value::as_str) != Some("text"))
                {
                    notes.0.push(format!(
                        "messages[{i}].content[{j}]: only the text of a tool result is converted"
                    ));
                }
                parts.push(Part::ToolResult(ToolResult {
                    id,
                    name,
                    content: b.get("content").and_then(str_or_parts).unwrap_or_default(),
                    is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
                }));
            }
            "thinking" => parts.push(Part::Reasoning {
                text: obj_str(b, "thinking").to_owned(),
                signature: b
                    .get("signature")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            }),
            "redacted_thinking" => notes.0.push(format!(
                "messages[{i}].content[{j}]: redacted thinking only goes back to Anthropic; dropped"
            )),
            other => {
                return Err(Unsupported::new(
                    format!("messages[{i}].content[{j}].type"),
                    format!("'{other}' blocks can only go to Anthropic"),
                ));
            }
        }
    }
    Ok(parts)
}

/// The tool a JSON answer is asked for by, where the model has no structured output: its input
/// is the answer, given back to the client as text.
pub const JSON_TOOL: &str = "switchboard_json_answer";

/// Structured output (`output_config.format`) came with Opus 4.1, Sonnet 4.5 and Haiku 4.5;
/// earlier Claude models and other models behind Anthropic-compatible relays refuse it.
fn has_structured_output(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    for (family, since) in [("opus-", 1), ("sonnet-", 5), ("haiku-", 5)] {
        if let Some(at) = m.find(family) {
            let mut nums = m[at + family.len()..]
                .split(|c: char| !c.is_ascii_digit())
                .map(|n| n.parse::<u32>().ok());
            // Versions are one or two digits; a date (20250514) is none, and older names put
            // the version before the family (claude-3-5-haiku-20241022).
            return match (nums.next().flatten(), nums.next().flatten()) {
                (Some(major), _) if (5..100).contains(&major) => true,
                (Some(4), Some(minor)) if minor < 100 => minor >= since,
                _ => false,
            };
        }
    }
    false
}

/// The schema a forced JSON tool takes, when the answer must be JSON but the model cannot be
/// told so directly (no structured output, or JSON mode without a schema). Not when the client
/// has tools of its own, whose choice it keeps.
fn json_tool_schema(req: &ChatRequest, model: &str) -> Option<Value> {
    if !req.tools.is_empty() {
        return None;
    }
    match &req.response_format {
        Some(ResponseFormat::Schema { schema, .. })
            if !has_structured_output(model)
                && schema.get("type").and_then(Value::as_str) == Some("object") =>
        {
            Some(schema.clone())
        }
        Some(ResponseFormat::Json) => Some(json!({"type": "object"})),
        _ => None,
    }
}

pub fn encode_request(req: &ChatRequest, model: &str, notes: &mut Notes) -> Value {
    let mut out = Map::new();
    let json_tool = json_tool_schema(req, model);
    out.insert("model".into(), model.into());
    let mut max_tokens = req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let (system, messages) = req.folded_system();
    if !system.is_empty() {
        out.insert("system".into(), system.join("\n\n").into());
    }
    let messages: Vec<Value> = ir::merge_same_roles(messages)
        .iter()
        .filter_map(|m| {
            let blocks: Vec<Value> = m.parts.iter().filter_map(encode_part).collect();
            (!blocks.is_empty()).then(|| {
                json!({
                    "role": if m.role == Role::User { "user" } else { "assistant" },
                    "content": blocks,
                })
            })
        })
        .collect();
    out.insert("messages".into(), Value::Array(messages));
    let mut thinking = req.reasoning.filter(|e| *e != Effort::Off);
    if thinking.is_some() && (json_tool.is_some() || !thinking_allowed(req)) {
        // Anthropic refuses thinking when a tool is forced, or when an earlier tool call in the
        // history lacks the signed thinking it was made with (calls made elsewhere have none).
        notes.0.push(
            "thinking dropped: Anthropic needs signed thinking before each earlier tool call, and no forced tool".into(),
        );
        thinking = None;
    }
    if let Some(effort) = thinking {
        let budget = effort.budget();
        if max_tokens <= budget {
            max_tokens = budget + DEFAULT_MAX_TOKENS;
        }
        out.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
    out.insert("max_tokens".into(), max_tokens.into());
    if let Some(t) = req.temperature {
        if thinking.is_some() {
            notes.0.push(
                "'temperature' dropped: Anthropic allows no temperature with thinking on".into(),
            );
        } else {
            out.insert("temperature".into(), num(t));
        }
    }
    if let Some(p) = req.top_p {
        out.insert("top_p".into(), num(p));
    }
    if let Some(k) = req.top_k {
        out.insert("top_k".into(), k.into());
    }
    if !req.stop.is_empty() {
        out.insert("stop_sequences".into(), json!(req.stop));
    }
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| t.declaration("input_schema"))
            .collect();
        out.insert("tools".into(), Value::Array(tools));
    }
    let mut choice = req.tool_choice.as_ref().map(|c| match c {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::None => json!({"type": "none"}),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::Named(n) => json!({"type": "tool", "name": n}),
    });
    if req.parallel_tool_calls == Some(false) && !req.tools.is_empty() {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        c["disable_parallel_tool_use"] = true.into();
    }
    if let Some(c) = choice {
        out.insert("tool_choice".into(), c);
    }
    match (&req.response_format, json_tool) {
        (_, Some(schema)) => {
            out.insert(
                "tools".into(),
                json!([{"name": JSON_TOOL, "input_schema": schema,
                    "description": "Give your whole answer as this tool's input."}]),
            );
            out.insert(
                "tool_choice".into(),
                json!({"type": "tool", "name": JSON_TOOL}),
            );
        }
        // Anthropic's structured output: the reply's text is JSON of that schema.
        (Some(ResponseFormat::Schema { schema, .. }), None) if has_structured_output(model) => {
            out.insert(
                "output_config".into(),
                json!({"format": {"type": "json_schema", "schema": schema}}),
            );
        }
        // No structured output, and no forced tool (the client's own tools, or a schema that
        // is not an object): the model would refuse the field.
        (Some(ResponseFormat::Schema { .. }), None) => {
            notes.dropped(
                "the JSON schema (this model has no structured output)",
                TARGET,
            );
        }
        (Some(ResponseFormat::Json), None) => {
            notes.dropped("response_format json_object (with tools)", TARGET);
        }
        (None, None) => {}
    }
    if req.stream {
        out.insert("stream".into(), true.into());
    }
    Value::Object(out)
}

fn thinking_allowed(req: &ChatRequest) -> bool {
    if matches!(
        req.tool_choice,
        Some(ToolChoice::Required | ToolChoice::Named(_))
    ) {
        return false;
    }
    req.messages
        .iter()
        .filter(|m| m.role == Role::Assistant)
        .filter(|m| m.parts.iter().any(|p| matches!(p, Part::ToolCall(_))))
        .all(|m| {
            m.parts.iter().any(|p| {
                matches!(
                    p,
                    Part::Reasoning {
                        signature: Some(_),
                        ..
                    }
                )
            })
        })
}

/// Anthropic wants tool ids of `[a-zA-Z0-9_-]`; some providers make others (`functions.x:0`).
/// The same mapping on calls and results keeps them paired.
fn tool_id(id: &str) -> Cow<'_, str> {
    if id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !id.is_empty()
    {
        Cow::Borrowed(id)
    } else {
        let clean: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Cow::Owned(format!("toolu_{clean}"))
    }
}

fn encode_part(p: &Part) -> Option<Value> {
    Some(match p {
        Part::Text(t) if t.is_empty() => return None,
        Part::Text(t) => json!({"type": "text", "text": t}),
        Part::Image(Image::Base64 { media_type, data }) => json!({"type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data}}),
        Part::Image(Image::Url(url)) => {
            json!({"type": "image", "source": {"type": "url", "url": url}})
        }
        // Anthropic checks the signature; thinking from elsewhere has none and would be refused.
        Part::Reasoning {
            text,
            signature: Some(sig),
        } => json!({"type": "thinking", "thinking": text, "signature": sig}),
        Part::Reasoning { .. } => return None,
        Part::ToolCall(c) => json!({"type": "tool_use", "id": tool_id(&c.id), "name": c.name,
            "input": ir::arguments_object(&c.arguments)}),
        Part::ToolResult(r) => {
            let mut o =
                json!({"type": "tool_result", "tool_use_id": tool_id(&r.id), "content": r.content});
            if r.is_error {
                o["is_error"] = true.into();
            }
            o
        }
    })
}

fn finish_str(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolCalls => "tool_use",
        Finish::ContentFilter => "refusal",
    }
}

fn finish_of(s: &str) -> Finish {
    match s {
        "max_tokens" | "model_context_window_exceeded" => Finish::Length,
        "tool_use" => Finish::ToolCalls,
        "refusal" => Finish::ContentFilter,
        _ => Finish::Stop,
    }
}

fn decode_usage(u: &Value) -> Usage {
    let get = |k: &str| u.get(k).and_then(Value::as_u64);
    let cached = get("cache_read_input_tokens");
    let input = get("input_tokens")
        .map(|i| i + cached.unwrap_or(0) + get("cache_creation_input_tokens").unwrap_or(0));
    Usage {
        input,
        output: get("output_tokens"),
        cached,
        reasoning: None,
    }
}

fn encode_usage(u: &Usage) -> Value {
    let cached = u.cached.unwrap_or(0);
    let mut v = json!({
        "input_tokens": u.input.unwrap_or(0).saturating_sub(cached),
        "output_tokens": u.output.unwrap_or(0),
    });
    if let Some(c) = u.cached {
        v["cache_read_input_tokens"] = c.into();
    }
    v
}

pub fn decode_reply(body: &Value) -> Reply {
    let mut parts = Vec::new();
    let mut json_answer = false;
    for b in body
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => parts.push(Part::Text(obj_str(b, "text").to_owned())),
            Some("thinking") => parts.push(Part::Reasoning {
                text: obj_str(b, "thinking").to_owned(),
                signature: b
                    .get("signature")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }),
            Some("tool_use") if obj_str(b, "name") == JSON_TOOL => {
                json_answer = true;
                parts.push(Part::Text(
                    b.get("input")
                        .map_or_else(|| "{}".to_owned(), Value::to_string),
                ));
            }
            Some("tool_use") => parts.push(Part::ToolCall(ToolCall {
                id: obj_str(b, "id").to_owned(),
                name: obj_str(b, "name").to_owned(),
                arguments: b
                    .get("input")
                    .map_or_else(|| "{}".to_owned(), Value::to_string),
            })),
            _ => {}
        }
    }
    Reply {
        id: obj_str(body, "id").to_owned(),
        model: obj_str(body, "model").to_owned(),
        parts,
        finish: body
            .get("stop_reason")
            .and_then(Value::as_str)
            .map(|r| match finish_of(r) {
                // The forced JSON tool's call is the answer, not a call for the client.
                Finish::ToolCalls if json_answer => Finish::Stop,
                f => f,
            }),
        usage: body.get("usage").map(decode_usage).unwrap_or_default(),
    }
}

pub fn encode_reply(r: &Reply) -> Value {
    let content: Vec<Value> = r
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Reasoning { text, signature } => Some(json!({"type": "thinking",
                "thinking": text, "signature": signature.as_deref().unwrap_or("")})),
            other => encode_part(other),
        })
        .collect();
    json!({
        "id": message_id(&r.id),
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": content,
        "stop_reason": finish_str(r.finish_or_implied()),
        "stop_sequence": null,
        "usage": encode_usage(&r.usage),
    })
}

fn message_id(id: &str) -> String {
    if id.is_empty() {
        "msg_switchboard".to_owned()
    } else {
        id.to_owned()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    Tool(usize),
    /// The forced JSON tool: its input streams out as the answer's text.
    JsonAnswer,
    Other,
}

/// Reads an Anthropic stream into events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    blocks: Vec<(u64, Block)>,
    tools: usize,
    json_answer: bool,
    /// `message_stop` (or a stop reason) arrived: the stream ended as it should.
    pub complete: bool,
}

impl StreamDecoder {
    pub fn frame(&mut self, f: &Frame, out: &mut Vec<Event>) {
        let Ok(v) = serde_json::from_str::<Value>(&f.data) else {
            return;
        };
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match v.get("type").and_then(Value::as_str).unwrap_or(&f.event) {
            "message_start" => {
                let m = v.get("message").unwrap_or(&Value::Null);
                out.push(Event::Start {
                    id: obj_str(m, "id").to_owned(),
                    model: obj_str(m, "model").to_owned(),
                });
                if let Some(u) = m.get("usage") {
                    out.push(Event::Usage(decode_usage(u)));
                }
            }
            "content_block_start" => {
                let b = v.get("content_block").unwrap_or(&Value::Null);
                let kind = match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(t) = b
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push(Event::Text(t.to_owned()));
                        }
                        Block::Text
                    }
                    Some("thinking") => Block::Thinking,
                    Some("tool_use") if obj_str(b, "name") == JSON_TOOL => {
                        self.json_answer = true;
                        Block::JsonAnswer
                    }
                    Some("tool_use") => {
                        let i = self.tools;
                        self.tools += 1;
                        out.push(Event::ToolStart {
                            index: i,
                            id: obj_str(b, "id").to_owned(),
                            name: obj_str(b, "name").to_owned(),
                        });
                        Block::Tool(i)
                    }
                    _ => Block::Other,
                };
                self.blocks.push((index, kind));
            }
            "content_block_delta" => {
                let d = v.get("delta").unwrap_or(&Value::Null);
                let kind = self
                    .blocks
                    .iter()
                    .rev()
                    .find(|(i, _)| *i == index)
                    .map_or(Block::Other, |(_, k)| *k);
                match (d.get("type").and_then(Value::as_str), kind) {
                    (Some("text_delta"), _) => {
                        out.push(Event::Text(obj_str(d, "text").to_owned()));
                    }
                    (Some("thinking_delta"), _) => {
                        out.push(Event::Reasoning(obj_str(d, "thinking").to_owned()));
                    }
                    (Some("signature_delta"), _) => {
                        out.push(Event::Signature(obj_str(d, "signature").to_owned()));
                    }
                    (Some("input_json_delta"), Block::JsonAnswer) => {
                        let delta = obj_str(d, "partial_json");
                        if !delta.is_empty() {
                            out.push(Event::Text(delta.to_owned()));
                        }
                    }
                    (Some("input_json_delta"), Block::Tool(i)) => {
                        let delta = obj_str(d, "partial_json");
                        if !delta.is_empty() {
                            out.push(Event::ToolArgs {
                                index: i,
                                delta: delta.to_owned(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            "message_stop" => self.complete = true,
            "message_delta" => {
                if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.complete = true;
                    out.push(Event::Finish(match finish_of(r) {
                        Finish::ToolCalls if self.json_answer && self.tools == 0 => Finish::Stop,
                        f => f,
                    }));
                }
                if let Some(u) = v.get("usage") {
                    out.push(Event::Usage(decode_usage(u)));
                }
            }
            "error" => {
                let e = v.get("error").unwrap_or(&Value::Null);
                out.push(Event::Error {
                    status: status_of_error_type(obj_str(e, "type")),
                    message: obj_str(e, "message").to_owned(),
                });
            }
            _ => {}
        }
    }
}

pub fn status_of_error_type(t: &str) -> u16 {
    match t {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        _ => 500,
    }
}

pub fn error_type_of_status(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    }
}

/// Writes events as an Anthropic stream.
#[derive(Debug, Default)]
pub struct StreamEncoder {
    started: bool,
    failed: bool,
    next_index: usize,
    open: Option<Block>,
    finish: Option<Finish>,
    usage: Usage,
    tools_seen: bool,
}

impl StreamEncoder {
    fn start(&mut self, id: &str, model: &str, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        sse::write_event(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": message_id(id), "type": "message", "role": "assistant", "content": [],
                "model": model, "stop_reason": null, "stop_sequence": null,
                "usage": encode_usage(&self.usage),
            }}),
        );
    }

    fn close(&mut self, out: &mut BytesMut) {
        if self.open.take().is_some() {
            sse::write_event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.next_index - 1}),
            );
        }
    }

    fn open(&mut self, kind: Block, block: Value, out: &mut BytesMut) {
        self.close(out);
        sse::write_event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.next_index, "content_block": block}),
        );
        self.next_index += 1;
        self.open = Some(kind);
    }

    fn delta(&self, delta: Value, out: &mut BytesMut) {
        sse::write_event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": self.next_index - 1, "delta": delta}),
        );
    }

    pub fn event(&mut self, ev: &Event, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        if !self.started
            && let Event::Start { id, model } = ev
        {
            return self.start(id, model, out);
        }
        if let Event::Usage(u) = ev {
            // Before message_start is written, usage (Anthropic's input count) belongs in it.
            self.usage.merge(*u);
            return;
        }
        self.start("", "", out);
        match ev {
            Event::Start { .. } | Event::Usage(_) => {}
            Event::Text(t) => {
                if self.open != Some(Block::Text) {
                    self.open(Block::Text, json!({"type": "text", "text": ""}), out);
                }
                self.delta(json!({"type": "text_delta", "text": t}), out);
            }
            Event::Reasoning(t) => {
                if self.open != Some(Block::Thinking) {
                    self.open(
                        Block::Thinking,
                        json!({"type": "thinking", "thinking": "", "signature": ""}),
                        out,
                    );
                }
                self.delta(json!({"type": "thinking_delta", "thinking": t}), out);
            }
            Event::Signature(s) => {
                if self.open == Some(Block::Thinking) {
                    self.delta(json!({"type": "signature_delta", "signature": s}), out);
                }
            }
            Event::ToolStart { index, id, name } => {
                self.tools_seen = true;
                self.open(
                    Block::Tool(*index),
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    out,
                );
            }
            Event::ToolArgs { index, delta } => {
                if self.open == Some(Block::Tool(*index)) {
                    self.delta(
                        json!({"type": "input_json_delta", "partial_json": delta}),
                        out,
                    );
                } else {
                    tracing::warn!(
                        index,
                        "arguments for a tool call that is no longer open; dropped"
                    );
                }
            }
            Event::Finish(f) => self.finish = Some(*f),
            Event::Error { status, message } => {
                self.fail(error_type_of_status(*status), message, out);
            }
        }
    }

    pub fn end(&mut self, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        self.start("", "", out);
        self.close(out);
        let finish = match self.finish {
            Some(Finish::Stop) | None if self.tools_seen => Finish::ToolCalls,
            Some(f) => f,
            None => Finish::Stop,
        };
        sse::write_event(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": finish_str(finish), "stop_sequence": null},
                "usage": encode_usage(&self.usage)}),
        );
        sse::write_event(out, "message_stop", &json!({"type": "message_stop"}));
    }

    /// The stream failed: close what is open, then an `error` event.
    pub fn fail(&mut self, kind: &str, message: &str, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        self.failed = true;
        self.close(out);
        write_error(out, kind, message);
    }
}

pub fn write_error(out: &mut BytesMut, kind: &str, message: &str) {
    sse::write_event(
        out,
        "error",
        &json!({"type": "error", "error": {"type": kind, "message": message}}),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinking_needs_room_and_no_temperature() {
        let req = ChatRequest {
            messages: vec![Message {
                role: Role::User,
                parts: vec![Part::Text("hi".into())],
            }],
            max_tokens: Some(1000),
            temperature: Some(0.2),
            reasoning: Some(Effort::Medium),
            ..Default::default()
        };
        let mut notes = Notes::default();
        let v = encode_request(&req, "claude", &mut notes);
        assert_eq!(v["thinking"]["budget_tokens"], 4096);
        assert!(v["max_tokens"].as_u64().unwrap() > 4096);
        assert!(v.get("temperature").is_none());
        assert_eq!(notes.0.len(), 1);
    }

    #[test]
    fn no_thinking_when_history_has_unsigned_tool_calls_or_a_tool_is_forced() {
        let call = Part::ToolCall(ToolCall {
            id: "functions.get:0".into(),
            name: "get".into(),
            arguments: "{}".into(),
        });
        let req = ChatRequest {
            messages: vec![
                Message {
                    role: Role::User,
                    parts: vec![Part::Text("hi".into())],
                },
                Message {
                    role: Role::Assistant,
                    parts: vec![call],
                },
                Message {
                    role: Role::User,
                    parts: vec![Part::ToolResult(ToolResult {
                        id: "functions.get:0".into(),
                        name: None,
                        content: "ok".into(),
                        is_error: false,
                    })],
                },
            ],
            reasoning: Some(Effort::High),
            ..Default::default()
        };
        let mut notes = Notes::default();
        let v = encode_request(&req, "claude", &mut notes);
        assert!(v.get("thinking").is_none(), "{v}");
        assert_eq!(notes.0.len(), 1);
        // Ids Anthropic would refuse are mapped the same way on the call and its result.
        let id = &v["messages"][1]["content"][0]["id"];
        assert_eq!(id, "toolu_functions_get_0");
        assert_eq!(&v["messages"][2]["content"][0]["tool_use_id"], id);

        let forced = ChatRequest {
            messages: vec![Message {
                role: Role::User,
                parts: vec![Part::Text("hi".into())],
            }],
            reasoning: Some(Effort::Low),
            tool_choice: Some(ToolChoice::Required),
            ..Default::default()
        };
        assert!(
            encode_request(&forced, "claude", &mut notes)
                .get("thinking")
                .is_none()
        );
    }

    #[test]
    fn structured_output_where_the_model_has_it_a_forced_tool_elsewhere() {
        for (model, native) in [
            ("claude-sonnet-4-5", true),
            ("claude-sonnet-4-5-20250929", true),
            ("claude-opus-4-1", true),
            ("claude-opus-4-8", true),
            ("claude-haiku-4-5", true),
            ("claude-sonnet-5", true),
            ("anthropic/claude-opus-4.5", true),
            ("claude-sonnet-4-20250514", false),
            ("claude-opus-4-20250514", false),
            ("claude-3-5-haiku-20241022", false),
            ("glm-4.6", false),
        ] {
            assert_eq!(has_structured_output(model), native, "{model}");
        }
        let req = ChatRequest {
            messages: vec![Message {
                role: Role::User,
                parts: vec![Part::Text("title?".into())],
            }],
            response_format: Some(ResponseFormat::Schema {
                name: "t".into(),
                schema: json!({"type": "object", "properties": {"title": {"type": "string"}}}),
                strict: None,
            }),
            reasoning: Some(Effort::High),
            ..Default::default()
        };
        let v = encode_request(&req, "claude-sonnet-4-5", &mut Notes::default());
        assert_eq!(v["output_config"]["format"]["type"], "json_schema", "{v}");
        assert!(v.get("tools").is_none(), "{v}");
        let v = encode_request(&req, "glm-4.6", &mut Notes::default());
        assert!(v.get("output_config").is_none(), "{v}");
        assert_eq!(v["tool_choice"]["name"], JSON_TOOL, "{v}");
        // A forced tool and thinking do not go together at Anthropic.
        assert!(v.get("thinking").is_none(), "{v}");
        // JSON mode without a schema: any object, by the same tool.
        // The client's own tools keep their choice: no forced tool, and no structured output
        // for a model that lacks it.
        let with_tools = ChatRequest {
            tools: vec![Tool {
                name: "f".into(),
                description: None,
                parameters: json!({"type": "object"}),
            }],
            ..req.clone()
        };
        let v = encode_request(&with_tools, "glm-4.6", &mut Notes::default());
        assert!(v.get("output_config").is_none(), "{v}");
        assert_eq!(v["tools"][0]["name"], "f", "{v}");
        let v = encode_request(&with_tools, "claude-sonnet-4-5", &mut Notes::default());
        assert_eq!(v["output_config"]["format"]["type"], "json_schema", "{v}");
        let json_mode = ChatRequest {
            response_format: Some(ResponseFormat::Json),
            ..req.clone()
        };
        let v = encode_request(&json_mode, "claude-sonnet-4-5", &mut Notes::default());
        assert_eq!(
            v["tools"][0]["input_schema"],
            json!({"type": "object"}),
            "{v}"
        );
    }

    #[test]
    fn usage_counts_cache_reads_as_input() {
        let u = decode_usage(
            &json!({"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 5}),
        );
        assert_eq!(u.input, Some(100));
        assert_eq!(u.cached, Some(90));
        assert_eq!(
            encode_usage(&u),
            json!({"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 90})
        );
    }
}
