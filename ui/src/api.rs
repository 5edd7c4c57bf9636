//! The admin API over `fetch`: a bearer token on every call, errors as the server words them.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, Response};

/// Where the API is and the token for it: the shell's in the desktop app, a login's in a browser.
#[derive(Clone, Debug, PartialEq)]
pub struct Client {
    /// Empty in a browser (same origin); `http://127.0.0.1:PORT` in the desktop window.
    pub base: String,
    pub token: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// 0 when the gateway could not be reached at all.
    pub status: u16,
    pub message: String,
}

impl Failure {
    /// The server names a list entry's field `prices[3].input`: a form has one entry's fields,
    /// so the message loses its `list[i].` for the form to place it.
    pub fn of_entry(&self, list: &str) -> Failure {
        let message = match self
            .message
            .strip_prefix(list)
            .and_then(|m| m.strip_prefix('['))
            .and_then(|m| m.split_once("]."))
        {
            Some((_, rest)) => rest.to_owned(),
            None => self.message.clone(),
        };
        Failure {
            status: self.status,
            message,
        }
    }

    fn network(e: JsValue) -> Self {
        let detail = e
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_else(|| format!("{e:?}"));
        Self {
            status: 0,
            message: format!("The gateway cannot be reached ({detail})"),
        }
    }

    /// The field a 422 names (`base_url: must start with http`), to show the message beside it.
    pub fn field(&self) -> Option<&str> {
        let (head, _) = self.message.split_once(": ")?;
        let head = head.trim();
        (!head.is_empty() && !head.contains(' ')).then_some(head)
    }
}

pub type ApiResult<T> = Result<T, Failure>;

fn js_error(e: JsValue) -> Failure {
    Failure::network(e)
}

