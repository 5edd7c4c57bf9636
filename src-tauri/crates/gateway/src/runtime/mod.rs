//! The process around the engine: it opens the store, builds the engine, binds the port,
//! serves, runs every background task, and shuts it all down. Only this module spawns tasks
//! (clippy's `disallowed-methods` says so for the rest of the crate).

mod listen;
pub mod local_access;
mod log_writer;
mod tasks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::breaker::BreakerRegistry;
use crate::catalog::Snapshot;
use crate::config::{self, ConfigError};
use crate::engine::{Engine, Parts};
use crate::secrets::{Secret, SecretStore};
use crate::server::ui::UiFile;
use crate::store::{self, Store, StoreError};
use tasks::Tasks;

pub struct StartOptions {
    pub data_dir: PathBuf,
    pub config_file: Option<PathBuf>,
    /// Flag or environment: wins over the config file and the database.
    pub host: Option<String>,
    pub port: Option<u16>,
    pub secrets: Arc<dyn SecretStore>,
    /// Sets the admin password when none is stored yet (SWITCHBOARD_ADMIN_PASSWORD).
    pub admin_password: Option<String>,
    /// The admin login's second factor: a TOTP secret in base32, from the environment.
    pub admin_totp: Option<String>,
    /// The built admin UI, served at `/admin` (empty: a page says how to build it).
    pub ui_files: &'static [UiFile],
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{file}: {source}")]
    Import { file: PathBuf, source: StoreError },
    #[error("cannot use the data folder {dir}: {source}")]
    DataDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error(
        "cannot listen on {addr}: {source}{hint}",
        hint = if source.kind() == std::io::ErrorKind::AddrInUse {
            " (is another Switchboard running? choose another port with --port)"
        } else {
            ""
        }
    )]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot start the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("SWITCHBOARD_ADMIN_PASSWORD: {0}")]
    AdminPassword(#[from] crate::admin_auth::PasswordError),
    #[error("cannot store a provider key: {0}")]
    Secret(#[from] crate::secrets::SecretError),
    #[error(
        "SWITCHBOARD_ADMIN_TOTP is not a base32 secret (as an authenticator app shows it, e.g. JBSWY3DPEHPK3PXP)"
    )]
    Totp,
    #[error(
        "listening on {host} (beyond loopback) needs an admin password: set SWITCHBOARD_ADMIN_PASSWORD, or run `switchboard admin set-password`"
    )]
    NoAdminPassword { host: String },
}

/// How long streams cut at the end of the grace period have to send their error event.
const CUT_GRACE: Duration = Duration::from_secs(1);
/// How long background tasks have to reach their next step once told to stop.
const TASK_GRACE: Duration = Duration::from_secs(2);
/// How long the request-log writer has to write what it was sent.
const LOG_GRACE: Duration = Duration::from_secs(2);

/// A running gateway. Dropping it stops the server; [`GatewayHandle::shutdown`] also waits.
pub struct GatewayHandle {
    addr: SocketAddr,
    engine: Arc<Engine>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    /// Resolves once the request-log writer has written every record sent to it.
    log_written: Option<oneshot::Receiver<()>>,
    tasks: Tasks,
    /// Client keys created by this start's import: shown once, then only their hash exists.
    pub generated_keys: Vec<(String, Secret)>,
    pub warnings: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// Every in-flight request finished.
    Graceful,
    /// The grace period ended first; the rest were cut.
    TimedOut,
}

impl GatewayHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Stops accepting at once, lets in-flight requests (streams included) finish for up to
    /// `grace`, then cuts what is left.
    pub async fn shutdown(mut self, grace: Duration) -> Shutdown {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let mut outcome = Shutdown::Graceful;
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(grace, &mut server).await.is_err()
        {
            // Streams still running get their error event, and a moment to send it.
            self.engine.cut_streams.send_replace(true);
            if tokio::time::timeout(CUT_GRACE, &mut server).await.is_err() {
                server.abort();
            }
            outcome = Shutdown::TimedOut;
        }
        // Background work stops at its next step and is waited for: none of it outlives the
        // handle.
        self.tasks.shutdown(TASK_GRACE).await;
        self.engine.flush_key_use().await;
        // The log writer ends once every sender is gone; give it a moment to drain.
        if let Some(written) = self.log_written.take() {
            drop(self);
            let _ = tokio::time::timeout(LOG_GRACE, written).await;
        }
        outcome
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Without a runtime to wait in, the tasks are told to stop and end on their own.
        self.tasks.cancel();
    }
}

