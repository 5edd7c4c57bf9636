//! OpenAI chat completions in the neutral form: requests both ways, replies both ways, and
//! streams both ways.

use bytes::BytesMut;
use serde_json::{Map, Value, json};

use super::ir::{
    self, ChatRequest, Effort, Event, Finish, Message, Notes, Part, Reply, ResponseFormat, Role,
    Tool, ToolCall, ToolChoice, ToolResult, Unsupported, Usage,
};
use super::sse::{self, Frame};
use super::{num, obj_str, str_or_parts, string_list, unix_now};

/// Fields read elsewhere or safe to lose without a word.
const QUIET: &[&str] = &[
    "model",
    "stream_options",
    "store",
    "service_tier",
    "user",
    "metadata",
];

pub fn decode_request(body: &Value, notes: &mut Notes) -> Result<ChatRequest, Unsupported> {
    let obj = body
        .as_object()
        .ok_or_else(|| Unsupported::new("body", "expected a JSON object"))?;
    let mut req = ChatRequest::default();
    let mut names: Vec<(String, String)> = Vec::new();
    for (key, v) in obj {
        match key.as_str() {
            "messages" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| Unsupported::new("messages", "expected an array"))?;
                for (i, m) in list.iter().enumerate() {
                    decode_message(i, m, &mut req, &mut names)?;
                }
            }
            "tools" => {
                for (i, t) in v.as_array().into_iter().flatten().enumerate() {
                    match t.get("type").and_then(Value::as_str) {
                        Some("function") | None => {
                            let f = t.get("function").unwrap_or(t);
                            req.tools.push(decode_tool(f, &format!("tools[{i}]"))?);
                        }
                        Some(other) => {
                            return Err(Unsupported::new(
                                format!("tools[{i}].type"),
                                format!("tools of type '{other}' exist only in OpenAI"),
                            ));
                        }
                    }
                }
            }
            "functions" => {
                for (i, f) in v.as_array().into_iter().flatten().enumerate() {
                    req.tools.push(decode_tool(f, &format!("functions[{i}]"))?);
                }
            }
            "tool_choice" | "function_call" => req.tool_choice = decode_tool_choice(v),
            "max_tokens" | "max_completion_tokens" => req.max_tokens = v.as_u64(),
            "temperature" => req.temperature = v.as_f64(),
            "top_p" => req.top_p = v.as_f64(),
            "top_k" => req.top_k = v.as_u64(),
            "stop" => req.stop = string_list(v),
            "stream" => req.stream = v.as_bool().unwrap_or(false),
            "n" => {
                if v.as_u64().is_some_and(|n| n > 1) {
                    return Err(Unsupported::new(
                        "n",
                        "the target returns one completion per request; send n separate requests",
                    ));
                }
            }
            "response_format" => req.response_format = decode_response_format(v),
            "reasoning_effort" => req.reasoning = v.as_str().and_then(Effort::parse),
            "parallel_tool_calls" => req.parallel_tool_calls = v.as_bool(),
            "modalities" => {
                if v.as_array()
                    .is_some_and(|m| m.iter().any(|x| x.as_str() == Some("audio")))
                {
                    return Err(Unsupported::new(
                        "modalities",
                        "audio output is OpenAI only",
                    ));
                }
            }
            k if QUIET.contains(&k) => {}
            k => notes.dropped(k, "the target protocol"),
        }
    }
    Ok(req)
}

