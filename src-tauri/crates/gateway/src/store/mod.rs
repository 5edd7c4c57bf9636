//! SQLite on a thread of its own. Async callers send it closures and await the answer, so no
//! tokio worker ever blocks on disk, and the request path never touches it at all.

/// The configuration database's file name in the data folder.
pub const CONFIG_DB: &str = "config.db";

/// The request log's file name in the data folder: apart from the configuration, so pruning
/// or losing it never touches a setting.
pub const LOGS_DB: &str = "logs.db";

mod config_db;
mod export;
pub mod logs_db;
pub mod logs_stats;
mod migrations;

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

pub use config_db::{
    ImportReport, KeyRef, Rename, StoredModel, StoredProvider, StoredState, admin_password_hash,
    client_keys, delete_model, delete_provider, import, load, record_key_use, record_sync,
    rename_provider, replace_capabilities, replace_prices, replace_quotas, revoke_client_key,
    set_admin_password_hash, set_first_admin_password_hash, set_paused, set_responses, sync_info,
};
pub use export::export;
pub use migrations::migrate;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the database is at schema version {found}, newer than this Switchboard supports ({supported}); upgrade Switchboard"
    )]
    TooNew { found: u32, supported: u32 },
    #[error("{0}")]
    Invalid(String),
    #[error("the database thread has stopped")]
    Closed,
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Handle to the database thread. Cloning shares the thread; it ends when the last handle drops.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Job>,
}

/// The data folder, created if need be and readable by its owner only: it holds the admin
/// password's hash, client key hashes and the configuration.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A file for its owner only (mode 0600; elsewhere the folder's protection is all there is).
pub fn private_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// A database file (and its WAL and shared-memory files, which SQLite makes with the main
/// file's mode) for its owner only.
fn private_db(path: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let p = std::path::PathBuf::from(p);
        if p.exists() {
            private_file(&p)?;
        }
    }
    Ok(())
}

pub fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    open_with(path, migrations::MIGRATIONS)
}

/// Opens one of our databases in WAL mode, for its owner only, migrated to `migrations`.
fn open_with(path: &Path, migrations: &[&str]) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    // Before WAL mode makes the other two files: they take the main file's mode.
    private_db(path).map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display())))?;
    // WAL lets the UI read while the writer writes; NORMAL is durable across app crashes (only a
    // power cut can lose the last commits), which is right for settings and logs.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    migrations::migrate_with(&mut conn, migrations)?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) and migrates the database before returning, so a start-up
    /// error is reported at once rather than on first use.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::on(open_connection(path)?)
    }

    /// A thread of its own for the request log's reads (the writer has its own connection).
    pub fn open_logs(path: &Path) -> Result<Self, StoreError> {
        Self::on(logs_db::open(path)?)
    }

    fn on(mut conn: Connection) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("switchboard-db".into())
            .spawn(move || {
                for job in rx {
                    job(&mut conn);
                }
            })
            .map_err(|e| StoreError::Invalid(format!("cannot start the database thread: {e}")))?;
        Ok(Self { tx })
    }

    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Box::new(move |conn| {
                let _ = done.send(f(conn));
            }))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

#[cfg(test)]
mod tests;
