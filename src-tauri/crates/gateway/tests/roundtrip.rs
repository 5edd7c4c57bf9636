//! Round trips: a conversation written in protocol A, converted to protocol B and back to A,
//! keeps its roles, its text, its tool calls (ids, names, arguments) and its tool results
//! (ids, content), whatever the conversation.

use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_gateway::Protocol;
use switchboard_gateway::protocol::Api;
use switchboard_gateway::protocol::convert;
use switchboard_gateway::protocol::ir::{
    ChatRequest, Message, Notes, Part, Role, ToolCall, ToolResult,
};

const PROTOCOLS: [Protocol; 3] = [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini];

/// What must survive, in order: per role run, its texts, calls and results.
#[derive(Debug, PartialEq)]
enum Item {
    Text(String),
    Call(String, String, Value),
    Result(String, String),
}

fn projection(req: &ChatRequest) -> (Vec<String>, Vec<(Role, Vec<Item>)>) {
    let mut out: Vec<(Role, Vec<Item>)> = Vec::new();
    for m in &req.messages {
        let items: Vec<Item> = m
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(Item::Text(t.clone())),
                Part::ToolCall(c) => Some(Item::Call(
                    c.id.clone(),
                    c.name.clone(),
                    serde_json::from_str(&c.arguments).unwrap_or(Value::Null),
                )),
                // Whether a result is an error is not kept: OpenAI has no such flag.
                Part::ToolResult(r) => Some(Item::Result(r.id.clone(), r.content.clone())),
                _ => None,
            })
            .collect();
        if items.is_empty() {
            continue;
        }
        // Protocols differ in how they split a turn into messages (OpenAI gives each tool result
        // its own); what counts is what each role says, in order.
        match out.last_mut() {
            Some((role, list)) if *role == m.role => list.extend(items),
            _ => out.push((m.role, items)),
        }
    }
    (req.system.clone(), out)
}

fn through(req: &ChatRequest, to: Protocol) -> ChatRequest {
    let mut notes = Notes::default();
    let wire = convert::encode_request(to, req, "m", &mut notes);
    convert::decode_request(Api::chat_of(to), &wire, &mut notes)
        .unwrap_or_else(|e| panic!("{to}: {e}\n{wire}"))
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.!?'\"\\\\é中🙂]{1,24}".prop_filter("not blank", |s| !s.trim().is_empty())
}

fn args() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(
        "[a-z_]{1,6}",
        prop_oneof![
            any::<i32>().prop_map(Value::from),
            text().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            prop::collection::vec(any::<i16>(), 0..3).prop_map(|v| json!(v)),
        ],
        0..4,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// One exchange: the user speaks; the assistant may say something and call tools; the tools'
/// results come back (some as errors), maybe with more words from the user.
#[derive(Clone, Debug)]
struct Turn {
    user: String,
    reply: Option<String>,
    calls: Vec<(String, Value, String, bool)>,
    after: Option<String>,
}

fn turn() -> impl Strategy<Value = Turn> {
    (
        text(),
        prop::option::of(text()),
        prop::collection::vec(("[a-z_]{3,10}", args(), text(), any::<bool>()), 0..3),
        prop::option::of(text()),
    )
        .prop_map(|(user, reply, calls, after)| Turn {
            user,
            reply,
            calls,
            after,
        })
}

fn conversation() -> impl Strategy<Value = ChatRequest> {
    (
        prop::option::of(text()),
        prop::collection::vec(turn(), 1..5),
    )
        .prop_map(|(system, turns)| {
            let mut messages = Vec::new();
            for (t, turn) in turns.iter().enumerate() {
                messages.push(Message {
                    role: Role::User,
                    parts: vec![Part::Text(turn.user.clone())],
                });
                let mut said = Vec::new();
                if let Some(r) = &turn.reply {
                    said.push(Part::Text(r.clone()));
                }
                let mut results = Vec::new();
                for (k, (name, args, result, failed)) in turn.calls.iter().enumerate() {
                    let id = format!("call_{t}_{k}");
                    said.push(Part::ToolCall(ToolCall {
                        id: id.clone(),
                        name: name.clone(),
                        arguments: args.to_string(),
                    }));
                    results.push(Part::ToolResult(ToolResult {
                        id,
                        name: Some(name.clone()),
                        content: result.clone(),
                        is_error: *failed,
                    }));
                }
                if said.is_empty() {
                    said.push(Part::Text("ok".into()));
                }
                messages.push(Message {
                    role: Role::Assistant,
                    parts: said,
                });
                if !results.is_empty() {
                    if let Some(a) = &turn.after {
                        results.push(Part::Text(a.clone()));
                    }
                    messages.push(Message {
                        role: Role::User,
                        parts: results,
                    });
                    messages.push(Message {
                        role: Role::Assistant,
                        parts: vec![Part::Text("noted".into())],
                    });
                }
            }
            ChatRequest {
                system: system.into_iter().collect(),
                messages,
                ..Default::default()
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_to_b_to_a_keeps_the_conversation(conv in conversation()) {
        for a in PROTOCOLS {
            // The conversation as a client of A writes it.
            let original = through(&conv, a);
            prop_assert_eq!(projection(&original), projection(&conv), "into {}", a);
            for b in PROTOCOLS {
                let back = through(&through(&original, b), a);
                prop_assert_eq!(
                    projection(&back),
                    projection(&original),
                    "{} -> {} -> {}",
                    a,
                    b,
                    a
                );
            }
        }
    }
}