fn decode_message(
    i: usize,
    m: &Value,
    req: &mut ChatRequest,
    names: &mut Vec<(String, String)>,
) -> Result<(), Unsupported> {
    let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
    let content = m.get("content");
    match role {
        "system" | "developer" => {
            if let Some(text) = content.and_then(str_or_parts) {
                req.system.push(text);
            }
        }
        "user" => {
            let parts = decode_user_content(i, content)?;
            req.messages.push(Message {
                role: Role::User,
                parts,
            });
        }
        "assistant" => {
            let mut parts = Vec::new();
            if let Some(r) = m
                .get("reasoning_content")
                .or_else(|| m.get("reasoning"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                parts.push(Part::Reasoning {
                    text: r.to_owned(),
                    signature: None,
                });
            }
            if let Some(text) = content.and_then(str_or_parts).filter(|t| !t.is_empty()) {
                parts.push(Part::Text(text));
            }
            for c in m
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let f = c.get("function").unwrap_or(&Value::Null);
                let call = ToolCall {
                    id: obj_str(c, "id").to_owned(),
                    name: obj_str(f, "name").to_owned(),
                    arguments: arguments_text(f.get("arguments")),
                };
                names.push((call.id.clone(), call.name.clone()));
                parts.push(Part::ToolCall(call));
            }
            if let Some(f) = m.get("function_call") {
                let name = obj_str(f, "name").to_owned();
                let id = format!("call_{name}");
                names.push((id.clone(), name.clone()));
                parts.push(Part::ToolCall(ToolCall {
                    id,
                    name,
                    arguments: arguments_text(f.get("arguments")),
                }));
            }
            req.messages.push(Message {
                role: Role::Assistant,
                parts,
            });
        }
        "tool" | "function" => {
            let id = match m.get("tool_call_id").and_then(Value::as_str) {
                Some(id) => id.to_owned(),
                None => format!("call_{}", obj_str(m, "name")),
            };
            let name = m
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| {
                    names
                        .iter()
                        .rev()
                        .find(|(cid, _)| *cid == id)
                        .map(|(_, n)| n.clone())
                });
            req.messages.push(Message {
                role: Role::User,
                parts: vec![Part::ToolResult(ToolResult {
                    id,
                    name,
                    content: content.and_then(str_or_parts).unwrap_or_default(),
                    is_error: false,
                })],
            });
        }
        other => {
            return Err(Unsupported::new(
                format!("messages[{i}].role"),
                format!("unknown role '{other}'"),
            ));
        }
    }
    Ok(())
}

fn decode_user_content(i: usize, content: Option<&Value>) -> Result<Vec<Part>, Unsupported> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(items)) => {
            let mut parts = Vec::with_capacity(items.len());
            for (j, p) in items.iter().enumerate() {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => parts.push(Part::Text(obj_str(p, "text").to_owned())),
                    Some("image_url") => {
                        let url = match p.get("image_url") {
                            Some(Value::String(s)) => s.as_str(),
                            Some(o) => obj_str(o, "url"),
                            None => "",
                        };
                        parts.push(Part::Image(ir::image_from_url(url)));
                    }
                    other => {
                        return Err(Unsupported::new(
                            format!("messages[{i}].content[{j}].type"),
                            format!(
                                "'{}' input can only go to OpenAI; send text or images",
                                other.unwrap_or("?")
                            ),
                        ));
                    }
                }
            }
            Ok(parts)
        }
        Some(_) => Err(Unsupported::new(
            format!("messages[{i}].content"),
            "expected a string or an array of parts",
        )),
    }
}

fn arguments_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

fn decode_tool(f: &Value, at: &str) -> Result<Tool, Unsupported> {
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| Unsupported::new(format!("{at}.name"), "a tool needs a name"))?;
    Ok(Tool {
        name: name.to_owned(),
        description: f
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        parameters: f
            .get("parameters")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    })
}

fn decode_tool_choice(v: &Value) -> Option<ToolChoice> {
    match v {
        Value::String(s) => match s.as_str() {
            "auto" => Some(ToolChoice::Auto),
            "none" => Some(ToolChoice::None),
            "required" | "any" => Some(ToolChoice::Required),
            _ => None,
        },
        Value::Object(o) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .or_else(|| o.get("name"))
            .and_then(Value::as_str)
            .map(|n| ToolChoice::Named(n.to_owned())),
        _ => None,
    }
}

