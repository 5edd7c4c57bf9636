//! Every background task of a running gateway, and the one place they start. Each gets a
//! cancellation token; shutdown cancels them and waits for them to end.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::catalog::sync::ON_DEMAND_GAP;
use crate::engine::{Engine, Queues, unix_seconds};
use crate::store;

/// The running tasks and the token that stops them.
#[derive(Default)]
pub(super) struct Tasks {
    cancel: CancellationToken,
    running: Vec<(&'static str, JoinHandle<()>)>,
}

impl Tasks {
    /// Runs `work` until it ends or the tasks are cancelled (at its next `.await`).
    fn spawn(&mut self, name: &'static str, work: impl Future<Output = ()> + Send + 'static) {
        let token = self.cancel.clone();
        // The one place background work starts: each task ends with its token and is joined by
        // `shutdown`.
        #[allow(clippy::disallowed_methods)]
        let handle = tokio::spawn(async move {
            token.run_until_cancelled(work).await;
        });
        self.running.push((name, handle));
    }

    /// Tells every task to stop at its next step, without waiting.
    pub(super) fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Stops every task and waits for each, at most `grace` in all (then aborts what is left).
    pub(super) async fn shutdown(&mut self, grace: Duration) {
        self.cancel.cancel();
        let deadline = tokio::time::Instant::now() + grace;
        for (name, mut task) in self.running.drain(..) {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if e.is_panic() => tracing::error!(task = name, "task panicked"),
                Ok(Err(_)) => {}
                Err(_) => {
                    tracing::warn!(task = name, "task did not stop in time: aborted");
                    task.abort();
                }
            }
        }
    }
}

/// The server's accept loop: a task of its own, since shutdown waits for it with a grace
/// period of its own and cuts streams when that ends.
pub(super) fn spawn_server(
    serve: impl Future<Output = std::io::Result<()>> + Send + 'static,
) -> JoinHandle<std::io::Result<()>> {
    // Joined (or aborted after the grace period) by `GatewayHandle::shutdown`.
    #[allow(clippy::disallowed_methods)]
    tokio::spawn(serve)
}

/// Starts the engine's background work: the model-list schedule, probes, timed-pause resume,
/// the client keys' last-used times, the admin password watch, and the request path's chores.
pub(super) fn start_all(tasks: &mut Tasks, engine: &Arc<Engine>, queues: Queues) {
    tasks.spawn("model lists", model_lists(engine.clone(), queues.sync));
    tasks.spawn("probes", probes(engine.clone()));
    tasks.spawn("timed pauses", timed_pauses(engine.clone()));
    tasks.spawn("key use", key_use(engine.clone()));
    tasks.spawn("password watch", password_watch(engine.clone()));
    tasks.spawn("chores", chores(engine.clone(), queues.chores));
    tasks.spawn("log retention", log_retention(engine.clone()));
    tasks.spawn("price list", price_list(engine.clone()));
}

/// Model lists: on a schedule (`routing.sync_interval_s`) for every provider whose list does
/// not come from the config file, and on demand (a 404 naming a model) at most once per
/// `ON_DEMAND_GAP` per provider. A failed sync keeps the last good list.
async fn model_lists(engine: Arc<Engine>, queue: Arc<crate::catalog::sync::SyncQueue>) {
    // The scheduled round keeps its own deadline: syncs asked for in between do not push it
    // back, so a provider answering 404s cannot starve every other provider's schedule.
    let mut next_round = tokio::time::Instant::now();
    let mut last_on_demand: HashMap<String, tokio::time::Instant> = HashMap::new();
    loop {
        tokio::select! {
            () = queue.wait() => {
                // A list the config file gives is the user's word: a 404 does not replace it.
                let info = engine.store.call(|c| store::sync_info(c)).await.unwrap_or_default();
                let now = tokio::time::Instant::now();
                last_on_demand.retain(|_, t| now.duration_since(*t) < ON_DEMAND_GAP);
                for name in queue.take() {
                    let from_config = info
                        .iter()
                        .any(|(n, i)| *n == name && i.source.as_deref() == Some("config"));
                    if from_config || last_on_demand.contains_key(&name) {
                        continue;
                    }
                    last_on_demand.insert(name.clone(), now);
                    let _ = crate::service::sync::sync_provider(&engine, &name).await;
                }
            }
            () = tokio::time::sleep_until(next_round) => {
                let interval = Duration::from_secs(engine.snapshot().settings.routing.sync_interval_s.max(1));
                next_round = tokio::time::Instant::now() + interval;
                let due = engine
                    .store
                    .call(|c| store::sync_info(c))
                    .await
                    .unwrap_or_default();
                for (name, info) in due {
                    if info.source.as_deref() != Some("config") {
                        let _ = crate::service::sync::sync_provider(&engine, &name).await;
                    }
                }
            }
        }
    }
}