pub async fn start(opts: StartOptions) -> Result<GatewayHandle, StartError> {
    // A second factor that does not parse must not quietly become no second factor.
    let admin_totp = opts
        .admin_totp
        .as_deref()
        .map(|s| crate::totp::decode_base32(s).ok_or(StartError::Totp))
        .transpose()?;
    // The file is checked before anything is touched, so a typo changes nothing.
    let file = opts
        .config_file
        .as_deref()
        .map(config::load_file)
        .transpose()?;
    store::private_dir(&opts.data_dir).map_err(|source| StartError::DataDir {
        dir: opts.data_dir.clone(),
        source,
    })?;
    let store = Store::open(&opts.data_dir.join(store::CONFIG_DB))?;

    let mut generated_keys = Vec::new();
    if let (Some(file), Some(path)) = (file, opts.config_file.clone()) {
        let report = store
            .call(move |c| store::import(c, &file))
            .await
            .map_err(|source| StartError::Import { file: path, source })?;
        for (uid, secret) in &report.literal_keys {
            opts.secrets.set(uid, secret)?;
        }
        if !report.literal_keys.is_empty() && !opts.secrets.persistent() {
            tracing::warn!(
                "{} provider key(s) from the config file are held in memory for this run only; \
                 use api_key = \"env:NAME\" to keep them across restarts without the file",
                report.literal_keys.len()
            );
        }
        generated_keys = report.generated_keys;
        tracing::info!(changes = report.changes, "config file imported");
    }

    if let Some(password) = opts.admin_password
        && store
            .call(|c| store::admin_password_hash(c))
            .await?
            .is_none()
    {
        let hash = tokio::task::spawn_blocking(move || crate::admin_auth::hash_password(&password))
            .await
            .map_err(|e| StoreError::Invalid(e.to_string()))??;
        store
            .call(move |c| store::set_admin_password_hash(c, &hash))
            .await?;
        tracing::info!("admin password set from SWITCHBOARD_ADMIN_PASSWORD");
    }

    let mut state = store.call(|c| store::load(c)).await?;
    if let Some(h) = opts.host {
        state.settings.server.host = h;
    }
    if let Some(p) = opts.port {
        state.settings.server.port = p;
    }
    let breakers = BreakerRegistry::default();
    let (snapshot, warnings) = Snapshot::build(&state, &|uid| opts.secrets.get(uid), &breakers);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    if snapshot.open_access {
        tracing::warn!(
            "no client keys exist: the client API accepts any caller on {} (add [[client_keys]] to require one)",
            state.settings.server.host
        );
    }

    let host = state.settings.server.host.clone();
    let port = state.settings.server.port;
    if !crate::catalog::is_loopback_host(&host) {
        // Beyond loopback the admin API is reachable from other machines: never without a
        // password.
        if store
            .call(|c| store::admin_password_hash(c))
            .await?
            .is_none()
        {
            return Err(StartError::NoAdminPassword { host });
        }
        tracing::warn!(
            "listening beyond loopback on {host}: other machines can reach the gateway and its admin login"
        );
    }
    let listener = TcpListener::bind((host.as_str(), port))
        .await
        .map_err(|source| StartError::Bind {
            addr: format!("{host}:{port}"),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: format!("{host}:{port}"),
        source,
    })?;

    let logs_path = opts.data_dir.join(store::LOGS_DB);
    let logs = Store::open_logs(&logs_path)?;
    let (log, log_written) = log_writer::start(store::logs_db::open(&logs_path)?);
    let (engine, queues) = Engine::new(Parts {
        store,
        logs,
        secrets: opts.secrets,
        http: crate::dispatch::http_client()?,
        log,
        breakers,
        admin_totp,
        body_budget_mb: snapshot.settings.server.body_budget_mb,
        prices: crate::pricing::PriceList::open(
            &opts.data_dir,
            &snapshot.settings.pricing.pricing_refresh_url,
        ),
        data_dir: opts.data_dir.clone(),
        base_url: local_url(addr),
    });
    let engine = Arc::new(engine);
    engine.apply(snapshot);
    let mut queues = queues;
    // Budgets start from what the log holds before the first request is let in.
    while let Ok(chore) = queues.chores.try_recv() {
        engine.do_chore(chore).await;
    }
    local_access::write(&opts.data_dir, &engine);
    // Connected before this start (a crash or a kill included): they still point here and keep
    // working; say how to put them back.
    match crate::connect::Ledger::new(&opts.data_dir).connected() {
        Ok(list) => {
            for c in &list {
                tracing::warn!(
                    "{} is still connected to Switchboard from before this start (its settings point here and keep working): keep it (`switchboard keep {}`, or Keep on the Clients page), or `switchboard disconnect {}` puts its files back",
                    c.client.name(),
                    c.client.id(),
                    c.client.id()
                );
            }
            if let Ok(mut before) = engine.connected_before.lock() {
                *before = list.iter().map(|c| c.client).collect();
            }
        }
        Err(e) => tracing::warn!("cannot read the connected clients: {e}"),
    }

    let mut tasks = Tasks::default();
    tasks::start_all(&mut tasks, &engine, queues);
    let app = crate::server::router(engine.clone(), opts.ui_files);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tasks::spawn_server(listen::serve(listener, app, engine.clone(), stopped));

    Ok(GatewayHandle {
        addr,
        engine,
        stop: Some(stop),
        server: Some(server),
        log_written,
        tasks,
        generated_keys,
        warnings,
    })
}