fn decode_response_format(v: &Value) -> Option<ResponseFormat> {
    match v.get("type").and_then(Value::as_str)? {
        "json_object" => Some(ResponseFormat::Json),
        "json_schema" => {
            let s = v.get("json_schema").unwrap_or(&Value::Null);
            Some(ResponseFormat::Schema {
                name: s
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("response")
                    .to_owned(),
                schema: s.get("schema").cloned().unwrap_or(json!({})),
                strict: s.get("strict").and_then(Value::as_bool),
            })
        }
        _ => None,
    }
}

/// OpenAI's reasoning models (o-series, gpt-5) refuse `max_tokens` and want
/// `max_completion_tokens`; other models, and most relays, know only `max_tokens`.
fn is_reasoning_model(model: &str) -> bool {
    let m = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    m.starts_with("gpt-5")
        || (m.starts_with('o') && m[1..].starts_with(|c: char| c.is_ascii_digit()))
}

pub fn encode_request(req: &ChatRequest, model: &str, notes: &mut Notes) -> Value {
    let reasoning_model = is_reasoning_model(model);
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system.join("\n\n")}));
    }
    // A system message may not come between a call and its results (OpenAI wants the tool
    // messages right after the call): one that does waits for the next user message.
    let mut held: Vec<&Message> = Vec::new();
    for m in &req.messages {
        match m.role {
            Role::System if awaits_results(&messages) => held.push(m),
            Role::User => {
                encode_message(m, &mut messages);
                if !awaits_results(&messages) {
                    for h in held.drain(..) {
                        encode_message(h, &mut messages);
                    }
                }
            }
            _ => {
                for h in held.drain(..) {
                    encode_message(h, &mut messages);
                }
                encode_message(m, &mut messages);
            }
        }
    }
    for h in held {
        encode_message(h, &mut messages);
    }
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    out.insert("messages".into(), Value::Array(messages));
    if let Some(t) = req.max_tokens {
        let key = if reasoning_model {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        out.insert(key.into(), t.into());
    }
    if let Some(t) = req.temperature {
        out.insert("temperature".into(), num(t));
    }
    if let Some(p) = req.top_p {
        out.insert("top_p".into(), num(p));
    }
    if !req.stop.is_empty() {
        out.insert("stop".into(), json!(req.stop));
    }
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"type": "function", "function": t.declaration("parameters")}))
            .collect();
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(c) = &req.tool_choice {
        out.insert(
            "tool_choice".into(),
            match c {
                ToolChoice::Auto => "auto".into(),
                ToolChoice::None => "none".into(),
                ToolChoice::Required => "required".into(),
                ToolChoice::Named(n) => json!({"type": "function", "function": {"name": n}}),
            },
        );
    }
    if let Some(p) = req.parallel_tool_calls {
        out.insert("parallel_tool_calls".into(), p.into());
    }
    match &req.response_format {
        Some(ResponseFormat::Json) => {
            out.insert("response_format".into(), json!({"type": "json_object"}));
        }
        Some(ResponseFormat::Schema {
            name,
            schema,
            strict,
        }) => {
            let mut s = json!({"name": name, "schema": schema});
            if let Some(strict) = strict {
                s["strict"] = (*strict).into();
            }
            out.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": s}),
            );
        }
        None => {}
    }
    match req.reasoning.filter(|e| *e != Effort::Off) {
        Some(e) if reasoning_model => {
            out.insert("reasoning_effort".into(), e.as_str().into());
        }
        // Other models refuse the field; their thinking, if any, is not switched this way.
        Some(_) => notes.dropped("reasoning effort", &format!("OpenAI model '{model}'")),
        None => {}
    }
    if req.stream {
        out.insert("stream".into(), true.into());
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Value::Object(out)
}

/// The last assistant message's calls are not all answered yet, and nothing else came since.
fn awaits_results(out: &[Value]) -> bool {
    let Some(at) = out.iter().rposition(|m| m["role"] != "tool") else {
        return false;
    };
    let calls = out[at]["tool_calls"].as_array();
    let answered = out.len() - at - 1;
    out[at]["role"] == "assistant" && calls.is_some_and(|c| c.len() > answered)
}

