//! Conversion between a client's API and an upstream's protocol: requests and whole replies
//! through the neutral form, and streams event by event as the bytes arrive.

use bytes::BytesMut;
use serde_json::Value;

use super::ir::{ChatRequest, Event, Notes, Reply, ToolAliases, Unsupported};
use super::sequence::ToolSequencer;
use super::{Api, anthropic, chat, gemini, responses, sse};
use crate::config::Protocol;
use crate::error::GatewayError;

pub fn decode_request(
    api: Api,
    body: &Value,
    notes: &mut Notes,
) -> Result<ChatRequest, Unsupported> {
    match api {
        Api::Chat => chat::decode_request(body, notes),
        Api::Responses => responses::decode_request(body, notes),
        Api::Messages | Api::CountTokens => anthropic::decode_request(body, notes),
        Api::Gemini => gemini::decode_request(body, notes),
        Api::Embeddings | Api::Images => {
            Err(Unsupported::new("model", "this endpoint is OpenAI only"))
        }
    }
}

/// The upstream body; for Gemini the model goes in the URL, not here.
pub fn encode_request(
    target: Protocol,
    req: &ChatRequest,
    model: &str,
    notes: &mut Notes,
) -> Value {
    match target {
        Protocol::OpenAi => chat::encode_request(req, model, notes),
        Protocol::Anthropic => anthropic::encode_request(req, model, notes),
        Protocol::Gemini => gemini::encode_request(req, notes),
    }
}

pub fn decode_reply(upstream: Protocol, body: &Value) -> Reply {
    match upstream {
        Protocol::OpenAi => chat::decode_reply(body),
        Protocol::Anthropic => anthropic::decode_reply(body),
        Protocol::Gemini => gemini::decode_reply(body),
    }
}

pub fn encode_reply(client: Api, reply: &Reply, aliases: &ToolAliases) -> Value {
    match client {
        Api::Responses => responses::encode_reply(reply, aliases),
        Api::Messages | Api::CountTokens => anthropic::encode_reply(reply),
        Api::Gemini => gemini::encode_reply(reply),
        Api::Chat | Api::Embeddings | Api::Images => chat::encode_reply(reply),
    }
}

/// A whole upstream reply converted for the client, or why it could not be.
pub fn convert_reply(
    upstream: Protocol,
    client: Api,
    body: &[u8],
    aliases: &ToolAliases,
) -> Result<Vec<u8>, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the upstream's reply is not JSON: {e}"))?;
    let reply = decode_reply(upstream, &v);
    serde_json::to_vec(&encode_reply(client, &reply, aliases)).map_err(|e| e.to_string())
}

enum Decoder {
    Chat(chat::StreamDecoder),
    Messages(anthropic::StreamDecoder),
    Gemini(gemini::StreamDecoder),
}

enum Encoder {
    Chat(chat::StreamEncoder),
    Responses(responses::StreamEncoder),
    Messages(anthropic::StreamEncoder),
    Gemini(gemini::StreamEncoder),
}

/// How the client wants its stream written.
#[derive(Clone, Debug, Default)]
pub struct ClientStream {
    /// OpenAI chat: `stream_options.include_usage` was set.
    pub include_usage: bool,
    /// Gemini: the JSON-array form (no `alt=sse`).
    pub json_array: bool,
    /// Responses: the client's namespaced and freeform tools, to name calls back.
    pub aliases: ToolAliases,
}

/// An upstream stream in, the client's stream out.
pub struct StreamConverter {
    reader: sse::Reader,
    decoder: Decoder,
    encoder: Encoder,
    events: Vec<Event>,
    /// For OpenAI upstreams to clients with one open block at a time: parallel calls in order.
    sequencer: Option<ToolSequencer>,
    ordered: Vec<Event>,
    ended: bool,
}

impl StreamConverter {
    pub fn new(upstream: Protocol, client: Api, how: ClientStream) -> Self {
        Self {
            reader: sse::Reader::default(),
            decoder: match upstream {
                Protocol::OpenAi => Decoder::Chat(Default::default()),
                Protocol::Anthropic => Decoder::Messages(Default::default()),
                Protocol::Gemini => Decoder::Gemini(Default::default()),
            },
            encoder: match client {
                Api::Responses => Encoder::Responses(responses::StreamEncoder::new(how.aliases)),
                Api::Messages | Api::CountTokens => Encoder::Messages(Default::default()),
                Api::Gemini => Encoder::Gemini(gemini::StreamEncoder::new(how.json_array)),
                Api::Chat | Api::Embeddings | Api::Images => {
                    Encoder::Chat(chat::StreamEncoder::new(how.include_usage))
                }
            },
            events: Vec::with_capacity(8),
            sequencer: (upstream == Protocol::OpenAi
                && matches!(client, Api::Responses | Api::Messages))
            .then(ToolSequencer::default),
            ordered: Vec::new(),
            ended: false,
        }
    }

