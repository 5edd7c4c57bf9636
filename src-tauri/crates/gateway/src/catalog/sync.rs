//! Provider model lists asked for on demand: a 404 "model not found" names the provider here,
//! and the runtime's model-list task fetches it (`service::sync`), at most once per
//! `ON_DEMAND_GAP`, beside its schedule (`routing.sync_interval_s`).

use std::time::Duration;

/// A provider's list is fetched on demand (its 404s) at most this often.
pub(crate) const ON_DEMAND_GAP: Duration = Duration::from_secs(30);

/// Providers whose model list was asked for (a 404 naming a model), each once however often it
/// was asked: a storm of 404s is one sync, not a queue that grows.
#[derive(Default)]
pub(crate) struct SyncQueue {
    pending: std::sync::Mutex<std::collections::BTreeSet<String>>,
    wake: tokio::sync::Notify,
}

impl SyncQueue {
    pub(crate) fn push(&self, provider: String) {
        if let Ok(mut p) = self.pending.lock() {
            // Bounded by the providers that exist; the cap only guards against a bug.
            if p.len() < 4096 {
                p.insert(provider);
            }
        }
        self.wake.notify_one();
    }

    /// Until something is pushed (at once if something was pushed since the last take).
    pub(crate) async fn wait(&self) {
        self.wake.notified().await;
    }

    pub(crate) fn take(&self) -> Vec<String> {
        self.pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p).into_iter().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_of_requests_is_one_per_provider() {
        let q = SyncQueue::default();
        for _ in 0..10_000 {
            q.push("a".into());
        }
        q.push("b".into());
        assert_eq!(q.take(), ["a", "b"]);
        assert!(q.take().is_empty());
    }
}