/// How often the probe task looks for due probes.
const PROBE_TICK: Duration = Duration::from_millis(500);

/// Active probes, while they are on (`routing.probe_interval_s` > 0, not on battery).
async fn probes(engine: Arc<Engine>) {
    let mut last_round: Option<Instant> = None;
    loop {
        tokio::time::sleep(PROBE_TICK).await;
        let snap = engine.snapshot();
        if !engine.probes_active(&snap.settings) {
            last_round = None;
            continue;
        }
        let interval = Duration::from_secs(snap.settings.routing.probe_interval_s);
        let now = Instant::now();
        let round_due = last_round.is_none_or(|t| now.duration_since(t) >= interval);
        let targets = crate::dispatch::probe::due(&engine, round_due, now);
        if round_due {
            last_round = Some(now);
        }
        for c in targets {
            crate::dispatch::probe::probe(&engine, &c).await;
        }
    }
}

/// Ends timed pauses when their time comes (also those that ended while Switchboard was off).
async fn timed_pauses(engine: Arc<Engine>) {
    loop {
        let now = unix_seconds(Instant::now());
        let due: Vec<String> = engine
            .snapshot()
            .providers
            .iter()
            .filter(|p| p.paused && p.paused_until.is_some_and(|t| t <= now))
            .map(|p| p.name.to_string())
            .collect();
        for name in due {
            match engine.set_paused(&name, false, None).await {
                Ok(_) => tracing::info!(provider = %name, "timed pause ended"),
                Err(err) => tracing::warn!(provider = %name, "cannot end a timed pause: {err}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Writes client keys' last-used times to the database now and then: the request path only
/// notes them in memory (shutdown writes the last ones).
async fn key_use(engine: Arc<Engine>) {
    loop {
        tokio::time::sleep(Duration::from_secs(15)).await;
        engine.flush_key_use().await;
    }
}

/// `switchboard admin set-password` writes the database from another process: a password
/// other than the one this gateway last saw ends every login session, within two seconds.
/// (Reads the hash off the request path, on the store's thread.)
async fn password_watch(engine: Arc<Engine>) {
    let mut seen: Option<Option<String>> = None;
    loop {
        if let Ok(hash) = engine.store.call(|c| store::admin_password_hash(c)).await {
            // From no password to one is the first choice (this gateway's first visit made its
            // session with it): only a password replacing another ends the logins.
            if seen
                .as_ref()
                .is_some_and(|before| before.is_some() && *before != hash)
            {
                engine.admin_sessions.revoke_logins();
                tracing::info!("the admin password changed: every login session ended");
            }
            seen = Some(hash);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// How often the request log is pruned, the rows one batch (one short transaction) holds, and
/// the pause between batches, in which the admin API's reads run.
const RETENTION_EVERY: Duration = Duration::from_secs(600);
const RETENTION_BATCH: usize = 5000;
const RETENTION_PAUSE: Duration = Duration::from_millis(50);

/// The request log within `[logs]`: rows older than `retention_days`, and the oldest while the
/// file is over `max_size_mb`, are rolled up per day and deleted, in small batches.
async fn log_retention(engine: Arc<Engine>) {
    // Not at the very start: a start is busy enough, and a short run needs no pruning.
    tokio::time::sleep(Duration::from_secs(30)).await;
    loop {
        let logs = engine.snapshot().settings.logs.clone();
        let age_ms = i64::from(logs.logs_retention_days) * 86_400_000;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let cutoff = now_ms.saturating_sub(age_ms);
        let max_bytes = logs.logs_max_size_mb.saturating_mul(1024 * 1024);
        let mut pruned = 0;
        loop {
            let round = engine
                .logs
                .call(move |c| store::logs_db::prune(c, cutoff, max_bytes, RETENTION_BATCH))
                .await;
            match round {
                Ok(p) => {
                    pruned += p.rows;
                    if !p.more {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!("cannot prune the request log: {e}");
                    break;
                }
            }
            tokio::time::sleep(RETENTION_PAUSE).await;
        }
        if pruned > 0 {
            tracing::info!(rows = pruned, "request log pruned (rolled up per day)");
        }
        // Captured bodies have their own, shorter, time.
        let body_cutoff =
            now_ms.saturating_sub(i64::from(logs.logs_body_retention_days) * 86_400_000);
        loop {
            let round = engine
                .logs
                .call(move |c| store::logs_db::prune_bodies(c, body_cutoff, RETENTION_BATCH))
                .await;
            match round {
                Ok(n) if n as usize >= RETENTION_BATCH => {
                    tokio::time::sleep(RETENTION_PAUSE).await;
                }
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!("cannot prune the captured bodies: {e}");
                    break;
                }
            }
        }
        if let Err(e) = engine
            .logs
            .call(move |c| store::logs_stats::prune_rollup(c, now_ms))
            .await
        {
            tracing::warn!("cannot prune the request log's rollup: {e}");
        }
        tokio::time::sleep(RETENTION_EVERY).await;
    }
}

/// How soon a failed fetch of the price list is tried again (at most its refresh period).
const PRICES_RETRY: Duration = Duration::from_secs(15 * 60);

/// The price list from `pricing.refresh_url`, every `refresh_hours`; at once when the URL
/// changes; the bundled list again when it is cleared. Nothing is fetched without a URL.
async fn price_list(engine: Arc<Engine>) {
    let list = &engine.price_list;
    // The URL the schedule is for, and when its next fetch is due.
    let mut due: Option<(String, tokio::time::Instant)> = None;
    loop {
        let pricing = engine.snapshot().settings.pricing.clone();
        let url = pricing.pricing_refresh_url;
        let every =
            Duration::from_secs(u64::from(pricing.pricing_refresh_hours.clamp(1, 720)) * 3600);
        let now = tokio::time::Instant::now();
        let now_s = crate::engine::unix_seconds(std::time::Instant::now());
        if url.is_empty() {
            if list.from().is_some() {
                list.forget();
                engine.reprice(Some(crate::pricing::PriceBook::bundled()));
                tracing::info!("pricing.refresh_url cleared: the bundled price list is in use");
            }
            due = None;
        } else if due.as_ref().is_none_or(|(u, _)| *u != url) {
            // A copy from this URL saved by an earlier run is fresh for the rest of its period.
            let age = match (list.from(), list.fetched_at()) {
                (Some(from), Some(at)) if from == url => {
                    Duration::from_secs(now_s.saturating_sub(at))
                }
                _ => every,
            };
            due = Some((url.clone(), now + every.saturating_sub(age)));
        }
        if let Some((u, at)) = &due
            && *at <= now
        {
            let next = match list.refresh(&engine.http, u, now_s).await {
                Ok(book) => {
                    tracing::info!(url = %u, models = book.models(), "price list refreshed");
                    engine.reprice(Some(book));
                    every
                }
                Err(e) => {
                    tracing::warn!("cannot refresh the price list: {e}");
                    PRICES_RETRY.min(every)
                }
            };
            due = Some((u.clone(), tokio::time::Instant::now() + next));
        }
        let wake = due
            .as_ref()
            .map_or(now + Duration::from_secs(3600), |(_, at)| *at);
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = engine.config_changed.notified() => {}
        }
    }
}

/// What the request path handed off (a database write it must not wait for).
async fn chores(engine: Arc<Engine>, mut queue: tokio::sync::mpsc::Receiver<crate::engine::Chore>) {
    while let Some(chore) = queue.recv().await {
        engine.do_chore(chore).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Set when dropped: the task holding it has ended.
    struct Ended(Arc<AtomicBool>);

    impl Drop for Ended {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn shutdown_cancels_every_task_and_waits_until_it_has_ended() {
        let mut tasks = Tasks::default();
        let ended = Arc::new(AtomicBool::new(false));
        let guard = Ended(ended.clone());
        tasks.spawn("forever", async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        tasks.shutdown(Duration::from_secs(5)).await;
        assert!(ended.load(Ordering::SeqCst), "the task outlived shutdown");
        assert!(tasks.running.is_empty());
    }
}
