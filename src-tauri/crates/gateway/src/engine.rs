//! The engine and its handle: start it, read its live state, stop it.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

use crate::balance::Sticky;
use crate::breaker::{BreakerRegistry, FailureKind, State, Transition};
use crate::catalog::{Candidate, Snapshot};
use crate::config::{self, ConfigError};
use crate::events::{self, GatewayEvent};
use crate::health::HealthBook;
use crate::requestlog::RequestLog;
use crate::secrets::{ProviderKey, Secret, SecretStore};
use crate::store::{self, Store, StoreError};

/// Shared by every request: the live snapshot, the pooled HTTP client, the log writer's channel.
pub struct Engine {
    snapshot: ArcSwap<Snapshot>,
    pub breakers: BreakerRegistry,
    pub health: HealthBook,
    pub sticky: Sticky,
    pub http: reqwest::Client,
    pub log: RequestLog,
    pub events: broadcast::Sender<GatewayEvent>,
    pub store: Store,
    pub secrets: Arc<dyn SecretStore>,
    pub admin_sessions: crate::admin_auth::Sessions,
    pub login_guard: crate::admin_auth::LoginGuard,
    pub key_usage: crate::usage::KeyUsage,
    /// Room for request bodies held at once.
    pub body_budget: crate::server::intake::BodyBudget,
    /// Turns true when the shutdown grace period is over: streams still running end with an
    /// error event in their protocol rather than a silent cut.
    pub cut_streams: tokio::sync::watch::Sender<bool>,
    /// The machine runs on battery (the desktop shell says so): probes pause.
    on_battery: std::sync::atomic::AtomicBool,
    pub admin_totp: Option<Vec<u8>>,
    /// The time step of the last two-factor code that let someone in.
    pub admin_totp_last_step: std::sync::atomic::AtomicU64,
    /// The admin UI served at `/admin`; empty when the binary was built without it.
    pub ui_files: &'static [crate::server::ui::UiFile],
    sync_requests: Arc<crate::catalog::sync::SyncQueue>,
}

