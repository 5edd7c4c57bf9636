//! The neutral form every converted chat passes through: a request, a reply and the events of a
//! streamed reply, with what all four chat protocols share. Each protocol module decodes its wire
//! form into these and encodes these into its wire form; no protocol knows another.

use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatRequest {
    /// System (and developer) prompts, in order.
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub stream: bool,
    pub response_format: Option<ResponseFormat>,
    pub reasoning: Option<Effort>,
    pub parallel_tool_calls: Option<bool>,
    /// Client tools declared in shapes only the client's protocol has, flattened into plain
    /// functions here and named back on the reply.
    pub aliases: ToolAliases,
    /// Tools that run on the client's vendor's servers (`web_search`), left out of the
    /// conversion: told to the client in `x-switchboard-dropped`.
    pub dropped_tools: Vec<String>,
}

/// A Responses tool the other protocols cannot declare as it is: one of a `namespace` group
/// (Codex groups its tools so), or a `custom` tool whose input is free text, carried as a
/// function with one string argument, `input`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolAlias {
    /// The function name the upstream sees.
    pub flat: String,
    pub namespace: Option<String>,
    pub name: String,
    pub freeform: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolAliases(pub Vec<ToolAlias>);

impl ToolAliases {
    pub fn by_flat(&self, flat: &str) -> Option<&ToolAlias> {
        self.0.iter().find(|a| a.flat == flat)
    }

    /// The flat name of a call the client made earlier, by its namespace and name.
    pub fn flat_of(&self, namespace: Option<&str>, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|a| {
                a.name == name && (namespace.is_none() || a.namespace.as_deref() == namespace)
            })
            .map(|a| a.flat.as_str())
    }
}

/// The argument a freeform tool's text travels in.
pub const FREEFORM_ARG: &str = "input";

