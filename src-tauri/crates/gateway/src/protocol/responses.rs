//! OpenAI's Responses API, client side: its requests into the neutral form, and replies and
//! streams out of it. (An `openai` provider gets Responses requests natively, so the gateway
//! never encodes a Responses request or reads a Responses reply.)

use bytes::BytesMut;
use serde_json::{Value, json};

use super::ir::{
    self, ChatRequest, Effort, Event, Finish, Message, Notes, Part, Reply, ResponseFormat, Role,
    Tool, ToolAliases, ToolCall, ToolChoice, ToolResult, Unsupported, Usage,
};
use super::sse;
use super::{obj_str, str_or_parts, unix_now};

const QUIET: &[&str] = &[
    "model",
    "client_metadata",
    "store",
    "metadata",
    "user",
    "include",
    "truncation",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "stream_options",
];

pub fn decode_request(body: &Value, notes: &mut Notes) -> Result<ChatRequest, Unsupported> {
    let obj = body
        .as_object()
        .ok_or_else(|| Unsupported::new("body", "expected a JSON object"))?;
    let mut req = ChatRequest::default();
    declare_tools(obj, &mut req);
    let mut forced_hosted: Option<&str> = None;
    for (key, v) in obj {
        match key.as_str() {
            "input" => decode_input(v, &mut req)?,
            "instructions" => {
                if let Some(s) = v.as_str().filter(|s| !s.is_empty()) {
                    req.system.insert(0, s.to_owned());
                }
            }
            "tools" => {}
            "tool_choice" => {
                req.tool_choice = match v {
                    Value::String(s) => match s.as_str() {
                        "auto" => Some(ToolChoice::Auto),
                        "none" => Some(ToolChoice::None),
                        "required" => Some(ToolChoice::Required),
                        _ => None,
                    },
                    o => {
                        let name = o.get("name").and_then(Value::as_str);
                        // A hosted tool forced by its type: `{"type": "web_search"}`.
                        if name.is_none() {
                            forced_hosted = o
                                .get("type")
                                .and_then(Value::as_str)
                                .filter(|t| !matches!(*t, "function" | "custom" | "allowed_tools"));
                        }
                        name.map(|n| ToolChoice::Named(n.to_owned()))
                    }
                };
            }
            "max_output_tokens" => req.max_tokens = v.as_u64(),
            "temperature" => req.temperature = v.as_f64(),
            "top_p" => req.top_p = v.as_f64(),
            "stream" => req.stream = v.as_bool().unwrap_or(false),
            "parallel_tool_calls" => req.parallel_tool_calls = v.as_bool(),
            "reasoning" => {
                req.reasoning = v
                    .get("effort")
                    .and_then(Value::as_str)
                    .and_then(Effort::parse);
            }
            "text" => {
                let f = v.get("format").unwrap_or(&Value::Null);
                req.response_format = match f.get("type").and_then(Value::as_str) {
                    Some("json_object") => Some(ResponseFormat::Json),
                    Some("json_schema") => Some(ResponseFormat::Schema {
                        name: f
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("response")
                            .to_owned(),
                        schema: f.get("schema").cloned().unwrap_or(json!({})),
                        strict: f.get("strict").and_then(Value::as_bool),
                    }),
                    _ => None,
                };
            }
            "previous_response_id" | "conversation" | "prompt" if !v.is_null() => {
                return Err(Unsupported::new(
                    key,
                    "it refers to state kept by OpenAI's Responses server; send the whole history in 'input'",
                ));
            }
            "background" if v.as_bool() == Some(true) => {
                return Err(Unsupported::new(
                    key,
                    "background responses are OpenAI only",
                ));
            }
            k if QUIET.contains(&k) => {}
            "previous_response_id" | "conversation" | "prompt" | "background" => {}
            k => notes.dropped(k, "the target protocol"),
        }
    }
    if let Some(t) = forced_hosted {
        return Err(Unsupported::new(
            "tool_choice",
            format!("it forces '{t}', a tool that runs on OpenAI's servers"),
        ));
    }
    // A forced namespaced or freeform tool goes by the name the upstream knows.
    if let Some(ToolChoice::Named(n)) = &mut req.tool_choice
        && let Some(flat) = req.aliases.flat_of(None, n)
    {
        *n = flat.to_owned();
    }
    for t in &req.dropped_tools {
        notes.0.push(format!(
            "tool '{t}' runs on OpenAI's servers and has no equivalent upstream; dropped"
        ));
    }
    Ok(req)
}