/// How a client on this machine reaches the gateway: an address that listens everywhere is
/// reached on loopback.
fn local_url(addr: std::net::SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
        ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use std::time::Instant;

    use crate::secrets::{MemorySecretStore, SecretError};

    /// A keychain as slow as a D-Bus call to a busy Secret Service.
    #[derive(Default)]
    struct SlowKeychain(MemorySecretStore);

    const SLOW: Duration = Duration::from_millis(400);

    impl SecretStore for SlowKeychain {
        fn get(&self, account: &str) -> Result<Option<Secret>, SecretError> {
            std::thread::sleep(SLOW);
            self.0.get(account)
        }
        fn set(&self, account: &str, secret: &Secret) -> Result<(), SecretError> {
            std::thread::sleep(SLOW);
            self.0.set(account, secret)
        }
        fn delete(&self, account: &str) -> Result<(), SecretError> {
            std::thread::sleep(SLOW);
            self.0.delete(account)
        }
        fn persistent(&self) -> bool {
            true
        }
    }

    /// With one async worker, a keychain call made on it would stall every other task for as
    /// long as the call takes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn keychain_calls_do_not_block_the_async_workers() {
        let dir = tempfile::tempdir().unwrap();
        let handle = start(StartOptions {
            data_dir: dir.path().join("data"),
            config_file: None,
            host: Some("127.0.0.1".into()),
            port: Some(0),
            secrets: Arc::new(SlowKeychain::default()),
            admin_password: None,
            admin_totp: None,
            ui_files: &[],
        })
        .await
        .unwrap();
        let ticker = tokio::spawn(async {
            let mut worst = Duration::ZERO;
            let mut last = Instant::now();
            for _ in 0..150 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                worst = worst.max(last.elapsed());
                last = Instant::now();
            }
            worst
        });
        // On the worker too (the test's own body runs on another thread).
        let engine = handle.engine().clone();
        tokio::spawn(async move {
            let body = serde_json::json!({"base_url": "http://127.0.0.1:9", "api_key": "sk-literal-1234", "models": ["m"]});
            crate::service::put_provider(&engine, "slow", body)
                .await
                .unwrap();
            crate::service::delete_provider(&engine, "slow")
                .await
                .unwrap();
        })
        .await
        .unwrap();
        let worst = ticker.await.unwrap();
        assert!(worst < SLOW / 2, "a task waited {worst:?}");
    }
}