/// A freeform call's text from its arguments (`{"input": "..."}`); arguments that are not
/// that shape go as they are, since the client's tool takes text.
pub fn freeform_input(arguments: &str) -> String {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(o)) => match o.get(FREEFORM_ARG) {
            Some(Value::String(s)) => s.clone(),
            // A call with no arguments at all (`{}`, as a stream without deltas closes) has no
            // text, rather than the text "{}".
            None if o.is_empty() => String::new(),
            _ => arguments.to_owned(),
        },
        _ => arguments.to_owned(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    /// A system message in the middle of the conversation (Claude Code sends them): kept in
    /// place where the target allows it, folded into the system prompt where it does not.
    System,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

impl Message {
    /// The text parts, in order.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Text(String),
    Image(Image),
    /// A model's reasoning; `signature` is Anthropic's (or Gemini's) proof that it is unaltered.
    Reasoning {
        text: String,
        signature: Option<String>,
    },
    ToolCall(ToolCall),
    ToolResult(ToolResult),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Image {
    Base64 { media_type: String, data: String },
    Url(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as JSON text, the way OpenAI carries them; parsed only by the protocols
    /// that carry an object.
    pub arguments: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolResult {
    pub id: String,
    /// Gemini matches results to calls by name; the others by id.
    pub name: Option<String>,
    pub content: String,
    pub is_error: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// A JSON schema object.
    pub parameters: Value,
}

impl Tool {
    /// `{"name", "description"?, <schema_key>: schema}`: each protocol's declaration, which
    /// differ only in where the schema goes.
    pub fn declaration(&self, schema_key: &str) -> Value {
        let mut o = serde_json::Map::new();
        o.insert("name".into(), self.name.clone().into());
        if let Some(d) = &self.description {
            o.insert("description".into(), d.clone().into());
        }
        o.insert(schema_key.into(), self.parameters.clone());
        Value::Object(o)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Some tool must be called.
    Required,
    Named(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ResponseFormat {
    Json,
    Schema {
        name: String,
        schema: Value,
        strict: Option<bool>,
    },
}

/// Reasoning effort. Budgets in tokens map to and from it (`docs/protocols.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effort {
    /// Thinking explicitly off.
    Off,
    Low,
    Medium,
    High,
}

impl Effort {
    pub fn budget(self) -> u64 {
        match self {
            Self::Off => 0,
            Self::Low => 1024,
            Self::Medium => 4096,
            Self::High => 16384,
        }
    }

    pub fn from_budget(tokens: i64) -> Self {
        match tokens {
            i64::MIN..=0 => Self::Off,
            1..=2048 => Self::Low,
            2049..=8192 => Self::Medium,
            _ => Self::High,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "none",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::Off),
            "minimal" | "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" | "xhigh" => Some(Self::High),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
}

/// Token counts. `input` counts all input tokens, cached ones included (OpenAI's and Gemini's
/// sense; Anthropic's `input_tokens` leaves cache reads out, its module converts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: Option<u64>,
    pub output: Option<u64>,
    pub cached: Option<u64>,
    pub reasoning: Option<u64>,
}

impl Usage {
    /// Later reports win field by field: Anthropic sends input at the start and output at the
    /// end, Gemini sends running totals.
    pub fn merge(&mut self, later: Usage) {
        self.input = later.input.or(self.input);
        self.output = later.output.or(self.output);
        self.cached = later.cached.or(self.cached);
        self.reasoning = later.reasoning.or(self.reasoning);
    }

    pub fn total(&self) -> u64 {
        self.input.unwrap_or(0) + self.output.unwrap_or(0)
    }
}

/// A whole (non-streamed) reply.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reply {
    pub id: String,
    pub model: String,
    /// Text, reasoning and tool calls, in order.
    pub parts: Vec<Part>,
    pub finish: Option<Finish>,
    pub usage: Usage,
}

impl Reply {
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn tool_calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.parts.iter().filter_map(|p| match p {
            Part::ToolCall(c) => Some(c),
            _ => None,
        })
    }

    /// The finish reason, or what the parts imply when the upstream gave none.
    pub fn finish_or_implied(&self) -> Finish {
        self.finish
            .unwrap_or(if self.tool_calls().next().is_some() {
                Finish::ToolCalls
            } else {
                Finish::Stop
            })
    }
}

/// One step of a streamed reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Start {
        id: String,
        model: String,
    },
    Text(String),
    Reasoning(String),
    /// The signature that closes a reasoning block.
    Signature(String),
    /// A tool call begins; `index` counts tool calls in this reply from 0.
    ToolStart {
        index: usize,
        id: String,
        name: String,
    },
    ToolArgs {
        index: usize,
        delta: String,
    },
    Finish(Finish),
    Usage(Usage),
    /// The upstream reported an error inside the stream.
    Error {
        status: u16,
        message: String,
    },
}

/// Folds stream events into a reply: for clients whose stream ends with the whole reply
/// (Responses), and for tests.
#[derive(Debug, Default)]
pub struct Accumulator {
    pub reply: Reply,
    tool_parts: Vec<usize>,
}

impl Accumulator {
    pub fn push(&mut self, ev: &Event) {
        let parts = &mut self.reply.parts;
        match ev {
            Event::Start { id, model } => {
                self.reply.id.clone_from(id);
                self.reply.model.clone_from(model);
            }
            Event::Text(t) => match parts.last_mut() {
                Some(Part::Text(s)) => s.push_str(t),
                _ => parts.push(Part::Text(t.clone())),
            },
            Event::Reasoning(t) => match parts.last_mut() {
                Some(Part::Reasoning {
                    text,
                    signature: None,
                }) => text.push_str(t),
                _ => parts.push(Part::Reasoning {
                    text: t.clone(),
                    signature: None,
                }),
            },
            Event::Signature(s) => match parts.last_mut() {
                Some(Part::Reasoning { signature, .. }) => *signature = Some(s.clone()),
                _ => parts.push(Part::Reasoning {
                    text: String::new(),
                    signature: Some(s.clone()),
                }),
            },
            Event::ToolStart { index, id, name } => {
                if self.tool_parts.len() <= *index {
                    self.tool_parts.resize(*index + 1, usize::MAX);
                }
                self.tool_parts[*index] = parts.len();
                parts.push(Part::ToolCall(ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                }));
            }
            Event::ToolArgs { index, delta } => {
                if let Some(&at) = self.tool_parts.get(*index)
                    && let Some(Part::ToolCall(c)) = parts.get_mut(at)
                {
                    c.arguments.push_str(delta);
                }
            }
            Event::Finish(f) => self.reply.finish = Some(*f),
            Event::Usage(u) => self.reply.usage.merge(*u),
            Event::Error { .. } => {}
        }
    }
}

/// A rough token count (about four characters a token, a fixed cost per image and message),
/// for clients that ask for a count where no provider can give one.
pub fn estimate_tokens(req: &ChatRequest) -> u64 {
    let mut chars: usize = req.system.iter().map(String::len).sum();
    let mut fixed: u64 = 0;
    for t in &req.tools {
        chars += t.name.len() + t.description.as_ref().map_or(0, String::len);
        chars += t.parameters.to_string().len();
    }
    for m in &req.messages {
        fixed += 4;
        for p in &m.parts {
            match p {
                Part::Text(t) | Part::Reasoning { text: t, .. } => chars += t.len(),
                Part::Image(_) => fixed += 1000,
                Part::ToolCall(c) => chars += c.name.len() + c.arguments.len(),
                Part::ToolResult(r) => chars += r.content.len(),
            }
        }
    }
    (chars as u64).div_ceil(4) + fixed
}

/// What a conversion leaves behind: fields the target cannot express, logged as warnings.
#[derive(Debug, Default)]
pub struct Notes(pub Vec<String>);

impl Notes {
    pub fn dropped(&mut self, field: &str, target: &str) {
        self.0
            .push(format!("'{field}' has no equivalent in {target}; dropped"));
    }
}

/// A request the target protocol cannot carry without changing its meaning.
#[derive(Debug, thiserror::Error)]
#[error("'{field}' cannot be converted: {why}")]
pub struct Unsupported {
    pub field: String,
    pub why: String,
}

impl Unsupported {
    /// Both may quote the client (a role, a block type): one line each, bounded, since they
    /// reach the answer and the log.
    pub fn new(field: impl Into<String>, why: impl Into<String>) -> Self {
        let (field, why) = (field.into(), why.into());
        let clip = |s: String, max| match crate::outside::clip(&s, max) {
            std::borrow::Cow::Borrowed(_) => s,
            std::borrow::Cow::Owned(c) => c,
        };
        Self {
            field: clip(field, crate::outside::MAX_NAME),
            why: clip(why, 2 * crate::outside::MAX_NAME),
        }
    }
}

/// `data:` URLs to and from base64 images.
pub fn image_from_url(url: &str) -> Image {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((meta, data)) = rest.split_once(',')
        && let Some(media_type) = meta.strip_suffix(";base64")
    {
        return Image::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        };
    }
    Image::Url(url.to_owned())
}

