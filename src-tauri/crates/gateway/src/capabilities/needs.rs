//! What a request needs of a model, read from its raw body only as far as the route's limits
//! make it matter: a route whose candidates all take images never has its bodies searched for
//! images, and a body too short to overflow the smallest context window is not measured.

use super::Limits;

/// What follows the opening quote of a JSON string that only an image (or inline media) part
/// has, in each protocol: OpenAI chat's `image_url`, Responses' `input_image`, Anthropic's
/// `"type": "image"` (a quoted `"image"` in the raw body is a JSON string of exactly that,
/// never text, which would be escaped), Gemini's inline and file data.
const IMAGE_MARKS: &[&[u8]] = &[
    b"image_url\"",
    b"input_image\"",
    b"image\"",
    b"inlineData\"",
    b"inline_data\"",
    b"fileData\"",
    b"file_data\"",
];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub images: bool,
    pub tools: bool,
    /// Estimated prompt tokens (0 when no candidate's window could be too small).
    pub tokens: u32,
}

/// Whether a request's `tools` value (its raw JSON) declares any: not `[]`, not `null`.
pub fn declares_tools(tools: &str) -> bool {
    let t = tools.trim();
    t != "[]" && t != "null"
}

impl Needs {
    pub fn any(&self) -> bool {
        self.images || self.tools || self.tokens > 0
    }

    /// `has_tools`: the request declares tools.
    pub fn of(body: &[u8], has_tools: bool, limits: &Limits) -> Needs {
        let want_images = limits.some_without_vision;
        // About four bytes a token: a body under four bytes per token of the smallest window
        // cannot overflow it, whatever it holds.
        let want_tokens = limits
            .min_context
            .is_some_and(|min| body.len() / 4 > usize::try_from(min).unwrap_or(usize::MAX));
        let (images, media) = if want_images || want_tokens {
            scan(body, want_images, want_tokens)
        } else {
            (false, 0)
        };
        let tokens = if want_tokens {
            u32::try_from(body.len().saturating_sub(media) / 4).unwrap_or(u32::MAX)
        } else {
            0
        };
        Needs {
            images,
            tools: has_tools && limits.some_without_tools,
            tokens,
        }
    }
}

/// One walk over the body's quotes: whether an image part is there, and how many bytes are
/// media (data URLs and `"data"` fields: base64 that is no prompt text), skipped whole.
pub(crate) fn scan(body: &[u8], want_images: bool, want_media: bool) -> (bool, usize) {
    let mut images = false;
    let mut media = 0;
    let mut at = 0;
    while let Some(off) = memchr::memchr(b'"', &body[at..]) {
        let i = at + off + 1;
        let rest = &body[i..];
        if want_images && !images && IMAGE_MARKS.iter().any(|m| rest.starts_with(m)) {
            images = true;
            if !want_media {
                break;
            }
        }
        if want_media
            && let Some(start) = media_value(body, i)
            && let Some(len) = memchr::memchr(b'"', &body[start..])
        {
            media += len;
            at = start + len + 1;
            continue;
        }
        at = i;
    }
    (images, media)
}

/// Where the media a string starting at `i` holds or names begins: the string itself for a
/// data URL, the next string for a `"data"` key.
fn media_value(body: &[u8], i: usize) -> Option<usize> {
    let rest = &body[i..];
    if rest.starts_with(b"data:") {
        return Some(i);
    }
    let after = rest.strip_prefix(b"data\"")?;
    let skip = after
        .iter()
        .position(|b| !matches!(b, b':' | b' ' | b'\n' | b'\r' | b'\t'))?;
    (after.get(skip) == Some(&b'"')).then_some(i + 5 + skip + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Limits = Limits {
        min_context: Some(100),
        some_without_vision: true,
        some_without_tools: true,
    };

    #[test]
    fn images_in_each_protocol_and_not_in_text() {
        for body in [
            r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:x"}}]}]}"#,
            r#"{"input":[{"role":"user","content":[{"type":"input_image","image_url":"data:x"}]}]}"#,
            r#"{"messages":[{"role":"user","content":[{"type": "image","source":{}}]}]}"#,
            r#"{"contents":[{"parts":[{"inlineData":{"mimeType":"image/png","data":"x"}}]}]}"#,
        ] {
            assert!(Needs::of(body.as_bytes(), false, &ALL).images, "{body}");
        }
        let text = r#"{"messages":[{"role":"user","content":"an \"image\" of image_url"}]}"#;
        assert!(!Needs::of(text.as_bytes(), false, &ALL).images);
        let all_see = Limits {
            some_without_vision: false,
            ..ALL
        };
        let body = r#"{"messages":[{"content":[{"type":"image_url"}]}]}"#;
        assert!(
            !Needs::of(body.as_bytes(), false, &all_see).images,
            "not looked for"
        );
    }

    #[test]
    fn tokens_leave_media_out_and_short_bodies_unmeasured() {
        let text = format!(
            r#"{{"messages":[{{"content":"{}"}}]}}"#,
            "word ".repeat(400)
        );
        let n = Needs::of(text.as_bytes(), false, &ALL).tokens;
        assert!((450..=550).contains(&n), "{n}");
        let image = format!(
            r#"{{"messages":[{{"content":[{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{}"}}}}]}}]}}"#,
            "A".repeat(100_000)
        );
        assert!(Needs::of(image.as_bytes(), false, &ALL).tokens < 100);
        let anthropic = format!(
            r#"{{"messages":[{{"content":[{{"type":"image","source":{{"type":"base64","data": "{}"}}}}]}}]}}"#,
            "A".repeat(100_000)
        );
        let n = Needs::of(anthropic.as_bytes(), false, &ALL);
        assert!(n.images && n.tokens < 100, "{n:?}");
        let roomy = Limits {
            min_context: Some(1_000_000),
            ..ALL
        };
        assert_eq!(Needs::of(text.as_bytes(), true, &roomy).tokens, 0);
        assert!(Needs::of(text.as_bytes(), true, &roomy).tools);
    }
}