/// A `custom` tool's free text as a function's one string argument; its grammar, if any,
/// goes into the description so the model still knows what to write.
fn freeform_parameters() -> Value {
    json!({"type": "object", "properties": {ir::FREEFORM_ARG: {"type": "string",
        "description": "The tool's input, as plain text."}}, "required": [ir::FREEFORM_ARG]})
}

fn freeform_description(t: &Value) -> Option<String> {
    let desc = t.get("description").and_then(Value::as_str).unwrap_or("");
    let f = t.get("format").unwrap_or(&Value::Null);
    let grammar = match (f.get("syntax"), f.get("definition")) {
        (Some(Value::String(syntax)), Some(Value::String(def))) => {
            format!("\n\nThe input must match this {syntax} grammar:\n{def}")
        }
        _ => String::new(),
    };
    let d = format!("{desc}{grammar}");
    (!d.is_empty()).then_some(d)
}

/// Every tool the request declares, wherever it does: `tools`, and the `additional_tools`
/// items in `input` (Codex's default model gets its tools that way). Read before the history,
/// whose calls are named by these declarations whatever the order of the body's keys.
fn declare_tools(body: &serde_json::Map<String, Value>, req: &mut ChatRequest) {
    let mut decls: Vec<Decl<'_>> = Vec::new();
    if let Some(t) = body.get("tools") {
        collect_tools(t, None, "tools", &mut decls, req);
    }
    for (i, item) in body
        .get("input")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if item.get("type").and_then(Value::as_str) == Some("additional_tools") {
            let at = format!("input[{i}].tools");
            collect_tools(
                item.get("tools").unwrap_or(&Value::Null),
                None,
                &at,
                &mut decls,
                req,
            );
        }
    }
    // Plain functions keep their names; flattened ones take theirs unless a plain one (or an
    // earlier flattened one) has it, then their group's prefix. A repeated declaration counts
    // once.
    let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
    for d in decls
        .iter()
        .filter(|d| d.namespace.is_none() && !d.freeform)
    {
        if taken.insert(d.name.to_owned()) {
            req.tools.push(d.tool(d.name.to_owned()));
        }
    }
    for d in decls.iter().filter(|d| d.namespace.is_some() || d.freeform) {
        if req
            .aliases
            .0
            .iter()
            .any(|a| a.name == d.name && a.namespace.as_deref() == d.namespace)
        {
            continue;
        }
        let prefixed = d.namespace.map(|ns| format!("{ns}__{}", d.name));
        let Some(flat) = std::iter::once(d.name.to_owned())
            .chain(prefixed)
            .find(|n| !taken.contains(n))
        else {
            req.dropped_tools
                .push(format!("{}: {} (its name is taken)", d.at, d.name));
            continue;
        };
        taken.insert(flat.clone());
        req.aliases.0.push(ir::ToolAlias {
            flat: flat.clone(),
            namespace: d.namespace.map(str::to_owned),
            name: d.name.to_owned(),
            freeform: d.freeform,
        });
        req.tools.push(d.tool(flat));
    }
}

/// One declared function, before its name is settled.
struct Decl<'a> {
    at: String,
    namespace: Option<&'a str>,
    name: &'a str,
    freeform: bool,
    description: Option<String>,
    parameters: Value,
}

impl Decl<'_> {
    fn tool(&self, name: String) -> Tool {
        Tool {
            name,
            description: self.description.clone(),
            parameters: self.parameters.clone(),
        }
    }
}

