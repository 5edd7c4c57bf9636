//! Tokens the upstream did not report, counted here with OpenAI's tokenizers (tiktoken): the
//! model's own encoding for an OpenAI model, `o200k_base` for every other (an approximation:
//! Anthropic's and Google's tokenizers are not public). The log writer counts, off the request
//! path; the row is marked estimated either way.
//!
//! What is counted: the text of the request (every string value but ids, roles, types, model
//! names and binary data) and the generated text of the answer (the protocol's content keys).
//! A request or answer longer than what is kept is counted on its kept start and scaled.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use crate::protocol::usage::Tokens;

/// The request bytes kept for an estimate, and the answer bytes sampled.
pub(crate) const KEEP_REQUEST: usize = 256 * 1024;
pub(crate) const KEEP_ANSWER: usize = 64 * 1024;
/// At most this much is held for estimates not yet made (records queued for the writer):
/// past it, a record goes without an estimate rather than growing memory without bound.
const MAX_HELD: usize = 64 * 1024 * 1024;
static HELD: AtomicUsize = AtomicUsize::new(0);

/// What an estimate is made from, with its share of [`MAX_HELD`].
#[derive(Debug)]
pub struct EstimateFrom {
    pub(crate) request: Bytes,
    pub(crate) request_len: usize,
    pub(crate) answer: Vec<Bytes>,
    pub(crate) answer_len: u64,
    /// The answer is a Responses event stream (its text comes as `delta`s, then again whole).
    pub(crate) responses_stream: bool,
    pub(crate) model: String,
    held: usize,
}

impl Clone for EstimateFrom {
    fn clone(&self) -> Self {
        // A clone holds nothing of the budget: only the original gives it back.
        Self {
            request: self.request.clone(),
            request_len: self.request_len,
            answer: self.answer.clone(),
            answer_len: self.answer_len,
            responses_stream: self.responses_stream,
            model: self.model.clone(),
            held: 0,
        }
    }
}

impl Drop for EstimateFrom {
    fn drop(&mut self) {
        HELD.fetch_sub(self.held, Ordering::Relaxed);
    }
}

impl EstimateFrom {
    /// `None` when the budget for estimates is spent.
    pub(crate) fn new(
        request: &Bytes,
        answer: Vec<Bytes>,
        answer_len: u64,
        responses_stream: bool,
        model: &str,
    ) -> Option<Self> {
        let request_len = request.len();
        let request = request.slice(..request_len.min(KEEP_REQUEST));
        let held = request.len() + answer.iter().map(Bytes::len).sum::<usize>();
        let before = HELD.fetch_add(held, Ordering::Relaxed);
        if before + held > MAX_HELD {
            HELD.fetch_sub(held, Ordering::Relaxed);
            return None;
        }
        Some(Self {
            request,
            request_len,
            answer,
            answer_len,
            responses_stream,
            model: model.to_owned(),
            held,
        })
    }
}

/// Counts the tokens of `from`.
pub(crate) fn estimate(from: &EstimateFrom) -> Tokens {
    let bpe = tiktoken_rs::tokenizer::get_tokenizer(&from.model)
        .and_then(|t| tiktoken_rs::bpe_for_tokenizer(t).ok())
        .unwrap_or_else(tiktoken_rs::o200k_base_singleton);
    let count = |text: &str| bpe.encode_ordinary(text).len() as u64;
    let scale = |n: u64, kept: u64, whole: u64| {
        if kept == 0 || whole <= kept {
            n
        } else {
            (n as f64 * whole as f64 / kept as f64).round() as u64
        }
    };
    let input_text = strings(&from.request, Keep::Request);
    let input = scale(
        count(&input_text),
        from.request.len() as u64,
        from.request_len as u64,
    );
    let keep = if from.responses_stream {
        Keep::Deltas
    } else {
        Keep::Answer
    };
    let answer = from.answer.concat();
    let output = scale(
        count(&strings(&answer, keep)),
        answer.len() as u64,
        from.answer_len,
    );
    Tokens {
        input,
        output,
        ..Tokens::default()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Every value but those of [`NOT_TEXT`].
    Request,
    /// The values of [`ANSWER_TEXT`].
    Answer,
    /// Only `delta`s.
    Deltas,
}

/// Keys whose values are names, ids and data, not text a model reads as words.
const NOT_TEXT: &[&str] = &[
    "model",
    "role",
    "type",
    "id",
    "tool_call_id",
    "call_id",
    "tool_use_id",
    "object",
    "media_type",
    "mime_type",
    "mimeType",
    "url",
    "data",
    "image_url",
    "detail",
    "encoding_format",
    "user",
    "effort",
    "previous_response_id",
    "prompt_cache_key",
    "signature",
];

/// Keys under which each protocol's answer carries generated text.
const ANSWER_TEXT: &[&str] = &[
    "content",
    "text",
    "partial_json",
    "arguments",
    "thinking",
    "reasoning_content",
    "reasoning",
    "refusal",
];

/// A string with no space this long is data (base64), not words.
const LONGEST_WORDLESS: usize = 2048;

/// The string values in the JSON (or the JSON lines of an event stream) in `bytes` that `keep`
/// asks for, decoded and joined by newlines. A cut at the end (a kept prefix) loses only the
/// string it cuts.
fn strings(bytes: &[u8], keep: Keep) -> String {
    let mut out = String::new();
    let mut key: Option<String> = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let (s, end) = string_at(bytes, i + 1);
        i = end;
        let mut j = end;
        while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if bytes.get(j) == Some(&b':') {
            key = Some(s);
            continue;
        }
        let k = key.as_deref().unwrap_or("");
        let wanted = match keep {
            Keep::Request => !NOT_TEXT.contains(&k),
            Keep::Answer => ANSWER_TEXT.contains(&k),
            Keep::Deltas => k == "delta",
        };
        if wanted && (s.len() < LONGEST_WORDLESS || s.contains(char::is_whitespace)) {
            out.push_str(&s);
            out.push('\n');
        }
    }
    out
}