pub fn unix_seconds(at: Instant) -> u64 {
    let wall = SystemTime::now() + at.saturating_duration_since(Instant::now());
    wall.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Engine {
    /// Client keys' last-used times, from memory to the database.
    pub async fn flush_key_use(&self) {
        let used = self.key_usage.take_dirty();
        if used.is_empty() {
            return;
        }
        if let Err(e) = self
            .store
            .call(move |c| store::record_key_use(c, &used))
            .await
        {
            tracing::warn!("cannot record when client keys were last used: {e}");
        }
    }

    /// The live snapshot. Cheap (an atomic increment), and the caller may keep it across
    /// `.await`: it is immutable and holds no lock.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    pub fn apply(&self, snapshot: Snapshot) {
        let event = GatewayEvent::ConfigApplied {
            providers: snapshot.providers.len(),
            models: snapshot.routes.len(),
        };
        {
            let providers: HashSet<&str> = snapshot.providers.iter().map(|p| &*p.uid).collect();
            let pairs: HashSet<(&str, &str)> = snapshot
                .routes
                .values()
                .chain(snapshot.wildcards.iter().map(|(_, r)| r))
                .flat_map(|r| r.candidates.iter())
                .map(|c| (&*c.provider.uid, &*c.model))
                .collect();
            self.breakers.retain(&providers, &pairs);
            self.health.retain(&pairs);
        }
        self.snapshot.store(Arc::new(snapshot));
        let _ = self.events.send(event);
    }

    pub fn on_success(&self, c: &Candidate, latency: Duration, ttfb: Option<Duration>) {
        let snap = self.snapshot();
        let t = self.breakers.on_success(
            &c.provider.breaker,
            &c.breaker,
            Instant::now(),
            &snap.policy,
        );
        self.health
            .record(&c.provider.uid, &c.model, true, latency, ttfb, None);
        self.announce(&snap, t);
    }

    pub fn on_failure(&self, c: &Candidate, kind: &FailureKind, error: &str, latency: Duration) {
        let snap = self.snapshot();
        let t = self.breakers.on_failure(
            &c.provider.breaker,
            &c.breaker,
            kind,
            error,
            Instant::now(),
            &snap.policy,
        );
        self.health
            .record(&c.provider.uid, &c.model, false, latency, None, Some(error));
        self.announce(&snap, t);
        if *kind == FailureKind::ModelNotFound {
            self.request_sync(c.provider.name.to_string());
        }
    }

    /// Whether a request may go to `c` now, taking the half-open trial if one is due (and
    /// announcing it).
    pub fn admit(&self, c: &Candidate, now: Instant) -> crate::breaker::Admission {
        let snap = self.snapshot();
        let (admission, t) =
            self.breakers
                .admit(&c.provider.breaker, &c.breaker, now, &snap.policy);
        self.announce(&snap, t);
        admission
    }

    /// Frees the half-open trial admitted at `started` for `c` if nothing settled it.
    pub fn release_trial(&self, c: &Candidate, started: Instant) {
        let snap = self.snapshot();
        self.breakers
            .release_trial(&c.provider.breaker, &c.breaker, started, &snap.policy);
    }

    /// The machine woke up or its network came back: breakers that network errors and
    /// timeouts opened meanwhile close at once, since the outage, not the provider, caused
    /// them. Answers how many closed.
    pub fn network_restored(&self, why: &str) -> usize {
        let t = self
            .breakers
            .reset_opened_by(&[FailureKind::Network.reason(), FailureKind::Timeout.reason()]);
        let n = t.len();
        if n > 0 {
            tracing::info!(
                closed = n,
                "{why}: breakers opened by network errors and timeouts are reset"
            );
        }
        self.announce(&self.snapshot(), t);
        n
    }

    /// On battery, active probes pause (user requests take the half-open trials instead).
    pub fn set_on_battery(&self, on: bool) {
        let was = self
            .on_battery
            .swap(on, std::sync::atomic::Ordering::Relaxed);
        if was != on {
            tracing::info!(
                on_battery = on,
                "power source changed: probes {}",
                if on { "pause" } else { "resume" }
            );
        }
    }

    /// Whether active probes run now: on in the settings, and not on battery.
    pub fn probes_active(&self, settings: &crate::config::Settings) -> bool {
        settings.probe_interval_s > 0 && !self.on_battery.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Closes breakers by provider uid and model (all of them when both are None).
    pub fn reset_breakers(&self, provider_uid: Option<&str>, model: Option<&str>) {
        let t = self.breakers.reset(provider_uid, model);
        self.announce(&self.snapshot(), t);
    }

    fn announce(&self, snap: &Snapshot, transitions: Vec<Transition>) {
        for t in transitions {
            let provider = snap
                .providers
                .iter()
                .find(|p| p.uid == t.key.provider)
                .map_or_else(|| t.key.provider.to_string(), |p| p.name.to_string());
            let (state, until) = match t.state {
                State::Closed => ("closed", None),
                State::HalfOpen => ("half_open", None),
                State::Open { until } => ("open", until.map(unix_seconds)),
            };
            if t.state == State::Closed {
                tracing::info!(%provider, model = ?t.key.model, "breaker closed");
            } else {
                tracing::warn!(%provider, model = ?t.key.model, reason = ?t.reason, "breaker {state}");
            }
            let _ = self.events.send(GatewayEvent::Breaker {
                provider,
                model: t.key.model.as_deref().map(str::to_owned),
                state,
                reason: t.reason,
                until,
            });
        }
    }

    /// Rebuilds the snapshot from the database, keeping the keys already read (the secret store
    /// is asked only about providers it has not seen), and closes the breakers of providers
    /// whose key or address changed.
    pub async fn reload(&self) -> Result<(), StoreError> {
        self.reload_with_new_keys(&[]).await
    }

    /// As [`Engine::reload`], reading the keys of `uids` from the secret store again (they were
    /// just changed) instead of from the live snapshot.
    pub async fn reload_with_new_keys(&self, uids: &[String]) -> Result<(), StoreError> {
        let mut state = self.store.call(|c| store::load(c)).await?;
        let old = self.snapshot();
        state.settings.host = old.settings.host.clone();
        state.settings.port = old.settings.port;
        // Keys not in the live snapshot (new, or just changed) come from the secret store: a
        // keychain call over D-Bus may take a while, so it runs off the async workers.
        let cached = |uid: &str| {
            old.providers
                .iter()
                .find(|p| &*p.uid == uid)
                .and_then(|p| match &p.key {
                    ProviderKey::Stored(s) => Some(s.clone()),
                    _ => None,
                })
        };
        let wanted: Vec<String> = state
            .providers
            .iter()
            .filter(|p| p.key_ref == store::KeyRef::Stored)
            .filter(|p| uids.contains(&p.uid) || cached(&p.uid).is_none())
            .map(|p| p.uid.clone())
            .collect();
        let secrets = self.secrets.clone();
        let fetched: HashMap<String, Result<Option<Secret>, crate::secrets::SecretError>> =
            if wanted.is_empty() {
                HashMap::new()
            } else {
                tokio::task::spawn_blocking(move || {
                    wanted
                        .into_iter()
                        .map(|uid| {
                            let got = secrets.get(&uid);
                            (uid, got)
                        })
                        .collect()
                })
                .await
                .unwrap_or_default()
            };
        let lookup = |uid: &str| match fetched.get(uid) {
            Some(Ok(s)) => Ok(s.clone()),
            Some(Err(e)) => Err(e.clone()),
            None => Ok(cached(uid)),
        };
        let (snapshot, warnings) = Snapshot::build(&state, &lookup, &self.breakers);
        for w in warnings {
            tracing::warn!("{w}");
        }
        for p in &snapshot.providers {
            let changed = old
                .providers
                .iter()
                .find(|o| o.uid == p.uid)
                .is_some_and(|o| o.base_url != p.base_url || o.key != p.key);
            if changed {
                let t = self.breakers.reset(Some(&p.uid), None);
                self.announce(&snapshot, t);
            }
        }
        self.apply(snapshot);
        Ok(())
    }

    /// Pauses (for a while, or until resumed) or resumes a provider by name: persisted, then
    /// live. False if there is none.
    pub async fn set_paused(
        &self,
        name: &str,
        paused: bool,
        duration: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let n = name.to_owned();
        let until = duration
            .filter(|_| paused)
            .and_then(|d| SystemTime::now().checked_add(d))
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        let found = self
            .store
            .call(move |c| store::set_paused(c, &n, paused, until))
            .await?;
        if found {
            self.reload().await?;
            let provider = name.to_owned();
            let _ = self.events.send(if paused {
                GatewayEvent::ProviderPaused { provider, until }
            } else {
                GatewayEvent::ProviderResumed { provider }
            });
        }
        Ok(found)
    }

    /// A provider answered 404 to `/v1/responses` and chat to the same request: it has chat
    /// completions only. Recorded off the request path, then live for every snapshot after.
    pub fn learned_chat_only(self: &Arc<Self>, provider: &crate::catalog::Provider) {
        tracing::info!(
            provider = %provider.name,
            "the provider has no Responses API (404); Responses requests go to it as chat from now on"
        );
        let (engine, uid) = (self.clone(), provider.uid.to_string());
        tokio::spawn(async move {
            let stored = engine
                .store
                .call(move |c| store::set_responses(c, &uid, false))
                .await;
            if let Err(e) = stored {
                tracing::warn!("cannot record that a provider is chat-only: {e}");
            } else if let Err(e) = engine.reload().await {
                tracing::warn!("reload after learning a chat-only provider: {e}");
            }
        });
    }

    /// Asks the background syncer to refresh a provider's model list soon.
    pub fn request_sync(&self, provider: String) {
        self.sync_requests.push(provider);
    }
}

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
    pub ui_files: &'static [crate::server::ui::UiFile],
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

/// A running gateway. Dropping it stops the server; [`GatewayHandle::shutdown`] also waits.
pub struct GatewayHandle {
    addr: SocketAddr,
    engine: Arc<Engine>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    log_task: Option<JoinHandle<()>>,
    syncer: Option<JoinHandle<()>>,
    prober: Option<JoinHandle<()>>,
    resumer: Option<JoinHandle<()>>,
    key_use_writer: Option<JoinHandle<()>>,
    password_watch: Option<JoinHandle<()>>,
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
        self.engine.flush_key_use().await;
        // The log writer ends once every sender is gone; give it a moment to drain.
        if let Some(task) = self.log_task.take() {
            drop(self);
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        outcome
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for task in [
            self.syncer.take(),
            self.prober.take(),
            self.resumer.take(),
            self.key_use_writer.take(),
            self.password_watch.take(),
        ]
        .into_iter()
        .flatten()
        {
            task.abort();
        }
    }
}

pub const CONFIG_DB: &str = "config.db";

/// Writes client keys' last-used times to the database now and then: the request path only
/// notes them in memory.
async fn record_key_use(engine: std::sync::Weak<Engine>) {
    loop {
        tokio::time::sleep(Duration::from_secs(15)).await;
        let Some(e) = engine.upgrade() else { return };
        e.flush_key_use().await;
    }
}

/// `switchboard admin set-password` writes the database from another process: a password
/// other than the one this gateway last saw ends every login session, within two seconds.
/// (Reads the hash off the request path, on the store's thread.)
async fn end_sessions_on_new_password(engine: std::sync::Weak<Engine>) {
    let mut seen: Option<Option<String>> = None;
    loop {
        let Some(e) = engine.upgrade() else { return };
        if let Ok(hash) = e.store.call(|c| store::admin_password_hash(c)).await {
            if seen.as_ref().is_some_and(|before| *before != hash) {
                e.admin_sessions.revoke_logins();
                tracing::info!("the admin password changed: every login session ended");
            }
            seen = Some(hash);
        }
        drop(e);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Ends timed pauses when their time comes (also those that ended while Switchboard was off).
async fn auto_resume(engine: std::sync::Weak<Engine>) {
    loop {
        let Some(e) = engine.upgrade() else { return };
        let now = unix_seconds(Instant::now());
        let due: Vec<String> = e
            .snapshot()
            .providers
            .iter()
            .filter(|p| p.paused && p.paused_until.is_some_and(|t| t <= now))
            .map(|p| p.name.to_string())
            .collect();
        for name in due {
            match e.set_paused(&name, false, None).await {
                Ok(_) => tracing::info!(provider = %name, "timed pause ended"),
                Err(err) => tracing::warn!(provider = %name, "cannot end a timed pause: {err}"),
            }
        }
        drop(e);
        tokio::time::sleep(Duration::from_millis(500)).await;
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
    let store = Store::open(&opts.data_dir.join(CONFIG_DB))?;

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
        state.settings.host = h;
    }
    if let Some(p) = opts.port {
        state.settings.port = p;
    }
    let breakers = BreakerRegistry::default();
    let (snapshot, warnings) = Snapshot::build(&state, &|uid| opts.secrets.get(uid), &breakers);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    if snapshot.open_access {
        tracing::warn!(
            "no client keys exist: the client API accepts any caller on {} (add [[client_keys]] to require one)",
            state.settings.host
        );
    }

    let host = state.settings.host.clone();
    let port = state.settings.port;
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

    let (log, log_task) = RequestLog::spawn();
    let sync_requests = Arc::new(crate::catalog::sync::SyncQueue::default());
    let engine = Arc::new(Engine {
        snapshot: ArcSwap::from_pointee(Snapshot::default()),
        breakers,
        health: HealthBook::default(),
        sticky: Sticky::default(),
        admin_sessions: crate::admin_auth::Sessions::default(),
        login_guard: crate::admin_auth::LoginGuard::default(),
        key_usage: crate::usage::KeyUsage::default(),
        body_budget: crate::server::intake::BodyBudget::new(snapshot.settings.body_budget_mb),
        cut_streams: tokio::sync::watch::Sender::new(false),
        on_battery: std::sync::atomic::AtomicBool::new(false),
        admin_totp,
        admin_totp_last_step: Default::default(),
        ui_files: opts.ui_files,
        sync_requests: sync_requests.clone(),
        http: crate::dispatch::http_client()?,
        log,
        events: events::channel(),
        store,
        secrets: opts.secrets,
    });
    engine.apply(snapshot);
    let syncer = tokio::spawn(crate::catalog::sync::run(
        Arc::downgrade(&engine),
        sync_requests,
    ));
    let prober = tokio::spawn(crate::health::probe::run(Arc::downgrade(&engine)));
    let resumer = tokio::spawn(auto_resume(Arc::downgrade(&engine)));
    let key_use_writer = tokio::spawn(record_key_use(Arc::downgrade(&engine)));
    let password_watch = tokio::spawn(end_sessions_on_new_password(Arc::downgrade(&engine)));

    let app = crate::server::router(engine.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(crate::server::listen::serve(
        listener,
        app,
        engine.clone(),
        stopped,
    ));

    Ok(GatewayHandle {
        addr,
        engine,
        stop: Some(stop),
        server: Some(server),
        log_task: Some(log_task),
        syncer: Some(syncer),
        prober: Some(prober),
        resumer: Some(resumer),
        key_use_writer: Some(key_use_writer),
        password_watch: Some(password_watch),
        generated_keys,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
