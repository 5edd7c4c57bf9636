//! Every client protocol against every upstream protocol, end to end through the real
//! `switchboard serve`: OpenAI chat, Responses, Anthropic messages and Gemini clients, each
//! asking a model served by an OpenAI, an Anthropic and a Gemini provider (mock upstreams on
//! loopback), plain and streamed, with a tool call and its result carried back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::mock::Reply;
use common::mock_replies::{AFTER_TOOL, TOOL_ARGS};
use common::upstreams::Upstreams;
use common::{Gateway, http};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Client {
    Chat,
    Responses,
    Messages,
    Gemini,
}

const CLIENTS: [Client; 4] = [
    Client::Chat,
    Client::Responses,
    Client::Messages,
    Client::Gemini,
];

/// (unified model, upstream path the mock must see)
const UPSTREAMS: [(&str, &str); 3] = [
    ("to-openai", "/v1/chat/completions"),
    ("to-anthropic", "/v1/messages"),
    ("to-gemini", "/v1beta/models/gemini-x:"),
];

fn schema() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
}

#[derive(Debug, Clone)]
struct Call {
    id: String,
    name: String,
    args: Value,
}

#[derive(Debug, Default)]
struct Outcome {
    text: String,
    calls: Vec<Call>,
    finish: String,
}