/// A list of tools: functions and `custom` freeform tools as declarations, `namespace` groups
/// opened, tools that run on OpenAI's servers (`web_search`, ...) dropped, since no other
/// provider runs them for us.
fn collect_tools<'a>(
    list: &'a Value,
    namespace: Option<&'a str>,
    at: &str,
    out: &mut Vec<Decl<'a>>,
    req: &mut ChatRequest,
) {
    for t in list.as_array().into_iter().flatten() {
        let kind = t.get("type").and_then(Value::as_str).unwrap_or("function");
        let name = obj_str(t, "name");
        let (parameters, description, freeform) = match kind {
            "namespace" if namespace.is_none() => {
                collect_tools(
                    t.get("tools").unwrap_or(&Value::Null),
                    Some(name),
                    at,
                    out,
                    req,
                );
                continue;
            }
            "function" => (
                t.get("parameters")
                    .filter(|p| !p.is_null())
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                t.get("description")
                    .and_then(Value::as_str)
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned),
                false,
            ),
            "custom" => (freeform_parameters(), freeform_description(t), true),
            other => {
                req.dropped_tools.push(match namespace {
                    Some(ns) => format!("{at}: {ns}.{other}"),
                    None => format!("{at}: {other}"),
                });
                continue;
            }
        };
        out.push(Decl {
            at: at.to_owned(),
            namespace,
            name,
            freeform,
            description,
            parameters,
        });
    }
}
fn push(req: &mut ChatRequest, role: Role, part: Part) {
    match req.messages.last_mut() {
        Some(m) if m.role == role => m.parts.push(part),
        _ => req.messages.push(Message {
            role,
            parts: vec![part],
        }),
    }
}

fn decode_input(v: &Value, req: &mut ChatRequest) -> Result<(), Unsupported> {
    let items = match v {
        Value::String(s) => {
            push(req, Role::User, Part::Text(s.clone()));
            return Ok(());
        }
        Value::Array(items) => items,
        _ => return Err(Unsupported::new("input", "expected a string or an array")),
    };
    for (i, item) in items.iter().enumerate() {
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        match kind {
            "message" => {
                let role = obj_str(item, "role");
                let content = item.get("content").unwrap_or(&Value::Null);
                match role {
                    "system" | "developer" => match str_or_parts(content) {
                        // Before the conversation: the system prompt; within it, in place.
                        Some(t) if req.messages.is_empty() => req.system.push(t),
                        Some(t) => push(req, Role::System, Part::Text(t)),
                        None => {}
                    },
                    "assistant" => {
                        if let Some(t) = str_or_parts(content).filter(|t| !t.is_empty()) {
                            push(req, Role::Assistant, Part::Text(t));
                        }
                    }
                    _ => {
                        for part in decode_user_content(i, content)? {
                            push(req, Role::User, part);
                        }
                    }
                }
            }
            "function_call" | "custom_tool_call" => {
                let name = obj_str(item, "name");
                let namespace = item.get("namespace").and_then(Value::as_str);
                let flat = req
                    .aliases
                    .flat_of(namespace, name)
                    .unwrap_or(name)
                    .to_owned();
                let arguments = if kind == "custom_tool_call" {
                    json!({ ir::FREEFORM_ARG: obj_str(item, "input") }).to_string()
                } else {
                    obj_str(item, "arguments").to_owned()
                };
                push(
                    req,
                    Role::Assistant,
                    Part::ToolCall(ToolCall {
                        id: obj_str(item, "call_id").to_owned(),
                        name: flat,
                        arguments,
                    }),
                );
            }
            // Codex's own default model gets its tools this way rather than in `tools`.
            // Declared before the history is read (`declare_tools`).
            "additional_tools" => {}
            "function_call_output" | "custom_tool_call_output" => {
                let id = obj_str(item, "call_id").to_owned();
                let name = req
                    .messages
                    .iter()
                    .rev()
                    .flat_map(|m| m.parts.iter().rev())
                    .find_map(|p| match p {
                        Part::ToolCall(c) if c.id == id => Some(c.name.clone()),
                        _ => None,
                    });
                push(
                    req,
                    Role::User,
                    Part::ToolResult(ToolResult {
                        id,
                        name,
                        content: item
                            .get("output")
                            .and_then(str_or_parts)
                            .unwrap_or_default(),
                        is_error: false,
                    }),
                );
            }
            "reasoning" => {
                let text: String = item
                    .get("summary")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n\n");
                if !text.is_empty() {
                    push(
                        req,
                        Role::Assistant,
                        Part::Reasoning {
                            text,
                            signature: None,
                        },
                    );
                }
            }
            other => {
                return Err(Unsupported::new(
                    format!("input[{i}].type"),
                    format!("'{other}' items exist only in OpenAI's Responses API"),
                ));
            }
        }
    }
    Ok(())
}