    /// `at_end`: the upstream is done, so held tool calls go out too.
    fn encode_events(&mut self, out: &mut BytesMut, at_end: bool) {
        if let Some(seq) = &mut self.sequencer {
            for ev in self.events.drain(..) {
                seq.push(ev, &mut self.ordered);
            }
            if at_end {
                seq.flush(&mut self.ordered);
            }
            std::mem::swap(&mut self.events, &mut self.ordered);
        }
        for ev in self.events.drain(..) {
            match &mut self.encoder {
                Encoder::Chat(e) => e.event(&ev, out),
                Encoder::Responses(e) => e.event(&ev, out),
                Encoder::Messages(e) => e.event(&ev, out),
                Encoder::Gemini(e) => e.event(&ev, out),
            }
        }
    }

    /// Converts what `bytes` completes; a partial event waits for the next call.
    pub fn feed(&mut self, bytes: &[u8], out: &mut BytesMut) {
        let (decoder, events) = (&mut self.decoder, &mut self.events);
        self.reader.feed(bytes, |f| match decoder {
            Decoder::Chat(d) => d.frame(&f, events),
            Decoder::Messages(d) => d.frame(&f, events),
            Decoder::Gemini(d) => d.frame(&f, events),
        });
        self.encode_events(out, false);
    }

    /// The upstream ended: what is left, then the client's closing events.
    pub fn finish(&mut self, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        self.ended = true;
        let (decoder, events) = (&mut self.decoder, &mut self.events);
        self.reader.finish(|f| match decoder {
            Decoder::Chat(d) => d.frame(&f, events),
            Decoder::Messages(d) => d.frame(&f, events),
            Decoder::Gemini(d) => d.frame(&f, events),
        });
        self.encode_events(out, true);
        match &mut self.encoder {
            Encoder::Chat(e) => e.end(out),
            Encoder::Responses(e) => e.end(out),
            Encoder::Messages(e) => e.end(out),
            Encoder::Gemini(e) => e.end(out),
        }
    }

    /// Whether the upstream's stream reached its own end (a finish reason, `[DONE]`,
    /// `message_stop`): one that just stops is a failure, not a finished answer.
    pub fn complete(&self) -> bool {
        match &self.decoder {
            Decoder::Chat(d) => d.complete,
            Decoder::Messages(d) => d.complete,
            Decoder::Gemini(d) => d.complete,
        }
    }

    /// The stream failed: close what the client has open and end with an error event.
    pub fn fail(&mut self, e: &GatewayError, out: &mut BytesMut) {
        self.ended = true;
        let status = e.status().as_u16();
        let message = e.to_string();
        match &mut self.encoder {
            Encoder::Chat(enc) => {
                enc.fail();
                out.extend_from_slice(&super::openai::stream_error_event(e, false));
            }
            Encoder::Responses(enc) => enc.fail(status, &message, out),
            Encoder::Messages(enc) => {
                enc.fail(anthropic::error_type_of_status(status), &message, out);
            }
            Encoder::Gemini(enc) => enc.fail(status, &message, out),
        }
    }
}

/// A Gemini stream passed through natively to a client that asked for the JSON-array form:
/// the upstream is always asked for `alt=sse`, and its events are re-framed, not re-encoded.
#[derive(Default)]
pub struct SseToJsonArray {
    reader: sse::Reader,
    written: bool,
}

impl SseToJsonArray {
    fn frame(written: &mut bool, data: &str, out: &mut BytesMut) {
        if data.trim().is_empty() {
            return;
        }
        out.extend_from_slice(if *written { b",\r\n" } else { b"[" });
        out.extend_from_slice(data.as_bytes());
        *written = true;
    }

    pub fn feed(&mut self, bytes: &[u8], out: &mut BytesMut) {
        let written = &mut self.written;
        self.reader
            .feed(bytes, |f| Self::frame(written, &f.data, out));
    }

    pub fn finish(&mut self, out: &mut BytesMut) {
        let written = &mut self.written;
        self.reader.finish(|f| Self::frame(written, &f.data, out));
        if !self.written {
            out.extend_from_slice(b"[");
        }
        out.extend_from_slice(b"]");
    }

