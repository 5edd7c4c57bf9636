//! A scripted model for coding agents, on loopback, in every protocol a provider speaks: OpenAI
//! chat completions and Responses, Anthropic messages, Gemini generateContent. Like a real
//! model in an agent loop it asks the CLI's own shell tool to run a command, then answers with
//! what the tool printed; a request that wants JSON by schema gets JSON of that schema. It
//! does not import the engine: the CLIs and the gateway see it as a provider.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Response, StatusCode};
use serde_json::{Value, json};

/// The command the agent runs. Its output, `SB-42`, is not in the command itself: only a tool
/// that really ran can report it. (No `$(...)`: Gemini CLI refuses command substitution.)
pub const COMMAND: &str = "printf 'SB-%d\\n' 42";
pub const MARK: &str = "SB-42";
/// The answer after a tool result that holds the mark.
pub const DONE: &str = "The command printed SB-42.";
/// What a broken stream has sent before the connection drops.
pub const PARTIAL: &str = "Half an answer, and then";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Every chat request is answered with this status.
    Status(u16),
    /// Every streamed answer stops after some text, without its end (plain answers are whole).
    BreakStreams,
}

struct AgentState {
    /// Chat requests (not model lists), as (path, body).
    requests: Mutex<Vec<(String, Value)>>,
    fault: Mutex<Fault>,
    /// An OpenAI-compatible relay without the Responses API: `/v1/responses` is 404.
    chat_only: bool,
}

pub struct Agent {
    pub addr: SocketAddr,
    state: Arc<AgentState>,
    _server: tokio::task::JoinHandle<()>,
}

impl Agent {
    pub async fn start(chat_only: bool) -> Self {
        let state = Arc::new(AgentState {
            requests: Mutex::new(Vec::new()),
            fault: Mutex::new(Fault::None),
            chat_only,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(handle).with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            state,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_fault(&self, f: Fault) {
        *self.state.fault.lock().unwrap() = f;
    }

    pub fn requests(&self) -> Vec<(String, Value)> {
        self.state.requests.lock().unwrap().clone()
    }
}

/// What the agent makes of a request, whatever its protocol.
#[derive(Default, Debug)]
struct Seen {
    /// Declared tools: (name, freeform).
    tools: Vec<(String, bool)>,
    /// The text of the last message's tool result, if it ends with one.
    result: Option<String>,
    schema: Option<Value>,
    /// A tool the request forces (Anthropic `tool_choice: {"type": "tool"}`), with its schema:
    /// how a JSON answer is asked of a model without structured output.
    forced: Option<(String, Value)>,
    stream: bool,
}

enum Say {
    Call {
        name: String,
        args: Value,
    },
    /// A freeform (Responses `custom`) tool's call: its input is text.
    Freeform {
        name: String,
        input: String,
    },
    Text(String),
}

/// The shell tools of Claude Code, Codex and Gemini CLI, and how each takes a command.
fn shell_call(seen: &Seen) -> Option<Say> {
    let has = |n: &str| seen.tools.iter().find(|(t, _)| t == n);
    if has("Bash").is_some() {
        return Some(Say::Call {
            name: "Bash".into(),
            args: json!({"command": COMMAND, "description": "Print a number"}),
        });
    }
    if has("exec_command").is_some() {
        return Some(Say::Call {
            name: "exec_command".into(),
            args: json!({"cmd": COMMAND}),
        });
    }
    if has("run_shell_command").is_some() {
        return Some(Say::Call {
            name: "run_shell_command".into(),
            args: json!({"command": COMMAND, "description": "Print a number"}),
        });
    }
    // Codex's own default model: one JavaScript `exec` tool whose script calls the others.
    if let Some((_, freeform)) = has("exec") {
        let script = format!("text(await tools.exec_command({{cmd: {COMMAND:?}}}))");
        return Some(if *freeform {
            Say::Freeform {
                name: "exec".into(),
                input: script,
            }
        } else {
            Say::Call {
                name: "exec".into(),
                args: json!({ "input": script }),
            }
        });
    }
    None
}

fn decide(seen: &Seen) -> Say {
    if let Some((name, schema)) = &seen.forced {
        return Say::Call {
            name: name.clone(),
            args: sample(schema),
        };
    }
    if let Some(schema) = &seen.schema {
        return Say::Text(sample(schema).to_string());
    }
    if let Some(r) = &seen.result {
        return Say::Text(if r.contains(MARK) {
            DONE.to_owned()
        } else {
            format!(
                "The tool did not print the mark: {}",
                r.chars().take(300).collect::<String>()
            )
        });
    }
    shell_call(seen).unwrap_or_else(|| Say::Text("Hello from the agent.".into()))
}

/// A value of the schema: each property, the first enum value, 1 for numbers. Gemini writes
/// types in capitals.
fn sample(schema: &Value) -> Value {
    if let Some(Value::Array(e)) = schema.get("enum")
        && let Some(first) = e.first()
    {
        return first.clone();
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.to_ascii_lowercase(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string")
            .to_ascii_lowercase(),
        _ if schema.get("properties").is_some() => "object".into(),
        _ => "string".into(),
    };
    match kind.as_str() {
        "object" => {
            let mut o = serde_json::Map::new();
            for (k, v) in schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                o.insert(k.clone(), sample(v));
            }
            Value::Object(o)
        }
        "array" => json!([sample(schema.get("items").unwrap_or(&json!({})))]),
        "integer" | "number" => schema.get("minimum").cloned().unwrap_or(json!(1)),
        "boolean" => json!(true),
        _ => json!("A short title"),
    }
}

/// A tool result's text: a string, or the text of its parts (any nesting).
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text_of).collect::<Vec<_>>().join("\n"),
        Value::Object(o) => match o.get("text").or_else(|| o.get("content")) {
            Some(t) => text_of(t),
            None => v.to_string(),
        },
        _ => String::new(),
    }
}