fn encode_message(m: &Message, out: &mut Vec<Value>) {
    match m.role {
        // OpenAI takes system messages anywhere: in place, as the client put it.
        Role::System => {
            let text: Vec<&str> = m.texts().collect();
            out.push(json!({"role": "system", "content": text.join("\n\n")}));
        }
        Role::User => {
            let mut rich = Vec::new();
            let mut text_only = true;
            for p in &m.parts {
                match p {
                    Part::Text(t) => rich.push(json!({"type": "text", "text": t})),
                    Part::Image(img) => {
                        text_only = false;
                        rich.push(
                            json!({"type": "image_url", "image_url": {"url": ir::image_to_url(img)}}),
                        );
                    }
                    Part::ToolResult(r) => {
                        // Tool results are messages of their own in OpenAI.
                        flush_user(&mut rich, text_only, out);
                        text_only = true;
                        out.push(json!({
                            "role": "tool",
                            "tool_call_id": r.id,
                            "content": r.content,
                        }));
                    }
                    Part::Reasoning { .. } | Part::ToolCall(_) => {}
                }
            }
            flush_user(&mut rich, text_only, out);
        }
        Role::Assistant => {
            let text: String = m.texts().collect();
            let calls: Vec<Value> = m
                .parts
                .iter()
                .filter_map(|p| match p {
                    Part::ToolCall(c) => Some(encode_call(c)),
                    _ => None,
                })
                .collect();
            out.push(assistant_message(text, calls, String::new()));
        }
    }
}

/// An assistant message: `content` is null when it only calls tools, as OpenAI writes it.
fn assistant_message(text: String, calls: Vec<Value>, reasoning: String) -> Value {
    let mut msg = Map::new();
    msg.insert("role".into(), "assistant".into());
    msg.insert(
        "content".into(),
        if text.is_empty() && !calls.is_empty() {
            Value::Null
        } else {
            text.into()
        },
    );
    if !reasoning.is_empty() {
        msg.insert("reasoning_content".into(), reasoning.into());
    }
    if !calls.is_empty() {
        msg.insert("tool_calls".into(), Value::Array(calls));
    }
    Value::Object(msg)
}

fn flush_user(rich: &mut Vec<Value>, text_only: bool, out: &mut Vec<Value>) {
    if rich.is_empty() {
        return;
    }
    let content = if text_only {
        let text: Vec<&str> = rich
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect();
        Value::String(text.join("\n\n"))
    } else {
        Value::Array(std::mem::take(rich))
    };
    rich.clear();
    out.push(json!({"role": "user", "content": content}));
}

fn encode_call(c: &ToolCall) -> Value {
    json!({
        "id": c.id,
        "type": "function",
        "function": {"name": c.name, "arguments": if c.arguments.is_empty() { "{}" } else { &c.arguments }},
    })
}

pub fn finish_str(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
        Finish::ContentFilter => "content_filter",
    }
}

fn finish_of(s: &str) -> Finish {
    match s {
        "length" => Finish::Length,
        "tool_calls" | "function_call" => Finish::ToolCalls,
        "content_filter" => Finish::ContentFilter,
        _ => Finish::Stop,
    }
}

fn decode_usage(u: &Value) -> Usage {
    Usage {
        input: u.get("prompt_tokens").and_then(Value::as_u64),
        output: u.get("completion_tokens").and_then(Value::as_u64),
        cached: u
            .pointer("/prompt_tokens_details/cached_tokens")
            .and_then(Value::as_u64),
        reasoning: u
            .pointer("/completion_tokens_details/reasoning_tokens")
            .and_then(Value::as_u64),
    }
}

fn encode_usage(u: &Usage) -> Value {
    let mut v = json!({
        "prompt_tokens": u.input.unwrap_or(0),
        "completion_tokens": u.output.unwrap_or(0),
        "total_tokens": u.total(),
    });
    if let Some(c) = u.cached {
        v["prompt_tokens_details"] = json!({"cached_tokens": c});
    }
    if let Some(r) = u.reasoning {
        v["completion_tokens_details"] = json!({"reasoning_tokens": r});
    }
    v
}

