//! Sticky routing: per (client key, provider) the model that last succeeded, and per session
//! (prompt-caching clients send one) the provider and model it last used.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionPin {
    pub provider: Arc<str>,
    pub model: Arc<str>,
    at: Instant,
}

#[derive(Default)]
pub struct Sticky {
    models: Mutex<HashMap<PairKey, Arc<str>>>,
    sessions: Mutex<Sessions>,
}

/// Pins by session id, and the ids in the order they were last pinned: a full table forgets
/// its least recently pinned session in constant time, with no scan under the lock.
#[derive(Default)]
struct Sessions {
    pins: HashMap<Box<str>, SessionPin>,
    /// (id, when it was pinned); an entry whose pin was renewed since is stale and skipped.
    order: VecDeque<(Box<str>, Instant)>,
}

impl Sessions {
    fn pin(&mut self, id: &str, pin: SessionPin) {
        if !self.pins.contains_key(id) {
            while self.pins.len() >= MAX_SESSIONS {
                let Some((old, at)) = self.order.pop_front() else {
                    break;
                };
                if self.pins.get(&old).is_some_and(|p| p.at == at) {
                    self.pins.remove(&old);
                }
            }
        }
        self.order.push_back((id.into(), pin.at));
        self.pins.insert(id.into(), pin);
        // Renewals leave stale entries behind: rebuilt from the pins when they outnumber them.
        if self.order.len() > 2 * MAX_SESSIONS {
            let mut live: Vec<(Box<str>, Instant)> =
                self.pins.iter().map(|(k, p)| (k.clone(), p.at)).collect();
            live.sort_by_key(|(_, at)| *at);
            self.order = live.into();
        }
    }
}

const MAX_SESSIONS: usize = 10_000;
/// A session id longer than this is not one a client made up honestly: not pinned.
pub const MAX_SESSION_ID: usize = 256;

/// (client or provider, model or provider): a pair of shared names.
type PairKey = (Arc<str>, Arc<str>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Sticky {
    pub fn model(&self, client: &Arc<str>, provider: &Arc<str>) -> Option<Arc<str>> {
        lock(&self.models)
            .get(&(client.clone(), provider.clone()))
            .cloned()
    }

    pub fn session(&self, id: &str) -> Option<SessionPin> {
        lock(&self.sessions).pins.get(id).cloned()
    }

    pub fn succeeded(
        &self,
        client: &Arc<str>,
        session: Option<&str>,
        provider: &Arc<str>,
        model: &Arc<str>,
        now: Instant,
    ) {
        lock(&self.models).insert((client.clone(), provider.clone()), model.clone());
        if let Some(id) = session.filter(|id| id.len() <= MAX_SESSION_ID) {
            lock(&self.sessions).pin(
                id,
                SessionPin {
                    provider: provider.clone(),
                    model: model.clone(),
                    at: now,
                },
            );
        }
    }

    pub fn failed(
        &self,
        client: &Arc<str>,
        session: Option<&str>,
        provider: &Arc<str>,
        model: &Arc<str>,
    ) {
        let mut models = lock(&self.models);
        let key = (client.clone(), provider.clone());
        if models.get(&key) == Some(model) {
            models.remove(&key);
        }
        drop(models);
        if let Some(id) = session {
            let sessions = &mut lock(&self.sessions).pins;
            if sessions
                .get(id)
                .is_some_and(|p| p.provider == *provider && p.model == *model)
            {
                sessions.remove(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_full_table_forgets_the_least_recently_pinned_session() {
        let s = Sticky::default();
        let (c, p, m): (Arc<str>, Arc<str>, Arc<str>) = ("c".into(), "p".into(), "m".into());
        let t0 = Instant::now();
        for i in 0..MAX_SESSIONS {
            s.succeeded(
                &c,
                Some(&format!("s{i}")),
                &p,
                &m,
                t0 + Duration::from_millis(i as u64),
            );
        }
        // s0 renewed: s1 is now the least recently pinned.
        let later = t0 + Duration::from_secs(60);
        s.succeeded(&c, Some("s0"), &p, &m, later);
        s.succeeded(&c, Some("new"), &p, &m, later);
        assert!(s.session("s0").is_some());
        assert!(s.session("s1").is_none());
        assert!(s.session("new").is_some());
        assert_eq!(lock(&s.sessions).pins.len(), MAX_SESSIONS);
        // Renewals do not grow the order queue without bound.
        for i in 0..3 * MAX_SESSIONS {
            s.succeeded(
                &c,
                Some("s0"),
                &p,
                &m,
                later + Duration::from_millis(i as u64),
            );
        }
        assert!(lock(&s.sessions).order.len() <= 2 * MAX_SESSIONS);
        // A huge id is not pinned.
        let huge = "x".repeat(MAX_SESSION_ID + 1);
        s.succeeded(&c, Some(&huge), &p, &m, later);
        assert!(s.session(&huge).is_none());
    }
}
