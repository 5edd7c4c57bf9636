//! The OpenAI path end to end: the real `switchboard serve` binary between real clients
//! (async-openai, raw HTTP) and a scripted mock upstream on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs,
};
use common::mock::{DONE, Mock, Reply, chunk};
use common::{Gateway, config_for, http};
use futures_util::StreamExt;
use serde_json::{Value, json};

fn openai(gw: &Gateway, key: &str) -> Client<OpenAIConfig> {
    Client::with_config(OpenAIConfig::new().with_api_base(gw.v1()).with_api_key(key))
}

fn ask(model: &str, stream: bool) -> CreateChatCompletionRequest {
    let mut b = CreateChatCompletionRequestArgs::default();
    b.model(model)
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("Say hello")
            .build()
            .unwrap()
            .into()]);
    if stream {
        b.stream(true);
    }
    b.build().unwrap()
}

fn chat_body(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

async fn post(gw: &Gateway, key: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    http()
        .post(format!("{}/chat/completions", gw.v1()))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .unwrap()
}

async fn assert_openai_error(r: reqwest::Response, status: u16, needle: &str) -> Value {
    assert_eq!(r.status().as_u16(), status);
    assert_eq!(header(&r, "content-type"), "application/json");
    assert!(r.headers().contains_key("x-switchboard-attempts"));
    let v: Value = r.json().await.unwrap();
    let msg = v["error"]["message"].as_str().expect("OpenAI error shape");
    assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
    assert!(v["error"]["type"].is_string(), "{v}");
    v
}

#[tokio::test]
async fn plain_chat_with_the_openai_client() {
    let mock = Mock::start().await;
    let (gw, _dir) = Gateway::start(&config_for(&mock.url(), ""));
    let key = gw.key("test");
    let resp = openai(&gw, &key)
        .chat()
        .create(ask("fast", false))
        .await
        .unwrap();
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("Hello from the mock")
    );

    let seen = &mock.requests()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.path, "/v1/chat/completions",
        "a trailing /v1 in base_url is tolerated"
    );
    // The provider's key goes upstream, never the client's.
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-upstream-secret-1234")
    );
    assert!(!format!("{:?}", seen.headers).contains(&key));
    // The unified name was mapped to the provider's model id; the rest is passed on untouched.
    let body = seen.json();
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["messages"][0]["content"], "Say hello");
}

#[tokio::test]
async fn routing_headers_on_every_answer() {
    let mock = Mock::start().await;
    let (gw, _dir) = Gateway::start(&config_for(&mock.url(), ""));
    let key = gw.key("test");
    let r = post(&gw, &key, chat_body("fast").to_string()).await;
    assert_eq!(r.status(), 200);
    let length: usize = header(&r, "content-length").parse().unwrap();
    assert_eq!(header(&r, "x-switchboard-provider"), "mock");
    assert_eq!(header(&r, "x-switchboard-model"), "gpt-4o-mini");
    assert_eq!(header(&r, "x-switchboard-attempts"), "1");
    assert_eq!(
        r.bytes().await.unwrap().len(),
        length,
        "the upstream's length is passed on"
    );
    // Same model name upstream: the body goes through byte for byte.
    let raw = r#"{"model":"gpt-4o",  "messages":[{"role":"user","content":"hi"}],"x_unknown":{"a":[1,2]}}"#;
    let r = post(&gw, &key, raw).await;
    assert_eq!(r.status(), 200);
    assert_eq!(mock.requests()[1].body, raw.as_bytes());
    // Refused before routing: the headers are still there.
    let r = post(&gw, "wrong-key", chat_body("fast").to_string()).await;
    assert_eq!(header(&r, "x-switchboard-provider"), "-");
    assert_eq!(header(&r, "x-switchboard-attempts"), "0");
}

#[tokio::test]
async fn streaming_with_the_openai_client() {
    let mock = Mock::start().await;
    let (gw, _dir) = Gateway::start(&config_for(&mock.url(), ""));
    let key = gw.key("test");
    let mut stream = openai(&gw, &key)
        .chat()
        .create_stream(ask("fast", true))
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        let item = item.unwrap();
        for c in item.choices {
            text.push_str(c.delta.content.as_deref().unwrap_or(""));
        }
    }
    assert_eq!(text, "Hello, world");
    assert_eq!(mock.requests()[0].json()["stream"], true);
}