/// The JSON string whose body starts at `start`, decoded, and the index after its closing
/// quote. A string the bytes cut off (a kept prefix) is what of it they hold.
fn string_at(bytes: &[u8], start: usize) -> (String, usize) {
    let mut raw = Vec::new();
    let mut i = start;
    let hex = |at: usize| {
        std::str::from_utf8(bytes.get(at..at + 4)?)
            .ok()
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => return (String::from_utf8_lossy(&raw).into_owned(), i + 1),
            b'\\' => {
                let Some(&e) = bytes.get(i + 1) else { break };
                i += 2;
                match e {
                    b'n' => raw.push(b'\n'),
                    b't' => raw.push(b'\t'),
                    b'r' => raw.push(b'\r'),
                    b'b' | b'f' => raw.push(b' '),
                    b'u' => {
                        let Some(mut c) = hex(i) else { break };
                        i += 4;
                        if (0xD800..0xDC00).contains(&c)
                            && bytes.get(i..i + 2) == Some(b"\\u")
                            && let Some(lo) = hex(i + 2).filter(|lo| (0xDC00..0xE000).contains(lo))
                        {
                            c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                            i += 6;
                        }
                        let ch = char::from_u32(c).unwrap_or('\u{FFFD}');
                        let mut buf = [0; 4];
                        raw.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    other => raw.push(other),
                }
            }
            b => {
                raw.push(b);
                i += 1;
            }
        }
    }
    (String::from_utf8_lossy(&raw).into_owned(), bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(request: &[u8], answer: &[u8], model: &str) -> EstimateFrom {
        let answer = Bytes::copy_from_slice(answer);
        let len = answer.len() as u64;
        EstimateFrom::new(
            &Bytes::copy_from_slice(request),
            vec![answer],
            len,
            false,
            model,
        )
        .unwrap()
    }

    #[test]
    fn the_request_text_is_counted_without_names_and_data() {
        let s = strings(
            br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hello, \u4e16\u754c \"quoted\"\n"},
            {"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#,
            Keep::Request,
        );
        assert_eq!(s, "Hello, 世界 \"quoted\"\n\n");
    }

    #[test]
    fn the_answer_is_its_content_keys_and_a_responses_stream_its_deltas() {
        let chat = b"data: {\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n\
            data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\n";
        assert_eq!(strings(chat, Keep::Answer), "Hi\n there\n");
        let responses = b"data: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n\
            data: {\"type\":\"response.output_text.done\",\"text\":\"Hi\"}\n\n";
        assert_eq!(strings(responses, Keep::Deltas), "Hi\n");
    }

    #[test]
    fn counts_with_the_models_encoding_and_scales_a_cut_request() {
        let t = estimate(&from(
            br#"{"messages":[{"role":"user","content":"hello world"}]}"#,
            br#"{"choices":[{"message":{"content":"hello"}}]}"#,
            "gpt-4o",
        ));
        // "hello world\n" and "hello\n" in o200k_base.
        assert_eq!((t.input, t.output), (3, 2));
        let mut long = br#"{"messages":[{"role":"user","content":""#.to_vec();
        long.extend(std::iter::repeat_n(b"word ".as_slice(), 100_000).flatten());
        long.extend_from_slice(br#""}]}"#);
        let t = estimate(&from(&long, b"{}", "claude-sonnet-4-5"));
        assert!(
            (90_000..110_000).contains(&t.input),
            "about one token a word, scaled from the kept part: {}",
            t.input
        );
    }

    #[test]
    fn only_the_original_gives_its_share_back() {
        let e = from(b"{}", b"{}", "m");
        assert_eq!(e.held, 4);
        assert_eq!(
            e.clone().held,
            0,
            "a clone gives nothing back when it drops"
        );
    }
}
