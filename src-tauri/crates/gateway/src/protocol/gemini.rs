//! Gemini generateContent in the neutral form: requests both ways, replies both ways, and
//! streams both ways (server-sent events, and the JSON-array form for clients that ask for it).

use std::borrow::Cow;

use bytes::BytesMut;
use serde_json::{Map, Value, json};

use super::ir::{
    self, ChatRequest, Effort, Event, Finish, Image, Message, Notes, Part, Reply, ResponseFormat,
    Role, Tool, ToolCall, ToolChoice, ToolResult, Unsupported, Usage,
};
use super::sse::{self, Frame};
use super::{num, obj_str, string_list};

const TARGET: &str = "Gemini";

/// Gemini 3 refuses a function call in the history without the thought signature it was
/// made with; calls made elsewhere have none. Google documents this value for such history.
const FOREIGN_SIGNATURE: &str = "skip_thought_signature_validator";

/// The REST API takes both `systemInstruction` and `system_instruction`; so do we.
fn camel(key: &str) -> Cow<'_, str> {
    if !key.contains('_') {
        return Cow::Borrowed(key);
    }
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn field<'a>(v: &'a Value, camel_key: &str) -> Option<&'a Value> {
    let o = v.as_object()?;
    o.get(camel_key).or_else(|| {
        o.iter()
            .find(|(k, _)| camel(k) == camel_key)
            .map(|(_, v)| v)
    })
}

/// Ids for calls that came without one, and the matching of responses to them by name.
#[derive(Default)]
struct CallIds {
    open: Vec<(String, String)>,
    made: usize,
    /// Set for replies: a client sends each reply's ids back in its history, so they must
    /// differ from turn to turn. A request's ids are only numbered, so that the same history
    /// converts the same way every time (and keeps hitting the provider's prompt cache).
    salt: Option<u64>,
}

impl CallIds {
    fn call(&mut self, id: Option<&str>, name: &str) -> String {
        let id = match id.filter(|s| !s.is_empty()) {
            Some(id) => id.to_owned(),
            None => self.make(),
        };
        self.open.push((id.clone(), name.to_owned()));
        id
    }

    /// Ids for a reply: from its `responseId` (unique per reply, and the same however the
    /// stream is cut), else random.
    fn for_reply(response_id: &str) -> Self {
        let salt = if response_id.is_empty() {
            fastrand::u64(..)
        } else {
            // FNV-1a: stable across runs and platforms, unlike the std hasher.
            response_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            })
        };
        Self {
            salt: Some(salt >> 16),
            ..Self::default()
        }
    }

    fn make(&mut self) -> String {
        self.made += 1;
        match self.salt {
            Some(salt) => format!("call_{salt:012x}_{}", self.made),
            None => format!("call_{}", self.made),
        }
    }

    fn response(&mut self, id: Option<&str>, name: &str) -> String {
        if let Some(id) = id.filter(|s| !s.is_empty()) {
            self.open.retain(|(i, _)| i != id);
            return id.to_owned();
        }
        match self.open.iter().position(|(_, n)| n == name) {
            Some(at) => self.open.remove(at).0,
            None => self.make(),
        }
    }
}

