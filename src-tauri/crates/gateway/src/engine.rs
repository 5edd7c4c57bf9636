//! The engine: the live state every request shares, and the operations on it. It neither
//! serves HTTP nor runs tasks of its own: the runtime starts it and runs its background work,
//! and work it cannot do on the request path (a database write) goes to the runtime as a
//! [`Chore`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use switchboard_api::BreakerState;
use tokio::sync::{broadcast, mpsc};

use crate::admin_auth::{LoginGuard, Sessions};
use crate::balance::Sticky;
use crate::body_budget::BodyBudget;
use crate::breaker::{BreakerRegistry, FailureKind, State, Transition};
use crate::catalog::sync::SyncQueue;
use crate::catalog::{Candidate, Snapshot};
use crate::events::{self, GatewayEvent};
use crate::health::HealthBook;
use crate::pricing::{PriceBook, PriceList, Pricing};
use crate::requestlog::RequestLog;
use crate::secrets::{ProviderKey, Secret, SecretStore};
use crate::store::{self, Store, StoreError};
use crate::usage::KeyUsage;

/// Shared by every request: the live snapshot, the pooled HTTP client, the log writer's channel.
pub struct Engine {
    snapshot: ArcSwap<Snapshot>,
    pub(crate) breakers: BreakerRegistry,
    pub(crate) health: HealthBook,
    pub(crate) sticky: Sticky,
    pub(crate) http: reqwest::Client,
    pub(crate) log: RequestLog,
    events: broadcast::Sender<GatewayEvent>,
    pub(crate) store: Store,
    /// The request log's reads (`logs.db`); its writes are the runtime's writer's.
    pub(crate) logs: Store,
    pub(crate) secrets: Arc<dyn SecretStore>,
    pub(crate) admin_sessions: Sessions,
    pub(crate) login_guard: LoginGuard,
    pub(crate) key_usage: KeyUsage,
    /// Room for request bodies held at once.
    pub(crate) body_budget: BodyBudget,
    /// Turns true when the shutdown grace period is over: streams still running end with an
    /// error event in their protocol rather than a silent cut.
    pub(crate) cut_streams: tokio::sync::watch::Sender<bool>,
    /// The machine runs on battery (the desktop shell says so): probes pause.
    on_battery: std::sync::atomic::AtomicBool,
    pub(crate) admin_totp: Option<Vec<u8>>,
    /// The time step of the last two-factor code that let someone in.
    pub(crate) admin_totp_last_step: std::sync::atomic::AtomicU64,
    sync_requests: Arc<SyncQueue>,
    chores: mpsc::Sender<Chore>,
    /// Where the price list came from; the list itself is in the log's pricing.
    pub(crate) price_list: PriceList,
    /// Held while the pricing is rebuilt, so a config reload and a list refresh at once do
    /// not leave the older of the two in place.
    pricing_rebuild: std::sync::Mutex<()>,
    /// Wakes the price list's refresh when the configuration changes.
    pub(crate) config_changed: tokio::sync::Notify,
    /// The data folder (the connected clients' ledger lives there).
    pub(crate) data_dir: std::path::PathBuf,
    /// Where this gateway answers, as a client on this machine reaches it.
    pub(crate) base_url: String,
    /// Clients the ledger held connected when this process started (it stopped or crashed while
    /// they were): the user is asked to keep or restore each, until they answer.
    pub(crate) connected_before: std::sync::Mutex<Vec<crate::connect::AgentClient>>,
    /// The small-model tier classifier's answers by turn.
    pub(crate) tier_cache: crate::tiers::Cache,
}

/// Work the request path hands off to the runtime: nothing on it may wait for the database.
#[derive(Debug)]
pub(crate) enum Chore {
    /// Record that a provider has chat completions only (`responses = false`), then reload.
    ChatOnly { uid: String },
    /// Seed a new budget's or quota's slot with what the log holds of this day and month.
    SeedSpend {
        who: crate::store::logs_db::Spender,
        slot: Arc<crate::budget::Spend>,
    },
}