pub fn image_to_url(image: &Image) -> String {
    match image {
        Image::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        Image::Url(u) => u.clone(),
    }
}

/// A media type guessed from a URL's extension, for protocols that want one with a URL.
pub fn media_type_of_url(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        _ => "image/jpeg",
    }
}

/// Tool arguments as an object, for Anthropic and Gemini: broken JSON from a model is kept as a
/// string under `_raw` rather than lost.
pub fn arguments_object(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return Value::Object(Default::default());
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        Ok(other) => serde_json::json!({ "_value": other }),
        Err(_) => serde_json::json!({ "_raw": arguments }),
    }
}

impl ChatRequest {
    /// The system prompt with mid-conversation system messages appended in order, and the
    /// messages without them: for targets that have a system prompt only (Anthropic, Gemini).
    /// Folding rather than turning them into user text keeps tool calls next to their results.
    pub fn folded_system(&self) -> (Vec<String>, Vec<Message>) {
        let mut system = self.system.clone();
        let mut messages = Vec::with_capacity(self.messages.len());
        for m in &self.messages {
            if m.role == Role::System {
                system.extend(m.texts().filter(|t| !t.is_empty()).map(str::to_owned));
            } else {
                messages.push(m.clone());
            }
        }
        (system, messages)
    }
}

/// Merges consecutive messages of the same role: Anthropic requires alternation, and Gemini
/// prefers it.
pub fn merge_same_roles(messages: Vec<Message>) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::with_capacity(messages.len());
    for m in messages {
        match out.last_mut() {
            Some(last) if last.role == m.role => last.parts.extend(m.parts),
            _ => out.push(m),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulates_text_tools_and_usage() {
        let mut a = Accumulator::default();
        for ev in [
            Event::Start {
                id: "m1".into(),
                model: "x".into(),
            },
            Event::Text("Hel".into()),
            Event::Text("lo".into()),
            Event::ToolStart {
                index: 0,
                id: "c1".into(),
                name: "f".into(),
            },
            Event::ToolArgs {
                index: 0,
                delta: "{\"a\"".into(),
            },
            Event::ToolArgs {
                index: 0,
                delta: ":1}".into(),
            },
            Event::Usage(Usage {
                input: Some(5),
                ..Default::default()
            }),
            Event::Usage(Usage {
                output: Some(7),
                ..Default::default()
            }),
            Event::Finish(Finish::ToolCalls),
        ] {
            a.push(&ev);
        }
        let r = a.reply;
        assert_eq!(r.text(), "Hello");
        assert_eq!(r.tool_calls().next().unwrap().arguments, "{\"a\":1}");
        assert_eq!(r.usage.input, Some(5));
        assert_eq!(r.usage.output, Some(7));
        assert_eq!(r.finish, Some(Finish::ToolCalls));
    }

    #[test]
    fn data_urls_round_trip() {
        let url = "data:image/png;base64,iVBORw0KGgo=";
        let img = image_from_url(url);
        assert!(matches!(&img, Image::Base64 { media_type, .. } if media_type == "image/png"));
        assert_eq!(image_to_url(&img), url);
        assert_eq!(
            image_from_url("https://x/y.png"),
            Image::Url("https://x/y.png".into())
        );
        assert_eq!(media_type_of_url("https://x/y.PNG?s=1"), "image/png");
    }

    #[test]
    fn broken_arguments_are_kept() {
        assert_eq!(arguments_object(""), serde_json::json!({}));
        assert_eq!(arguments_object("{\"a\":1}"), serde_json::json!({"a":1}));
        assert_eq!(
            arguments_object("{\"a\""),
            serde_json::json!({"_raw":"{\"a\""})
        );
    }
}