pub fn decode_request(body: &Value, notes: &mut Notes) -> Result<ChatRequest, Unsupported> {
    let obj = body
        .as_object()
        .ok_or_else(|| Unsupported::new("body", "expected a JSON object"))?;
    let mut req = ChatRequest::default();
    let mut ids = CallIds::default();
    for (key, v) in obj {
        match &*camel(key) {
            "contents" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| Unsupported::new("contents", "expected an array"))?;
                for (i, c) in list.iter().enumerate() {
                    let role = match c.get("role").and_then(Value::as_str) {
                        Some("model") => Role::Assistant,
                        _ => Role::User,
                    };
                    let parts = decode_parts(&format!("contents[{i}]"), c, &mut ids, false)?;
                    req.messages.push(Message { role, parts });
                }
            }
            "systemInstruction" => {
                let text = text_of(v);
                if !text.is_empty() {
                    req.system.push(text);
                }
            }
            "tools" => {
                for (i, t) in v.as_array().into_iter().flatten().enumerate() {
                    let Some(decls) = field(t, "functionDeclarations") else {
                        let kind = t
                            .as_object()
                            .and_then(|o| o.keys().next())
                            .map_or("?", String::as_str);
                        return Err(Unsupported::new(
                            format!("tools[{i}].{kind}"),
                            "only function declarations can be converted",
                        ));
                    };
                    for d in decls.as_array().into_iter().flatten() {
                        req.tools.push(Tool {
                            name: obj_str(d, "name").to_owned(),
                            description: d
                                .get("description")
                                .and_then(Value::as_str)
                                .map(str::to_owned),
                            parameters: field(d, "parametersJsonSchema")
                                .or_else(|| field(d, "parameters"))
                                .map(lower_types)
                                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                        });
                    }
                }
            }
            "toolConfig" => {
                let c = field(v, "functionCallingConfig").unwrap_or(&Value::Null);
                let names: Vec<&str> = field(c, "allowedFunctionNames")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                req.tool_choice = match c.get("mode").and_then(Value::as_str) {
                    Some("ANY") | Some("VALIDATED") if names.len() == 1 => {
                        Some(ToolChoice::Named(names[0].to_owned()))
                    }
                    Some("ANY") => Some(ToolChoice::Required),
                    Some("NONE") => Some(ToolChoice::None),
                    Some("AUTO") => Some(ToolChoice::Auto),
                    _ => None,
                };
            }
            "generationConfig" => decode_generation_config(v, &mut req, notes)?,
            "cachedContent" => {
                return Err(Unsupported::new(
                    "cachedContent",
                    "a Gemini context cache exists only on Gemini",
                ));
            }
            "model" => {}
            k => notes.dropped(k, "the target protocol"),
        }
    }
    Ok(req)
}

fn decode_generation_config(
    v: &Value,
    req: &mut ChatRequest,
    notes: &mut Notes,
) -> Result<(), Unsupported> {
    let Some(o) = v.as_object() else {
        return Ok(());
    };
    let mut json_mime = false;
    let mut schema = None;
    for (key, v) in o {
        match &*camel(key) {
            "temperature" => req.temperature = v.as_f64(),
            "topP" => req.top_p = v.as_f64(),
            "topK" => req.top_k = v.as_f64().map(|k| k as u64),
            "maxOutputTokens" => req.max_tokens = v.as_u64(),
            "stopSequences" => {
                req.stop = string_list(v);
            }
            "candidateCount" => {
                if v.as_u64().is_some_and(|n| n > 1) {
                    return Err(Unsupported::new(
                        "generationConfig.candidateCount",
                        "the target returns one candidate per request",
                    ));
                }
            }
            "responseMimeType" => json_mime = v.as_str() == Some("application/json"),
            "responseSchema" | "responseJsonSchema" => schema = Some(lower_types(v)),
            "thinkingConfig" => {
                if let Some(b) = field(v, "thinkingBudget").and_then(Value::as_i64) {
                    req.reasoning = Some(if b < 0 {
                        Effort::Medium
                    } else {
                        Effort::from_budget(b)
                    });
                } else if let Some(l) = field(v, "thinkingLevel").and_then(Value::as_str) {
                    req.reasoning = Effort::parse(&l.to_ascii_lowercase());
                }
            }
            k => notes.dropped(&format!("generationConfig.{k}"), "the target protocol"),
        }
    }
    req.response_format = match (json_mime, schema) {
        (_, Some(schema)) => Some(ResponseFormat::Schema {
            name: "response".into(),
            schema,
            strict: None,
        }),
        (true, None) => Some(ResponseFormat::Json),
        (false, None) => None,
    };
    Ok(())
}

/// Gemini's OpenAPI-style schemas spell types in capitals (`OBJECT`); JSON schema wants them
/// in lower case.
fn lower_types(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("type", Value::String(t)) => Value::String(t.to_ascii_lowercase()),
                        _ => lower_types(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lower_types).collect()),
        other => other.clone(),
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        _ => field(v, "parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
    }
}

