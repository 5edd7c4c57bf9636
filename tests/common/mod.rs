//! Shared by the end-to-end tests: the mock upstream and a handle on the real `switchboard`
//! binary, started on a free port.
#![allow(dead_code)]

pub mod agent;
pub mod mock;
pub mod mock_replies;
pub mod upstreams;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

pub struct Gateway {
    pub child: Child,
    pub url: String,
    pub port: u16,
    pub generated_keys: Vec<(String, String)>,
    pub stderr: Arc<Mutex<String>>,
    pub data_dir: PathBuf,
    _stdout_rest: mpsc::Receiver<String>,
}

pub struct Launch {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Launch {
    pub fn serve(config: &Path, data_dir: &Path) -> Self {
        Self {
            args: vec![
                "serve".into(),
                "--config".into(),
                config.display().to_string(),
                "--data-dir".into(),
                data_dir.display().to_string(),
                "--port".into(),
                "0".into(),
            ],
            env: Vec::new(),
        }
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
}

/// Spawns the binary; answers once it printed its address, or with its exit status and stderr.
// Every path either reaps the child (try_wait/wait) or hands it to `Gateway`, whose Drop does.
#[allow(clippy::zombie_processes)]
pub fn spawn(launch: Launch, data_dir: &Path) -> Result<Gateway, (ExitStatus, String)> {
    spawn_program(Path::new(BIN), launch, data_dir)
}

/// [`spawn`] for another build of the app (an installed package's, an AppImage).
#[allow(clippy::zombie_processes)]
pub fn spawn_program(
    program: &Path,
    launch: Launch,
    data_dir: &Path,
) -> Result<Gateway, (ExitStatus, String)> {
    let mut cmd = Command::new(program);
    cmd.args(&launch.args)
        .env_remove("SWITCHBOARD_CONFIG")
        .env_remove("SWITCHBOARD_DATA_DIR")
        .env_remove("SWITCHBOARD_HOST")
        .env_remove("SWITCHBOARD_PORT")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &launch.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn switchboard");
    let stderr = Arc::new(Mutex::new(String::new()));
    {
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
    }
    let (tx, rx) = mpsc::channel();
    {
        let pipe = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut generated_keys = Vec::new();
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix("Created client key '") {
                    let (name, rest) = rest.split_once("': ").unwrap();
                    let key = rest.split_whitespace().next().unwrap();
                    generated_keys.push((name.to_owned(), key.to_owned()));
                } else if let Some((_, url)) = line.split_once(" listening on ") {
                    let url = url.trim().to_owned();
                    let port = url.rsplit(':').next().unwrap().parse().unwrap();
                    return Ok(Gateway {
                        child,
                        url,
                        port,
                        generated_keys,
                        stderr,
                        data_dir: data_dir.to_owned(),
                        _stdout_rest: rx,
                    });
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(status) = child.try_wait().unwrap() {
                    std::thread::sleep(Duration::from_millis(100));
                    return Err((status, stderr.lock().unwrap().clone()));
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().unwrap();
                std::thread::sleep(Duration::from_millis(100));
                return Err((status, stderr.lock().unwrap().clone()));
            }
        }
    }
    let _ = child.kill();
    panic!("switchboard did not start within 30 s");
}

impl Gateway {
    pub fn start(config: &str) -> (Self, tempfile::TempDir) {
        Self::start_with(config, |l| l)
    }

    pub fn start_with(config: &str, f: impl FnOnce(Launch) -> Launch) -> (Self, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, config).unwrap();
        let data = dir.path().join("data");
        let gw = spawn(f(Launch::serve(&path, &data)), &data)
            .unwrap_or_else(|(s, e)| panic!("switchboard exited with {s}:\n{e}"));
        (gw, dir)
    }

    pub fn v1(&self) -> String {
        format!("{}/v1", self.url)
    }

    pub fn key(&self, name: &str) -> String {
        self.generated_keys
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, k)| k.clone())
            .unwrap_or_else(|| panic!("no generated key {name}"))
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the process to exit, at most `limit`, without blocking the test's runtime
    /// (the mock upstream runs on it).
    pub async fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config with one provider, `mock`, at `url`, and a client key `test` that is generated.
pub fn config_for(url: &str, extra: &str) -> String {
    format!(
        r#"
[server]
request_timeout_s = 5

[[providers]]
name = "mock"
base_url = "{url}/v1"
api_key = "sk-upstream-secret-1234"
models = ["gpt-4o-mini", "gpt-4o"]

[[models]]
name = "gpt-4o"

[[models]]
name = "fast"
include = ["mock/gpt-4o-mini"]

[[client_keys]]
name = "test"
{extra}
"#
    )
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

/// The status of a one-line chat request for `model`, with `key` as the bearer when given.
pub async fn chat_status(gw: &Gateway, model: &str, key: Option<&str>) -> u16 {
    let mut req = http().post(format!("{}/chat/completions", gw.v1())).json(
        &serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
    );
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap().status().as_u16()
}

pub const ADMIN_PASSWORD: &str = "admin-pass-for-tests";

/// Logs in to the admin API (the gateway must have been started with ADMIN_PASSWORD).
pub async fn admin_token(gw: &Gateway) -> String {
    let r = http()
        .post(format!("{}/api/login", gw.url))
        .json(&serde_json::json!({"password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "login");
    let v: serde_json::Value = r.json().await.unwrap();
    v["token"].as_str().unwrap().to_owned()
}

/// Starts a gateway with the admin password set.
pub fn start_admin(config: &str) -> (Gateway, tempfile::TempDir) {
    Gateway::start_with(config, |l| {
        l.env("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD)
    })
}

/// A provider as `GET /api/providers` shows it.
pub async fn provider_view(gw: &Gateway, token: &str, name: &str) -> serde_json::Value {
    let list: serde_json::Value = admin(gw, token, "GET", "/providers", None)
        .await
        .json()
        .await
        .unwrap();
    list.as_array()
        .and_then(|l| l.iter().find(|p| p["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no provider {name}: {list}"))
}

/// One admin API call with the token; `body` is sent as JSON.
pub async fn admin(
    gw: &Gateway,
    token: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = http()
        .request(method, format!("{}/api{path}", gw.url))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

/// The ids `GET /v1/models` lists, with `key` as the bearer when given.
pub async fn model_ids(gw: &Gateway, key: Option<&str>) -> Vec<String> {
    let mut req = http().get(format!("{}/models", gw.v1()));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let list: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect()
}