/// The request a client of `c` sends: a question with a tool, or (with `answer`) the history
/// that carries the call and its result.
fn request(c: Client, model: &str, stream: bool, answer: Option<&Call>) -> (String, Value) {
    let q = "What is the weather in Paris?";
    match c {
        Client::Chat => {
            let mut messages = vec![json!({"role": "user", "content": q})];
            if let Some(call) = answer {
                messages.push(json!({"role": "assistant", "content": null, "tool_calls": [
                    {"id": call.id, "type": "function",
                     "function": {"name": call.name, "arguments": call.args.to_string()}}]}));
                messages.push(json!({"role": "tool", "tool_call_id": call.id, "content": "sunny"}));
            }
            let mut body = json!({"model": model, "messages": messages, "stream": stream,
                "tools": [{"type": "function", "function": {"name": "get_weather",
                    "description": "Weather in a city", "parameters": schema()}}]});
            if stream {
                body["stream_options"] = json!({"include_usage": true});
            }
            ("/v1/chat/completions".into(), body)
        }
        Client::Responses => {
            let mut input = vec![json!({"role": "user", "content": q})];
            if let Some(call) = answer {
                input.push(json!({"type": "function_call", "call_id": call.id,
                    "name": call.name, "arguments": call.args.to_string()}));
                input.push(
                    json!({"type": "function_call_output", "call_id": call.id, "output": "sunny"}),
                );
            }
            (
                "/v1/responses".into(),
                json!({"model": model, "input": input, "stream": stream,
                    "tools": [{"type": "function", "name": "get_weather",
                        "description": "Weather in a city", "parameters": schema()}]}),
            )
        }
        Client::Messages => {
            let mut messages = vec![json!({"role": "user", "content": q})];
            if let Some(call) = answer {
                messages.push(json!({"role": "assistant", "content": [
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": call.args}]}));
                messages.push(json!({"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]}));
            }
            (
                "/v1/messages".into(),
                json!({"model": model, "max_tokens": 256, "messages": messages, "stream": stream,
                    "tools": [{"name": "get_weather", "description": "Weather in a city",
                        "input_schema": schema()}]}),
            )
        }
        Client::Gemini => {
            let mut contents = vec![json!({"role": "user", "parts": [{"text": q}]})];
            if let Some(call) = answer {
                let mut fc = json!({"name": call.name, "args": call.args});
                let mut fr = json!({"name": call.name, "response": {"output": "sunny"}});
                if !call.id.is_empty() {
                    fc["id"] = call.id.clone().into();
                    fr["id"] = call.id.clone().into();
                }
                contents.push(json!({"role": "model", "parts": [{"functionCall": fc}]}));
                contents.push(json!({"role": "user", "parts": [{"functionResponse": fr}]}));
            }
            let action = if stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            (
                format!("/v1beta/models/{model}:{action}"),
                json!({"contents": contents, "tools": [{"functionDeclarations": [
                    {"name": "get_weather", "description": "Weather in a city",
                     "parameters": schema()}]}]}),
            )
        }
    }
}

/// SSE `data:` payloads as JSON, with their event names.
fn sse_events(text: &str) -> Vec<(String, Value)> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|block| {
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = n.trim().to_owned();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim());
                } else if line.starts_with('{') {
                    // Gemini's stream error: the object on its own, as Google's SDKs raise on.
                    data.push_str(line.trim());
                }
            }
            if data.is_empty() || data == "[DONE]" {
                return None;
            }
            Some((
                name,
                serde_json::from_str(&data).expect("every data line is JSON"),
            ))
        })
        .collect()
}

fn read_plain(c: Client, v: &Value) -> Outcome {
    let mut o = Outcome::default();
    match c {
        Client::Chat => {
            let m = &v["choices"][0]["message"];
            o.text = m["content"].as_str().unwrap_or("").to_owned();
            for t in m["tool_calls"].as_array().into_iter().flatten() {
                o.calls.push(Call {
                    id: t["id"].as_str().unwrap().to_owned(),
                    name: t["function"]["name"].as_str().unwrap().to_owned(),
                    args: serde_json::from_str(t["function"]["arguments"].as_str().unwrap())
                        .unwrap(),
                });
            }
            o.finish = v["choices"][0]["finish_reason"]
                .as_str()
                .unwrap()
                .to_owned();
        }
        Client::Responses => {
            for item in v["output"].as_array().unwrap() {
                match item["type"].as_str() {
                    Some("message") => {
                        for p in item["content"].as_array().unwrap() {
                            o.text.push_str(p["text"].as_str().unwrap());
                        }
                    }
                    Some("function_call") => o.calls.push(Call {
                        id: item["call_id"].as_str().unwrap().to_owned(),
                        name: item["name"].as_str().unwrap().to_owned(),
                        args: serde_json::from_str(item["arguments"].as_str().unwrap()).unwrap(),
                    }),
                    _ => {}
                }
            }
            o.finish = v["status"].as_str().unwrap().to_owned();
        }
        Client::Messages => {
            for b in v["content"].as_array().unwrap() {
                match b["type"].as_str() {
                    Some("text") => o.text.push_str(b["text"].as_str().unwrap()),
                    Some("tool_use") => o.calls.push(Call {
                        id: b["id"].as_str().unwrap().to_owned(),
                        name: b["name"].as_str().unwrap().to_owned(),
                        args: b["input"].clone(),
                    }),
                    _ => {}
                }
            }
            o.finish = v["stop_reason"].as_str().unwrap().to_owned();
        }
        Client::Gemini => read_gemini_chunk(v, &mut o),
    }
    o
}

fn read_gemini_chunk(v: &Value, o: &mut Outcome) {
    let cand = &v["candidates"][0];
    for p in cand["content"]["parts"].as_array().into_iter().flatten() {
        if let Some(t) = p["text"].as_str() {
            o.text.push_str(t);
        }
        if let Some(f) = p.get("functionCall") {
            o.calls.push(Call {
                id: f["id"].as_str().unwrap_or("").to_owned(),
                name: f["name"].as_str().unwrap().to_owned(),
                args: f["args"].clone(),
            });
        }
    }
    if let Some(f) = cand["finishReason"].as_str() {
        o.finish = f.to_owned();
    }
}

fn read_stream(c: Client, text: &str) -> Outcome {
    let events = sse_events(text);
    let mut o = Outcome::default();
    match c {
        Client::Chat => {
            for (_, v) in &events {
                assert!(v.get("error").is_none(), "error event: {v}");
                for ch in v["choices"].as_array().into_iter().flatten() {
                    let d = &ch["delta"];
                    o.text.push_str(d["content"].as_str().unwrap_or(""));
                    for t in d["tool_calls"].as_array().into_iter().flatten() {
                        let i = t["index"].as_u64().unwrap() as usize;
                        if o.calls.len() <= i {
                            o.calls.push(Call {
                                id: String::new(),
                                name: String::new(),
                                args: Value::String(String::new()),
                            });
                        }
                        let call = &mut o.calls[i];
                        if let Some(id) = t["id"].as_str() {
                            call.id = id.to_owned();
                        }
                        if let Some(n) = t["function"]["name"].as_str() {
                            call.name = n.to_owned();
                        }
                        let mut args = call.args.as_str().unwrap_or("").to_owned();
                        args.push_str(t["function"]["arguments"].as_str().unwrap_or(""));
                        call.args = Value::String(args);
                    }
                    if let Some(f) = ch["finish_reason"].as_str() {
                        o.finish = f.to_owned();
                    }
                }
            }
            assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
            let usage = events.last().map(|(_, v)| v["usage"].clone()).unwrap();
            assert!(usage["completion_tokens"].as_u64().unwrap() > 0, "{usage}");
            for call in &mut o.calls {
                call.args = serde_json::from_str(call.args.as_str().unwrap()).unwrap();
            }
        }
        Client::Responses => {
            let (name, last) = events.last().unwrap();
            assert_eq!(name, "response.completed", "{text}");
            let whole = read_plain(c, &last["response"]);
            let deltas: String = events
                .iter()
                .filter(|(n, _)| n == "response.output_text.delta")
                .map(|(_, v)| v["delta"].as_str().unwrap())
                .collect();
            assert_eq!(deltas, whole.text, "the deltas make up the final text");
            let seqs: Vec<u64> = events
                .iter()
                .map(|(_, v)| v["sequence_number"].as_u64().unwrap())
                .collect();
            assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
            return whole;
        }
        Client::Messages => {
            assert_eq!(events.first().unwrap().0, "message_start", "{text}");
            assert_eq!(events.last().unwrap().0, "message_stop", "{text}");
            let mut args: Vec<String> = Vec::new();
            for (name, v) in &events {
                assert_eq!(
                    *name,
                    v["type"].as_str().unwrap(),
                    "event name matches its type"
                );
                match name.as_str() {
                    "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                        o.calls.push(Call {
                            id: v["content_block"]["id"].as_str().unwrap().to_owned(),
                            name: v["content_block"]["name"].as_str().unwrap().to_owned(),
                            args: Value::Null,
                        });
                        args.push(String::new());
                    }
                    "content_block_delta" => match v["delta"]["type"].as_str() {
                        Some("text_delta") => o.text.push_str(v["delta"]["text"].as_str().unwrap()),
                        Some("input_json_delta") => args
                            .last_mut()
                            .unwrap()
                            .push_str(v["delta"]["partial_json"].as_str().unwrap()),
                        _ => {}
                    },
                    "message_delta" => {
                        o.finish = v["delta"]["stop_reason"].as_str().unwrap().to_owned();
                        assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);
                    }
                    "error" => panic!("error event: {v}"),
                    _ => {}
                }
            }
            for (call, a) in o.calls.iter_mut().zip(args) {
                call.args = serde_json::from_str(&a).unwrap();
            }
        }
        Client::Gemini => {
            for (_, v) in &events {
                assert!(v.get("error").is_none(), "error: {v}");
                read_gemini_chunk(v, &mut o);
            }
        }
    }
    o
}

async fn ask(gw: &Gateway, c: Client, model: &str, stream: bool, answer: Option<&Call>) -> Outcome {
    let (path, body) = request(c, model, stream, answer);
    let key = gw.key("test");
    let mut r = http().post(format!("{}{path}", gw.url)).json(&body);
    r = match c {
        Client::Chat | Client::Responses => r.bearer_auth(&key),
        Client::Messages => r
            .header("x-api-key", &key)
            .header("anthropic-version", "2023-06-01"),
        Client::Gemini => r.header("x-goog-api-key", &key),
    };
    let resp = r.send().await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{c:?} -> {model} (stream {stream}): {text}");
    if stream {
        assert!(ctype.starts_with("text/event-stream"), "{ctype}");
        read_stream(c, &text)
    } else {
        assert!(ctype.starts_with("application/json"), "{ctype}");
        read_plain(c, &serde_json::from_str(&text).unwrap())
    }
}