async fn handle(State(state): State<Arc<AgentState>>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    if parts.method == axum::http::Method::GET {
        return whole(200, json!({"object": "list", "data": [], "models": []}));
    }
    if path.ends_with("/messages/count_tokens") {
        return whole(200, json!({"input_tokens": 10}));
    }
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if state.chat_only && path.ends_with("/responses") {
        // What a chat-only relay answers for a route it does not have.
        return whole(
            404,
            json!({"error": {"message": "Invalid URL (POST /v1/responses)", "type": "invalid_request_error"}}),
        );
    }
    state
        .requests
        .lock()
        .unwrap()
        .push((path.clone(), v.clone()));
    let fault = *state.fault.lock().unwrap();
    if let Fault::Status(s) = fault {
        return whole(
            s,
            json!({"error": {"message": "the agent upstream is down", "type": "server_error", "code": s, "status": "UNAVAILABLE"}}),
        );
    }
    let (seen, protocol) = if path.ends_with("/chat/completions") {
        (seen_chat(&v), Wire::Chat)
    } else if path.ends_with("/responses") {
        (seen_responses(&v), Wire::Responses)
    } else if path.ends_with("/messages") {
        (seen_anthropic(&v), Wire::Anthropic)
    } else if path.contains(":generateContent") || path.contains(":streamGenerateContent") {
        let mut s = seen_gemini(&v);
        s.stream = path.contains(":streamGenerateContent");
        (
            s,
            Wire::Gemini {
                sse: query.contains("alt=sse"),
            },
        )
    } else {
        return whole(
            404,
            json!({"error": {"message": format!("agent: no route {path}")}}),
        );
    };
    let model = v["model"].as_str().unwrap_or("agent-model").to_owned();
    if seen.stream && fault == Fault::BreakStreams {
        let mut events = write(protocol, &model, &Say::Text(PARTIAL.into()), true);
        // Everything up to and including the text, nothing after it.
        let keep = events
            .iter()
            .position(|e| e.contains(PARTIAL))
            .map_or(events.len(), |i| i + 1);
        events.truncate(keep);
        return stream(events, true);
    }
    let say = decide(&seen);
    let events = write(protocol, &model, &say, seen.stream);
    if seen.stream {
        stream(events, false)
    } else {
        let mut r = whole(
            200,
            serde_json::from_str(&events.concat()).unwrap_or_default(),
        );
        *r.status_mut() = StatusCode::OK;
        r
    }
}

#[derive(Clone, Copy)]
enum Wire {
    Chat,
    Responses,
    Anthropic,
    Gemini { sse: bool },
}

fn seen_chat(v: &Value) -> Seen {
    let tools = v["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            t["function"]["name"]
                .as_str()
                .map(|n| (n.to_owned(), false))
        })
        .collect();
    let last = v["messages"].as_array().and_then(|m| m.last());
    Seen {
        forced: None,
        tools,
        result: last
            .filter(|m| m["role"] == "tool")
            .map(|m| text_of(&m["content"])),
        schema: v["response_format"]["json_schema"].get("schema").cloned(),
        stream: v["stream"] == true,
    }
}

fn responses_tools(list: &Value, out: &mut Vec<(String, bool)>) {
    for t in list.as_array().into_iter().flatten() {
        match t["type"].as_str() {
            Some("namespace") => responses_tools(&t["tools"], out),
            Some("function") => out.push((t["name"].as_str().unwrap_or("").to_owned(), false)),
            Some("custom") => out.push((t["name"].as_str().unwrap_or("").to_owned(), true)),
            _ => {}
        }
    }
}