    pub fn fail(&mut self, e: &GatewayError, out: &mut BytesMut) {
        let body = gemini::error_body(e.status().as_u16(), &e.to_string()).to_string();
        Self::frame(&mut self.written, &body, out);
        out.extend_from_slice(b"]");
    }
}

/// A stream as the client received it, folded into the one message a plain request would
/// have been answered with (for captured bodies). Responses: the response its closing event
/// carries. None: nothing in it reads as that protocol's events.
pub fn reassemble(client: Api, stream: &[u8]) -> Option<Value> {
    let mut frames = Vec::new();
    if client == Api::Gemini && stream.trim_ascii_start().first() == Some(&b'[') {
        // Gemini's JSON-array form: its elements are the events.
        let items: Vec<Value> = serde_json::from_slice(stream).ok()?;
        frames.extend(items.into_iter().map(|v| sse::Frame {
            event: String::new(),
            data: v.to_string(),
        }));
    } else {
        let mut reader = sse::Reader::default();
        reader.feed(stream, |f| frames.push(f));
        reader.finish(|f| frames.push(f));
    }
    if frames.is_empty() {
        return None;
    }
    let mut events = Vec::new();
    match client {
        Api::Responses => {
            return frames.iter().rev().find_map(|f| {
                let v: Value = serde_json::from_str(&f.data).ok()?;
                matches!(
                    v["type"].as_str(),
                    Some("response.completed" | "response.incomplete" | "response.failed")
                )
                .then(|| v["response"].clone())
            });
        }
        Api::Messages | Api::CountTokens => {
            let mut d = anthropic::StreamDecoder::default();
            frames.iter().for_each(|f| d.frame(f, &mut events));
        }
        Api::Gemini => {
            let mut d = gemini::StreamDecoder::default();
            frames.iter().for_each(|f| d.frame(f, &mut events));
        }
        Api::Chat | Api::Embeddings | Api::Images => {
            let mut d = chat::StreamDecoder::default();
            frames.iter().for_each(|f| d.frame(f, &mut events));
        }
    }
    if events.is_empty() {
        return None;
    }
    let mut acc = super::ir::Accumulator::default();
    events.iter().for_each(|e| acc.push(e));
    Some(encode_reply(client, &acc.reply, &ToolAliases::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(upstream: Protocol, client: Api, input: &str) -> String {
        let mut c = StreamConverter::new(upstream, client, ClientStream::default());
        let mut out = BytesMut::new();
        c.feed(input.as_bytes(), &mut out);
        c.finish(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn thinking_becomes_each_protocols_reasoning() {
        let anthropic = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"c\",\"usage\":{\"input_tokens\":3}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me think\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"sig\"}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"42\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\n",
        );
        let chat = run(Protocol::Anthropic, Api::Chat, anthropic);
        assert!(
            chat.contains(r#""reasoning_content":"Let me think""#),
            "{chat}"
        );
        assert!(chat.contains(r#""content":"42""#), "{chat}");
        let gemini = run(Protocol::Anthropic, Api::Gemini, anthropic);
        assert!(
            gemini.contains(r#"{"text":"Let me think","thought":true}"#),
            "{gemini}"
        );
        let responses = run(Protocol::Anthropic, Api::Responses, anthropic);
        assert!(responses.contains(r#""type":"reasoning""#), "{responses}");
        assert!(
            responses.contains(r#""delta":"Let me think""#),
            "{responses}"
        );

        let gemini_in = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hmm\",\"thought\":true},{\"text\":\"ok\"}]},\"finishReason\":\"STOP\"}]}\n\n";
        let messages = run(Protocol::Gemini, Api::Messages, gemini_in);
        assert!(
            messages.contains(r#""content_block":{"type":"thinking""#),
            "{messages}"
        );
        assert!(
            messages.contains(r#"{"type":"thinking_delta","thinking":"hmm"}"#),
            "{messages}"
        );
        assert!(
            messages.contains(r#"{"type":"text_delta","text":"ok"}"#),
            "{messages}"
        );
    }

    fn chat_chunk(delta: serde_json::Value, finish: Option<&str>) -> String {
        format!(
            "data: {}\n\n",
            serde_json::json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    }

    #[test]
    fn a_repeated_tool_id_is_one_call() {
        // Some providers repeat the call's id in every chunk, or send "".
        let input = [
            chat_chunk(serde_json::json!({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "f", "arguments": "{\"x\""}}]}), None),
            chat_chunk(serde_json::json!({"tool_calls": [{"index": 0, "id": "call_a", "function": {"arguments": ":1"}}]}), None),
            chat_chunk(serde_json::json!({"tool_calls": [{"index": 0, "id": "", "function": {"arguments": "}"}}]}), None),
            chat_chunk(serde_json::json!({}), Some("tool_calls")),
        ]
        .concat();
        let out = run(Protocol::OpenAi, Api::Messages, &input);
        assert_eq!(out.matches(r#""type":"tool_use""#).count(), 1, "{out}");
        let args: String = out
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| v["delta"]["partial_json"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(args, "{\"x\":1}");
    }

    #[test]
    fn a_call_without_arguments_gets_an_empty_object() {
        let anthropic = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\"}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"now\",\"input\":{}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let chat = run(Protocol::Anthropic, Api::Chat, anthropic);
        assert!(chat.contains(r#""arguments":"{}""#), "{chat}");
        let responses = run(Protocol::Anthropic, Api::Responses, anthropic);
        assert!(responses.contains(r#""arguments":"{}""#), "{responses}");
    }

    #[test]
    fn interleaved_parallel_calls_stay_whole_for_every_client() {
        let input = [
            chat_chunk(serde_json::json!({"tool_calls": [
                {"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}},
                {"index": 1, "id": "b", "function": {"name": "g", "arguments": ""}}]}), None),
            chat_chunk(serde_json::json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"x\":1}"}}]}), None),
            chat_chunk(serde_json::json!({"tool_calls": [{"index": 1, "function": {"arguments": "{\"y\":2}"}}]}), None),
            chat_chunk(serde_json::json!({}), Some("tool_calls")),
        ]
        .concat();
        let out = run(Protocol::OpenAi, Api::Gemini, &input);
        assert!(out.contains(r#""name":"f","args":{"x":1}"#), "{out}");
        assert!(out.contains(r#""name":"g","args":{"y":2}"#), "{out}");
        // An Anthropic client gets each call's arguments in its own block (read back the way
        // a client folds the stream); a Responses client, in each function_call item.
        let out = run(Protocol::OpenAi, Api::Messages, &input);
        let (mut reader, mut decoder) =
            (sse::Reader::default(), anthropic::StreamDecoder::default());
        let mut events = Vec::new();
        reader.feed(out.as_bytes(), |f| decoder.frame(&f, &mut events));
        let mut acc = crate::protocol::ir::Accumulator::default();
        for ev in &events {
            acc.push(ev);
        }
        let calls: Vec<(&str, &str)> = acc
            .reply
            .parts
            .iter()
            .filter_map(|p| match p {
                crate::protocol::ir::Part::ToolCall(c) => Some((&*c.name, &*c.arguments)),
                _ => None,
            })
            .collect();
        assert_eq!(calls, [("f", "{\"x\":1}"), ("g", "{\"y\":2}")], "{out}");
        let out = run(Protocol::OpenAi, Api::Responses, &input);
        assert!(
            out.contains(r#""arguments":"{\"x\":1}""#)
                && out.contains(r#""arguments":"{\"y\":2}""#),
            "{out}"
        );
    }

    #[test]
    fn after_an_error_nothing_claims_success() {
        let input = [
            chat_chunk(serde_json::json!({"content": "Hi"}), None),
            "data: {\"error\":{\"message\":\"overloaded\",\"code\":529}}\n\n".to_owned(),
        ]
        .concat();
        let responses = run(Protocol::OpenAi, Api::Responses, &input);
        assert!(responses.contains("event: response.failed"), "{responses}");
        assert!(!responses.contains("response.completed"), "{responses}");
        let gemini = run(Protocol::OpenAi, Api::Gemini, &input);
        assert!(gemini.contains(r#""status":"UNAVAILABLE""#), "{gemini}");
        assert!(!gemini.contains("finishReason"), "{gemini}");
        let messages = run(Protocol::OpenAi, Api::Messages, &input);
        assert!(!messages.contains("message_stop"), "{messages}");
    }

    #[test]
    fn reframes_sse_as_one_array() {
        let mut t = SseToJsonArray::default();
        let mut out = BytesMut::new();
        t.feed(b"data: {\"a\":1}\r\n\r\ndata: {\"a\"", &mut out);
        t.feed(b":2}\r\n\r\n", &mut out);
        t.finish(&mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, serde_json::json!([{"a": 1}, {"a": 2}]));
    }
}
