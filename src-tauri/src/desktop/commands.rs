//! Tauri commands: what the bundled page asks the shell (once, at start).

use std::sync::Arc;

use tauri::{AppHandle, State};

use super::{Boot, Shell};

/// The gateway's address and this launch's admin token, or why the gateway is not running.
#[tauri::command]
pub fn bootstrap(shell: State<'_, Arc<Shell>>) -> Boot {
    shell.boot()
}

/// After a failed start (a taken port, say): try again on `port`, and remember it on success.
#[tauri::command]
pub async fn restart_gateway(
    port: u16,
    app: AppHandle,
    shell: State<'_, Arc<Shell>>,
) -> Result<Boot, String> {
    if port == 0 {
        return Err("choose a port from 1 to 65535".into());
    }
    Ok(shell.inner().clone().restart(port, &app).await)
}

/// The Settings page's Export in the desktop window: the shell saves the file (the webview
/// drops blob downloads) and answers where.
#[tauri::command]
pub async fn save_export(app: AppHandle, shell: State<'_, Arc<Shell>>) -> Result<String, String> {
    let engine = shell
        .engine()
        .ok_or_else(|| "the gateway is not running".to_owned())?;
    super::export::save(&app, &engine)
        .await
        .map(|p| p.display().to_string())
}