/// `lenient`: skip parts that cannot be carried (a reply's code execution) instead of refusing.
fn decode_parts(
    at: &str,
    content: &Value,
    ids: &mut CallIds,
    lenient: bool,
) -> Result<Vec<Part>, Unsupported> {
    let mut parts = Vec::new();
    for (j, p) in field(content, "parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            if p.get("thought").and_then(Value::as_bool) == Some(true) {
                parts.push(Part::Reasoning {
                    text: t.to_owned(),
                    signature: None,
                });
            } else {
                parts.push(Part::Text(t.to_owned()));
            }
        } else if let Some(d) = field(p, "inlineData") {
            parts.push(Part::Image(Image::Base64 {
                media_type: field(d, "mimeType")
                    .and_then(Value::as_str)
                    .unwrap_or("image/jpeg")
                    .to_owned(),
                data: obj_str(d, "data").to_owned(),
            }));
        } else if let Some(d) = field(p, "fileData") {
            parts.push(Part::Image(Image::Url(
                field(d, "fileUri")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            )));
        } else if let Some(c) = field(p, "functionCall") {
            let name = obj_str(c, "name");
            parts.push(Part::ToolCall(ToolCall {
                id: ids.call(c.get("id").and_then(Value::as_str), name),
                name: name.to_owned(),
                arguments: c
                    .get("args")
                    .map_or_else(|| "{}".to_owned(), Value::to_string),
            }));
        } else if let Some(r) = field(p, "functionResponse") {
            let name = obj_str(r, "name");
            let response = r.get("response").unwrap_or(&Value::Null);
            let (content, is_error) = match (response.get("output"), response.get("error")) {
                (Some(Value::String(s)), _)
                    if response.as_object().is_some_and(|o| o.len() == 1) =>
                {
                    (s.clone(), false)
                }
                (None, Some(Value::String(s)))
                    if response.as_object().is_some_and(|o| o.len() == 1) =>
                {
                    (s.clone(), true)
                }
                _ => (response.to_string(), false),
            };
            parts.push(Part::ToolResult(ToolResult {
                id: ids.response(r.get("id").and_then(Value::as_str), name),
                name: Some(name.to_owned()),
                content,
                is_error,
            }));
        } else if lenient
            || (p.get("thoughtSignature").is_some() && p.as_object().is_some_and(|o| o.len() == 1))
        {
            // A bare signature part, or (in a reply) a part other protocols cannot show.
        } else {
            let kind = p
                .as_object()
                .and_then(|o| o.keys().find(|k| *k != "thoughtSignature"))
                .map_or("?", String::as_str);
            return Err(Unsupported::new(
                format!("{at}.parts[{j}].{kind}"),
                "only text, images, function calls and function responses can be converted",
            ));
        }
    }
    Ok(parts)
}