fn seen_responses(v: &Value) -> Seen {
    let mut tools = Vec::new();
    responses_tools(&v["tools"], &mut tools);
    let input = v["input"].as_array().cloned().unwrap_or_default();
    for item in &input {
        if item["type"] == "additional_tools" {
            responses_tools(&item["tools"], &mut tools);
        }
    }
    let result = input
        .last()
        .filter(|i| {
            matches!(
                i["type"].as_str(),
                Some("function_call_output" | "custom_tool_call_output")
            )
        })
        .map(|i| text_of(&i["output"]));
    Seen {
        forced: None,
        tools,
        result,
        schema: v["text"]["format"].get("schema").cloned(),
        stream: v["stream"] == true,
    }
}

fn seen_anthropic(v: &Value) -> Seen {
    let tools = v["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(|n| (n.to_owned(), false)))
        .collect();
    let last = v["messages"].as_array().and_then(|m| m.last());
    let result = last
        .and_then(|m| m["content"].as_array())
        .and_then(|blocks| blocks.iter().find(|b| b["type"] == "tool_result"))
        .map(|b| text_of(&b["content"]));
    let schema = v["output_config"]["format"]
        .get("schema")
        .or_else(|| v["output_format"].get("schema"))
        .cloned();
    let forced = (v["tool_choice"]["type"] == "tool")
        .then(|| {
            let name = v["tool_choice"]["name"].as_str()?;
            let tool = v["tools"].as_array()?.iter().find(|t| t["name"] == name)?;
            Some((name.to_owned(), tool["input_schema"].clone()))
        })
        .flatten();
    Seen {
        tools,
        result,
        schema,
        forced,
        stream: v["stream"] == true,
    }
}

fn seen_gemini(v: &Value) -> Seen {
    let tools = v["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| {
            t["functionDeclarations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|d| d["name"].as_str().map(|n| (n.to_owned(), false)))
        .collect();
    let last = v["contents"].as_array().and_then(|c| c.last());
    let result = last
        .and_then(|c| c["parts"].as_array())
        .and_then(|parts| parts.iter().find_map(|p| p.get("functionResponse")))
        .map(|r| r["response"].to_string());
    let g = &v["generationConfig"];
    Seen {
        forced: None,
        tools,
        result,
        schema: g
            .get("responseJsonSchema")
            .or_else(|| g.get("responseSchema"))
            .cloned(),
        stream: false,
    }
}

/// The answer's events (streamed) or its one body (not).
fn write(wire: Wire, model: &str, say: &Say, stream: bool) -> Vec<String> {
    match wire {
        Wire::Chat => write_chat(model, say, stream),
        Wire::Responses => write_responses(model, say, stream),
        Wire::Anthropic => write_anthropic(model, say, stream),
        Wire::Gemini { sse } => write_gemini(model, say, stream, sse),
    }
}

fn write_chat(model: &str, say: &Say, stream: bool) -> Vec<String> {
    let (text, calls) = match say {
        Say::Text(t) => (Some(t.clone()), None),
        Say::Call { name, args } => (None, Some((name.clone(), args.to_string()))),
        Say::Freeform { name, input } => (
            None,
            Some((name.clone(), json!({"input": input}).to_string())),
        ),
    };
    let finish = if calls.is_some() {
        "tool_calls"
    } else {
        "stop"
    };
    let usage = json!({"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25});
    if !stream {
        let message = match &calls {
            Some((name, args)) => json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_agent_1", "type": "function", "function": {"name": name, "arguments": args}}]}),
            None => json!({"role": "assistant", "content": text}),
        };
        return vec![
            json!({"id": "chatcmpl-agent", "object": "chat.completion", "created": 1_700_000_000,
            "model": model, "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage})
            .to_string(),
        ];
    }
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-agent", "object": "chat.completion.chunk",
            "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    match &calls {
        Some((name, args)) => {
            out.push(chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_agent_1", "type": "function",
                "function": {"name": name, "arguments": ""}}]}),
                Value::Null,
            ));
            let (a, b) = args.split_at(args.len() / 2);
            for piece in [a, b] {
                out.push(chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                    Value::Null,
                ));
            }
        }
        None => out.push(chunk(json!({"content": text}), Value::Null)),
    }
    out.push(chunk(json!({}), json!(finish)));
    out.push(format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-agent", "object": "chat.completion.chunk",
        "created": 1_700_000_000, "model": model, "choices": [], "usage": usage})
    ));
    out.push("data: [DONE]\n\n".into());
    out
}