pub fn decode_reply(body: &Value) -> Reply {
    let choice = body.pointer("/choices/0").unwrap_or(&Value::Null);
    let msg = choice.get("message").unwrap_or(&Value::Null);
    let mut parts = Vec::new();
    if let Some(r) = msg
        .get("reasoning_content")
        .or_else(|| msg.get("reasoning"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        parts.push(Part::Reasoning {
            text: r.to_owned(),
            signature: None,
        });
    }
    if let Some(t) = msg
        .get("content")
        .and_then(str_or_parts)
        .filter(|t| !t.is_empty())
    {
        parts.push(Part::Text(t));
    }
    for c in msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = c.get("function").unwrap_or(&Value::Null);
        parts.push(Part::ToolCall(ToolCall {
            id: obj_str(c, "id").to_owned(),
            name: obj_str(f, "name").to_owned(),
            arguments: arguments_text(f.get("arguments")),
        }));
    }
    Reply {
        id: obj_str(body, "id").to_owned(),
        model: obj_str(body, "model").to_owned(),
        parts,
        finish: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(finish_of),
        usage: body.get("usage").map(decode_usage).unwrap_or_default(),
    }
}

pub fn encode_reply(r: &Reply) -> Value {
    let text = r.text();
    let calls: Vec<Value> = r.tool_calls().map(encode_call).collect();
    let reasoning: String = r
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Reasoning { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let msg = assistant_message(text, calls, reasoning);
    json!({
        "id": r.id,
        "object": "chat.completion",
        "created": unix_now(),
        "model": r.model,
        "choices": [{
            "index": 0,
            "message": msg,
            "finish_reason": finish_str(r.finish_or_implied()),
            "logprobs": null,
        }],
        "usage": encode_usage(&r.usage),
    })
}

/// Reads an OpenAI chat stream into events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    /// OpenAI's tool-call index and id of each call, in the order first seen; the position
    /// is ours.
    tools: Vec<(u64, String)>,
    /// A finish reason or `[DONE]` arrived: the stream ended as it should.
    pub complete: bool,
}

impl StreamDecoder {
    pub fn frame(&mut self, f: &Frame, out: &mut Vec<Event>) {
        let data = f.data.trim();
        if data == "[DONE]" {
            self.complete = true;
        }
        if data.is_empty() || data == "[DONE]" {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        if let Some(e) = v.get("error") {
            out.push(Event::Error {
                status: e
                    .get("code")
                    .and_then(Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(502),
                message: e
                    .get("message")
                    .and_then(Value::as_str)
                    .map_or_else(|| e.to_string(), str::to_owned),
            });
            return;
        }
        if !self.started {
            self.started = true;
            out.push(Event::Start {
                id: obj_str(&v, "id").to_owned(),
                model: obj_str(&v, "model").to_owned(),
            });
        }
        for c in v
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let d = c.get("delta").unwrap_or(&Value::Null);
            if let Some(r) = d
                .get("reasoning_content")
                .or_else(|| d.get("reasoning"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                out.push(Event::Reasoning(r.to_owned()));
            }
            if let Some(t) = d
                .get("content")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                out.push(Event::Text(t.to_owned()));
            }
            for t in d
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let their = t.get("index").and_then(Value::as_u64).unwrap_or(0);
                let f = t.get("function").unwrap_or(&Value::Null);
                let id = obj_str(t, "id");
                // Some providers repeat the id (or send "") in every chunk of one call: a new
                // call is a new index, or a new id at a known index.
                let known = self.tools.iter().rposition(|(i, _)| *i == their);
                let index = match known {
                    Some(k) if id.is_empty() || self.tools[k].1 == id => k,
                    _ => {
                        self.tools.push((their, id.to_owned()));
                        let index = self.tools.len() - 1;
                        out.push(Event::ToolStart {
                            index,
                            id: obj_str(t, "id").to_owned(),
                            name: obj_str(f, "name").to_owned(),
                        });
                        index
                    }
                };
                if let Some(a) = f
                    .get("arguments")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    out.push(Event::ToolArgs {
                        index,
                        delta: a.to_owned(),
                    });
                }
            }
            if let Some(f) = c.get("finish_reason").and_then(Value::as_str) {
                self.complete = true;
                out.push(Event::Finish(finish_of(f)));
            }
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            out.push(Event::Usage(decode_usage(u)));
        }
    }
}