/// One `fetch` to the admin API with the token (and a JSON body), answering the response head.
async fn fetch(
    client: &Client,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> ApiResult<Response> {
    fetch_until(client, method, path, body, None).await
}

/// [`fetch`] that `signal` can abort (the request, or reading its body).
async fn fetch_until(
    client: &Client,
    method: &str,
    path: &str,
    body: Option<&str>,
    signal: Option<&web_sys::AbortSignal>,
) -> ApiResult<Response> {
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(signal) = signal {
        init.set_signal(Some(signal));
    }
    let headers = Headers::new().map_err(js_error)?;
    if !client.token.is_empty() {
        headers
            .set("Authorization", &format!("Bearer {}", client.token))
            .map_err(js_error)?;
    }
    if let Some(b) = body {
        headers
            .set("Content-Type", "application/json")
            .map_err(js_error)?;
        init.set_body(&JsValue::from_str(b));
    }
    init.set_headers(&headers);
    let url = format!("{}/api{}", client.base, path);
    let request = Request::new_with_str_and_init(&url, &init).map_err(js_error)?;
    let window = web_sys::window().ok_or_else(|| Failure {
        status: 0,
        message: "no window".into(),
    })?;
    JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(js_error)?
        .dyn_into()
        .map_err(js_error)
}

async fn send(
    client: &Client,
    method: &str,
    path: &str,
    body: Option<String>,
) -> ApiResult<String> {
    let resp = fetch(client, method, path, body.as_deref()).await?;
    let text = JsFuture::from(resp.text().map_err(js_error)?)
        .await
        .map_err(js_error)?
        .as_string()
        .unwrap_or_default();
    if resp.ok() {
        return Ok(text);
    }
    let message = serde_json::from_str::<switchboard_api::ApiError>(&text)
        .map(|e| e.error.message)
        .unwrap_or_else(|_| {
            if text.is_empty() {
                resp.status_text()
            } else {
                text
            }
        });
    Err(Failure {
        status: resp.status(),
        message,
    })
}

fn decode<T: DeserializeOwned>(text: &str) -> ApiResult<T> {
    let text = if text.trim().is_empty() { "null" } else { text };
    serde_json::from_str(text).map_err(|e| Failure {
        status: 0,
        message: format!("Unexpected answer from the gateway: {e}"),
    })
}

pub async fn get<T: DeserializeOwned>(client: &Client, path: &str) -> ApiResult<T> {
    decode(&send(client, "GET", path, None).await?)
}

/// A GET whose answer is not JSON (the exported config file).
pub async fn text(client: &Client, path: &str) -> ApiResult<String> {
    send(client, "GET", path, None).await
}

pub async fn call<B: Serialize, T: DeserializeOwned>(
    client: &Client,
    method: &str,
    path: &str,
    body: &B,
) -> ApiResult<T> {
    let json = serde_json::to_string(body).map_err(|e| Failure {
        status: 0,
        message: e.to_string(),
    })?;
    decode(&send(client, method, path, Some(json)).await?)
}

pub async fn delete(client: &Client, path: &str) -> ApiResult<()> {
    send(client, "DELETE", path, None).await.map(|_| ())
}

/// `POST` with an empty JSON object, for actions (pause, resume, sync).
pub async fn action<T: DeserializeOwned>(client: &Client, path: &str) -> ApiResult<T> {
    call(client, "POST", path, &serde_json::json!({})).await
}

/// Path segments are names the user typed: encode them.
pub fn seg(name: &str) -> String {
    String::from(js_sys::encode_uri_component(name))
}

pub async fn login(
    base: &str,
    password: &str,
    totp: Option<String>,
) -> ApiResult<switchboard_api::LoginResponse> {
    call(
        &anonymous(base),
        "POST",
        "/login",
        &switchboard_api::LoginRequest {
            password: password.to_owned(),
            totp,
        },
    )
    .await
}

/// Whether an admin password exists yet, and whether this browser may choose it.
pub async fn setup_status(base: &str) -> ApiResult<switchboard_api::SetupStatus> {
    get(&anonymous(base), "/setup").await
}

/// Chooses the first admin password; answers a session, as a login does.
pub async fn setup(base: &str, password: &str) -> ApiResult<switchboard_api::LoginResponse> {
    call(
        &anonymous(base),
        "POST",
        "/setup",
        &switchboard_api::LoginRequest {
            password: password.to_owned(),
            totp: None,
        },
    )
    .await
}

fn anonymous(base: &str) -> Client {
    Client {
        base: base.to_owned(),
        token: String::new(),
    }
}

/// Reads `/api/events` (server-sent events); calls `on_event` with each event's name. Returns
/// when the stream ends or fails, so the caller decides when to reconnect.
pub async fn follow_events(client: &Client, on_event: &dyn Fn(&str)) -> ApiResult<()> {
    follow_sse(client, "/events", None, &|name, _| on_event(name)).await
}

/// Follows a server-sent event stream of the admin API through `fetch`, which unlike
/// `EventSource` can send the token in a header: calls `on_event` with each event's name and
/// data, first with `connected` (whatever happened while away is worth a reload). Returns when
/// the stream ends or fails, or (with `Ok`) when `signal` aborts it.
pub async fn follow_sse(
    client: &Client,
    path: &str,
    signal: Option<&web_sys::AbortSignal>,
    on_event: &dyn Fn(&str, &str),
) -> ApiResult<()> {
    let aborted = || signal.is_some_and(web_sys::AbortSignal::aborted);
    let resp = match fetch_until(client, "GET", path, None, signal).await {
        Err(_) if aborted() => return Ok(()),
        other => other?,
    };
    if !resp.ok() {
        return Err(Failure {
            status: resp.status(),
            message: resp.status_text(),
        });
    }
    let Some(body) = resp.body() else {
        return Ok(());
    };
    let reader: web_sys::ReadableStreamDefaultReader = body
        .get_reader()
        .dyn_into()
        .map_err(|o: js_sys::Object| js_error(o.into()))?;
    let mut buf: Vec<u8> = Vec::new();
    on_event("connected", "");
    loop {
        let chunk = match JsFuture::from(reader.read()).await {
            Err(_) if aborted() => return Ok(()),
            other => other.map_err(js_error)?,
        };
        let done = js_sys::Reflect::get(&chunk, &JsValue::from_str("done"))
            .map_err(js_error)?
            .as_bool()
            .unwrap_or(true);
        if done || aborted() {
            return Ok(());
        }
        let value = js_sys::Reflect::get(&chunk, &JsValue::from_str("value")).map_err(js_error)?;
        buf.extend(js_sys::Uint8Array::new(&value).to_vec());
        while let Some(end) = find_blank_line(&buf) {
            let frame: Vec<u8> = buf.drain(..end).collect();
            let text = String::from_utf8_lossy(&frame);
            let (name, data) = parse_frame(&text);
            if let Some(name) = name {
                on_event(name, &data);
            }
        }
    }
}

fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2)
}

