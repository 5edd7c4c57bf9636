//! Export for the desktop: the webview (WebKitGTK) drops a page's blob downloads, so the shell
//! writes the exported configuration to the Downloads folder itself, for the Settings page's
//! Export button and the tray's menu alike.

use std::path::{Path, PathBuf};

use switchboard_gateway::Engine;
use switchboard_gateway::service;
use tauri::{AppHandle, Manager};
use tokio::io::AsyncWriteExt;

/// Writes the export (no secret in it) into the user's Downloads folder (else the home
/// folder) under a name not yet taken; answers the file's path.
pub async fn save(app: &AppHandle, engine: &Engine) -> Result<PathBuf, String> {
    let text = service::export(engine).await.map_err(|e| e.to_string())?;
    let dir = app
        .path()
        .download_dir()
        .or_else(|_| app.path().home_dir())
        .map_err(|e| format!("no folder to save into: {e}"))?;
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write_new(&dir, text.as_bytes()).await
}

/// `switchboard.toml`, else `switchboard-2.toml` and so on: an earlier export is never
/// overwritten (`create_new` also settles two exports racing for one name).
async fn write_new(dir: &Path, bytes: &[u8]) -> Result<PathBuf, String> {
    for n in 1..1000 {
        let name = if n == 1 {
            "switchboard.toml".to_owned()
        } else {
            format!("switchboard-{n}.toml")
        };
        let path = dir.join(name);
        match tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
        {
            Ok(mut f) => {
                // tokio's File writes in the background: flush, or the file may still be
                // empty when the notification names it.
                let written = match f.write_all(bytes).await {
                    Ok(()) => f.flush().await,
                    Err(e) => Err(e),
                };
                written.map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot write {}: {e}", path.display())),
        }
    }
    Err(format!("{} holds too many exports", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_earlier_export_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_new(dir.path(), b"one").await.unwrap();
        let b = write_new(dir.path(), b"two").await.unwrap();
        assert_eq!(a.file_name().unwrap(), "switchboard.toml");
        assert_eq!(b.file_name().unwrap(), "switchboard-2.toml");
        assert_eq!(std::fs::read(&a).unwrap(), b"one");
        assert_eq!(std::fs::read(&b).unwrap(), b"two");
    }
}