/// Writes events as an OpenAI chat stream.
#[derive(Debug)]
pub struct StreamEncoder {
    id: String,
    model: String,
    /// Per tool call: whether any argument text was sent.
    tool_args: Vec<bool>,
    created: u64,
    include_usage: bool,
    usage: Usage,
    finished: bool,
    started: bool,
    failed: bool,
}

impl StreamEncoder {
    pub fn new(include_usage: bool) -> Self {
        Self {
            id: String::new(),
            model: String::new(),
            tool_args: Vec::new(),
            created: unix_now(),
            include_usage,
            usage: Usage::default(),
            finished: false,
            started: false,
            failed: false,
        }
    }

    fn chunk(&self, out: &mut BytesMut, delta: Value, finish: Option<Finish>) {
        let v = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish.map(finish_str)}],
        });
        sse::write_data(out, &v);
    }

    fn start(&mut self, out: &mut BytesMut) {
        if !self.started {
            self.started = true;
            self.chunk(out, json!({"role": "assistant", "content": ""}), None);
        }
    }

    pub fn event(&mut self, ev: &Event, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        match ev {
            Event::Start { id, model } => {
                self.id.clone_from(id);
                self.model.clone_from(model);
                self.start(out);
            }
            Event::Text(t) => {
                self.start(out);
                self.chunk(out, json!({"content": t}), None);
            }
            Event::Reasoning(t) => {
                self.start(out);
                self.chunk(out, json!({"reasoning_content": t}), None);
            }
            Event::Signature(_) => {}
            Event::ToolStart { index, id, name } => {
                self.start(out);
                if self.tool_args.len() <= *index {
                    self.tool_args.resize(*index + 1, false);
                }
                self.chunk(
                    out,
                    json!({"tool_calls": [{"index": index, "id": id, "type": "function",
                        "function": {"name": name, "arguments": ""}}]}),
                    None,
                );
            }
            Event::ToolArgs { index, delta } => {
                if let Some(sent) = self.tool_args.get_mut(*index) {
                    *sent = true;
                }
                self.chunk(
                    out,
                    json!({"tool_calls": [{"index": index, "function": {"arguments": delta}}]}),
                    None,
                );
            }
            Event::Finish(f) => {
                if !self.finished {
                    self.finished = true;
                    self.start(out);
                    // A call with no arguments still needs valid JSON for them.
                    for (index, sent) in self.tool_args.clone().into_iter().enumerate() {
                        if !sent {
                            self.chunk(
                                out,
                                json!({"tool_calls": [{"index": index, "function": {"arguments": "{}"}}]}),
                                None,
                            );
                        }
                    }
                    // Some providers say "stop" after tool calls; clients loop on tool_calls.
                    let f = if *f == Finish::Stop && !self.tool_args.is_empty() {
                        Finish::ToolCalls
                    } else {
                        *f
                    };
                    self.chunk(out, json!({}), Some(f));
                }
            }
            Event::Usage(u) => self.usage.merge(*u),
            Event::Error { status, message } => {
                self.failed = true;
                sse::write_data(
                    out,
                    &json!({"error": {"message": message, "type": "upstream_error",
                        "code": status.to_string(), "param": null}}),
                );
            }
        }
    }

    /// The stream failed: nothing more is written after the error line.
    pub fn fail(&mut self) {
        self.failed = true;
    }

    pub fn end(&mut self, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        if !self.finished {
            let f = if self.tool_args.is_empty() {
                Finish::Stop
            } else {
                Finish::ToolCalls
            };
            self.event(&Event::Finish(f), out);
        }
        if self.include_usage {
            let v = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": encode_usage(&self.usage),
            });
            sse::write_data(out, &v);
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A system message between a call and its results waits for the results: OpenAI
    /// refuses anything between an assistant's tool_calls and its tool messages.
    #[test]
    fn a_system_message_never_splits_a_call_from_its_results() {
        let call = |id: &str| {
            Part::ToolCall(ToolCall {
                id: id.into(),
                name: "f".into(),
                arguments: "{}".into(),
            })
        };
        let result = |id: &str| {
            Part::ToolResult(ToolResult {
                id: id.into(),
                name: None,
                content: "ok".into(),
                is_error: false,
            })
        };
        let msg = |role, parts| Message { role, parts };
        let req = ChatRequest {
            messages: vec![
                msg(Role::User, vec![Part::Text("go".into())]),
                msg(Role::Assistant, vec![call("a"), call("b")]),
                msg(Role::System, vec![Part::Text("note 1".into())]),
                msg(Role::User, vec![result("a")]),
                msg(Role::System, vec![Part::Text("note 2".into())]),
                msg(Role::User, vec![result("b"), Part::Text("next".into())]),
                msg(Role::System, vec![Part::Text("note 3".into())]),
            ],
            ..Default::default()
        };
        let v = encode_request(&req, "gpt-4.1", &mut Notes::default());
        let roles: Vec<&str> = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(
            roles,
            [
                "user",
                "assistant",
                "tool",
                "tool",
                "user",
                "system",
                "system",
                "system"
            ],
            "{v}"
        );
    }

    #[test]
    fn tool_result_names_come_from_the_call() {
        let body = json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ], "logprobs": true});
        let mut notes = Notes::default();
        let req = decode_request(&body, &mut notes).unwrap();
        assert_eq!(req.system, vec!["be brief"]);
        assert_eq!(req.messages.len(), 3);
        assert!(matches!(&req.messages[2].parts[0],
            Part::ToolResult(r) if r.name.as_deref() == Some("get_weather") && r.id == "call_1"));
        assert_eq!(notes.0.len(), 1, "{notes:?}");
        let back = encode_request(&req, "m2", &mut notes);
        assert_eq!(back["messages"][0]["content"], "be brief");
        assert_eq!(back["messages"][3]["tool_call_id"], "call_1");
        assert_eq!(back["model"], "m2");
    }

    #[test]
    fn reasoning_models_get_max_completion_tokens() {
        let req = ChatRequest {
            messages: vec![Message {
                role: Role::User,
                parts: vec![Part::Text("x".into())],
            }],
            max_tokens: Some(100),
            reasoning: Some(Effort::High),
            ..Default::default()
        };
        let mut notes = Notes::default();
        let v = encode_request(&req, "gpt-5-mini", &mut notes);
        assert_eq!(v["max_completion_tokens"], 100);
        assert_eq!(v["reasoning_effort"], "high");
        assert!(v.get("max_tokens").is_none());
        let v = encode_request(&req, "openai/o3", &mut notes);
        assert_eq!(v["max_completion_tokens"], 100);
        assert!(notes.0.is_empty());
        let v = encode_request(&req, "gpt-4o", &mut notes);
        assert_eq!(v["max_tokens"], 100);
        assert!(v.get("reasoning_effort").is_none());
        assert_eq!(notes.0.len(), 1);
    }

    #[test]
    fn refuses_what_would_change_the_answer() {
        let mut notes = Notes::default();
        let e = decode_request(
            &json!({"messages": [{"role": "user", "content": "x"}], "n": 2}),
            &mut notes,
        )
        .unwrap_err();
        assert_eq!(e.field, "n");
        let e = decode_request(
            &json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}),
            &mut notes,
        )
        .unwrap_err();
        assert_eq!(e.field, "messages[0].content[0].type");
    }
}