fn decode_user_content(i: usize, content: &Value) -> Result<Vec<Part>, Unsupported> {
    let items = match content {
        Value::String(s) => return Ok(vec![Part::Text(s.clone())]),
        Value::Array(items) => items,
        _ => return Ok(Vec::new()),
    };
    let mut parts = Vec::with_capacity(items.len());
    for (j, p) in items.iter().enumerate() {
        match p.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => {
                parts.push(Part::Text(obj_str(p, "text").to_owned()));
            }
            Some("input_image") if p.get("image_url").is_some_and(Value::is_string) => {
                parts.push(Part::Image(ir::image_from_url(obj_str(p, "image_url"))));
            }
            other => {
                return Err(Unsupported::new(
                    format!("input[{i}].content[{j}].type"),
                    format!(
                        "'{}' input can only go to OpenAI; send text or images by URL",
                        other.unwrap_or("?")
                    ),
                ));
            }
        }
    }
    Ok(parts)
}

fn base_id(id: &str) -> String {
    let id = ["msg_", "chatcmpl-", "resp_"]
        .iter()
        .find_map(|p| id.strip_prefix(p))
        .unwrap_or(id);
    let clean: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    if clean.is_empty() {
        format!("{:x}", unix_now())
    } else {
        clean
    }
}

fn item_id(prefix: &str, base: &str, index: usize) -> String {
    format!("{prefix}_{base}_{index}")
}

fn encode_usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input.unwrap_or(0),
        "input_tokens_details": {"cached_tokens": u.cached.unwrap_or(0)},
        "output_tokens": u.output.unwrap_or(0),
        "output_tokens_details": {"reasoning_tokens": u.reasoning.unwrap_or(0)},
        "total_tokens": u.total(),
    })
}

fn text_item(id: String, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

fn reasoning_item(id: String, text: &str) -> Value {
    json!({"type": "reasoning", "id": id,
        "summary": [{"type": "summary_text", "text": text}]})
}

/// A call as the client declared its tool: a function (in its namespace, if any), or a
/// freeform tool's `custom_tool_call` with the text it takes.
fn call_item(id: String, c: &ToolCall, status: &str, aliases: &ToolAliases) -> Value {
    match aliases.by_flat(&c.name) {
        Some(a) => {
            let mut v = if a.freeform {
                json!({"type": "custom_tool_call", "id": id, "call_id": c.id, "name": a.name,
                    "input": ir::freeform_input(&c.arguments), "status": status})
            } else {
                json!({"type": "function_call", "id": id, "call_id": c.id, "name": a.name,
                    "arguments": c.arguments, "status": status})
            };
            if let Some(ns) = &a.namespace {
                v["namespace"] = ns.as_str().into();
            }
            v
        }
        None => json!({"type": "function_call", "id": id, "call_id": c.id, "name": c.name,
            "arguments": c.arguments, "status": status}),
    }
}

fn response(
    id: &str,
    model: &str,
    status: &str,
    output: Vec<Value>,
    usage: Option<&Usage>,
    finish: Option<Finish>,
) -> Value {
    let incomplete = match finish {
        Some(Finish::Length) => json!({"reason": "max_output_tokens"}),
        Some(Finish::ContentFilter) => json!({"reason": "content_filter"}),
        _ => Value::Null,
    };
    json!({
        "id": format!("resp_{id}"),
        "object": "response",
        "created_at": unix_now(),
        "status": status,
        "error": null,
        "incomplete_details": incomplete,
        "instructions": null,
        "metadata": {},
        "model": model,
        "output": output,
        "parallel_tool_calls": true,
        "temperature": null,
        "tool_choice": "auto",
        "tools": [],
        "top_p": null,
        "usage": usage.map_or(Value::Null, encode_usage),
    })
}

fn final_status(finish: Option<Finish>) -> &'static str {
    match finish {
        Some(Finish::Length | Finish::ContentFilter) => "incomplete",
        _ => "completed",
    }
}

