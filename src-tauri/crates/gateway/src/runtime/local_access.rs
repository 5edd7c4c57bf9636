//! How commands on this machine (`switchboard connect`, `switchboard clients`) reach the
//! running gateway's admin API: at start the gateway writes its address and an admin token to
//! `local-access.json` in the data folder, readable by its owner only (who can read the
//! databases anyway). The token dies with the process; a new start writes a new one.

use std::path::Path;
use std::time::Duration;

use crate::engine::Engine;

pub const FILE: &str = "local-access.json";

/// As long as a gateway runs, near enough.
const TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

#[derive(serde::Serialize, serde::Deserialize)]
struct LocalAccess {
    url: String,
    token: String,
}

/// Writes the file; a failure only costs the local commands, so it is logged, not fatal.
pub(super) fn write(data_dir: &Path, engine: &Engine) {
    let result = (|| -> Result<(), String> {
        let token = engine
            .admin_sessions
            .issue(TTL)
            .map_err(|e| e.to_string())?;
        let text = serde_json::to_string(&LocalAccess {
            url: engine.base_url.clone(),
            token,
        })
        .map_err(|e| e.to_string())?;
        let path = data_dir.join(FILE);
        let tmp = data_dir.join(format!("{FILE}.tmp"));
        std::fs::write(&tmp, text).map_err(|e| e.to_string())?;
        crate::store::private_file(&tmp).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
    })();
    if let Err(e) = result {
        tracing::warn!(
            "cannot write {FILE} (switchboard connect and clients will not reach this gateway): {e}"
        );
    }
}

/// Calls the admin API of the gateway running on `data_dir`: `POST` (with `{}`) or `GET`
/// `path` under `/api`. The error says what to do when no gateway answers.
pub async fn call(data_dir: &Path, post: bool, path: &str) -> Result<serde_json::Value, String> {
    let file = data_dir.join(FILE);
    let not_running = || {
        format!(
            "no running Switchboard found for {} (start it, or `switchboard serve`, first)",
            data_dir.display()
        )
    };
    let text = std::fs::read_to_string(&file).map_err(|_| not_running())?;
    let access: LocalAccess =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    // Straight to this machine, whatever proxy the shell names.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("{}/api{path}", access.url);
    let req = if post {
        client.post(&url).json(&serde_json::json!({}))
    } else {
        client.get(&url)
    };
    let resp = req
        .bearer_auth(&access.token)
        .send()
        .await
        .map_err(|_| not_running())?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(not_running());
    }
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        return Err(format!("{status}: {message}"));
    }
    Ok(body)
}
