//! The tokens an upstream says a request used, read from its body as the body goes by: every
//! protocol reports them in an object under `usage` (OpenAI chat, Responses, embeddings,
//! Anthropic) or `usageMetadata` (Gemini), once at the end of a plain body and in one or more
//! events of a stream. The scan looks for those keys in the raw bytes, so it costs a substring
//! search per chunk and a small parse per usage object, whatever the chunking.

use crate::config::Protocol;

/// Tokens by kind, in one meaning for every protocol: `input` counts every prompt token,
/// including those read from or written to a cache (`cache_read` and `cache_write` are parts
/// of it); `output` counts every generated token, including reasoning (`reasoning` is a part).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub reasoning: u64,
}

/// Every count any protocol's usage object carries, each the largest seen: streams report
/// running totals (Anthropic's `message_delta`, Gemini's chunks), never decrements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    prompt: Option<u64>,
    completion: Option<u64>,
    input: Option<u64>,
    output: Option<u64>,
    cache_creation: Option<u64>,
    cache_read: Option<u64>,
    cached: Option<u64>,
    reasoning: Option<u64>,
    gemini_prompt: Option<u64>,
    gemini_tool_prompt: Option<u64>,
    gemini_candidates: Option<u64>,
    gemini_cached: Option<u64>,
    gemini_thoughts: Option<u64>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Details {
    cached_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
}

/// A usage object of any protocol. Unknown keys are ignored; a count that is not a whole
/// number makes the object unreadable, and it is skipped.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Raw {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
    completion_tokens_details: Option<Details>,
    input_tokens_details: Option<Details>,
    output_tokens_details: Option<Details>,
    #[serde(rename = "promptTokenCount")]
    gemini_prompt: Option<u64>,
    #[serde(rename = "toolUsePromptTokenCount")]
    gemini_tool_prompt: Option<u64>,
    #[serde(rename = "candidatesTokenCount")]
    gemini_candidates: Option<u64>,
    #[serde(rename = "cachedContentTokenCount")]
    gemini_cached: Option<u64>,
    #[serde(rename = "thoughtsTokenCount")]
    gemini_thoughts: Option<u64>,
}

fn max(a: &mut Option<u64>, b: Option<u64>) {
    if let Some(b) = b {
        *a = Some(a.map_or(b, |a| a.max(b)));
    }
}

impl Counts {
    fn merge(&mut self, r: Raw) {
        let cached = |d: &Option<Details>| d.as_ref().and_then(|d| d.cached_tokens);
        let reasoning = |d: &Option<Details>| d.as_ref().and_then(|d| d.reasoning_tokens);
        max(&mut self.prompt, r.prompt_tokens);
        max(&mut self.completion, r.completion_tokens);
        max(&mut self.input, r.input_tokens);
        max(&mut self.output, r.output_tokens);
        max(&mut self.cache_creation, r.cache_creation_input_tokens);
        max(&mut self.cache_read, r.cache_read_input_tokens);
        max(&mut self.cached, cached(&r.prompt_tokens_details));
        max(&mut self.cached, cached(&r.input_tokens_details));
        max(&mut self.reasoning, reasoning(&r.completion_tokens_details));
        max(&mut self.reasoning, reasoning(&r.output_tokens_details));
        max(&mut self.gemini_prompt, r.gemini_prompt);
        max(&mut self.gemini_tool_prompt, r.gemini_tool_prompt);
        max(&mut self.gemini_candidates, r.gemini_candidates);
        max(&mut self.gemini_cached, r.gemini_cached);
        max(&mut self.gemini_thoughts, r.gemini_thoughts);
    }

    /// In the one meaning of [`Tokens`]; `None` when nothing was counted.
    fn tokens(&self, family: Protocol) -> Option<Tokens> {
        let n = |v: Option<u64>| v.unwrap_or(0);
        let t = match family {
            // Anthropic's input_tokens leaves out what was read from and written to the cache.
            Protocol::Anthropic => {
                self.input.or(self.output)?;
                let (read, write) = (n(self.cache_read), n(self.cache_creation));
                Tokens {
                    input: n(self.input).saturating_add(read).saturating_add(write),
                    output: n(self.output),
                    cache_read: read,
                    cache_write: write,
                    reasoning: 0,
                }
            }
            // Gemini counts thoughts apart from the candidates.
            Protocol::Gemini => {
                self.gemini_prompt.or(self.gemini_candidates)?;
                Tokens {
                    input: n(self.gemini_prompt).saturating_add(n(self.gemini_tool_prompt)),
                    output: n(self.gemini_candidates).saturating_add(n(self.gemini_thoughts)),
                    cache_read: n(self.gemini_cached),
                    cache_write: 0,
                    reasoning: n(self.gemini_thoughts),
                }
            }
            // Chat and embeddings say prompt/completion, Responses input/output; both count
            // the cached part in the input, and reasoning in the output.
            Protocol::OpenAi => {
                let input = self.prompt.or(self.input);
                let output = self.completion.or(self.output);
                input.or(output)?;
                Tokens {
                    input: n(input),
                    output: n(output),
                    cache_read: n(self.cached),
                    cache_write: 0,
                    reasoning: n(self.reasoning),
                }
            }
        };
        Some(t)
    }
}