/// What the engine is built from; the runtime opens or makes each part.
pub(crate) struct Parts {
    pub store: Store,
    pub logs: Store,
    pub secrets: Arc<dyn SecretStore>,
    pub http: reqwest::Client,
    pub log: RequestLog,
    pub breakers: BreakerRegistry,
    pub admin_totp: Option<Vec<u8>>,
    pub body_budget_mb: u64,
    /// The price list's origin and the list to start with.
    pub prices: (PriceList, Arc<PriceBook>),
    pub data_dir: std::path::PathBuf,
    pub base_url: String,
}

/// The engine's ends of its hand-off queues, for the runtime's tasks to drain.
pub(crate) struct Queues {
    pub sync: Arc<SyncQueue>,
    pub chores: mpsc::Receiver<Chore>,
}

/// Chores waiting at once; one per provider that turns out chat-only, so a small bound.
const CHORE_CAPACITY: usize = 256;

pub fn unix_seconds(at: Instant) -> u64 {
    let wall = SystemTime::now() + at.saturating_duration_since(Instant::now());
    wall.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Engine {
    pub(crate) fn new(parts: Parts) -> (Self, Queues) {
        let sync = Arc::new(SyncQueue::default());
        let (chores, chores_rx) = mpsc::channel(CHORE_CAPACITY);
        let (price_list, book) = parts.prices;
        parts
            .log
            .set_pricing(Pricing::new(book, std::iter::empty(), &[]));
        let events = events::channel();
        parts.log.spend().set_events(events.clone());
        parts.log.quotas().set_events(events.clone());
        let engine = Self {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            breakers: parts.breakers,
            health: HealthBook::default(),
            sticky: Sticky::default(),
            http: parts.http,
            log: parts.log,
            events,
            store: parts.store,
            logs: parts.logs,
            secrets: parts.secrets,
            admin_sessions: Sessions::default(),
            login_guard: LoginGuard::default(),
            key_usage: KeyUsage::default(),
            body_budget: BodyBudget::new(parts.body_budget_mb),
            cut_streams: tokio::sync::watch::Sender::new(false),
            on_battery: std::sync::atomic::AtomicBool::new(false),
            admin_totp: parts.admin_totp,
            admin_totp_last_step: Default::default(),
            sync_requests: sync.clone(),
            chores,
            price_list,
            pricing_rebuild: std::sync::Mutex::new(()),
            config_changed: tokio::sync::Notify::new(),
            data_dir: parts.data_dir,
            base_url: parts.base_url,
            connected_before: std::sync::Mutex::default(),
            tier_cache: Default::default(),
        };
        (
            engine,
            Queues {
                sync,
                chores: chores_rx,
            },
        )
    }

    /// The gateway's events (breakers, pauses, syncs, config), for the tray and the admin UI.
    pub fn subscribe(&self) -> broadcast::Receiver<GatewayEvent> {
        self.events.subscribe()
    }

    pub(crate) fn emit(&self, event: GatewayEvent) {
        let _ = self.events.send(event);
    }

    /// A token for the desktop window's own admin session.
    pub fn issue_admin_session(&self, ttl: Duration) -> Result<String, getrandom::Error> {
        self.admin_sessions.issue(ttl)
    }

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
        self.log.keep_rows(snapshot.settings.logs.logs_enabled);
        let event = GatewayEvent::ConfigApplied {
            providers: snapshot.providers.len(),
            models: snapshot.routes.len(),
        };
        {
            let providers: HashSet<&str> = snapshot.providers.iter().map(|p| &*p.uid).collect();
            // Every listed pair stays: the `auto:*` groups draw on them all.
            let pairs: HashSet<(&str, &str)> = snapshot
                .candidates()
                .map(|c| (&*c.provider.uid, &*c.model))
                .chain(
                    snapshot
                        .providers
                        .iter()
                        .flat_map(|p| p.models.iter().map(move |m| (&*p.uid, m.as_str()))),
                )
                .collect();
            self.breakers.retain(&providers, &pairs);
            self.health.retain(&pairs);
        }
        self.keep_budgets(&snapshot);
        self.snapshot.store(Arc::new(snapshot));
        // Tiers may have changed under the names the cached answers give.
        self.tier_cache.clear();
        self.reprice(None);
        self.config_changed.notify_one();
        self.emit(event);
    }

    /// A spend slot for each key with a budget; a new one is seeded from the log, off this
    /// path.
    fn keep_budgets(&self, snapshot: &Snapshot) {
        let keys: Vec<_> = snapshot
            .client_keys
            .values()
            .filter_map(|k| {
                let b = k.budget.as_ref().filter(|b| !b.is_empty())?;
                // Checked when stored; one that no longer reads (a zone gone from the system's
                // database) counts nothing rather than refuse every request.
                let clock = crate::budget::Clock::new(b)
                    .inspect_err(|e| tracing::warn!("client key '{}': budget: {e}", k.name))
                    .ok()?;
                Some((k.name.clone(), b.clone(), clock))
            })
            .collect();
        let now = crate::protocol::unix_now_ms();
        use crate::store::logs_db::Spender;
        let mut fresh: Vec<_> = self
            .log
            .spend()
            .retain(&keys, now)
            .into_iter()
            .map(|(key, slot)| (Spender::Key(key.to_string()), slot))
            .collect();
        let quotas: Vec<_> = snapshot
            .quotas
            .iter()
            .filter_map(|q| {
                let limits = q.limits();
                let clock = crate::budget::Clock::new(&limits)
                    .inspect_err(|e| tracing::warn!("quota {}: {e}", q.scope()))
                    .ok()?;
                Some((Arc::<str>::from(q.scope()), limits, clock))
            })
            .collect();
        for (scope, slot) in self.log.quotas().retain(&quotas, now) {
            let who = match scope.split_once('/') {
                Some((p, m)) => Spender::Pair(p.to_owned(), m.to_owned()),
                None => Spender::Provider(scope.to_string()),
            };
            fresh.push((who, slot));
        }
        for (who, slot) in fresh {
            if self
                .chores
                .try_send(Chore::SeedSpend { who, slot })
                .is_err()
            {
                tracing::warn!("too many chores queued: a budget or quota starts from zero");
            }
        }
    }

    /// Rebuilds the log's pricing from the live snapshot and `book` (None: the list in use).
    pub(crate) fn reprice(&self, book: Option<Arc<PriceBook>>) {
        let _one_at_a_time = self
            .pricing_rebuild
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let book = book.unwrap_or_else(|| self.log.pricing().book().clone());
        let snap = self.snapshot();
        let providers = snap
            .providers
            .iter()
            .map(|p| (&*p.name, p.base_url.as_str()));
        self.log
            .set_pricing(Pricing::new(book, providers, &snap.prices));
        // The cost strategy reads each candidate's price from its slot.
        let pricing = self.log.pricing();
        let now = crate::protocol::unix_now();
        // Every pair a provider lists (the groups draw on them all) and every routed one.
        let listed = snap.providers.iter().flat_map(|p| {
            p.models
                .iter()
                .map(move |m| (p, Arc::<str>::from(m.as_str())))
        });
        let routed = snap
            .routes
            .values()
            .filter(|r| !r.group)
            .flat_map(|r| r.candidates.iter().map(|c| (&c.provider, c.model.clone())));
        let mut done = HashSet::new();
        for (p, model) in listed.chain(routed) {
            if !done.insert((p.uid.clone(), model.clone())) {
                continue;
            }
            let live = &self.breakers.model_slot(&p.uid, &model).live;
            live.set_price(pricing.blended(&p.name, &model, now));
            live.caps.store(Arc::new(crate::capabilities::resolve(
                &p.name,
                &model,
                pricing.context_window(&p.name, &model),
                &snap.capabilities,
            )));
        }
        // After every slot is set: a pair two routes share has one price.
        for route in snap.routes.values().filter(|r| !r.group) {
            route.rank_by_price();
            route.sum_up_limits();
        }
        // The groups follow the prices and capabilities. Stored only over the snapshot they
        // were made from: a newer one (a reload meanwhile) gets its own on its own reprice.
        let next = Arc::new(snap.with_groups(&self.breakers));
        let _ = self.snapshot.compare_and_swap(&snap, next);
    }

    pub fn on_success(&self, c: &Candidate, latency: Duration, ttfb: Option<Duration>) {
        let snap = self.snapshot();
        let now = Instant::now();
        let tick = crate::balance::ticks(now);
        c.breaker.live.health.succeeded(tick);
        c.provider.breaker.live.health.succeeded(tick);
        let t = self
            .breakers
            .on_success(&c.provider.breaker, &c.breaker, now, &snap.policy);
        self.health
            .record(&c.provider.uid, &c.model, true, latency, ttfb, None);
        self.announce(&snap, t);
    }

    pub fn on_failure(&self, c: &Candidate, kind: &FailureKind, error: &str, latency: Duration) {
        let snap = self.snapshot();
        let now = Instant::now();
        let tick = crate::balance::ticks(now);
        c.breaker.live.health.failed(kind, tick);
        c.provider.breaker.live.health.failed(kind, tick);
        let t = self.breakers.on_failure(
            &c.provider.breaker,
            &c.breaker,
            kind,
            error,
            now,
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
        settings.routing.probe_interval_s > 0
            && !self.on_battery.load(std::sync::atomic::Ordering::Relaxed)
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
                State::Closed => (BreakerState::Closed, None),
                State::HalfOpen => (BreakerState::HalfOpen, None),
                State::Open { until } => (BreakerState::Open, until.map(unix_seconds)),
            };
            if t.state == State::Closed {
                tracing::info!(%provider, model = ?t.key.model, "breaker closed");
            } else {
                tracing::warn!(%provider, model = ?t.key.model, reason = ?t.reason, "breaker {}", state.as_str());
            }
            self.emit(GatewayEvent::Breaker {
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
        state.settings.server.host = old.settings.server.host.clone();
        state.settings.server.port = old.settings.server.port;
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
            self.emit(if paused {
                GatewayEvent::ProviderPaused { provider, until }
            } else {
                GatewayEvent::ProviderResumed { provider }
            });
        }
        Ok(found)
    }

    /// A provider answered 404 to `/v1/responses` and chat to the same request: it has chat
    /// completions only. Recorded off the request path, then live for every snapshot after.
    pub(crate) fn learned_chat_only(&self, provider: &crate::catalog::Provider) {
        tracing::info!(
            provider = %provider.name,
            "the provider has no Responses API (404); Responses requests go to it as chat from now on"
        );
        let uid = provider.uid.to_string();
        if self.chores.try_send(Chore::ChatOnly { uid }).is_err() {
            // Still live for this run (the provider's flag is set); only the record waits for
            // the next 404.
            tracing::warn!("too many chores queued: not recorded that a provider is chat-only");
        }
    }

    /// Does a chore the request path handed off (the runtime calls this, off the request path).
    pub(crate) async fn do_chore(&self, chore: Chore) {
        match chore {
            Chore::ChatOnly { uid } => {
                let stored = self
                    .store
                    .call(move |c| store::set_responses(c, &uid, false))
                    .await;
                if let Err(e) = stored {
                    tracing::warn!("cannot record that a provider is chat-only: {e}");
                } else if let Err(e) = self.reload().await {
                    tracing::warn!("reload after learning a chat-only provider: {e}");
                }
            }
            Chore::SeedSpend { who, slot } => {
                let bounds = slot.bounds(crate::protocol::unix_now_ms());
                let until = slot.counting_since;
                let asked = who.clone();
                let sums = self
                    .logs
                    .call(move |c| {
                        let used = |since| {
                            crate::store::logs_db::used(c, &asked, since, until).map(
                                |(requests, usd, tokens)| crate::budget::Used {
                                    usd,
                                    tokens,
                                    requests,
                                },
                            )
                        };
                        Ok((used(bounds.0)?, used(bounds.1)?))
                    })
                    .await;
                match sums {
                    Ok((day, month)) => {
                        slot.seed(bounds, day, month, crate::protocol::unix_now_ms());
                    }
                    Err(e) => tracing::warn!("{who:?}: cannot read what it used: {e}"),
                }
            }
        }
    }

    /// Asks the background syncer to refresh a provider's model list soon.
    pub(crate) fn request_sync(&self, provider: String) {
        self.sync_requests.push(provider);
    }
}