pub fn encode_request(req: &ChatRequest, notes: &mut Notes) -> Value {
    let mut out = Map::new();
    // Names of calls, for results that come without one (OpenAI's, Responses').
    let names: Vec<(&str, &str)> = req
        .messages
        .iter()
        .flat_map(|m| &m.parts)
        .filter_map(|p| match p {
            Part::ToolCall(c) => Some((c.id.as_str(), c.name.as_str())),
            _ => None,
        })
        .collect();
    let (system, messages) = req.folded_system();
    let mut contents = Vec::with_capacity(messages.len());
    for m in ir::merge_same_roles(messages) {
        let mut parts = Vec::with_capacity(m.parts.len());
        for p in &m.parts {
            match p {
                // Gemini refuses an empty text part.
                Part::Text(t) if t.is_empty() => {}
                Part::Text(t) => parts.push(json!({"text": t})),
                Part::Image(Image::Base64 { media_type, data }) => {
                    parts.push(json!({"inlineData": {"mimeType": media_type, "data": data}}));
                }
                Part::Image(Image::Url(url)) => parts.push(json!({"fileData": {
                    "mimeType": ir::media_type_of_url(url), "fileUri": url}})),
                Part::Reasoning { .. } => {}
                Part::ToolCall(c) => {
                    parts.push(json!({
                        "functionCall": {"id": c.id, "name": c.name, "args": ir::arguments_object(&c.arguments)},
                        "thoughtSignature": FOREIGN_SIGNATURE,
                    }));
                }
                Part::ToolResult(r) => {
                    let name = r.name.clone().unwrap_or_else(|| {
                        names
                            .iter()
                            .rev()
                            .find(|(id, _)| *id == r.id)
                            .map_or_else(String::new, |(_, n)| (*n).to_owned())
                    });
                    let key = if r.is_error { "error" } else { "output" };
                    parts.push(json!({"functionResponse": {
                        "id": r.id, "name": name, "response": {key: r.content}}}));
                }
            }
        }
        if parts.is_empty() {
            continue;
        }
        contents.push(json!({
            "role": if m.role == Role::User { "user" } else { "model" },
            "parts": parts,
        }));
    }
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        out.insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": system.join("\n\n")}]}),
        );
    }
    if !req.tools.is_empty() {
        // JSON schema as it is: `parameters` takes only an OpenAPI subset and refuses common
        // keywords (`format: uri`, `$ref`, type arrays, empty properties).
        let decls: Vec<Value> = req
            .tools
            .iter()
            .map(|t| t.declaration("parametersJsonSchema"))
            .collect();
        out.insert("tools".into(), json!([{"functionDeclarations": decls}]));
    }
    if let Some(c) = &req.tool_choice {
        let config = match c {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Named(n) => json!({"mode": "ANY", "allowedFunctionNames": [n]}),
        };
        out.insert(
            "toolConfig".into(),
            json!({"functionCallingConfig": config}),
        );
    }
    let mut config = Map::new();
    if let Some(t) = req.temperature {
        config.insert("temperature".into(), num(t));
    }
    if let Some(p) = req.top_p {
        config.insert("topP".into(), num(p));
    }
    if let Some(k) = req.top_k {
        config.insert("topK".into(), k.into());
    }
    if let Some(m) = req.max_tokens {
        config.insert("maxOutputTokens".into(), m.into());
    }
    if !req.stop.is_empty() {
        config.insert("stopSequences".into(), json!(req.stop));
    }
    match &req.response_format {
        Some(ResponseFormat::Json) => {
            config.insert("responseMimeType".into(), "application/json".into());
        }
        Some(ResponseFormat::Schema { schema, .. }) => {
            config.insert("responseMimeType".into(), "application/json".into());
            config.insert("responseJsonSchema".into(), schema.clone());
        }
        None => {}
    }
    match req.reasoning {
        // Some models (2.5 Pro) cannot think less than their minimum: leave them their default.
        Some(Effort::Off) => {}
        Some(e) => {
            config.insert(
                "thinkingConfig".into(),
                json!({"thinkingBudget": e.budget(), "includeThoughts": true}),
            );
        }
        None => {}
    }
    if req.parallel_tool_calls.is_some() {
        notes.dropped("parallel_tool_calls", TARGET);
    }
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }
    Value::Object(out)
}

fn finish_str(f: Finish) -> &'static str {
    match f {
        Finish::Stop | Finish::ToolCalls => "STOP",
        Finish::Length => "MAX_TOKENS",
        Finish::ContentFilter => "SAFETY",
    }
}

fn finish_of(s: &str) -> Finish {
    match s {
        "MAX_TOKENS" => Finish::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            Finish::ContentFilter
        }
        _ => Finish::Stop,
    }
}

fn decode_usage(u: &Value) -> Usage {
    let get = |k: &str| field(u, k).and_then(Value::as_u64);
    let thoughts = get("thoughtsTokenCount");
    Usage {
        input: get("promptTokenCount"),
        output: get("candidatesTokenCount")
            .map(|c| c + thoughts.unwrap_or(0))
            .or(thoughts),
        cached: get("cachedContentTokenCount"),
        reasoning: thoughts,
    }
}

fn encode_usage(u: &Usage) -> Value {
    let output = u.output.unwrap_or(0);
    let mut v = json!({
        "promptTokenCount": u.input.unwrap_or(0),
        "candidatesTokenCount": output.saturating_sub(u.reasoning.unwrap_or(0)),
        "totalTokenCount": u.total(),
    });
    if let Some(c) = u.cached {
        v["cachedContentTokenCount"] = c.into();
    }
    if let Some(r) = u.reasoning {
        v["thoughtsTokenCount"] = r.into();
    }
    v
}