#[tokio::test]
async fn every_client_protocol_reaches_every_upstream_with_a_tool_round_trip() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let args: Value = serde_json::from_str(TOOL_ARGS).unwrap();
    for c in CLIENTS {
        for (model, upstream_path) in UPSTREAMS {
            // Responses to an OpenAI provider is native, and the mock's Responses has no tools.
            if c == Client::Responses && model == "to-openai" {
                continue;
            }
            for stream in [false, true] {
                let case = format!("{c:?} -> {model}, stream {stream}");
                let mock = ups.mock(model);
                let before = mock.hits();
                let first = ask(&gw, c, model, stream, None).await;
                assert_eq!(first.calls.len(), 1, "{case}: {first:?}");
                let call = &first.calls[0];
                assert_eq!(call.name, "get_weather", "{case}");
                assert_eq!(call.args, args, "{case}");
                // Gemini's own calls carry no id; converted ones always do.
                let native_gemini = c == Client::Gemini && model == "to-gemini";
                assert_eq!(call.id.is_empty(), native_gemini, "{case}: {call:?}");
                let expected_finish = match c {
                    Client::Chat => "tool_calls",
                    Client::Responses => "completed",
                    Client::Messages => "tool_use",
                    Client::Gemini => "STOP",
                };
                assert_eq!(first.finish, expected_finish, "{case}");

                let second = ask(&gw, c, model, stream, Some(call)).await;
                assert_eq!(second.text, format!("{AFTER_TOOL}sunny"), "{case}");
                assert!(second.calls.is_empty(), "{case}");

                let seen = mock.requests();
                assert_eq!(seen.len(), before + 2, "{case}");
                let last = seen.last().unwrap();
                assert!(
                    last.path.starts_with(upstream_path),
                    "{case}: {}",
                    last.path
                );
                // The result went up tied to the call the upstream made.
                let body = last.json().to_string();
                assert!(body.contains("sunny"), "{case}: {body}");
                match model {
                    "to-openai" => assert!(body.contains("call_mock_1"), "{case}: {body}"),
                    "to-anthropic" => assert!(body.contains("toolu_mock_1"), "{case}: {body}"),
                    _ => {}
                }
            }
        }
    }
}

#[tokio::test]
async fn upstream_auth_follows_the_upstream_protocol() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    for c in [Client::Chat, Client::Gemini] {
        ask(&gw, c, "to-anthropic", false, None).await;
    }
    for r in ups.anthropic.requests() {
        assert_eq!(r.header("x-api-key"), Some("sk-an-secret"));
        assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(r.header("authorization"), None);
    }
    ask(&gw, Client::Messages, "to-gemini", true, None).await;
    let g = ups.gemini.requests().pop().unwrap();
    assert_eq!(g.header("x-goog-api-key"), Some("ge-secret"));
    assert_eq!(g.path, "/v1beta/models/gemini-x:streamGenerateContent");
    assert_eq!(g.query, "alt=sse");
    ask(&gw, Client::Messages, "to-openai", false, None).await;
    let o = ups.openai.requests().pop().unwrap();
    assert_eq!(o.header("authorization"), Some("Bearer sk-oa-secret"));
    assert_eq!(o.header("x-api-key"), None);
}

#[tokio::test]
async fn native_anthropic_is_passed_through_untouched() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let key = gw.key("test");
    // Unknown fields and their spelling survive; only the model is rewritten.
    let body = r#"{"model":"to-anthropic","max_tokens":50,"messages":[{"role":"user","content":"hi"}],"future_field":{"x": [1, 2.50]},"metadata":{"user_id":"u1"}}"#;
    let r = http()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchboard-provider"], "an");
    let up = ups.anthropic.requests().pop().unwrap();
    assert_eq!(
        String::from_utf8(up.body.to_vec()).unwrap(),
        body.replace("\"to-anthropic\"", "\"claude-x\"")
    );
    assert_eq!(
        up.header("anthropic-beta"),
        Some("prompt-caching-2024-07-31")
    );

    // A stream comes back byte for byte, every event type included (ping too).
    let chunks = vec![
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-x\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n".to_owned(),
        "event: ping\ndata: {\"type\": \"ping\"}\n\n".to_owned(),
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_owned(),
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n".to_owned(),
        "event: some_future_event\ndata: {\"type\":\"some_future_event\"}\n\n".to_owned(),
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n".to_owned(),
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n".to_owned(),
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_owned(),
    ];
    ups.anthropic.script([Reply::Sse {
        chunks: chunks.clone(),
        gap: std::time::Duration::ZERO,
        drop_after: None,
    }]);
    let r = http()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", &key)
        .json(
            &json!({"model": "to-anthropic", "max_tokens": 5, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), chunks.concat());
    // No client version: the gateway sends the default.
    let up = ups.anthropic.requests().pop().unwrap();
    assert_eq!(up.header("anthropic-version"), Some("2023-06-01"));
}

#[tokio::test]
async fn native_gemini_keeps_the_body_and_reframes_the_json_array_form() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let key = gw.key("test");
    let body = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"safetySettings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_NONE"}]}"#;
    let r = http()
        .post(format!(
            "{}/v1beta/models/to-gemini:generateContent?key={key}",
            gw.url
        ))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let up = ups.gemini.requests().pop().unwrap();
    assert_eq!(String::from_utf8(up.body.to_vec()).unwrap(), body);
    assert_eq!(up.path, "/v1beta/models/gemini-x:generateContent");

    // Without alt=sse the client reads one JSON array; the upstream is still asked for SSE.
    let r = http()
        .post(format!(
            "{}/v1beta/models/to-gemini:streamGenerateContent",
            gw.url
        ))
        .header("x-goog-api-key", &key)
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).expect("one JSON array");
    let text: String = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello, world");
    assert_eq!(ups.gemini.requests().pop().unwrap().query, "alt=sse");

    // The same form, converted from an Anthropic upstream.
    let r = http()
        .post(format!(
            "{}/v1beta/models/to-anthropic:streamGenerateContent",
            gw.url
        ))
        .header("x-goog-api-key", &key)
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).expect("one JSON array");
    let mut o = Outcome::default();
    for chunk in v.as_array().unwrap() {
        read_gemini_chunk(chunk, &mut o);
    }
    assert_eq!(o.text, "Hello, world");
    assert_eq!(o.finish, "STOP");
}