#[tokio::test]
async fn stream_chunks_are_forwarded_as_they_arrive() {
    let mock = Mock::start().await;
    let (gw, _dir) = Gateway::start(&config_for(&mock.url(), ""));
    let gap = Duration::from_millis(700);
    mock.script([Reply::Sse {
        chunks: vec![chunk("m", "first"), chunk("m", "second"), DONE.into()],
        gap,
        drop_after: None,
    }]);
    let mut body = chat_body("fast");
    body["stream"] = json!(true);
    let started = Instant::now();
    let r = post(&gw, &gw.key("test"), body.to_string()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/event-stream");
    let mut s = r.bytes_stream();
    let first = s.next().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert!(String::from_utf8_lossy(&first).contains("first"));
    assert!(!String::from_utf8_lossy(&first).contains("second"));
    // The first chunk reached the client well before the upstream sent the second one.
    assert!(first_at < gap, "first chunk after {first_at:?}: held back");
    let mut rest = Vec::new();
    while let Some(c) = s.next().await {
        rest.extend_from_slice(&c.unwrap());
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(rest.contains("second") && rest.ends_with(DONE), "{rest}");
}

#[tokio::test]
async fn a_stream_cut_mid_way_ends_with_an_error_event() {
    let mock = Mock::start().await;
    let (gw, _dir) = Gateway::start(&config_for(&mock.url(), ""));
    mock.script([Reply::Sse {
        chunks: vec![
            chunk("m", "one"),
            chunk("m", "two"),
            chunk("m", "never"),
            DONE.into(),
        ],
        gap: Duration::from_millis(20),
        drop_after: Some(2),
    }]);
    let mut body = chat_body("fast");
    body["stream"] = json!(true);
    let r = post(&gw, &gw.key("test"), body.to_string()).await;
    assert_eq!(r.status(), 200);
    let text = r
        .text()
        .await
        .expect("the stream ends cleanly, not with a cut");
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .collect();
    assert_eq!(events.len(), 3, "{text}");
    assert!(events[0].contains("one") && events[1].contains("two"));
    let last: Value = serde_json::from_str(events[2].strip_prefix("data: ").unwrap()).unwrap();
    assert!(
        last["error"]["message"].as_str().unwrap().contains("mock"),
        "{last}"
    );
    assert!(!text.contains("[DONE]") && !text.contains("never"));

    // The same through the OpenAI client: it sees an error, not a silent end.
    mock.script([Reply::Sse {
        chunks: vec![chunk("m", "one"), chunk("m", "never"), DONE.into()],
        gap: Duration::ZERO,
        drop_after: Some(1),
    }]);
    let mut stream = openai(&gw, &gw.key("test"))
        .chat()
        .create_stream(ask("fast", true))
        .await
        .unwrap();
    let mut saw_error = false;
    while let Some(item) = stream.next().await {
        if item.is_err() {
            saw_error = true;
        }
    }
    assert!(saw_error, "the client must be told the stream failed");
    // The gateway keeps serving.
    assert_eq!(
        post(&gw, &gw.key("test"), chat_body("fast").to_string())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn upstream_errors_keep_their_status_and_message() {
    let mock = Mock::start().await;
    let (gw, _dir) = Gateway::start(&config_for(&mock.url(), ""));
    let key = gw.key("test");
    mock.script([
        Reply::status(
            429,
            r#"{"error":{"message":"Rate limit reached for gpt-4o-mini","type":"requests","code":"rate_limit_exceeded"}}"#,
        )
        .with_header("retry-after", "17"),
        Reply::status(500, r#"{"error":{"message":"The server had an error","type":"server_error"}}"#),
        Reply::status(400, r#"{"error":{"message":"max_tokens is too large","type":"invalid_request_error","param":"max_tokens","code":null}}"#),
        Reply::status(503, "upstream overloaded, plain text"),
    ]);
    let r = post(&gw, &key, chat_body("fast").to_string()).await;
    assert_eq!(header(&r, "retry-after"), "17");
    assert_eq!(header(&r, "x-switchboard-provider"), "mock");
    let v = assert_openai_error(r, 429, "Rate limit reached").await;
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert_openai_error(
        post(&gw, &key, chat_body("fast").to_string()).await,
        500,
        "The server had an error",
    )
    .await;

    // Through the OpenAI client the upstream's message arrives as an API error.
    match openai(&gw, &key).chat().create(ask("fast", false)).await {
        Err(OpenAIError::ApiError(e)) => {
            assert_eq!(e.status_code.as_u16(), 400);
            assert_eq!(e.api_error.message, "max_tokens is too large");
            assert_eq!(e.api_error.param.as_deref(), Some("max_tokens"));
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    assert_openai_error(
        post(&gw, &key, chat_body("fast").to_string()).await,
        503,
        "plain text",
    )
    .await;
}

#[tokio::test]
async fn a_silent_upstream_gives_504_within_the_timeout() {
    let mock = Mock::start().await;
    let cfg = config_for(&mock.url(), "").replace("request_timeout_s = 5", "request_timeout_s = 1");
    let (gw, _dir) = Gateway::start(&cfg);
    mock.script([Reply::delayed(Duration::from_secs(4))]);
    let started = Instant::now();
    let r = post(&gw, &gw.key("test"), chat_body("fast").to_string()).await;
    assert_openai_error(r, 504, "did not answer within 1s").await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_unreachable_upstream_gives_502() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (gw, _dir) = Gateway::start(&config_for(&format!("http://127.0.0.1:{port}"), ""));
    let r = post(&gw, &gw.key("test"), chat_body("fast").to_string()).await;
    let v = assert_openai_error(r, 502, "cannot reach provider 'mock'").await;
    // Named, not located: the provider's URL stays in the gateway.
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        !msg.contains(&port.to_string()) && !msg.contains("http"),
        "{msg}"
    );
}

#[tokio::test]
async fn models_lists_the_unified_names() {
    let mock = Mock::start().await;
    let (gw, _dir) = Gateway::start(&config_for(&mock.url(), ""));
    let list = openai(&gw, &gw.key("test")).models().list().await.unwrap();
    let ids: Vec<&str> = list.data.iter().map(|m| m.id.as_str()).collect();
    // The user's models, and the ready-made groups that have a candidate.
    let (groups, own): (Vec<&str>, Vec<&str>) = ids.iter().partition(|n| n.starts_with("auto:"));
    assert_eq!(own, ["fast", "gpt-4o"]);
    assert!(groups.contains(&"auto:fast"), "{ids:?}");
    assert_eq!(mock.hits(), 0, "answered by the gateway itself");
}

#[tokio::test]
async fn client_keys_are_checked() {
    let mock = Mock::start().await;
    let cfg = config_for(&mock.url(), "")
        + "\n[[client_keys]]\nname = \"limited\"\nkey = \"sk-sb-limited-key-0123456789\"\nmodels = [\"gpt-4o\"]\n";
    let (gw, _dir) = Gateway::start(&cfg);
    let url = format!("{}/chat/completions", gw.v1());
    let body = chat_body("fast").to_string();

    let r = http().post(&url).body(body.clone()).send().await.unwrap();
    assert_openai_error(r, 401, "Missing API key").await;
    let r = post(&gw, "sk-sb-not-a-real-key-000000", body.clone()).await;
    let v = assert_openai_error(r, 401, "Invalid API key").await;
    assert!(
        !v.to_string().contains("sk-sb-not-a-real-key"),
        "keys are never echoed"
    );
    match openai(&gw, "sk-sb-wrong")
        .chat()
        .create(ask("fast", false))
        .await
    {
        Err(OpenAIError::ApiError(e)) => assert_eq!(e.status_code.as_u16(), 401),
        other => panic!("expected 401, got {other:?}"),
    }

    let key = gw.key("test");
    let r = http()
        .post(&url)
        .header("x-api-key", &key)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http()
        .post(format!("{url}?key={key}"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // An allow-list limits which unified models a key may use.
    let r = post(&gw, "sk-sb-limited-key-0123456789", body.clone()).await;
    assert_openai_error(r, 403, "may not use model 'fast'").await;
    let r = post(
        &gw,
        "sk-sb-limited-key-0123456789",
        chat_body("gpt-4o").to_string(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = http()
        .get(format!("{}/models", gw.v1()))
        .send()
        .await
        .unwrap();
    assert_openai_error(r, 401, "Missing API key").await;
    assert_eq!(mock.hits(), 3, "refused requests never reach the upstream");
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_the_server_keeps_serving() {
    let mock = Mock::start().await;
    let cfg = config_for(&mock.url(), "").replace("[server]", "[server]\nmax_body_mb = 1");
    let (gw, _dir) = Gateway::start(&cfg);
    let key = gw.key("test");
    let big =
        json!({"model": "fast", "messages": [{"role": "user", "content": "x".repeat(1_200_000)}]});
    let cases: Vec<(String, u16, &str)> = vec![
        (
            "{\"model\": \"fast\", \"messages\": [".into(),
            400,
            "not valid JSON",
        ),
        ("[1, 2]".into(), 400, "JSON object"),
        (
            json!({"messages": [{"role": "user", "content": "hi"}]}).to_string(),
            400,
            "'model'",
        ),
        (json!({"model": "fast"}).to_string(), 400, "'messages'"),
        (
            json!({"model": "fast", "messages": []}).to_string(),
            400,
            "empty",
        ),
        (
            chat_body("gpt-5-imaginary").to_string(),
            404,
            "'gpt-5-imaginary'",
        ),
        (big.to_string(), 413, "1 MB"),
    ];
    for (body, status, needle) in cases {
        let r = post(&gw, &key, body).await;
        let v = assert_openai_error(r, status, needle).await;
        if status == 404 {
            assert_eq!(v["error"]["code"], "model_not_found");
        }
        let health = http()
            .get(format!("{}/health", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
    }
    let r = http()
        .post(format!("{}/nothing-here", gw.v1()))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_openai_error(r, 404, "Unknown endpoint: POST /v1/nothing-here").await;
    assert_eq!(mock.hits(), 0);
    assert_eq!(
        post(&gw, &key, chat_body("fast").to_string())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn upstream_connections_are_pooled() {
    let mock = Mock::start().await;
    let (gw, _dir) = Gateway::start(&config_for(&mock.url(), ""));
    let key = gw.key("test");
    for _ in 0..5 {
        assert_eq!(
            post(&gw, &key, chat_body("fast").to_string())
                .await
                .status(),
            200
        );
    }
    assert_eq!(mock.hits(), 5);
    assert_eq!(
        mock.connections(),
        1,
        "keep-alive: one connection for sequential requests"
    );
}

#[tokio::test]
async fn env_keys_are_read_from_the_environment() {
    let mock = Mock::start().await;
    let cfg = config_for(&mock.url(), "").replace(
        "api_key = \"sk-upstream-secret-1234\"",
        "api_key = \"env:SB_TEST_UPSTREAM_KEY\"",
    );
    let (gw, _dir) =
        Gateway::start_with(&cfg, |l| l.env("SB_TEST_UPSTREAM_KEY", "sk-from-env-999"));
    assert_eq!(
        post(&gw, &gw.key("test"), chat_body("fast").to_string())
            .await
            .status(),
        200
    );
    assert_eq!(
        mock.requests()[0].header("authorization"),
        Some("Bearer sk-from-env-999")
    );
}

#[tokio::test]
async fn model_params_are_applied() {
    let mock = Mock::start().await;
    let cfg = config_for(&mock.url(), "").replace(
        "include = [\"mock/gpt-4o-mini\"]",
        "include = [\"mock/gpt-4o-mini\"]\ndefault_params = { temperature = 0.2, top_p = 0.9 }\noverride_params = { max_tokens = 64 }",
    );
    let (gw, _dir) = Gateway::start(&cfg);
    let mut body = chat_body("fast");
    body["temperature"] = json!(1.0);
    body["max_tokens"] = json!(4096);
    assert_eq!(
        post(&gw, &gw.key("test"), body.to_string()).await.status(),
        200
    );
    let sent = mock.requests()[0].json();
    assert_eq!(
        sent["temperature"], 1.0,
        "the client's value wins over a default"
    );
    assert_eq!(
        sent["top_p"], 0.9,
        "a default fills what the client left out"
    );
    assert_eq!(sent["max_tokens"], 64, "an override always wins");
    assert_eq!(sent["model"], "gpt-4o-mini");
}
