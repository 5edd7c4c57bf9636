//! Body capture (`[logs] capture_bodies`): the request path keeps shared slices of the
//! client's body and of the answer as sent (no copy, at most a bounded amount); the log's
//! writer turns them into the stored text, a stream reassembled into the final message in the
//! client's protocol, each cut to `body_max_kb` with a mark. Headers are never kept, so no
//! credential is either.

use bytes::Bytes;

use crate::protocol::Api;
use crate::store::logs_db::Bodies;

/// How much more of a stream than a stored body is kept, so that its reassembled message can
/// still fit: events carry several times their text in framing.
const STREAM_RAW_FACTOR: usize = 8;
/// The most answer bytes held for one request, whatever the setting.
const MAX_RAW: usize = 32 << 20;

#[derive(Clone, Debug)]
pub struct Capture {
    api: Api,
    /// Each stored body at most, in bytes.
    max: usize,
    request: Bytes,
    answer: Vec<Bytes>,
    kept: usize,
    answer_len: u64,
}

impl Capture {
    pub(crate) fn new(api: Api, request: &Bytes, max_kb: u32) -> Self {
        Self {
            api,
            max: usize::try_from(max_kb)
                .unwrap_or(usize::MAX)
                .saturating_mul(1024),
            request: request.clone(),
            answer: Vec::new(),
            kept: 0,
            answer_len: 0,
        }
    }

    /// A piece of the answer as the client receives it.
    pub(crate) fn answer(&mut self, chunk: &Bytes) {
        self.answer_len += chunk.len() as u64;
        let room = self
            .max
            .saturating_mul(STREAM_RAW_FACTOR)
            .min(MAX_RAW)
            .saturating_sub(self.kept);
        if room > 0 && !chunk.is_empty() {
            let take = chunk.len().min(room);
            self.answer.push(chunk.slice(..take));
            self.kept += take;
        }
    }

    /// The text to store (on the writer's thread).
    pub(crate) fn to_bodies(&self, stream: bool) -> Bodies {
        let request = cut(&String::from_utf8_lossy(&self.request), self.max, 0);
        let raw: Vec<u8> = self.answer.concat();
        let missing = self.answer_len.saturating_sub(raw.len() as u64);
        let response = if raw.is_empty() {
            None
        } else {
            let whole = stream
                .then(|| crate::protocol::convert::reassemble(self.api, &raw))
                .flatten()
                .and_then(|v| serde_json::to_string(&v).ok());
            Some(match whole {
                // A reassembly of a stream that was not all kept says so too.
                Some(text) => cut(&text, self.max, missing),
                None => cut(&String::from_utf8_lossy(&raw), self.max, missing),
            })
        };
        Bodies {
            request: (!self.request.is_empty()).then_some(request),
            response,
        }
    }
}

/// `text` within `max` bytes (on a character boundary), with a mark when anything was left
/// out: here, or `missing` bytes before (not kept on the way).
fn cut(text: &str, max: usize, missing: u64) -> String {
    if text.len() <= max && missing == 0 {
        return text.to_owned();
    }
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let left_out = (text.len() - end) as u64 + missing;
    format!("{}\n…[truncated: {left_out} more bytes]", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_cut_on_a_character_with_a_mark() {
        assert_eq!(cut("short", 10, 0), "short");
        assert_eq!(cut("ééé", 3, 0), "é\n…[truncated: 4 more bytes]");
        assert_eq!(cut("abc", 10, 5), "abc\n…[truncated: 5 more bytes]");
    }

    #[test]
    fn a_stream_is_stored_as_the_final_message() {
        let body =
            Bytes::from_static(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
        let mut c = Capture::new(Api::Chat, &body, 64);
        for part in [
            "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n",
            "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        ] {
            c.answer(&Bytes::from(part));
        }
        let b = c.to_bodies(true);
        assert_eq!(
            b.request.as_deref(),
            Some(std::str::from_utf8(&body).unwrap())
        );
        let v: serde_json::Value = serde_json::from_str(b.response.as_deref().unwrap()).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["content"], "Hello");
    }

    #[test]
    fn held_answer_bytes_are_bounded() {
        let mut c = Capture::new(Api::Chat, &Bytes::new(), 1);
        let chunk = Bytes::from(vec![b'x'; 4096]);
        for _ in 0..10 {
            c.answer(&chunk);
        }
        assert_eq!(c.kept, 1024 * STREAM_RAW_FACTOR);
        let b = c.to_bodies(false);
        assert_eq!(b.request, None);
        let r = b.response.unwrap();
        assert!(r.starts_with(&"x".repeat(1024)), "{r}");
        assert!(
            r.ends_with(&format!("[truncated: {} more bytes]", 40960 - 1024)),
            "{r}"
        );
    }
}
