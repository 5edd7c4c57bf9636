//! OpenAI's wire format: what the gateway reads of a chat request, and its error shapes.

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::{Value, json};

use super::Api;
use super::json::{JsonBodyError, RawObject};
use crate::error::{GatewayError, UpstreamError};

/// The parts of a client request the gateway needs; the rest stays raw.
pub struct RequestHead<'a> {
    pub body: RawObject<'a>,
    pub model: Cow<'a, str>,
    pub stream: bool,
}

/// The field that holds the conversation (or input) of each API, required in every request.
pub(crate) fn content_field(api: Api) -> &'static str {
    match api {
        Api::Chat | Api::Messages | Api::CountTokens => "messages",
        Api::Responses | Api::Embeddings => "input",
        Api::Gemini => "contents",
        Api::Images => "prompt",
    }
}

impl<'a> RequestHead<'a> {
    /// Reads and checks a request of `api`. Gemini names the model and streaming in the path:
    /// `path` gives them.
    pub fn parse(
        api: Api,
        bytes: &'a [u8],
        path: Option<(&'a str, bool)>,
    ) -> Result<Self, GatewayError> {
        let field = content_field(api);
        let body = RawObject::parse(bytes).map_err(|e| match e {
            JsonBodyError::Syntax(e) => GatewayError::BadRequest(format!(
                "The request body is not valid JSON ({e}). Send a JSON object with \"model\" and \"{field}\"."
            )),
            JsonBodyError::NotAnObject => GatewayError::BadRequest(format!(
                "The request body must be a JSON object with \"model\" and \"{field}\"."
            )),
        })?;
        let model = match path {
            Some((model, _)) => Cow::Borrowed(model),
            None => match body.get("model") {
                None => {
                    return Err(GatewayError::BadRequest(
                        "Missing required parameter: 'model'. Name one of the models listed by GET /v1/models.".into(),
                    ));
                }
                Some(raw) => match serde_json::from_str::<Cow<'a, str>>(raw.get()) {
                    Ok(m) if !m.trim().is_empty() => m,
                    _ => {
                        return Err(GatewayError::BadRequest(
                            "Invalid 'model': expected a non-empty string.".into(),
                        ));
                    }
                },
            },
        };
        let content = body.get(field).map(|m| m.get().trim_start());
        match content {
            None => {
                let example = match api {
                    Api::Chat | Api::Messages | Api::CountTokens => {
                        " Send at least one message, e.g. [{\"role\":\"user\",\"content\":\"Hello\"}]."
                    }
                    Api::Gemini => {
                        " Send at least one, e.g. [{\"role\":\"user\",\"parts\":[{\"text\":\"Hello\"}]}]."
                    }
                    _ => "",
                };
                return Err(GatewayError::BadRequest(format!(
                    "Missing required parameter: '{field}'.{example}"
                )));
            }
            Some(m) if field != "input" && field != "prompt" && !m.starts_with('[') => {
                return Err(GatewayError::BadRequest(format!(
                    "Invalid '{field}': expected an array."
                )));
            }
            Some(m) if m.starts_with('[') && m[1..].trim_start().starts_with(']') => {
                return Err(GatewayError::BadRequest(format!(
                    "Invalid '{field}': empty array. Send at least one."
                )));
            }
            Some(_) => {}
        }
        let stream = match path {
            Some((_, stream)) => stream,
            None => match body.get("stream").map(|s| s.get()) {
                None | Some("null") | Some("false") => false,
                Some("true") => true,
                Some(_) => {
                    return Err(GatewayError::BadRequest(
                        "Invalid 'stream': expected true or false.".into(),
                    ));
                }
            },
        };
        Ok(Self {
            body,
            model,
            stream,
        })
    }
}

fn error_type(e: &GatewayError) -> &'static str {
    match e {
        GatewayError::BadRequest(_)
        | GatewayError::PayloadTooLarge { .. }
        | GatewayError::BodyTimeout { .. }
        | GatewayError::ClientClosed => "invalid_request_error",
        GatewayError::Unauthorized(_) => "authentication_error",
        GatewayError::Forbidden(_) | GatewayError::CrossSite(_) => "permission_error",
        GatewayError::ClientRateLimited { .. } | GatewayError::BudgetExceeded { .. } => {
            "rate_limit_error"
        }
        GatewayError::NotFound(_)
        | GatewayError::UnknownModel(_)
        | GatewayError::MethodNotAllowed(_) => "invalid_request_error",
        GatewayError::NoProvider { .. }
        | GatewayError::UpstreamTimeout { .. }
        | GatewayError::UpstreamUnreachable { .. }
        | GatewayError::UpstreamBrokeOff { .. }
        | GatewayError::RetryKeyword { .. }
        | GatewayError::Upstream(_) => "upstream_error",
        GatewayError::Internal(_)
        | GatewayError::Busy(_)
        | GatewayError::ShuttingDown
        | GatewayError::Loop => "server_error",
    }
}

/// `{"error":{"message","type","code","param"}}`, OpenAI's error body.
pub fn error_json(e: &GatewayError) -> Value {
    match e {
        GatewayError::Upstream(u) => json!({"error": {
            "message": u.message,
            "type": u.kind.as_deref().unwrap_or("upstream_error"),
            "code": as_string_or_null(u.code.as_ref()),
            "param": as_string_or_null(u.param.as_ref()),
        }}),
        GatewayError::UnknownModel(_) => json!({"error": {
            "message": e.to_string(), "type": error_type(e), "code": e.code(), "param": "model",
        }}),
        _ => json!({"error": {
            "message": e.to_string(), "type": error_type(e), "code": e.code(), "param": Value::Null,
        }}),
    }
}