pub fn decode_reply(body: &Value) -> Reply {
    let mut ids = CallIds::for_reply(
        field(body, "responseId")
            .and_then(Value::as_str)
            .unwrap_or(""),
    );
    let mut parts = Vec::new();
    let cand = body.pointer("/candidates/0").unwrap_or(&Value::Null);
    if let Some(c) = cand.get("content") {
        // Parts this reader cannot carry (code execution) are left out of a reply.
        let mut ok = decode_parts("candidates[0].content", c, &mut ids, true).unwrap_or_default();
        parts.append(&mut ok);
    }
    let blocked = cand.is_null() && body.pointer("/promptFeedback/blockReason").is_some();
    let finish = if blocked {
        Some(Finish::ContentFilter)
    } else {
        field(cand, "finishReason")
            .and_then(Value::as_str)
            .map(finish_of)
            .map(|f| {
                let has_calls = parts.iter().any(|p| matches!(p, Part::ToolCall(_)));
                if f == Finish::Stop && has_calls {
                    Finish::ToolCalls
                } else {
                    f
                }
            })
    };
    Reply {
        id: field(body, "responseId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        model: field(body, "modelVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        parts,
        finish,
        usage: field(body, "usageMetadata")
            .map(decode_usage)
            .unwrap_or_default(),
    }
}

fn encode_parts(parts: &[Part]) -> Vec<Value> {
    parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(json!({"text": t})),
            Part::Reasoning { text, .. } => Some(json!({"text": text, "thought": true})),
            Part::ToolCall(c) => Some(json!({"functionCall": {
                "id": c.id, "name": c.name, "args": ir::arguments_object(&c.arguments)}})),
            _ => None,
        })
        .collect()
}

pub fn encode_reply(r: &Reply) -> Value {
    let mut parts = encode_parts(&r.parts);
    if parts.is_empty() {
        parts.push(json!({"text": ""}));
    }
    json!({
        "candidates": [{
            "content": {"role": "model", "parts": parts},
            "finishReason": finish_str(r.finish_or_implied()),
            "index": 0,
        }],
        "usageMetadata": encode_usage(&r.usage),
        "modelVersion": r.model,
        "responseId": r.id,
    })
}

/// Reads a Gemini stream (`alt=sse`) into events.
#[derive(Default)]
pub struct StreamDecoder {
    started: bool,
    tools: usize,
    ids: CallIds,
    saw_calls: bool,
    /// A finish reason arrived: the stream ended as it should.
    pub complete: bool,
}

impl StreamDecoder {
    pub fn frame(&mut self, f: &Frame, out: &mut Vec<Event>) {
        let Ok(v) = serde_json::from_str::<Value>(&f.data) else {
            return;
        };
        self.chunk(&v, out);
    }