pub fn encode_reply(r: &Reply, aliases: &ToolAliases) -> Value {
    let base = base_id(&r.id);
    let output: Vec<Value> = r
        .parts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Part::Text(t) => Some(text_item(item_id("msg", &base, i), t, "completed")),
            Part::Reasoning { text, .. } => Some(reasoning_item(item_id("rs", &base, i), text)),
            Part::ToolCall(c) => Some(call_item(item_id("fc", &base, i), c, "completed", aliases)),
            _ => None,
        })
        .collect();
    response(
        &base,
        &r.model,
        final_status(r.finish),
        output,
        Some(&r.usage),
        r.finish,
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Reasoning,
    Tool(usize),
}

/// Writes events as a Responses stream, ending with the whole response in
/// `response.completed`.
#[derive(Debug, Default)]
pub struct StreamEncoder {
    seq: u64,
    failed: bool,
    base: String,
    model: String,
    started: bool,
    open: Option<(Open, String)>,
    /// The text or arguments of the open item so far, for its `done` events.
    buf: String,
    call: Option<ToolCall>,
    items: Vec<Value>,
    finish: Option<Finish>,
    usage: Usage,
    aliases: ToolAliases,
}

impl StreamEncoder {
    pub fn new(aliases: ToolAliases) -> Self {
        Self {
            aliases,
            ..Self::default()
        }
    }

    /// A freeform tool's call: its text is known only once its arguments are whole, so it
    /// gets no argument deltas, only the finished item.
    fn freeform(&self, name: &str) -> bool {
        self.aliases.by_flat(name).is_some_and(|a| a.freeform)
    }

    fn emit(&mut self, kind: &str, mut data: Value, out: &mut BytesMut) {
        data["type"] = kind.into();
        data["sequence_number"] = self.seq.into();
        self.seq += 1;
        sse::write_event(out, kind, &data);
    }

    fn start(&mut self, id: &str, model: &str, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        self.base = base_id(id);
        model.clone_into(&mut self.model);
        let r = response(&self.base, model, "in_progress", Vec::new(), None, None);
        self.emit("response.created", json!({"response": r}), out);
        self.emit("response.in_progress", json!({"response": r}), out);
    }

    fn close(&mut self, out: &mut BytesMut) {
        let Some((kind, id)) = self.open.take() else {
            return;
        };
        let index = self.items.len();
        let text = std::mem::take(&mut self.buf);
        let item = match kind {
            Open::Text => {
                self.emit(
                    "response.output_text.done",
                    json!({"item_id": id,
                    "output_index": index, "content_index": 0, "text": text}),
                    out,
                );
                self.emit(
                    "response.content_part.done",
                    json!({"item_id": id,
                    "output_index": index, "content_index": 0,
                    "part": {"type": "output_text", "text": text, "annotations": []}}),
                    out,
                );
                text_item(id, &text, "completed")
            }
            Open::Reasoning => {
                self.emit(
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id,
                    "output_index": index, "summary_index": 0, "text": text}),
                    out,
                );
                self.emit(
                    "response.reasoning_summary_part.done",
                    json!({"item_id": id,
                    "output_index": index, "summary_index": 0,
                    "part": {"type": "summary_text", "text": text}}),
                    out,
                );
                reasoning_item(id, &text)
            }
            Open::Tool(_) => {
                let mut call = self.call.take().unwrap_or(ToolCall {
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
                // A call with no arguments still needs valid JSON for them.
                call.arguments = if text.is_empty() {
                    "{}".to_owned()
                } else {
                    text
                };
                if !self.freeform(&call.name) {
                    self.emit(
                        "response.function_call_arguments.done",
                        json!({"item_id": id,
                        "output_index": index, "arguments": call.arguments}),
                        out,
                    );
                }
                call_item(id, &call, "completed", &self.aliases)
            }
        };
        self.emit(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
            out,
        );
        self.items.push(item);
    }

