//! Errors in the shape of the protocol the client spoke: whole answers, and the last event of a
//! stream that failed after its first byte.

use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};

use super::{ErrorShape, anthropic, gemini, openai, sse};
use crate::error::GatewayError;

/// Anthropic's error types; an upstream's own type is kept when it is one of them.
const ANTHROPIC_TYPES: &[&str] = &[
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
    "timeout_error",
];

fn anthropic_type(e: &GatewayError) -> &'static str {
    if let GatewayError::Upstream(u) = e
        && let Some(kind) = u.kind.as_deref()
        && let Some(t) = ANTHROPIC_TYPES.iter().find(|t| **t == kind)
    {
        return t;
    }
    anthropic::error_type_of_status(e.status().as_u16())
}

pub fn body(shape: ErrorShape, e: &GatewayError) -> Value {
    match shape {
        ErrorShape::OpenAi | ErrorShape::Responses => openai::error_json(e),
        ErrorShape::Anthropic => json!({"type": "error", "error": {
            "type": anthropic_type(e), "message": e.to_string()}}),
        ErrorShape::Gemini => gemini::error_body(e.status().as_u16(), &e.to_string()),
    }
}

/// The closing event of a stream that failed mid-way, for a stream passed through natively.
/// `needs_separator` ends a partly forwarded event first.
pub fn stream_event(shape: ErrorShape, e: &GatewayError, needs_separator: bool) -> Bytes {
    let mut out = BytesMut::with_capacity(256);
    if needs_separator {
        out.extend_from_slice(b"\n\n");
    }
    match shape {
        ErrorShape::OpenAi => return openai::stream_error_event(e, needs_separator),
        ErrorShape::Responses => {
            let message = e.to_string();
            sse::write_event(
                &mut out,
                "error",
                &json!({"type": "error", "code": e.code(), "message": message,
                    "param": null, "sequence_number": 0}),
            );
            // Codex and the OpenAI SDKs end a turn on `response.failed`; after a bare
            // `error` Codex reports only "stream closed before response.completed".
            sse::write_event(
                &mut out,
                "response.failed",
                &json!({"type": "response.failed", "sequence_number": 1, "response": {
                    "id": "resp_switchboard_failed", "object": "response", "status": "failed",
                    "output": [], "error": {"code": e.code(), "message": message}}}),
            );
        }
        ErrorShape::Anthropic => {
            anthropic::write_error(&mut out, anthropic_type(e), &e.to_string())
        }
        ErrorShape::Gemini => gemini::write_stream_error(&mut out, &body(shape, e)),
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shape() {
        let e = GatewayError::UpstreamTimeout {
            provider: "p".into(),
            after: std::time::Duration::from_secs(3),
            setting: "x",
        };
        assert_eq!(
            body(ErrorShape::Anthropic, &e)["error"]["type"],
            "timeout_error"
        );
        assert_eq!(
            body(ErrorShape::Gemini, &e)["error"]["status"],
            "DEADLINE_EXCEEDED"
        );
        assert_eq!(body(ErrorShape::Gemini, &e)["error"]["code"], 504);
        let ev = stream_event(ErrorShape::Anthropic, &e, true);
        assert!(ev.starts_with(b"\n\nevent: error\ndata: {\"type\":\"error\""));
    }
}