/// OpenAI documents `code` and `param` as strings; some relays send numbers, which strict
/// clients (async-openai among them) then fail to parse. Pass the value on, as a string.
fn as_string_or_null(v: Option<&Value>) -> Value {
    match v {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(other) => Value::String(other.to_string()),
    }
}

/// The final event of a stream that failed after its first byte: clients see an error, never a
/// stream that just stops. `needs_separator` closes a partly forwarded event first.
pub fn stream_error_event(e: &GatewayError, needs_separator: bool) -> Bytes {
    let mut out = Vec::with_capacity(256);
    if needs_separator {
        out.extend_from_slice(b"\n\n");
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(error_json(e).to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Reads an upstream's error body, in whatever shape it came, into an error to pass on.
pub fn upstream_error(
    status: http::StatusCode,
    body: &[u8],
    retry_after: Option<http::HeaderValue>,
) -> GatewayError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let obj = parsed.as_ref().map(|v| match v.get("error") {
        Some(e @ Value::Object(_)) => e,
        _ => v,
    });
    let str_field = |k: &str| obj.and_then(|o| o.get(k)).and_then(Value::as_str);
    let message = str_field("message")
        .or_else(|| {
            parsed
                .as_ref()
                .and_then(|v| v.get("error"))
                .and_then(Value::as_str)
        })
        .or_else(|| str_field("detail"))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("upstream answered {status} with an empty body")
            } else {
                text.chars().take(1000).collect()
            }
        });
    GatewayError::Upstream(Box::new(UpstreamError {
        status,
        message,
        kind: str_field("type").map(str::to_owned),
        code: obj
            .and_then(|o| o.get("code"))
            .filter(|c| !c.is_null())
            .cloned(),
        param: obj
            .and_then(|o| o.get("param"))
            .filter(|c| !c.is_null())
            .cloned(),
        retry_after,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(body: &str) -> String {
        match RequestHead::parse(Api::Chat, body.as_bytes(), None) {
            Err(GatewayError::BadRequest(m)) => m,
            Err(e) => panic!("unexpected {e:?}"),
            Ok(_) => panic!("accepted {body}"),
        }
    }

    #[test]
    fn parses_model_and_stream() {
        let r = RequestHead::parse(
            Api::Chat,
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true}"#,
            None,
        )
        .unwrap();
        assert_eq!(r.model, "m");
        assert!(r.stream);
        let r =
            RequestHead::parse(Api::Chat, br#"{"messages":[1],"model":"m\u00e9"}"#, None).unwrap();
        assert_eq!(r.model, "mé");
        assert!(!r.stream);
    }

    #[test]
    fn clear_messages_for_bad_input() {
        assert!(bad("{not json").contains("not valid JSON"));
        assert!(bad("[]").contains("JSON object"));
        assert!(bad(r#"{"messages":[1]}"#).contains("'model'"));
        assert!(bad(r#"{"model":"","messages":[1]}"#).contains("'model'"));
        assert!(bad(r#"{"model":7,"messages":[1]}"#).contains("'model'"));
        assert!(bad(r#"{"model":"m"}"#).contains("'messages'"));
        assert!(bad(r#"{"model":"m","messages":"hi"}"#).contains("array"));
        assert!(bad(r#"{"model":"m","messages":[ ]}"#).contains("empty"));
        assert!(bad(r#"{"model":"m","messages":[1],"stream":"yes"}"#).contains("'stream'"));
        let gemini = RequestHead::parse(Api::Gemini, br#"{"contents":[]}"#, Some(("g", true)));
        assert!(matches!(gemini, Err(GatewayError::BadRequest(m)) if m.contains("'contents'")));
        let r = RequestHead::parse(Api::Responses, br#"{"model":"m","input":"hi"}"#, None).unwrap();
        assert!(!r.stream);
    }

    #[test]
    fn upstream_errors_in_any_shape() {
        let s = http::StatusCode::TOO_MANY_REQUESTS;
        let e = upstream_error(
            s,
            br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
            None,
        );
        let v = error_json(&e);
        assert_eq!(v["error"]["message"], "Rate limit reached");
        assert_eq!(v["error"]["type"], "requests");
        assert_eq!(v["error"]["code"], "rate_limit_exceeded");
        assert_eq!(e.status(), s);

        let e = upstream_error(
            s,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            None,
        );
        assert_eq!(e.to_string(), "Overloaded");
        let e = upstream_error(s, br#"{"error":"plain string"}"#, None);
        assert_eq!(e.to_string(), "plain string");
        let e = upstream_error(s, b"<html>bad gateway</html>", None);
        assert_eq!(e.to_string(), "<html>bad gateway</html>");
        let e = upstream_error(s, b"", None);
        assert!(e.to_string().contains("empty body"));
    }

    #[test]
    fn stream_error_event_is_one_sse_event() {
        let e = GatewayError::UpstreamUnreachable {
            provider: "p".into(),
            detail: "reset".into(),
        };
        let ev = stream_error_event(&e, true);
        let s = std::str::from_utf8(&ev).unwrap();
        assert!(s.starts_with("\n\ndata: {\"error\":"));
        assert!(s.ends_with("}\n\n"));
        let v: Value = serde_json::from_str(s.trim().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(v["error"]["code"], "upstream_unreachable");
    }
}