/// The longest usage object read; anything longer is not a usage object.
const MAX_OBJECT: usize = 8 * 1024;
const NEEDLE: &[u8] = b"\"usage";

/// Reads the usage out of an upstream body fed to it chunk by chunk.
#[derive(Debug)]
pub struct UsageScan {
    family: Protocol,
    counts: Counts,
    /// Bytes from the start of a key that the next chunk may complete, or the tail of the last
    /// chunk (where a cut key would start).
    carry: Vec<u8>,
}

enum Member {
    /// Ends before it can be read: wait for more.
    Incomplete,
    /// Not a usage key, or a value that is not an object.
    Skip,
    /// A usage object: its bytes, and where the member ends.
    Object(std::ops::Range<usize>),
}

impl UsageScan {
    /// For a body in `family`'s protocol.
    pub fn new(family: Protocol) -> Self {
        Self {
            family,
            counts: Counts::default(),
            carry: Vec::new(),
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.carry.is_empty() {
            let rest = self.scan(chunk);
            self.carry.extend_from_slice(rest);
            return;
        }
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(chunk);
        let rest = self.scan(&data).to_vec();
        self.carry = rest;
    }

    /// Reads every usage object in `data`; returns the tail to keep for the next chunk.
    fn scan<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        let mut pos = 0;
        while let Some(i) = memchr::memmem::find(&data[pos..], NEEDLE) {
            let start = pos + i;
            match member(&data[start..]) {
                Member::Incomplete if data.len() - start <= MAX_OBJECT => return &data[start..],
                Member::Incomplete | Member::Skip => pos = start + 1,
                Member::Object(range) => {
                    let object = &data[start + range.start..start + range.end];
                    if let Ok(raw) = serde_json::from_slice::<Raw>(object) {
                        self.counts.merge(raw);
                    }
                    pos = start + range.end;
                }
            }
        }
        // A key cut at the chunk's end starts in its last few bytes.
        &data[data.len().saturating_sub(NEEDLE.len() - 1).max(pos)..]
    }

    /// What the upstream reported, or `None` when it reported nothing.
    pub fn tokens(&self) -> Option<Tokens> {
        self.counts.tokens(self.family)
    }
}

