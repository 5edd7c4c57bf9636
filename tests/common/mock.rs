//! A scriptable OpenAI-style upstream on loopback. It does not import the engine: it only
//! speaks HTTP, so the tests see the gateway the way a real provider would.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Response, StatusCode};
use axum::serve::ListenerExt;
use futures_util::StreamExt;

use super::mock_replies::answer;

#[derive(Clone, Debug)]
pub enum Reply {
    /// The default: a chat completion echoing the requested model, or a short stream of three
    /// chunks and `[DONE]` when the request asked for `stream: true`; in the other protocols
    /// (and for chats with tools), what `mock_replies` answers.
    Auto,
    /// A fixed answer after `delay`.
    Json {
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
        delay: Duration,
    },
    /// Server-sent events, `gap` apart. With `drop_after: Some(n)` the connection is cut after
    /// n chunks, without the end of the chunked body: a provider dying mid-stream.
    Sse {
        chunks: Vec<String>,
        gap: Duration,
        drop_after: Option<usize>,
    },
}

impl Reply {
    pub fn status(status: u16, body: &str) -> Self {
        Self::Json {
            status,
            body: body.to_owned(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let Self::Json { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    pub fn delayed(delay: Duration) -> Self {
        Self::Json {
            status: 200,
            body: completion("late", "too late"),
            headers: Vec::new(),
            delay,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the gateway sent JSON upstream")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct MockState {
    /// What `GET /v1/models` lists.
    models: Mutex<Vec<String>>,
    /// When set, `GET .../models` fails with this status.
    models_error: Mutex<Option<u16>>,
    model_list_hits: AtomicUsize,
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    connections: AtomicUsize,
}

pub struct Mock {
    pub addr: SocketAddr,
    state: Arc<MockState>,
    _server: tokio::task::JoinHandle<()>,
}

impl Mock {
    pub async fn start() -> Self {
        let state = Arc::new(MockState::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counter = state.clone();
        let listener = listener.tap_io(move |_| {
            counter.connections.fetch_add(1, Ordering::SeqCst);
        });
        let app = Router::new().fallback(handle).with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            state,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues replies for the next requests, in order; after them, [`Reply::Auto`].
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    /// Sets what `GET .../models` answers (OpenAI's list shape).
    pub fn set_models(&self, ids: &[&str]) {
        *self.state.models.lock().unwrap() = ids.iter().map(|s| (*s).to_owned()).collect();
    }

    pub fn fail_model_list(&self, status: Option<u16>) {
        *self.state.models_error.lock().unwrap() = status;
    }

    pub fn model_list_hits(&self) -> usize {
        self.state.model_list_hits.load(Ordering::SeqCst)
    }

    /// Requests other than model-list fetches.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn hits(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

pub fn completion(model: &str, content: &str) -> String {
    serde_json::json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    })
    .to_string()
}

pub fn chunk(model: &str, content: &str) -> String {
    let c = serde_json::json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": {"content": content}, "logprobs": null, "finish_reason": null}]
    });
    format!("data: {c}\n\n")
}

/// OpenAI's role-only first chunk: a preamble with no content yet.
pub fn role_chunk(model: &str) -> String {
    let c = serde_json::json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]
    });
    format!("data: {c}\n\n")
}

pub const DONE: &str = "data: [DONE]\n\n";

async fn handle(State(state): State<Arc<MockState>>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    if parts.method == axum::http::Method::GET && parts.uri.path().ends_with("/models") {
        state.model_list_hits.fetch_add(1, Ordering::SeqCst);
        if let Some(status) = *state.models_error.lock().unwrap() {
            return json(
                status,
                r#"{"error":{"message":"model list unavailable"}}"#.into(),
                Vec::new(),
            );
        }
        let models = state.models.lock().unwrap().clone();
        let body = if parts.uri.path().starts_with("/v1beta") {
            let list: Vec<serde_json::Value> = models
                .iter()
                .map(|id| serde_json::json!({"name": format!("models/{id}")}))
                .collect();
            serde_json::json!({"models": list})
        } else {
            let data: Vec<serde_json::Value> = models
                .iter()
                .map(|id| serde_json::json!({"id": id, "object": "model", "owned_by": "mock"}))
                .collect();
            serde_json::json!({"object": "list", "data": data})
        };
        return json(200, body.to_string(), Vec::new());
    }
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts.headers,
        body,
    };
    let request: serde_json::Value = serde_json::from_slice(&recorded.body).unwrap_or_default();
    state.requests.lock().unwrap().push(recorded);
    let reply = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Auto);
    let model = request["model"].as_str().unwrap_or("unknown").to_owned();
    let path = parts.uri.path();
    match reply {
        Reply::Auto if path.ends_with("/chat/completions") && request["tools"].is_null() => {
            if request["stream"] == true {
                sse(
                    vec![
                        chunk(&model, "Hello"),
                        chunk(&model, ", "),
                        chunk(&model, "world"),
                        DONE.to_owned(),
                    ],
                    Duration::ZERO,
                    None,
                )
            } else {
                json(200, completion(&model, "Hello from the mock"), Vec::new())
            }
        }
        Reply::Auto => {
            let a = answer(path, parts.uri.query().unwrap_or(""), &request);
            if a.content_type == "text/event-stream" {
                sse(a.chunks, Duration::ZERO, None)
            } else {
                json(a.status, a.chunks.concat(), Vec::new())
            }
        }
        Reply::Json {
            status,
            body,
            headers,
            delay,
        } => {
            tokio::time::sleep(delay).await;
            json(status, body, headers)
        }
        Reply::Sse {
            chunks,
            gap,
            drop_after,
        } => sse(chunks, gap, drop_after),
    }
}

fn json(status: u16, body: String, headers: Vec<(String, String)>) -> Response<Body> {
    let mut b = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(k, v);
    }
    b.body(Body::from(body)).unwrap()
}

fn sse(chunks: Vec<String>, gap: Duration, drop_after: Option<usize>) -> Response<Body> {
    let n = chunks.len();
    let stream =
        futures_util::stream::iter(chunks.into_iter().enumerate()).then(move |(i, c)| async move {
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            if drop_after.is_some_and(|d| i >= d) {
                return Err(std::io::Error::other("mock: dropping the connection"));
            }
            Ok::<_, std::io::Error>(Bytes::from(c))
        });
    // Cutting after the last chunk needs one more (failing) item.
    let tail = futures_util::stream::iter(
        (drop_after == Some(n))
            .then(|| Err::<Bytes, _>(std::io::Error::other("mock: dropping the connection"))),
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream.chain(tail)))
        .unwrap()
}
