//! What a request shows the tier classifier, read from its head (the top-level fields the
//! gateway parsed anyway) and, only when some tier asks for images or a size, one walk over its
//! raw body.

use crate::protocol::Api;
use crate::protocol::openai::RequestHead;

/// The most of the last user turn the classifier reads (bytes): a turn that is a whole file
/// pasted in is judged by its first 64 KiB.
pub const MAX_TURN: usize = 64 * 1024;

/// Words in a model's name that say a small or background model was asked for.
const SMALL_WORDS: &[&str] = &["haiku", "mini", "nano", "lite", "small", "fast"];
/// An answer of at most this many tokens is a small request (titles, summaries, checks).
const SMALL_ANSWER: u64 = 512;

/// What the tiers' triggers need measured beyond the head.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wants {
    pub images: bool,
    pub tokens: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Signals<'a> {
    /// The last user turn's raw JSON (its text, escapes and all), at most [`MAX_TURN`].
    pub turn: &'a str,
    /// Estimated tokens of the whole conversation (0 when no tier asks).
    pub tokens: u32,
    pub tools: bool,
    pub images: bool,
    pub reasoning: bool,
    pub small: bool,
}

impl<'a> Signals<'a> {
    /// `asked`: the model name the client sent.
    pub fn read(
        api: Api,
        head: &'a RequestHead<'a>,
        body: &[u8],
        asked: &str,
        wants: Wants,
    ) -> Self {
        let field = |k: &str| head.body.get(k).map(|v| v.get());
        let turn = Self::turn(api, head);
        let tools = field("tools").is_some_and(crate::capabilities::declares_tools);
        let (images, media) = if wants.images || wants.tokens {
            crate::capabilities::scan(body, wants.images, wants.tokens)
        } else {
            (false, 0)
        };
        let tokens = if wants.tokens {
            u32::try_from(body.len().saturating_sub(media) / 4).unwrap_or(u32::MAX)
        } else {
            0
        };
        // Gemini's generation settings, read once for both signals that look in them.
        let generation: Option<serde_json::Value> = field("generationConfig")
            .or_else(|| field("generation_config"))
            .and_then(|g| serde_json::from_str(g).ok());
        Signals {
            turn,
            tokens,
            tools,
            images,
            reasoning: reasoning_asked(&field, generation.as_ref()),
            small: small_asked(asked, &field, generation.as_ref()),
        }
    }
}

impl Signals<'_> {
    /// The last user turn alone: all a cached classifier answer needs.
    pub fn turn<'h>(api: Api, head: &'h RequestHead<'h>) -> &'h str {
        let conversation = head
            .body
            .get(crate::protocol::openai::content_field(api))
            .map_or("", |v| v.get());
        clip(last_user_turn(conversation))
    }
}

/// Whether the request asks the model to think: Anthropic's `thinking` (not disabled), OpenAI's
/// `reasoning_effort` or Responses' `reasoning` (not `none` or `minimal`), Gemini's
/// `thinkingConfig` (not a budget of 0).
fn reasoning_asked<'v>(
    field: &impl Fn(&str) -> Option<&'v str>,
    generation: Option<&serde_json::Value>,
) -> bool {
    let off = |v: &str| {
        let v = v.trim();
        v == "null"
            || v.contains("\"disabled\"")
            || v.contains("\"none\"")
            || v.contains("\"minimal\"")
    };
    if field("thinking").is_some_and(|v| !off(v))
        || field("reasoning_effort").is_some_and(|v| !off(v))
        || field("reasoning").is_some_and(|v| !off(v))
    {
        return true;
    }
    generation.is_some_and(|g| {
        let thinking = g.get("thinkingConfig").or_else(|| g.get("thinking_config"));
        thinking.is_some_and(|t| {
            let budget = t
                .get("thinkingBudget")
                .or_else(|| t.get("thinking_budget"))
                .and_then(serde_json::Value::as_i64);
            budget != Some(0)
        })
    })
}

/// Whether a small or background model was asked for: by its name, or by an answer of at most
/// [`SMALL_ANSWER`] tokens.
fn small_asked<'v>(
    asked: &str,
    field: &impl Fn(&str) -> Option<&'v str>,
    generation: Option<&serde_json::Value>,
) -> bool {
    // By words, so that `gemini` is not `mini`.
    if asked
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| SMALL_WORDS.iter().any(|s| w.eq_ignore_ascii_case(s)))
    {
        return true;
    }
    let max = ["max_tokens", "max_completion_tokens", "max_output_tokens"]
        .iter()
        .find_map(|k| field(k).and_then(|v| v.trim().parse::<u64>().ok()))
        .or_else(|| {
            let g = generation?;
            g.get("maxOutputTokens")
                .or_else(|| g.get("max_output_tokens"))?
                .as_u64()
        });
    max.is_some_and(|m| m <= SMALL_ANSWER)
}

/// The last user turn of a conversation's raw JSON: what follows the last `"role": "user"`
/// (the role comes first in every client's messages); no such role (a Responses string input,
/// say): all of it.
pub fn last_user_turn(raw: &str) -> &str {
    let b = raw.as_bytes();
    let mut end = b.len();
    while let Some(at) = memchr::memmem::rfind(&b[..end], b"\"user\"") {
        if is_role_value(b, at) {
            return raw.get(at + 6..).unwrap_or("");
        }
        end = at;
    }
    raw
}

/// Whether the string at `at` is the value of a `"role"` key: `"role"`, spaces, `:`, spaces.
fn is_role_value(b: &[u8], at: usize) -> bool {
    let before = &b[..at];
    let before = before.trim_ascii_end();
    let Some(before) = before.strip_suffix(b":") else {
        return false;
    };
    before.trim_ascii_end().ends_with(b"\"role\"")
}

fn clip(s: &str) -> &str {
    if s.len() <= MAX_TURN {
        return s;
    }
    let mut end = MAX_TURN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