    fn open(&mut self, kind: Open, out: &mut BytesMut) -> String {
        self.close(out);
        let index = self.items.len();
        let (prefix, item) = match kind {
            Open::Text => (
                "msg",
                json!({"type": "message", "status": "in_progress",
                "role": "assistant", "content": []}),
            ),
            Open::Reasoning => ("rs", json!({"type": "reasoning", "summary": []})),
            Open::Tool(_) => {
                let c = self.call.clone().unwrap_or(ToolCall {
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
                (
                    "fc",
                    call_item(String::new(), &c, "in_progress", &self.aliases),
                )
            }
        };
        let id = item_id(prefix, &self.base, index);
        let mut item = item;
        item["id"] = id.clone().into();
        self.emit(
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
            out,
        );
        match kind {
            Open::Text => self.emit(
                "response.content_part.added",
                json!({"item_id": id,
                "output_index": index, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []}}),
                out,
            ),
            Open::Reasoning => self.emit(
                "response.reasoning_summary_part.added",
                json!({
                "item_id": id, "output_index": index, "summary_index": 0,
                "part": {"type": "summary_text", "text": ""}}),
                out,
            ),
            Open::Tool(_) => {}
        }
        self.open = Some((kind, id.clone()));
        id
    }

    fn open_id(&mut self, kind: Open, out: &mut BytesMut) -> String {
        match &self.open {
            Some((k, id)) if *k == kind => id.clone(),
            _ => self.open(kind, out),
        }
    }

    pub fn event(&mut self, ev: &Event, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        if let Event::Start { id, model } = ev {
            return self.start(id, model, out);
        }
        self.start("", "", out);
        let index = self.items.len();
        match ev {
            Event::Start { .. } | Event::Signature(_) => {}
            Event::Text(t) => {
                let id = self.open_id(Open::Text, out);
                self.buf.push_str(t);
                self.emit(
                    "response.output_text.delta",
                    json!({"item_id": id,
                    "output_index": self.items.len(), "content_index": 0, "delta": t}),
                    out,
                );
            }
            Event::Reasoning(t) => {
                let id = self.open_id(Open::Reasoning, out);
                self.buf.push_str(t);
                self.emit(
                    "response.reasoning_summary_text.delta",
                    json!({"item_id": id,
                    "output_index": self.items.len(), "summary_index": 0, "delta": t}),
                    out,
                );
            }
            Event::ToolStart {
                index: tool,
                id,
                name,
            } => {
                self.close(out);
                self.call = Some(ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                });
                self.open(Open::Tool(*tool), out);
            }
            Event::ToolArgs { index: tool, delta } => match &self.open {
                Some((Open::Tool(t), id)) if t == tool => {
                    let id = id.clone();
                    self.buf.push_str(delta);
                    if self.call.as_ref().is_some_and(|c| self.freeform(&c.name)) {
                        return;
                    }
                    self.emit(
                        "response.function_call_arguments.delta",
                        json!({"item_id": id,
                        "output_index": index, "delta": delta}),
                        out,
                    );
                }
                _ => tracing::warn!(
                    tool,
                    "arguments for a tool call that is no longer open; dropped"
                ),
            },
            Event::Finish(f) => self.finish = Some(*f),
            Event::Usage(u) => self.usage.merge(*u),
            Event::Error { status, message } => self.fail(*status, message, out),
        }
    }

    pub fn end(&mut self, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        self.start("", "", out);
        self.close(out);
        let status = final_status(self.finish);
        let r = response(
            &self.base,
            &self.model,
            status,
            std::mem::take(&mut self.items),
            Some(&self.usage),
            self.finish,
        );
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.emit(kind, json!({"response": r}), out);
    }