fn write_responses(model: &str, say: &Say, stream: bool) -> Vec<String> {
    let item = match say {
        Say::Text(t) => {
            json!({"type": "message", "id": "msg_agent", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": t, "annotations": []}]})
        }
        Say::Call { name, args } => {
            json!({"type": "function_call", "id": "fc_agent", "call_id": "call_agent_1",
            "name": name, "arguments": args.to_string(), "status": "completed"})
        }
        Say::Freeform { name, input } => json!({"type": "custom_tool_call", "id": "ctc_agent",
            "call_id": "call_agent_1", "name": name, "input": input, "status": "completed"}),
    };
    let response = |status: &str, output: Value| {
        json!({"id": "resp_agent", "object": "response", "created_at": 1_700_000_000, "status": status,
            "model": model, "output": output,
            "usage": {"input_tokens": 20, "output_tokens": 5, "total_tokens": 25}})
    };
    if !stream {
        return vec![response("completed", json!([item])).to_string()];
    }
    let ev = |name: &str, mut data: Value| {
        data["type"] = name.into();
        format!("event: {name}\ndata: {data}\n\n")
    };
    let mut out = vec![ev(
        "response.created",
        json!({"response": response("in_progress", json!([]))}),
    )];
    let mut added = item.clone();
    if let Say::Text(t) = say {
        added["content"] = json!([]);
        added["status"] = "in_progress".into();
        out.push(ev(
            "response.output_item.added",
            json!({"output_index": 0, "item": added}),
        ));
        out.push(ev(
            "response.output_text.delta",
            json!({"item_id": "msg_agent", "output_index": 0,
            "content_index": 0, "delta": t}),
        ));
    } else {
        out.push(ev(
            "response.output_item.added",
            json!({"output_index": 0, "item": added}),
        ));
    }
    out.push(ev(
        "response.output_item.done",
        json!({"output_index": 0, "item": item}),
    ));
    out.push(ev(
        "response.completed",
        json!({"response": response("completed", json!([item]))}),
    ));
    out
}

fn write_anthropic(model: &str, say: &Say, stream: bool) -> Vec<String> {
    let (block, stop) = match say {
        Say::Text(t) => (json!({"type": "text", "text": t}), "end_turn"),
        Say::Call { name, args } => (
            json!({"type": "tool_use", "id": "toolu_agent_1", "name": name, "input": args}),
            "tool_use",
        ),
        Say::Freeform { name, input } => (
            json!({"type": "tool_use", "id": "toolu_agent_1", "name": name,
            "input": {"input": input}}),
            "tool_use",
        ),
    };
    let usage = json!({"input_tokens": 20, "output_tokens": 5});
    if !stream {
        return vec![
            json!({"id": "msg_agent", "type": "message", "role": "assistant", "model": model,
            "content": [block], "stop_reason": stop, "stop_sequence": null, "usage": usage})
            .to_string(),
        ];
    }
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut out = vec![ev(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_agent",
        "type": "message", "role": "assistant", "content": [], "model": model, "stop_reason": null,
        "stop_sequence": null, "usage": {"input_tokens": 20, "output_tokens": 1}}}),
    )];
    match say {
        Say::Text(t) => {
            out.push(ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
            ));
            out.push(ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": t}}),
            ));
        }
        _ => {
            let mut start = block.clone();
            let input = start["input"].take();
            start["input"] = json!({});
            out.push(ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": start}),
            ));
            out.push(ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": input.to_string()}}),
            ));
        }
    }
    out.push(ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(ev(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop,
        "stop_sequence": null}, "usage": {"output_tokens": 5}}),
    ));
    out.push(ev("message_stop", json!({"type": "message_stop"})));
    out
}

fn write_gemini(model: &str, say: &Say, stream: bool, sse: bool) -> Vec<String> {
    let part = match say {
        Say::Text(t) => json!({"text": t}),
        Say::Call { name, args } => json!({"functionCall": {"name": name, "args": args}}),
        Say::Freeform { name, input } => {
            json!({"functionCall": {"name": name, "args": {"input": input}}})
        }
    };
    let body = json!({"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP",
        "index": 0}], "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 5,
        "totalTokenCount": 25}, "modelVersion": model, "responseId": "agent-1"});
    if !stream {
        return vec![body.to_string()];
    }
    if sse {
        vec![format!("data: {body}\r\n\r\n")]
    } else {
        vec![format!("[{body}]")]
    }
}

fn whole(status: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Events one write each; `cut` drops the connection after them, as a dying provider does,
/// once what came before has had time to reach the gateway (and through it the client).
fn stream(events: Vec<String>, cut: bool) -> Response<Body> {
    let mut items: Vec<Result<Bytes, std::io::Error>> =
        events.into_iter().map(|e| Ok(Bytes::from(e))).collect();
    if cut {
        items.push(Err(std::io::Error::other("agent: dropping the connection")));
    }
    let paced = futures_util::StreamExt::then(futures_util::stream::iter(items), |item| async {
        if item.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        item
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(paced))
        .unwrap()
}