/// `s` starts with `"usage`: reads `"usage": {...}` or `"usageMetadata": {...}`.
fn member(s: &[u8]) -> Member {
    let after = &s[NEEDLE.len()..];
    let key_len = if after.starts_with(b"\"") {
        1
    } else if after.starts_with(b"Metadata\"") {
        9
    } else if b"Metadata\"".starts_with(after) {
        return Member::Incomplete;
    } else {
        return Member::Skip;
    };
    let mut i = NEEDLE.len() + key_len;
    let skip_ws = |i: &mut usize| {
        while s.get(*i).is_some_and(u8::is_ascii_whitespace) {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    match s.get(i) {
        None => return Member::Incomplete,
        Some(b':') => i += 1,
        Some(_) => return Member::Skip,
    }
    skip_ws(&mut i);
    match s.get(i) {
        None => Member::Incomplete,
        Some(b'{') => match object_end(&s[i..]) {
            Some(len) => Member::Object(i..i + len),
            None => Member::Incomplete,
        },
        Some(_) => Member::Skip,
    }
}

/// The length of the JSON object `s` starts with, or `None` when it does not end in `s`.
fn object_end(s: &[u8]) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in s.iter().enumerate().take(MAX_OBJECT) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Where the `"usage": ...` member of one JSON object sits in `event`, with the comma that
/// joins it to its neighbour, so that removing the range leaves the rest byte for byte; and
/// whether its value was an object (`null` otherwise).
pub(crate) fn usage_member(event: &[u8]) -> Option<(std::ops::Range<usize>, bool)> {
    let mut pos = 0;
    while let Some(i) = memchr::memmem::find(&event[pos..], b"\"usage\"") {
        let start = pos + i;
        pos = start + 1;
        let mut j = start + b"\"usage\"".len();
        let ws = |j: &mut usize| {
            while event.get(*j).is_some_and(u8::is_ascii_whitespace) {
                *j += 1;
            }
        };
        ws(&mut j);
        if event.get(j) != Some(&b':') {
            continue;
        }
        j += 1;
        ws(&mut j);
        let (end, object) = if event[j..].starts_with(b"null") {
            (j + 4, false)
        } else if event.get(j) == Some(&b'{') {
            (j + object_end(&event[j..])?, true)
        } else {
            continue;
        };
        // The comma before it, or else the one after it.
        let mut b = start;
        while b > 0 && event[b - 1].is_ascii_whitespace() {
            b -= 1;
        }
        if b > 0 && event[b - 1] == b',' {
            return Some((b - 1..end, object));
        }
        let mut a = end;
        ws(&mut a);
        if event.get(a) == Some(&b',') {
            let mut a = a + 1;
            ws(&mut a);
            return Some((start..a, object));
        }
        return Some((start..end, object));
    }
    None
}

/// An OpenAI chat stream with the usage the gateway asked for (and the client did not) taken
/// out: the `"usage": null` every chunk then carries, and the usage chunk at the end (no
/// choices). Every other byte is the upstream's, in its order; events without a usage key are
/// copied whole, never parsed.
#[derive(Debug, Default)]
pub struct HiddenUsage {
    /// The start of an event not yet ended.
    partial: Vec<u8>,
}

impl HiddenUsage {
    pub fn feed(&mut self, bytes: &[u8], out: &mut bytes::BytesMut) {
        let joined;
        let data: &[u8] = if self.partial.is_empty() {
            bytes
        } else {
            self.partial.extend_from_slice(bytes);
            joined = std::mem::take(&mut self.partial);
            &joined
        };
        let mut pos = 0;
        while let Some(len) = event_len(&data[pos..]) {
            hide(&data[pos..pos + len], out);
            pos += len;
        }
        self.partial.extend_from_slice(&data[pos..]);
    }

    /// The stream ended: what is left goes out as it came.
    pub fn finish(&mut self, out: &mut bytes::BytesMut) {
        let rest = std::mem::take(&mut self.partial);
        hide(&rest, out);
    }
}

/// The length of the first whole event in `data`, its blank line included.
fn event_len(data: &[u8]) -> Option<usize> {
    let lf = memchr::memmem::find(data, b"\n\n").map(|i| i + 2);
    let crlf = memchr::memmem::find(data, b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn hide(event: &[u8], out: &mut bytes::BytesMut) {
    let Some((range, object)) = usage_member(event) else {
        out.extend_from_slice(event);
        return;
    };
    if object && no_choices(event) {
        return;
    }
    out.extend_from_slice(&event[..range.start]);
    out.extend_from_slice(&event[range.end..]);
}

/// Whether the event's data is a chunk with an empty `choices` (the usage chunk).
fn no_choices(event: &[u8]) -> bool {
    let text = String::from_utf8_lossy(event);
    let data: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim_start)
        .collect();
    serde_json::from_str::<serde_json::Value>(&data)
        .ok()
        .and_then(|v| {
            v.get("choices")
                .and_then(|c| c.as_array())
                .map(Vec::is_empty)
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(family: Protocol, body: &[u8], chunk: usize) -> Option<Tokens> {
        let mut s = UsageScan::new(family);
        for c in body.chunks(chunk) {
            s.feed(c);
        }
        s.tokens()
    }

    fn every_chunking(family: Protocol, body: &[u8]) -> Option<Tokens> {
        let whole = scan_all(family, body, body.len().max(1));
        for n in 1..40 {
            assert_eq!(scan_all(family, body, n), whole, "cut every {n} bytes");
        }
        whole
    }

    #[test]
    fn openai_chat_stream_usage_chunk() {
        let body = b"data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n\
            data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":30,\
            \"prompt_tokens_details\":{\"cached_tokens\":4},\"completion_tokens_details\":{\"reasoning_tokens\":8}}}\n\n\
            data: [DONE]\n\n";
        let t = every_chunking(Protocol::OpenAi, body).unwrap();
        assert_eq!(
            t,
            Tokens {
                input: 12,
                output: 30,
                cache_read: 4,
                cache_write: 0,
                reasoning: 8
            }
        );
    }

    #[test]
    fn responses_completed_event() {
        let body = b"event: response.created\ndata: {\"response\":{\"usage\":null}}\n\n\
            event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\
            \"usage\": {\"input_tokens\": 100, \"input_tokens_details\": {\"cached_tokens\": 60},\
            \"output_tokens\": 20, \"output_tokens_details\": {\"reasoning_tokens\": 5}, \"total_tokens\": 120}}}\n\n";
        let t = every_chunking(Protocol::OpenAi, body).unwrap();
        assert_eq!(
            (t.input, t.output, t.cache_read, t.reasoning),
            (100, 20, 60, 5)
        );
    }

    #[test]
    fn anthropic_start_and_delta_with_cache() {
        let body = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":\
            {\"input_tokens\":10,\"cache_creation_input_tokens\":200,\"cache_read_input_tokens\":1000,\"output_tokens\":1}}}\n\n\
            event: content_block_delta\ndata: {\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"usage\\\": {\\\"input_tokens\\\": 99999}\"}}\n\n\
            event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":42}}\n\n\
            event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let t = every_chunking(Protocol::Anthropic, body).unwrap();
        assert_eq!(
            t,
            Tokens {
                input: 1210,
                output: 42,
                cache_read: 1000,
                cache_write: 200,
                reasoning: 0
            },
            "a key inside a string is not a key"
        );
    }

    #[test]
    fn gemini_usage_metadata_with_thoughts() {
        let body = b"data: {\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":50,\"totalTokenCount\":50}}\r\n\r\n\
            data: {\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":50,\"candidatesTokenCount\":7,\
            \"cachedContentTokenCount\":32,\"thoughtsTokenCount\":11,\"promptTokensDetails\":[{\"modality\":\"TEXT\",\"tokenCount\":50}]}}\r\n\r\n";
        let t = every_chunking(Protocol::Gemini, body).unwrap();
        assert_eq!(
            (t.input, t.output, t.cache_read, t.reasoning),
            (50, 18, 32, 11)
        );
    }

    #[test]
    fn embeddings_and_plain_bodies() {
        let body = br#"{"object":"list","data":[{"embedding":[0.1,0.2]}],"usage":{"prompt_tokens":8,"total_tokens":8}}"#;
        let t = every_chunking(Protocol::OpenAi, body).unwrap();
        assert_eq!((t.input, t.output), (8, 0));
    }

    #[test]
    fn nothing_reported_is_none_not_zero() {
        for body in [
            &b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":null}\n\n"[..],
            b"{\"usage\":{\"prompt_tokens\":-1}}",
            b"{\"usage\":\"lots\"}",
            b"{\"usageX\":{\"prompt_tokens\":3}}",
        ] {
            assert_eq!(every_chunking(Protocol::OpenAi, body), None);
        }
    }

    #[test]
    fn an_endless_object_is_given_up_and_memory_stays_bounded() {
        let mut s = UsageScan::new(Protocol::OpenAi);
        s.feed(b"{\"usage\":{\"prompt_tokens\":1,\"x\":\"");
        for _ in 0..1000 {
            s.feed(&[b'a'; 1000]);
            assert!(s.carry.len() <= MAX_OBJECT + 1000);
        }
        s.feed(b"\"}, \"usage\":{\"prompt_tokens\":5}}");
        assert_eq!(s.tokens().map(|t| t.input), Some(5));
    }

    #[test]
    fn the_stream_the_client_asked_for_comes_back_byte_for_byte() {
        let asked = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n\
            data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
            data: [DONE]\n\n";
        let sent = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n\
            data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n\
            data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n\
            data: [DONE]\n\n";
        for n in 1..60 {
            let mut h = HiddenUsage::default();
            let mut out = bytes::BytesMut::new();
            for c in sent.as_bytes().chunks(n) {
                h.feed(c, &mut out);
            }
            h.finish(&mut out);
            assert_eq!(std::str::from_utf8(&out).unwrap(), asked, "cut every {n}");
        }
        // Usage on a chunk that also has content: the content stays.
        let mut h = HiddenUsage::default();
        let mut out = bytes::BytesMut::new();
        h.feed(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":1}}\r\n\r\n",
            &mut out,
        );
        assert_eq!(
            &out[..],
            b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\r\n\r\n"
        );
    }

    #[test]
    fn the_usage_member_is_cut_out_exactly() {
        let cut = |e: &str| {
            let (r, obj) = usage_member(e.as_bytes()).unwrap();
            let mut s = e.to_owned();
            s.replace_range(r, "");
            (s, obj)
        };
        assert_eq!(
            cut(r#"{"id":"a","choices":[],"usage":null}"#),
            (r#"{"id":"a","choices":[]}"#.into(), false)
        );
        assert_eq!(
            cut(r#"{"usage": {"prompt_tokens":1}, "id":"a"}"#),
            (r#"{"id":"a"}"#.into(), true)
        );
        assert_eq!(
            cut(r#"{"id":"a" , "usage" : null ,"x":1}"#),
            (r#"{"id":"a"  ,"x":1}"#.into(), false)
        );
        assert!(usage_member(br#"{"content":"\"usage\": null"}"#).is_none());
    }
}