/// An event's name and its data (`data:` lines joined by newlines); a comment (a keep-alive)
/// has no name.
fn parse_frame(frame: &str) -> (Option<&str>, String) {
    fn field<'a>(l: &'a str, name: &str) -> Option<&'a str> {
        l.strip_prefix(name)
            .and_then(|v| v.strip_prefix(':'))
            .map(|v| v.strip_prefix(' ').unwrap_or(v))
    }
    let name = frame.lines().find_map(|l| field(l, "event"));
    let data = frame
        .lines()
        .filter_map(|l| field(l, "data"))
        .collect::<Vec<_>>()
        .join("\n");
    (name, data)
}

/// The desktop shell's answer to `bootstrap`: where the gateway is and the window's token, or
/// why the gateway is not running.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Boot {
    pub base_url: Option<String>,
    pub token: Option<String>,
    pub error: Option<String>,
    pub port: Option<u16>,
}

fn tauri_invoke_fn() -> Option<(JsValue, js_sys::Function)> {
    let window = web_sys::window()?;
    let tauri = js_sys::Reflect::get(&window, &JsValue::from_str("__TAURI__")).ok()?;
    let core = js_sys::Reflect::get(&tauri, &JsValue::from_str("core")).ok()?;
    let invoke = js_sys::Reflect::get(&core, &JsValue::from_str("invoke")).ok()?;
    invoke
        .dyn_into::<js_sys::Function>()
        .ok()
        .map(|f| (core, f))
}

/// True inside the desktop app's window.
pub fn in_desktop() -> bool {
    tauri_invoke_fn().is_some()
}

/// Calls a command of the desktop shell.
pub async fn invoke<T: DeserializeOwned>(command: &str, args: Value) -> ApiResult<T> {
    let (core, invoke) = tauri_invoke_fn().ok_or_else(|| Failure {
        status: 0,
        message: "not in the desktop app".into(),
    })?;
    let args = js_sys::JSON::parse(&args.to_string()).map_err(js_error)?;
    let promise: js_sys::Promise = invoke
        .call2(&core, &JsValue::from_str(command), &args)
        .map_err(js_error)?
        .dyn_into()
        .map_err(js_error)?;
    let value = JsFuture::from(promise).await.map_err(|e| Failure {
        status: 0,
        message: e.as_string().unwrap_or_else(|| format!("{e:?}")),
    })?;
    let text = js_sys::JSON::stringify(&value)
        .map(String::from)
        .unwrap_or_else(|_| "null".into());
    decode(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_frames_split_on_blank_lines() {
        let buf = b"event: breaker\ndata: {}\n\nevent: x";
        let end = find_blank_line(buf).unwrap();
        assert_eq!(
            parse_frame(std::str::from_utf8(&buf[..end]).unwrap()),
            (Some("breaker"), "{}".to_owned())
        );
        assert_eq!(find_blank_line(&buf[end..]), None);
        assert_eq!(
            parse_frame("event:request\ndata:{\"id\":1,\ndata:  \"a\":2}\n\n"),
            (Some("request"), "{\"id\":1,\n \"a\":2}".to_owned())
        );
        assert_eq!(parse_frame(":\n\n"), (None, String::new()));
    }

    #[test]
    fn a_422_names_its_field() {
        let f = Failure {
            status: 422,
            message: "base_url: must start with http:// or https://".into(),
        };
        assert_eq!(f.field(), Some("base_url"));
        let g = Failure {
            status: 502,
            message: "The gateway cannot be reached: x".into(),
        };
        assert_eq!(g.field(), None);
    }
}
