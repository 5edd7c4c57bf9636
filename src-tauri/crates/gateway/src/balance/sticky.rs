//! Sticky routing: per (client key, provider) the model that last succeeded, and per session
//! (prompt-caching clients send one) the provider and model it last used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionPin {
    pub provider: Arc<str>,
    pub model: Arc<str>,
    at: Instant,
}

#[derive(Default)]
pub struct Sticky {
    models: Mutex<HashMap<PairKey, Arc<str>>>,
    sessions: Mutex<HashMap<Box<str>, SessionPin>>,
}

/// Sessions idle this long are forgotten when the table grows.
const SESSION_TTL: Duration = Duration::from_secs(3600);
const MAX_SESSIONS: usize = 10_000;

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
        lock(&self.sessions).get(id).cloned()
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
        if let Some(id) = session {
            let mut sessions = lock(&self.sessions);
            if sessions.len() >= MAX_SESSIONS {
                sessions.retain(|_, p| now.saturating_duration_since(p.at) < SESSION_TTL);
            }
            if sessions.len() < MAX_SESSIONS || sessions.contains_key(id) {
                sessions.insert(
                    id.into(),
                    SessionPin {
                        provider: provider.clone(),
                        model: model.clone(),
                        at: now,
                    },
                );
            }
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
            let mut sessions = lock(&self.sessions);
            if sessions
                .get(id)
                .is_some_and(|p| p.provider == *provider && p.model == *model)
            {
                sessions.remove(id);
            }
        }
    }
}
