//! Golden conversions: requests, replies and streams taken from each provider's public API
//! reference (`tests/golden/*.json`, each naming its source), converted, and compared with the
//! form the other protocol expects.
//!
//! Comparison is by subset: every field the fixture expects must be there with that value
//! (numbers by value, tool-call argument strings as parsed JSON); fields the conventions leave
//! open (generated ids, timestamps) are left out of the fixtures.

use std::path::Path;

use bytes::BytesMut;
use serde_json::Value;
use switchboard_gateway::Protocol;
use switchboard_gateway::protocol::convert::{self, ClientStream, StreamConverter};
use switchboard_gateway::protocol::ir::{Accumulator, Event, Notes, ToolAliases};
use switchboard_gateway::protocol::{Api, anthropic, chat, gemini, sse};

fn api(name: &str) -> Api {
    match name {
        "openai" => Api::Chat,
        "responses" => Api::Responses,
        "anthropic" => Api::Messages,
        "gemini" => Api::Gemini,
        other => panic!("unknown protocol {other}"),
    }
}

fn protocol(name: &str) -> Protocol {
    match name {
        "openai" => Protocol::OpenAi,
        "anthropic" => Protocol::Anthropic,
        "gemini" => Protocol::Gemini,
        other => panic!("{other} is never an upstream protocol"),
    }
}

/// Where `actual` departs from `expected`, as `path: why` lines.
fn subset(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{path}.{k}");
                match a.get(k) {
                    None => out.push(format!("{p}: missing (expected {ev})")),
                    Some(av) if k == "arguments" && ev.is_string() && av.is_string() => {
                        let parse =
                            |v: &Value| serde_json::from_str::<Value>(v.as_str().unwrap_or(""));
                        match (parse(ev), parse(av)) {
                            (Ok(e), Ok(a)) => subset(&e, &a, &p, out),
                            _ => {
                                if ev != av {
                                    out.push(format!("{p}: {av} != {ev}"));
                                }
                            }
                        }
                    }
                    Some(av) => subset(ev, av, &p, out),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                out.push(format!(
                    "{path}: {} items, expected {}: {actual}",
                    a.len(),
                    e.len()
                ));
                return;
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                subset(ev, av, &format!("{path}[{i}]"), out);
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            if e.as_f64() != a.as_f64() {
                out.push(format!("{path}: {a} != {e}"));
            }
        }
        (e, a) => {
            if e != a {
                out.push(format!("{path}: {a} != {e}"));
            }
        }
    }
}

/// Converts a stream fed in pieces of `piece` bytes.
fn convert_stream(
    from: &str,
    to: &str,
    input: &str,
    piece: usize,
    aliases: &ToolAliases,
) -> BytesMut {
    let mut conv = StreamConverter::new(
        protocol(from),
        api(to),
        ClientStream {
            include_usage: true,
            json_array: false,
            aliases: aliases.clone(),
        },
    );
    let mut out = BytesMut::new();
    for chunk in input.as_bytes().chunks(piece) {
        conv.feed(chunk, &mut out);
    }
    conv.finish(&mut out);
    out
}

/// What a client of `to` assembles from the converted stream.
fn assemble(to: &str, stream: &[u8], aliases: &ToolAliases) -> Value {
    let mut reader = sse::Reader::default();
    let mut frames = Vec::new();
    reader.feed(stream, |f| frames.push(f));
    reader.finish(|f| frames.push(f));
    if to == "responses" {
        let last = frames.last().expect("a final event");
        let v: Value = serde_json::from_str(&last.data).expect("JSON");
        assert!(
            matches!(
                v["type"].as_str(),
                Some("response.completed" | "response.incomplete")
            ),
            "{}",
            last.data
        );
        return v["response"].clone();
    }
    let mut events: Vec<Event> = Vec::new();
    let mut chat_d = chat::StreamDecoder::default();
    let mut anthropic_d = anthropic::StreamDecoder::default();
    let mut gemini_d = gemini::StreamDecoder::default();
    for f in &frames {
        match to {
            "openai" => chat_d.frame(f, &mut events),
            "anthropic" => anthropic_d.frame(f, &mut events),
            _ => gemini_d.frame(f, &mut events),
        }
    }
    let mut acc = Accumulator::default();
    for e in &events {
        acc.push(e);
    }
    convert::encode_reply(api(to), &acc.reply, aliases)
}

fn run_case(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("readable fixture");
    let case: Value = serde_json::from_str(&text).expect("fixture is JSON");
    let (kind, from, to) = (
        case["kind"].as_str().unwrap_or(""),
        case["from"].as_str().unwrap_or(""),
        case["to"].as_str().unwrap_or(""),
    );
    assert!(
        case["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("https://")),
        "{} names no source",
        path.display()
    );
    // A reply to a client whose request declared namespaced or freeform tools names its calls
    // back the client's way: such cases carry that request.
    let aliases = match case.get("request") {
        Some(r) => {
            convert::decode_request(api(to), r, &mut Notes::default())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .aliases
        }
        None => ToolAliases::default(),
    };
    let actual = match kind {
        "request" => {
            let mut notes = Notes::default();
            let req = convert::decode_request(api(from), &case["input"], &mut notes)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if let Some(d) = case.get("dropped_tools") {
                assert_eq!(
                    &serde_json::json!(req.dropped_tools),
                    d,
                    "{}",
                    path.display()
                );
            }
            let model = case["model"].as_str().unwrap_or("m");
            convert::encode_request(protocol(to), &req, model, &mut notes)
        }
        "response" => {
            let reply = convert::decode_reply(protocol(from), &case["input"]);
            convert::encode_reply(api(to), &reply, &aliases)
        }
        "stream" => {
            let input = case["input"]
                .as_str()
                .expect("a stream fixture's input is SSE text");
            let whole = convert_stream(from, to, input, usize::MAX, &aliases);
            // However the network cuts the stream, the client gets the same bytes.
            for piece in [1, 7, 64] {
                let cut = convert_stream(from, to, input, piece, &aliases);
                assert_eq!(
                    strip_times(&cut),
                    strip_times(&whole),
                    "{}: fed {piece} bytes at a time",
                    path.display()
                );
            }
            assemble(to, &whole, &aliases)
        }
        other => panic!("{}: unknown kind {other}", path.display()),
    };
    let mut out = Vec::new();
    subset(&case["expected"], &actual, "", &mut out);
    out.into_iter()
        .map(|m| {
            format!(
                "{}: {m}",
                path.file_name().unwrap_or_default().to_string_lossy()
            )
        })
        .collect()
}

/// Timestamps may tick between two conversions of the same stream: `"created…":N` reads as 0.
fn strip_times(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let mut out = String::with_capacity(s.len());
    let mut rest = &*s;
    while let Some(at) = rest.find("\"created") {
        let tail = &rest[at..];
        let colon = tail.find(':').map_or(tail.len(), |c| c + 1);
        out.push_str(&rest[..at]);
        out.push_str(&tail[..colon]);
        out.push('0');
        let digits = tail[colon..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len() - colon);
        rest = &tail[colon + digits..];
    }
    out.push_str(rest);
    out
}

#[test]
fn golden_conversions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/golden exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 60, "only {} golden files", files.len());
    let mut kinds = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for f in &files {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        kinds.insert(name.split('-').next().unwrap_or("").to_owned());
        failures.extend(run_case(f));
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["request", "response", "stream"]
    );
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