    /// An `error` event, then `response.failed`: clients that wait for the final response
    /// (openai-python does not raise on `error`) see it failed, not completed.
    pub fn fail(&mut self, status: u16, message: &str, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        self.failed = true;
        let code = super::gemini::status_name(status).to_ascii_lowercase();
        self.emit(
            "error",
            json!({"code": code, "message": message, "param": null}),
            out,
        );
        let mut r = response(
            &self.base,
            &self.model,
            "failed",
            std::mem::take(&mut self.items),
            Some(&self.usage),
            None,
        );
        r["error"] = json!({"code": code, "message": message});
        self.emit("response.failed", json!({"response": r}), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_items_become_history() {
        let body = json!({
            "instructions": "be brief",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "weather?"},
                    {"type": "input_image", "image_url": "https://x/y.png"}]},
                {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            ],
            "store": false,
        });
        let mut notes = Notes::default();
        let req = decode_request(&body, &mut notes).unwrap();
        assert_eq!(req.system, vec!["be brief"]);
        assert_eq!(req.messages.len(), 3);
        assert!(matches!(&req.messages[2].parts[0],
            Part::ToolResult(r) if r.name.as_deref() == Some("weather")));
        let e = decode_request(
            &json!({"input": "x", "previous_response_id": "resp_1"}),
            &mut notes,
        )
        .unwrap_err();
        assert_eq!(e.field, "previous_response_id");
        // A tool OpenAI runs is left out, and said; forcing it is refused.
        let req = decode_request(
            &json!({"input": "x", "tools": [{"type": "web_search"},
                {"type": "function", "name": "f", "parameters": {"type": "object"}}]}),
            &mut notes,
        )
        .unwrap();
        assert_eq!(req.dropped_tools, ["tools: web_search"]);
        assert_eq!(req.tools.len(), 1);
        let e = decode_request(
            &json!({"input": "x", "tools": [{"type": "web_search"}],
                "tool_choice": {"type": "web_search"}}),
            &mut notes,
        )
        .unwrap_err();
        assert_eq!(e.field, "tool_choice");
    }

    /// Codex's shapes: a `namespace` group and a freeform `custom` tool (here in an
    /// `additional_tools` item, as its default model sends them), and their calls in history.
    #[test]
    fn namespaces_and_freeform_tools_are_flattened_and_named_back() {
        let body = json!({
            "input": [
                {"type": "additional_tools", "role": "developer", "tools": [
                    {"type": "namespace", "name": "functions", "tools": [
                        {"type": "custom", "name": "exec", "description": "Run JavaScript",
                            "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
                        {"type": "function", "name": "wait", "parameters": {"type": "object"}}]},
                    {"type": "namespace", "name": "clock", "tools": [
                        {"type": "function", "name": "wait", "parameters": {"type": "object"}}]}]},
                {"role": "user", "content": "run it"},
                {"type": "custom_tool_call", "call_id": "c1", "name": "exec", "input": "text(1)"},
                {"type": "custom_tool_call_output", "call_id": "c1",
                    "output": [{"type": "input_text", "text": "1"}]},
                {"type": "message", "role": "developer", "content": "mid-turn note"},
            ],
        });
        let req = decode_request(&body, &mut Notes::default()).unwrap();
        let names: Vec<&str> = req.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["exec", "wait", "clock__wait"]);
        assert_eq!(req.tools[0].parameters["required"], json!(["input"]));
        assert!(
            req.tools[0]
                .description
                .as_deref()
                .unwrap()
                .contains("lark grammar")
        );
        // The history's call carries its text as the one argument; the result reads as text.
        assert!(matches!(&req.messages[1].parts[0],
            Part::ToolCall(c) if c.name == "exec" && c.arguments == r#"{"input":"text(1)"}"#));
        assert!(matches!(&req.messages[2].parts[0],
            Part::ToolResult(r) if r.content == "1" && r.name.as_deref() == Some("exec")));
        // A developer message after the conversation began stays in place.
        assert_eq!(req.messages[3].role, Role::System);

        let reply = Reply {
            id: "r".into(),
            parts: vec![
                Part::ToolCall(ToolCall {
                    id: "c2".into(),
                    name: "exec".into(),
                    arguments: r#"{"input":"text(2)"}"#.into(),
                }),
                Part::ToolCall(ToolCall {
                    id: "c3".into(),
                    name: "clock__wait".into(),
                    arguments: "{}".into(),
                }),
            ],
            ..Default::default()
        };
        let out = encode_reply(&reply, &req.aliases);
        assert_eq!(out["output"][0]["type"], "custom_tool_call");
        assert_eq!(out["output"][0]["input"], "text(2)");
        assert_eq!(out["output"][1]["name"], "wait");
        assert_eq!(out["output"][1]["namespace"], "clock");

        // History is named by the declarations wherever they are, `input` before `tools`
        // included; a plain function keeps its name and a group's tool of the same name is
        // prefixed; a repeated declaration counts once.
        let body = json!({
            "input": [
                {"role": "user", "content": "go"},
                {"type": "function_call", "call_id": "c1", "namespace": "clock", "name": "wait",
                    "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            ],
            "tools": [
                {"type": "function", "name": "wait", "parameters": {"type": "object"}},
                {"type": "namespace", "name": "clock", "tools": [
                    {"type": "function", "name": "wait", "parameters": {"type": "object"}}]},
                {"type": "function", "name": "wait", "parameters": {"type": "object"}},
            ],
        });
        let r = decode_request(&body, &mut Notes::default()).unwrap();
        let names: Vec<&str> = r.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["wait", "clock__wait"]);
        assert!(matches!(&r.messages[1].parts[0],
            Part::ToolCall(c) if c.name == "clock__wait"));

        // Streamed: the freeform call's text arrives whole in its item, no argument deltas.
        let mut enc = StreamEncoder::new(req.aliases.clone());
        let mut out = BytesMut::new();
        for ev in [
            Event::ToolStart {
                index: 0,
                id: "c2".into(),
                name: "exec".into(),
            },
            Event::ToolArgs {
                index: 0,
                delta: r#"{"input":"#.into(),
            },
            Event::ToolArgs {
                index: 0,
                delta: r#""text(2)"}"#.into(),
            },
            Event::Finish(Finish::ToolCalls),
        ] {
            enc.event(&ev, &mut out);
        }
        enc.end(&mut out);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(!text.contains("function_call_arguments"), "{text}");
        let last = text.trim_end().rsplit("data: ").next().unwrap();
        let v: Value = serde_json::from_str(last).unwrap();
        assert_eq!(v["response"]["output"][0]["type"], "custom_tool_call");
        assert_eq!(v["response"]["output"][0]["input"], "text(2)");
    }

    #[test]
    fn stream_ends_with_the_whole_response() {
        let mut enc = StreamEncoder::default();
        let mut out = BytesMut::new();
        for ev in [
            Event::Start {
                id: "abc".into(),
                model: "m".into(),
            },
            Event::Text("Hi".into()),
            Event::ToolStart {
                index: 0,
                id: "call_9".into(),
                name: "f".into(),
            },
            Event::ToolArgs {
                index: 0,
                delta: "{\"a\":".into(),
            },
            Event::ToolArgs {
                index: 0,
                delta: "1}".into(),
            },
            Event::Finish(Finish::ToolCalls),
        ] {
            enc.event(&ev, &mut out);
        }
        enc.end(&mut out);
        let text = String::from_utf8(out.to_vec()).unwrap();
        let last = text.trim_end().rsplit("data: ").next().unwrap();
        let v: Value = serde_json::from_str(last).unwrap();
        assert_eq!(v["type"], "response.completed");
        let output = &v["response"]["output"];
        assert_eq!(output[0]["content"][0]["text"], "Hi");
        assert_eq!(output[1]["arguments"], "{\"a\":1}");
        assert_eq!(output[1]["call_id"], "call_9");
    }
}
