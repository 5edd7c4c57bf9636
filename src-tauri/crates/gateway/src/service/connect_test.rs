//! The check after a connect: one request of one token through the gateway, as the client will
//! send it (its protocol, its header, its new key), so a user learns at once whether the agent
//! will work rather than at its first prompt.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_api::ConnectTest;

use crate::catalog::Snapshot;
use crate::connect::AgentClient;

/// Long enough for a slow upstream's first token, short enough that a connect never hangs.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The unified model to ask: one of the client's own family when there is one (Claude Code asks
/// for Claude models), else the first by name. Wildcard models have no name to ask for.
pub(crate) fn pick_model(snap: &Snapshot, client: AgentClient) -> Option<String> {
    choose(snap.routes.keys().map(String::as_str), client)
}

fn choose<'a>(names: impl Iterator<Item = &'a str>, client: AgentClient) -> Option<String> {
    let family = match client {
        AgentClient::ClaudeCode => "claude",
        AgentClient::Codex => "gpt",
        AgentClient::GeminiCli => "gemini",
    };
    // A wildcard has no name to ask for; a group could answer with any model.
    let mut names: Vec<&str> = names
        .filter(|n| !n.contains('*') && !n.starts_with("auto:"))
        .collect();
    names.sort_unstable();
    names
        .iter()
        .find(|n| n.to_ascii_lowercase().contains(family))
        .or_else(|| names.first())
        .map(|n| (*n).to_owned())
}

/// The request the client would make, with the fewest tokens its protocol accepts.
fn request(
    http: &reqwest::Client,
    base_url: &str,
    client: AgentClient,
    key: &str,
    model: &str,
) -> reqwest::RequestBuilder {
    match client {
        AgentClient::ClaudeCode => http
            .post(format!("{base_url}/v1/messages"))
            .bearer_auth(key)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({
                "model": model,
                "max_tokens": 1,
                "messages": [{"role": "user", "content": "Say OK."}],
            })),
        // The Responses API takes no fewer than 16 output tokens.
        AgentClient::Codex => http
            .post(format!("{base_url}/v1/responses"))
            .bearer_auth(key)
            .json(&json!({
                "model": model,
                "input": "Say OK.",
                "max_output_tokens": 16,
                "store": false,
            })),
        AgentClient::GeminiCli => http
            .post(format!(
                "{base_url}/v1beta/models/{}:generateContent",
                segment(model)
            ))
            .header("x-goog-api-key", key)
            .json(&json!({
                "contents": [{"role": "user", "parts": [{"text": "Say OK."}]}],
                "generationConfig": {"maxOutputTokens": 1},
            })),
    }
}

/// A model name as one URL path segment (a unified name may hold `/` or spaces).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The error message in any of the three protocols' error bodies.
fn error_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error")?;
    e.get("message")
        .and_then(|m| m.as_str())
        .or_else(|| e.as_str())
        .map(|m| m.chars().take(300).collect())
}

pub(crate) async fn run(
    snap: &Snapshot,
    base_url: &str,
    client: AgentClient,
    key: &str,
) -> ConnectTest {
    let Some(model) = pick_model(snap, client) else {
        return ConnectTest {
            message: "Test request: not sent, no unified model yet (add a provider and a model)"
                .into(),
            ..ConnectTest::default()
        };
    };
    // Its own client: straight to this machine, whatever proxy the environment names for
    // upstreams.
    let http = match reqwest::Client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            return ConnectTest {
                model: Some(model),
                message: format!("Test request: not sent ({e})"),
                ..ConnectTest::default()
            };
        }
    };
    let start = Instant::now();
    let sent = request(&http, base_url, client, key, &model).send().await;
    let answer = match sent {
        Ok(resp) => {
            let status = resp.status();
            let body = resp.bytes().await.unwrap_or_default();
            Ok((status, body))
        }
        Err(e) => Err(e),
    };
    let latency_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    match answer {
        Ok((status, _)) if status.is_success() => ConnectTest {
            ok: true,
            message: format!("Test request: {model} answered in {latency_ms} ms"),
            model: Some(model),
            status: Some(status.as_u16()),
            latency_ms,
        },
        Ok((status, body)) => ConnectTest {
            ok: false,
            message: format!(
                "Test request: {model} failed with {}: {} (the Logs page has the attempts)",
                status.as_u16(),
                error_message(&body).unwrap_or_else(|| "no message".into())
            ),
            model: Some(model),
            status: Some(status.as_u16()),
            latency_ms,
        },
        Err(e) => ConnectTest {
            ok: false,
            message: format!(
                "Test request: {model} got no answer in {latency_ms} ms ({})",
                crate::dispatch::error_chain(&e)
            ),
            model: Some(model),
            status: None,
            latency_ms,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{choose, error_message, segment};
    use crate::connect::AgentClient;

    #[test]
    fn the_model_asked_is_of_the_clients_family_when_there_is_one() {
        let names = [
            "fast",
            "gpt-5",
            "claude-*",
            "Claude-Sonnet-4-5",
            "gemini-2.5-pro",
        ];
        let pick = |c| choose(names.iter().copied(), c);
        assert_eq!(
            pick(AgentClient::ClaudeCode).as_deref(),
            Some("Claude-Sonnet-4-5")
        );
        assert_eq!(pick(AgentClient::Codex).as_deref(), Some("gpt-5"));
        assert_eq!(
            pick(AgentClient::GeminiCli).as_deref(),
            Some("gemini-2.5-pro")
        );
        let others = ["zeta", "alpha", "claude-*"];
        assert_eq!(
            choose(others.iter().copied(), AgentClient::ClaudeCode).as_deref(),
            Some("alpha")
        );
        assert_eq!(
            choose(["claude-*"].into_iter(), AgentClient::ClaudeCode),
            None
        );
    }

    #[test]
    fn a_model_name_is_one_path_segment() {
        assert_eq!(segment("gemini-2.5-pro"), "gemini-2.5-pro");
        assert_eq!(segment("team/fast model"), "team%2Ffast%20model");
    }

    #[test]
    fn error_messages_come_from_each_protocols_body() {
        let openai = br#"{"error":{"message":"no provider","type":"x"}}"#;
        let gemini = br#"{"error":{"code":404,"message":"not found","status":"NOT_FOUND"}}"#;
        assert_eq!(error_message(openai).as_deref(), Some("no provider"));
        assert_eq!(error_message(gemini).as_deref(), Some("not found"));
        assert_eq!(error_message(b"<html>"), None);
    }
}