    pub fn chunk(&mut self, v: &Value, out: &mut Vec<Event>) {
        if let Some(e) = v.get("error") {
            out.push(Event::Error {
                status: e
                    .get("code")
                    .and_then(Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(500),
                message: obj_str(e, "message").to_owned(),
            });
            return;
        }
        if !self.started {
            self.started = true;
            self.ids =
                CallIds::for_reply(field(v, "responseId").and_then(Value::as_str).unwrap_or(""));
            out.push(Event::Start {
                id: field(v, "responseId")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                model: field(v, "modelVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            });
        }
        if v.pointer("/promptFeedback/blockReason").is_some() {
            self.complete = true;
            out.push(Event::Finish(Finish::ContentFilter));
        }
        let cand = v.pointer("/candidates/0").unwrap_or(&Value::Null);
        for p in cand
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = p.get("text").and_then(Value::as_str) {
                if t.is_empty() {
                    continue;
                }
                if p.get("thought").and_then(Value::as_bool) == Some(true) {
                    out.push(Event::Reasoning(t.to_owned()));
                } else {
                    out.push(Event::Text(t.to_owned()));
                }
            } else if let Some(c) = field(p, "functionCall") {
                let name = obj_str(c, "name");
                let index = self.tools;
                self.tools += 1;
                self.saw_calls = true;
                out.push(Event::ToolStart {
                    index,
                    id: self.ids.call(c.get("id").and_then(Value::as_str), name),
                    name: name.to_owned(),
                });
                out.push(Event::ToolArgs {
                    index,
                    delta: c
                        .get("args")
                        .map_or_else(|| "{}".to_owned(), Value::to_string),
                });
            }
        }
        if let Some(r) = field(cand, "finishReason").and_then(Value::as_str) {
            self.complete = true;
            let f = finish_of(r);
            out.push(Event::Finish(if f == Finish::Stop && self.saw_calls {
                Finish::ToolCalls
            } else {
                f
            }));
        }
        if let Some(u) = field(v, "usageMetadata") {
            out.push(Event::Usage(decode_usage(u)));
        }
    }
}

/// Writes events as a Gemini stream: server-sent events, or one JSON array written piece by
/// piece for clients that did not ask for `alt=sse`.
pub struct StreamEncoder {
    array: bool,
    written: bool,
    id: String,
    model: String,
    /// Tool calls are whole in Gemini: calls and their arguments are gathered (by index, as
    /// parallel calls may interleave) until something else comes or the reply ends.
    pending: Vec<(usize, ToolCall)>,
    failed: bool,
    finish: Option<Finish>,
    usage: Usage,
    saw_calls: bool,
}

impl StreamEncoder {
    pub fn new(array: bool) -> Self {
        Self {
            array,
            written: false,
            id: String::new(),
            model: String::new(),
            pending: Vec::new(),
            failed: false,
            finish: None,
            usage: Usage::default(),
            saw_calls: false,
        }
    }

    fn write(&mut self, v: &Value, out: &mut BytesMut) {
        if self.array {
            out.extend_from_slice(if self.written { b",\r\n" } else { b"[" });
            if let Ok(s) = serde_json::to_vec(v) {
                out.extend_from_slice(&s);
            }
        } else {
            sse::write_data(out, v);
        }
        self.written = true;
    }

    fn parts(&mut self, parts: Vec<Value>, out: &mut BytesMut) {
        let v = json!({
            "candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
            "modelVersion": self.model,
            "responseId": self.id,
        });
        self.write(&v, out);
    }

    fn flush_tool(&mut self, out: &mut BytesMut) {
        if self.pending.is_empty() {
            return;
        }
        let parts: Vec<Value> = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(_, c)| {
                json!({"functionCall": {"id": c.id, "name": c.name,
                    "args": ir::arguments_object(&c.arguments)}})
            })
            .collect();
        self.parts(parts, out);
    }

    pub fn event(&mut self, ev: &Event, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        match ev {
            Event::Start { id, model } => {
                self.id.clone_from(id);
                self.model.clone_from(model);
            }
            Event::Text(t) => {
                self.flush_tool(out);
                self.parts(vec![json!({"text": t})], out);
            }
            Event::Reasoning(t) => {
                self.flush_tool(out);
                self.parts(vec![json!({"text": t, "thought": true})], out);
            }
            Event::Signature(_) => {}
            Event::ToolStart { index, id, name } => {
                self.saw_calls = true;
                self.pending.push((
                    *index,
                    ToolCall {
                        id: id.clone(),
                        name: name.clone(),
                        arguments: String::new(),
                    },
                ));
            }
            Event::ToolArgs { index, delta } => {
                if let Some((_, c)) = self.pending.iter_mut().rev().find(|(i, _)| i == index) {
                    c.arguments.push_str(delta);
                }
            }
            Event::Finish(f) => self.finish = Some(*f),
            Event::Usage(u) => self.usage.merge(*u),
            Event::Error { status, message } => self.fail(*status, message, out),
        }
    }

    pub fn end(&mut self, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        self.flush_tool(out);
        let finish = self.finish.unwrap_or(Finish::Stop);
        let v = json!({
            "candidates": [{
                "content": {"role": "model", "parts": [{"text": ""}]},
                "finishReason": finish_str(finish),
                "index": 0,
            }],
            "usageMetadata": encode_usage(&self.usage),
            "modelVersion": self.model,
            "responseId": self.id,
        });
        self.write(&v, out);
        if self.array {
            out.extend_from_slice(b"]");
        }
    }

    pub fn fail(&mut self, status: u16, message: &str, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        self.failed = true;
        self.flush_tool(out);
        let v = error_body(status, message);
        if self.array {
            self.write(&v, out);
            out.extend_from_slice(b"]");
        } else {
            write_stream_error(out, &v);
        }
    }
}

/// A failed SSE stream's last chunk, in the form Google's SDKs raise on: the error object on
/// its own, not in a `data:` line (`@google/genai` takes a `data:` error for one more chunk,
/// and the caller gets a truncated answer as if it were whole).
pub fn write_stream_error(out: &mut BytesMut, body: &Value) {
    out.extend_from_slice(body.to_string().as_bytes());
    out.extend_from_slice(b"\n");
}

pub fn status_name(status: u16) -> &'static str {
    match status {
        400 | 413 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        405 => "UNIMPLEMENTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        502 | 503 | 529 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

pub fn error_body(status: u16, message: &str) -> Value {
    json!({"error": {"code": status, "message": message, "status": status_name(status)}})
}

/// Gemini's name in `generationConfig` for a common sampling parameter (given in either
/// spelling); None for a parameter that is not one of them.
pub(crate) fn generation_config_name(k: &str) -> Option<&'static str> {
    Some(match k {
        "temperature" => "temperature",
        "top_p" | "topP" => "topP",
        "top_k" | "topK" => "topK",
        "max_tokens" | "maxOutputTokens" => "maxOutputTokens",
        "stop" | "stopSequences" => "stopSequences",
        "seed" => "seed",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_without_ids_match_calls_by_name() {
        let body = json!({"contents": [
            {"role": "user", "parts": [{"text": "weather in Paris and Rome?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "weather", "args": {"city": "Rome"}}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "weather", "response": {"output": "sunny"}}},
                {"functionResponse": {"name": "weather", "response": {"temp": 20}}}]},
        ], "system_instruction": {"parts": [{"text": "brief"}]}});
        let mut notes = Notes::default();
        let req = decode_request(&body, &mut notes).unwrap();
        assert_eq!(req.system, vec!["brief"]);
        let calls: Vec<&str> = req.messages[1]
            .parts
            .iter()
            .map(|p| match p {
                Part::ToolCall(c) => c.id.as_str(),
                _ => "",
            })
            .collect();
        let results: Vec<(&str, &str)> = req.messages[2]
            .parts
            .iter()
            .map(|p| match p {
                Part::ToolResult(r) => (r.id.as_str(), r.content.as_str()),
                _ => ("", ""),
            })
            .collect();
        assert_eq!(calls.len(), 2);
        assert_ne!(calls[0], calls[1]);
        assert_eq!(
            results,
            vec![(calls[0], "sunny"), (calls[1], "{\"temp\":20}")]
        );
        // The same history converts the same way each time (prompt caches keep hitting)...
        let again = decode_request(&body, &mut notes).unwrap();
        assert!(matches!(&again.messages[1].parts[0], Part::ToolCall(c) if c.id == calls[0]));
        // ...while each reply's calls get ids no other reply has.
        let reply = |id: &str| {
            json!({"responseId": id, "candidates": [{"content": {"parts": [
            {"functionCall": {"name": "weather", "args": {}}}]}}]})
        };
        let a = decode_reply(&reply("r1"));
        let b = decode_reply(&reply("r2"));
        assert_ne!(
            a.tool_calls().next().unwrap().id,
            b.tool_calls().next().unwrap().id
        );
        assert!(notes.0.is_empty());
    }

    #[test]
    fn a_reply_keeps_what_it_can_show() {
        let r = decode_reply(&json!({"candidates": [{"content": {"parts": [
            {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
            {"text": "The answer is 1."}]}, "finishReason": "STOP"}]}));
        assert_eq!(r.text(), "The answer is 1.");
    }

    #[test]
    fn array_form_is_one_json_array() {
        let mut enc = StreamEncoder::new(true);
        let mut out = BytesMut::new();
        enc.event(&Event::Text("a".into()), &mut out);
        enc.event(&Event::Text("b".into()), &mut out);
        enc.end(&mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 3);
    }
}