#[tokio::test]
async fn errors_come_in_the_clients_shape() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let key = gw.key("test");
    // Unknown model, asked in each protocol.
    let r = http()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", &key)
        .json(&json!({"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "not_found_error");
    let r = http()
        .post(format!("{}/v1beta/models/nope:generateContent", gw.url))
        .header("x-goog-api-key", &key)
        .json(&json!({"contents": [{"parts": [{"text": "x"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["status"], "NOT_FOUND");
    assert_eq!(v["error"]["code"], 404);
    // A wrong key, in Gemini's shape.
    let r = http()
        .post(format!(
            "{}/v1beta/models/to-gemini:generateContent?key=wrong",
            gw.url
        ))
        .json(&json!({"contents": [{"parts": [{"text": "x"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED");

    // An Anthropic upstream's 400, told to an OpenAI client in OpenAI's shape.
    ups.anthropic.script([Reply::status(
        400,
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long"}}"#,
    )]);
    let r = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(&key)
        .json(&json!({"model": "to-anthropic", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["message"], "prompt is too long");
    assert_eq!(v["error"]["type"], "invalid_request_error");

    // Something the target has no field for, and whose loss changes nothing: dropped, with a
    // warning in the log.
    let r = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(&key)
        .json(&json!({"model": "to-anthropic", "logprobs": true, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        !ups.anthropic
            .requests()
            .pop()
            .unwrap()
            .json()
            .to_string()
            .contains("logprobs"),
        "not sent on"
    );
    let log = gw.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("'logprobs' has no equivalent")),
        "{log}"
    );

    // Something the target cannot carry: refused, naming the field.
    let r = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(&key)
        .json(&json!({"model": "to-anthropic", "n": 3, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("'n'"),
        "{v}"
    );
    let r = http()
        .post(format!("{}/v1/responses", gw.url))
        .bearer_auth(&key)
        .json(&json!({"model": "to-gemini", "input": "x", "previous_response_id": "resp_1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("previous_response_id"),
        "{v}"
    );
}

#[tokio::test]
async fn a_converted_stream_cut_midway_ends_with_the_clients_error_event() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let key = gw.key("test");
    let chunk = |delta: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "c1", "model": "gpt-x", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
        )
    };
    // Tool-call arguments split over many chunks, then the connection drops.
    let mut chunks = vec![
        chunk(json!({"role": "assistant", "content": ""})),
        chunk(json!({"content": "Let me look."})),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_7", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}]}),
        ),
    ];
    for p in ["{\"ci", "ty\":", "\"Par", "is\"}"] {
        chunks.push(chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}),
        ));
    }
    let n = chunks.len();
    // Never sent: the connection drops in its place, a gap after the last piece.
    chunks.push(chunk(json!({"content": "unsent"})));
    ups.openai.script([Reply::Sse {
        chunks,
        gap: std::time::Duration::from_millis(5),
        drop_after: Some(n),
    }]);
    let r = http()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", &key)
        .json(
            &json!({"model": "to-openai", "max_tokens": 50, "stream": true,
            "messages": [{"role": "user", "content": "weather?"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let events = sse_events(&text);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{text}");
    assert_eq!(names.last(), Some(&"error"), "{text}");
    assert!(
        !names.contains(&"message_stop"),
        "a cut stream is not a finished one: {text}"
    );
    let partial: String = events
        .iter()
        .filter_map(|(_, v)| v["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        partial, "{\"city\":\"Paris\"}",
        "every argument piece arrived"
    );
    let (_, err) = events.last().unwrap();
    assert_eq!(err["type"], "error");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("oa"),
        "{err}"
    );
}

/// A relay that interleaves the argument pieces of parallel calls: an Anthropic client, whose
/// stream holds one open block at a time, still gets every argument of each. (A Responses
/// client of an OpenAI provider is served natively.)
#[tokio::test]
async fn interleaved_parallel_calls_reach_an_anthropic_client_whole() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "c1", "model": "gpt-x", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let args = |i: usize, piece: &str| {
        chunk(
            json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
            Value::Null,
        )
    };
    let chunks = vec![
        chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
            {"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
            Value::Null,
        ),
        args(0, "{\"city\":"),
        args(1, "{\"city\":"),
        args(0, "\"Paris\"}"),
        args(1, "\"Rome\"}"),
        chunk(json!({}), json!("tool_calls")),
        format!(
            "data: {}\n\n",
            json!({"id": "c1", "model": "gpt-x", "choices": [],
                "usage": {"prompt_tokens": 20, "completion_tokens": 12, "total_tokens": 32}})
        ),
        "data: [DONE]\n\n".to_owned(),
    ];
    ups.openai.script([Reply::Sse {
        chunks,
        gap: std::time::Duration::from_millis(2),
        drop_after: None,
    }]);
    let o = ask(&gw, Client::Messages, "to-openai", true, None).await;
    let calls: Vec<(&str, &str, &Value)> = o
        .calls
        .iter()
        .map(|k| (k.id.as_str(), k.name.as_str(), &k.args))
        .collect();
    assert_eq!(
        calls,
        [
            ("call_a", "get_weather", &json!({"city": "Paris"})),
            ("call_b", "get_weather", &json!({"city": "Rome"}))
        ]
    );
    assert_eq!(o.finish, "tool_use");
}

#[tokio::test]
async fn models_lists_in_each_shape_and_openai_only_endpoints() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let key = gw.key("test");
    let v: Value = http()
        .get(format!("{}/v1/models", gw.url))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["has_more"], false);
    let v: Value = http()
        .get(format!("{}/v1beta/models", gw.url))
        .header("x-goog-api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .filter(|n| !n.starts_with("models/auto:"))
        .collect();
    assert_eq!(
        names,
        [
            "models/to-anthropic",
            "models/to-gemini",
            "models/to-openai"
        ]
    );

    // Embeddings and images go to OpenAI providers only.
    let r = http()
        .post(format!("{}/v1/embeddings", gw.url))
        .bearer_auth(&key)
        .json(&json!({"model": "to-openai", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(ups.openai.requests().pop().unwrap().path, "/v1/embeddings");
    let r = http()
        .post(format!("{}/v1/embeddings", gw.url))
        .bearer_auth(&key)
        .json(&json!({"model": "to-anthropic", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let r = http()
        .post(format!("{}/v1/images/generations", gw.url))
        .bearer_auth(&key)
        .json(&json!({"model": "to-openai", "prompt": "a cat"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Token counts: Anthropic's own where it serves the model, an estimate elsewhere.
    let count = |model: &str| {
        http()
            .post(format!("{}/v1/messages/count_tokens", gw.url))
            .header("x-api-key", &key)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "a b c d e f g h"}]}))
            .send()
    };
    let v: Value = count("to-anthropic").await.unwrap().json().await.unwrap();
    assert_eq!(v["input_tokens"], 42);
    let v: Value = count("to-gemini").await.unwrap().json().await.unwrap();
    let n = v["input_tokens"].as_u64().unwrap();
    assert!((4..=12).contains(&n), "{v}");
    let v: Value = http()
        .post(format!("{}/v1beta/models/to-gemini:countTokens", gw.url))
        .header("x-goog-api-key", &key)
        .json(&json!({"contents": [{"parts": [{"text": "a b c d e f g h"}]}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["totalTokens"].as_u64().unwrap() > 0, "{v}");
}

/// async-openai parses strictly: what it accepts, strict OpenAI clients accept.
#[tokio::test]
async fn async_openai_calls_a_tool_on_anthropic_and_gemini_providers() {
    use async_openai::config::OpenAIConfig;
    use async_openai::types::chat::{ChatCompletionMessageToolCalls, CreateChatCompletionRequest};
    use futures_util::StreamExt;

    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let client = async_openai::Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("{}/v1", gw.url))
            .with_api_key(gw.key("test")),
    );
    let args: Value = serde_json::from_str(TOOL_ARGS).unwrap();
    for model in ["to-anthropic", "to-gemini"] {
        let (_, first) = request(Client::Chat, model, false, None);
        let req: CreateChatCompletionRequest = serde_json::from_value(first).unwrap();
        let resp = client.chat().create(req).await.unwrap();
        let Some(ChatCompletionMessageToolCalls::Function(call)) = resp.choices[0]
            .message
            .tool_calls
            .as_ref()
            .and_then(|c| c.first())
            .cloned()
        else {
            panic!("{model}: no function call in {resp:?}");
        };
        assert_eq!(call.function.name, "get_weather");
        let got: Value = serde_json::from_str(&call.function.arguments).unwrap();
        assert_eq!(got, args);
        let tool = Call {
            id: call.id.clone(),
            name: call.function.name.clone(),
            args: got,
        };

        // Streamed: the call arrives in pieces; the answer after the result, in pieces too.
        let (_, first) = request(Client::Chat, model, true, None);
        let req: CreateChatCompletionRequest = serde_json::from_value(first).unwrap();
        let mut stream = client.chat().create_stream(req).await.unwrap();
        let (mut id, mut name, mut arguments) = (String::new(), String::new(), String::new());
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap_or_else(|e| panic!("{model}: {e}"));
            for choice in &chunk.choices {
                for t in choice.delta.tool_calls.iter().flatten() {
                    if let Some(i) = &t.id {
                        id.clone_from(i);
                    }
                    if let Some(f) = &t.function {
                        name.push_str(f.name.as_deref().unwrap_or(""));
                        arguments.push_str(f.arguments.as_deref().unwrap_or(""));
                    }
                }
            }
        }
        assert!(!id.is_empty(), "{model}");
        assert_eq!(name, "get_weather");
        assert_eq!(serde_json::from_str::<Value>(&arguments).unwrap(), args);

        let (_, second) = request(Client::Chat, model, true, Some(&tool));
        let req: CreateChatCompletionRequest = serde_json::from_value(second).unwrap();
        let mut stream = client.chat().create_stream(req).await.unwrap();
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            for choice in chunk.unwrap().choices {
                text.push_str(choice.delta.content.as_deref().unwrap_or(""));
            }
        }
        assert_eq!(text, format!("{AFTER_TOOL}sunny"), "{model}");
    }
}

/// Native wins whenever the provider speaks the client's protocol; otherwise the unified
/// model's `protocol` picks among the provider's.
#[tokio::test]
async fn native_first_then_the_models_protocol() {
    let mock = common::mock::Mock::start().await;
    let config = format!(
        r#"
[[providers]]
name = "both"
base_url = "{}"
protocols = ["openai", "anthropic"]
models = ["m1"]

[[models]]
name = "prefers-anthropic"
include = ["both/m1"]
protocol = "anthropic"

[[models]]
name = "default"
include = ["both/m1"]

[[client_keys]]
name = "test"
"#,
        mock.url()
    );
    let (gw, _dir) = Gateway::start(&config);
    let cases = [
        (Client::Chat, "prefers-anthropic", "/v1/chat/completions"),
        (Client::Messages, "default", "/v1/messages"),
        (Client::Gemini, "prefers-anthropic", "/v1/messages"),
        (Client::Gemini, "default", "/v1/chat/completions"),
        (Client::Responses, "prefers-anthropic", "/v1/responses"),
    ];
    for (c, model, path) in cases {
        let (p, body) = request(c, model, false, None);
        let body = if c == Client::Responses {
            json!({"model": model, "input": "hi"})
        } else {
            body
        };
        let r = http()
            .post(format!("{}{p}", gw.url))
            .bearer_auth(gw.key("test"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "{c:?} {model}: {}",
            r.text().await.unwrap()
        );
        assert_eq!(mock.requests().pop().unwrap().path, path, "{c:?} {model}");
    }
}

/// A stream that breaks after content ends with an error in each client's own form.
#[tokio::test]
async fn each_client_protocol_ends_a_broken_stream_with_its_error() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let key = gw.key("test");
    let chunk = |text: &str| {
        format!(
            "data: {}\n\n",
            json!({"id": "c1", "model": "gpt-x", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
        )
    };
    for c in CLIENTS {
        ups.openai.script([Reply::Sse {
            chunks: vec![chunk("Hel"), chunk("lo"), chunk("never sent")],
            gap: std::time::Duration::from_millis(5),
            drop_after: Some(2),
        }]);
        let (path, mut body) = request(c, "to-openai", true, None);
        if let Some(o) = body.as_object_mut() {
            o.remove("tools");
        }
        let text = http()
            .post(format!("{}{path}", gw.url))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let events = sse_events(&text);
        let (name, last) = events.last().unwrap_or_else(|| panic!("{c:?}: {text}"));
        match c {
            Client::Chat => assert!(last["error"]["message"].is_string(), "{text}"),
            Client::Responses => {
                // Responses to an OpenAI provider is native: the gateway adds an `error` event
                // and `response.failed`, which Codex and the SDKs end the turn on.
                let (err_name, err) = &events[events.len() - 2];
                assert_eq!(err_name, "error", "{text}");
                assert!(err["message"].as_str().unwrap().contains("oa"), "{text}");
                assert_eq!(name, "response.failed", "{text}");
                assert_eq!(last["response"]["status"], "failed", "{text}");
                assert!(
                    last["response"]["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("oa"),
                    "{text}"
                );
            }
            Client::Messages => {
                assert_eq!(name, "error", "{text}");
                assert_eq!(last["type"], "error");
            }
            Client::Gemini => {
                assert_eq!(last["error"]["status"], "UNAVAILABLE", "{text}");
                assert_eq!(last["error"]["code"], 502);
                assert!(
                    !text.contains("data: {\"error\""),
                    "not in a data: line: {text}"
                );
                assert!(text.trim_end().ends_with('}'), "{text}");
            }
        }
        assert!(
            text.contains("Hel"),
            "{c:?}: content before the break arrived: {text}"
        );
    }
}

/// An upstream stream that just stops (no finish reason, no `[DONE]`) is not a finished answer:
/// converted, the client gets an error, not an invented clean ending.
#[tokio::test]
async fn a_converted_stream_without_its_end_marker_is_an_error() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let chunk = |text: &str| {
        format!(
            "data: {}\n\n",
            json!({"id": "c1", "model": "gpt-x", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
        )
    };
    ups.openai.script([Reply::Sse {
        chunks: vec![chunk("Hel"), chunk("lo")],
        gap: std::time::Duration::ZERO,
        drop_after: None,
    }]);
    let text = http()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", gw.key("test"))
        .json(
            &json!({"model": "to-openai", "max_tokens": 20, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&text);
    assert_eq!(events.last().unwrap().0, "error", "{text}");
    assert!(!text.contains("message_stop"), "{text}");
    assert!(text.contains("end marker"), "{text}");
}

/// A unified model's `default_params.max_tokens` beats the stand-in Anthropic's required
/// `max_tokens` gets when the client sent none; the client's own value beats both.
#[tokio::test]
async fn the_models_default_max_tokens_reaches_a_converted_anthropic_request() {
    let ups = Upstreams::start().await;
    let config = ups.config().replace(
        "[[models]]\nname = \"to-anthropic\"\ninclude = [\"an/claude-x\"]",
        "[[models]]\nname = \"to-anthropic\"\ninclude = [\"an/claude-x\"]\ndefault_params = { max_tokens = 1234 }",
    );
    assert!(config.contains("1234"));
    let (gw, _dir) = Gateway::start(&config);
    for (sent, expected) in [(None, 1234), (Some(99), 99)] {
        let mut body =
            json!({"model": "to-anthropic", "messages": [{"role": "user", "content": "x"}]});
        if let Some(n) = sent {
            body["max_tokens"] = n.into();
        }
        let r = http()
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(gw.key("test"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let up = ups.anthropic.requests().pop().unwrap().json();
        assert_eq!(up["max_tokens"], expected, "{up}");
    }
}

/// A native Gemini stream cut after content ends with the error object on its own, the form
/// `@google/genai` (Gemini CLI) raises on; in a `data:` line it passed as one more chunk.
#[tokio::test]
async fn a_native_gemini_stream_cut_after_content_ends_with_a_bare_error_object() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let chunk = |t: &str| {
        format!(
            "data: {}\r\n\r\n",
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": t}]}, "index": 0}]})
        )
    };
    ups.gemini.script([Reply::Sse {
        chunks: vec![chunk("Hel"), chunk("lo"), chunk("never sent")],
        gap: std::time::Duration::from_millis(5),
        drop_after: Some(2),
    }]);
    let text = http()
        .post(format!(
            "{}/v1beta/models/to-gemini:streamGenerateContent?alt=sse",
            gw.url
        ))
        .header("x-goog-api-key", gw.key("test"))
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("Hel"), "{text}");
    let last = text.trim_end().rsplit('\n').next().unwrap();
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["error"]["code"], 502, "{text}");
    assert_eq!(v["error"]["status"], "UNAVAILABLE", "{text}");
}

/// A plain GET of `/v1/responses` (no WebSocket upgrade) is a 405 in OpenAI's shape.
#[tokio::test]
async fn a_plain_get_of_responses_is_405() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let r = http()
        .get(format!("{}/v1/responses", gw.url))
        .bearer_auth(gw.key("test"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("WebSocket"),
        "{v}"
    );
    assert_eq!(ups.openai.hits(), 0);
}

/// An OpenAI-compatible relay without the Responses API: its 404 is followed at once by the
/// same request as chat (the client sees one answer), the provider is recorded as chat-only,
/// and later Responses requests go straight to chat. `responses = false` says it up front.
#[tokio::test]
async fn responses_requests_reach_a_chat_only_relay_as_chat() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = common::start_admin(&ups.config());
    ups.openai.script([Reply::status(
        404,
        r#"{"error":{"message":"Invalid URL (POST /v1/responses)"}}"#,
    )]);
    let ask = |stream: bool| {
        http()
            .post(format!("{}/v1/responses", gw.url))
            .bearer_auth(gw.key("test"))
            .json(&json!({"model": "to-openai", "input": "hi", "stream": stream}))
            .send()
    };
    let r = ask(false).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchboard-attempts"], "1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "response", "{v}");
    assert_eq!(
        v["output"][0]["content"][0]["text"], "Hello from the mock",
        "{v}"
    );
    let token = common::admin_token(&gw).await;
    let mut learned = false;
    for _ in 0..50 {
        if common::provider_view(&gw, &token, "oa").await["responses"] == false {
            learned = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(learned, "the provider is shown chat-only");
    let text = ask(true).await.unwrap().text().await.unwrap();
    assert!(text.contains("event: response.completed"), "{text}");
    assert!(text.contains("Hello"), "{text}");
    let paths: Vec<String> = ups
        .openai
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        paths,
        [
            "/v1/responses",
            "/v1/chat/completions",
            "/v1/chat/completions"
        ]
    );

    // Said in the config: never asked for Responses at all.
    let ups = Upstreams::start().await;
    let config = ups.config().replace(
        "protocols = [\"openai\"]",
        "protocols = [\"openai\"]\nresponses = false",
    );
    let (gw, _dir) = Gateway::start(&config);
    let r = http()
        .post(format!("{}/v1/responses", gw.url))
        .bearer_auth(gw.key("test"))
        .json(&json!({"model": "to-openai", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let paths: Vec<String> = ups
        .openai
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, ["/v1/chat/completions"]);
}

/// Tools that run on the client vendor's servers are left out of a converted request, the
/// turn goes on, and the answer names what was dropped; forcing one is refused.
#[tokio::test]
async fn server_side_tools_are_dropped_and_named_unless_forced() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let key = gw.key("test");
    let r = http()
        .post(format!("{}/v1/responses", gw.url))
        .bearer_auth(&key)
        .json(
            &json!({"model": "to-anthropic", "input": "weather?", "tools": [
            {"type": "web_search"},
            {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchboard-dropped"], "tools: web_search");
    let sent = ups.anthropic.requests()[0].json();
    assert_eq!(sent["tools"].as_array().unwrap().len(), 1, "{sent}");
    let r = http()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", &key)
        .json(
            &json!({"model": "to-openai", "max_tokens": 100, "stream": true,
            "messages": [{"role": "user", "content": "news?"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-switchboard-dropped"],
        "tools[0]: web_search (web_search_20250305)"
    );
    let r = http()
        .post(format!("{}/v1/responses", gw.url))
        .bearer_auth(&key)
        .json(&json!({"model": "to-anthropic", "input": "news?",
            "tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tool_choice"),
        "{v}"
    );
}

/// A whole plain answer is logged as answered: the server stops reading the body once the
/// length it announced is sent, and that used to be logged as the client going away.
#[tokio::test]
async fn a_whole_plain_answer_is_logged_without_an_error() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let r = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(gw.key("test"))
        .json(&json!({"model": "to-openai", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-length").is_some());
    r.text().await.unwrap();
    let mut line = None;
    for _ in 0..100 {
        line = gw
            .stderr()
            .lines()
            .find(|l| l.contains("access chat/completions"))
            .map(str::to_owned);
        if line.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let line = line.expect("an access line");
    assert!(line.contains("status=200"), "{line}");
    assert!(!line.contains("error="), "{line}");
}

/// The Responses WebSocket mode, as Codex speaks it: a warm-up, a turn with the whole input, a
/// turn naming the previous response with only its new items (the upstream still gets the whole
/// history over HTTP), and errors as messages on a connection that stays open. A browser's
/// Origin is refused before anything is spent.
#[tokio::test]
async fn the_responses_websocket_mode_carries_turns_over_http() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let url = format!("ws://{}/v1/responses", gw.url.trim_start_matches("http://"));
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", gw.key("test")).parse().unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req.clone()).await.unwrap();
    assert_eq!(resp.status(), 101);
    // Events until the turn's last one.
    async fn events(
        ws: &mut (
                 impl futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
                 + Unpin
             ),
    ) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(Ok(m)) = ws.next().await {
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            let kind = v["type"].as_str().unwrap_or("").to_owned();
            out.push(v);
            if matches!(
                kind.as_str(),
                "response.completed" | "response.failed" | "error"
            ) {
                break;
            }
        }
        out
    }
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(
        json!({"type": "response.create", "model": "to-anthropic", "generate": false, "input": []}),
    ))
    .await
    .unwrap();
    let warm = events(&mut ws).await;
    assert_eq!(
        warm.last().unwrap()["type"],
        "response.completed",
        "{warm:?}"
    );
    assert_eq!(ups.anthropic.hits(), 0, "a warm-up goes nowhere");

    let tools =
        json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]);
    ws.send(send(
        json!({"type": "response.create", "model": "to-anthropic", "tools": tools,
        "previous_response_id": warm[0]["response"]["id"],
        "input": [{"role": "user", "content": "weather?"}]}),
    ))
    .await
    .unwrap();
    let first = events(&mut ws).await;
    let done = first.last().unwrap();
    assert_eq!(done["type"], "response.completed", "{first:?}");
    let call = &done["response"]["output"][0];
    assert_eq!(call["type"], "function_call", "{done}");

    ws.send(send(json!({"type": "response.create", "model": "to-anthropic", "tools": tools,
        "previous_response_id": done["response"]["id"],
        "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}]})))
        .await
        .unwrap();
    let second = events(&mut ws).await;
    let text = second.last().unwrap()["response"]["output"][0]["content"][0]["text"].clone();
    assert_eq!(text, format!("{AFTER_TOOL}sunny"), "{second:?}");
    // The upstream got the whole history: the question, the call, its result.
    let sent = ups.anthropic.requests()[1].json();
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"], "{sent}");

    // Errors are messages; the connection stays.
    ws.send(send(
        json!({"type": "response.create", "model": "to-anthropic",
        "previous_response_id": "resp_elsewhere", "input": []}),
    ))
    .await
    .unwrap();
    let e = events(&mut ws).await;
    assert_eq!(
        e.last().unwrap()["error"]["code"],
        "previous_response_not_found"
    );
    ws.send(send(
        json!({"type": "response.create", "model": "no-such-model", "input": "hi"}),
    ))
    .await
    .unwrap();
    let e = events(&mut ws).await;
    assert_eq!(e.last().unwrap()["status"], 404, "{e:?}");
    ws.send(Message::Text("not json".into())).await.unwrap();
    let e = events(&mut ws).await;
    assert_eq!(e.last().unwrap()["status"], 400, "{e:?}");
    // Failed turns leave the last good one to go on from.
    ws.send(send(
        json!({"type": "response.create", "model": "to-anthropic",
        "previous_response_id": second.last().unwrap()["response"]["id"],
        "input": [{"role": "user", "content": "thanks"}]}),
    ))
    .await
    .unwrap();
    let third = events(&mut ws).await;
    assert_eq!(
        third.last().unwrap()["type"],
        "response.completed",
        "{third:?}"
    );
    let sent = ups.anthropic.requests().last().unwrap().json();
    assert_eq!(sent["messages"].as_array().unwrap().len(), 5, "{sent}");

    // A browser's Origin, or no key: refused at the upgrade.
    let mut from_page = req.clone();
    from_page
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(from_page).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("a page's WebSocket was accepted: {other:?}"),
    }
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("a keyless WebSocket was accepted: {other:?}"),
    }
    // A rebound name (DNS rebinding) for this address.
    let mut rebound = req.clone();
    rebound
        .headers_mut()
        .insert("host", "evil.example:7340".parse().unwrap());
    match tokio_tungstenite::connect_async(rebound).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("a foreign Host's WebSocket was accepted: {other:?}"),
    }
}

/// A Responses server's own 404 (a model it lacks, a previous response it forgot) is passed
/// on as it is: it does not make the provider chat-only.
#[tokio::test]
async fn a_responses_servers_own_404_does_not_make_it_chat_only() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = common::start_admin(&ups.config());
    ups.openai.script([Reply::status(
        404,
        r#"{"error":{"message":"The model `gpt-x` does not exist","type":"invalid_request_error","code":"model_not_found"}}"#,
    )]);
    let r = http()
        .post(format!("{}/v1/responses", gw.url))
        .bearer_auth(gw.key("test"))
        .json(&json!({"model": "to-openai", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let paths: Vec<String> = ups
        .openai
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, ["/v1/responses"]);
    let token = common::admin_token(&gw).await;
    let oa = common::provider_view(&gw, &token, "oa").await;
    assert_eq!(oa["responses"], true, "{oa}");
}

/// A client's model name reaches the log and the answer one line long and bounded: no forged
/// access lines, and a 4 MB name writes neither 4 MB of log nor a 4 MB answer.
#[tokio::test]
async fn a_model_name_cannot_forge_or_flood_the_log() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = Gateway::start(&ups.config());
    let forged = "x\n2026-01-01T00:00:00.000Z access chat/completions status=200 client=admin";
    let huge = "m".repeat(4 << 20);
    for name in [forged, huge.as_str()] {
        let r = http()
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(gw.key("test"))
            .json(&json!({"model": name, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let text = r.text().await.unwrap();
        assert!(text.len() < 1000, "{} bytes", text.len());
    }
    // A role a client made up is quoted bounded too.
    let r = http()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", gw.key("test"))
        .json(&json!({"model": "to-openai", "max_tokens": 5,
            "messages": [{"role": "r".repeat(100_000), "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().len() < 2000);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = gw.stderr();
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2026-01-01T00:00:00.000Z")),
        "a forged line: {log}"
    );
    assert!(
        log.contains(r"model=x\n2026"),
        "escaped in its own line: {log}"
    );
    assert!(log.len() < 64 << 10, "{} bytes of log", log.len());
}

/// A native stream that stops without its protocol's end (`[DONE]`, `response.completed`,
/// `message_stop`, a Gemini finish reason) broke off, however cleanly the connection closed:
/// the client gets its protocol's error event, and the breaker sees a failure.
#[tokio::test]
async fn a_native_stream_without_its_end_marker_is_an_error() {
    let ups = Upstreams::start().await;
    let (gw, _dir) = common::start_admin(&ups.config());
    let key = gw.key("test");
    let cases = [
        (
            &ups.openai,
            "/v1/chat/completions",
            json!({"model": "to-openai", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
            format!(
                "data: {}\n\n",
                json!({"id": "c", "model": "gpt-x", "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}]})
            ),
        ),
        (
            &ups.openai,
            "/v1/responses",
            json!({"model": "to-openai", "stream": true, "input": "hi"}),
            format!(
                "event: response.output_text.delta\ndata: {}\n\n",
                json!({"type": "response.output_text.delta", "delta": "Hel", "item_id": "m", "output_index": 0, "content_index": 0})
            ),
        ),
        (
            &ups.anthropic,
            "/v1/messages",
            json!({"model": "to-anthropic", "stream": true, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}),
            format!(
                "event: content_block_delta\ndata: {}\n\n",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}})
            ),
        ),
        (
            &ups.gemini,
            "/v1beta/models/to-gemini:streamGenerateContent?alt=sse",
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
            format!(
                "data: {}\r\n\r\n",
                json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}]})
            ),
        ),
    ];
    for (mock, path, body, chunk) in cases {
        mock.script([Reply::Sse {
            chunks: vec![chunk],
            gap: std::time::Duration::ZERO,
            drop_after: None,
        }]);
        let text = http()
            .post(format!("{}{path}", gw.url))
            .bearer_auth(&key)
            .header("x-api-key", &key)
            .header("x-goog-api-key", &key)
            .json(&body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("Hel"), "{path}: {text}");
        assert!(
            text.contains("end marker"),
            "{path}: the client is told: {text}"
        );
    }
    let token = common::admin_token(&gw).await;
    let status: Value = common::admin(&gw, &token, "GET", "/status", None)
        .await
        .json()
        .await
        .unwrap();
    let text = status.to_string();
    assert!(
        text.matches("end marker").count() >= 3,
        "each provider's breaker saw the failure: {status}"
    );
    // A relay that leaves `[DONE]` out after the finish reason has ended its stream.
    let finish = |f: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "model": "gpt-x", "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": f}]})
        )
    };
    ups.openai.script([Reply::Sse {
        chunks: vec![finish(Value::Null), finish(json!("stop"))],
        gap: std::time::Duration::ZERO,
        drop_after: None,
    }]);
    let text = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(&key)
        .json(&json!({"model": "to-openai", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("error"), "{text}");
}
