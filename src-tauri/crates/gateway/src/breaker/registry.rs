//! The breakers of every provider and every (provider, model), behind short synchronous locks:
//! no lock here is ever held across an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use super::{Admission, Breaker, FailureKind, Layer, Policy, State};

/// A breaker's identity: a provider by its stable uid, or one of its models.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BreakerKey {
    pub provider: Arc<str>,
    pub model: Option<Arc<str>>,
}

/// A state change, for events and the tray.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub key: BreakerKey,
    pub state: State,
    pub reason: Option<&'static str>,
}

#[derive(Default)]
pub struct BreakerRegistry {
    /// How many breakers hold any state. Zero (the healthy normal) lets every check answer
    /// without taking a lock; a breaker back to pristine health is dropped again.
    entries: AtomicUsize,
    providers: Mutex<HashMap<Arc<str>, Breaker>>,
    models: Mutex<HashMap<PairKey, Breaker>>,
}

/// (client or provider, model or provider): a pair of shared names.
type PairKey = (Arc<str>, Arc<str>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl BreakerRegistry {
    /// Whether (provider, model) can take a request now, without taking a trial slot.
    pub fn available(
        &self,
        provider: &Arc<str>,
        model: &Arc<str>,
        now: Instant,
        p: &Policy,
    ) -> bool {
        if self.entries.load(Ordering::Acquire) == 0 {
            return true;
        }
        let pa = lock(&self.providers)
            .get(provider)
            .is_none_or(|b| b.available(now, p));
        pa && lock(&self.models)
            .get(&(provider.clone(), model.clone()))
            .is_none_or(|b| b.available(now, p))
    }

    /// Whether (provider, model) is closed at both layers: no trial due or in flight.
    pub fn closed(&self, provider: &Arc<str>, model: &Arc<str>) -> bool {
        if self.entries.load(Ordering::Acquire) == 0 {
            return true;
        }
        let pc = lock(&self.providers)
            .get(provider)
            .is_none_or(Breaker::is_closed);
        pc && lock(&self.models)
            .get(&(provider.clone(), model.clone()))
            .is_none_or(Breaker::is_closed)
    }

    /// Admits a request at both layers; a refusal at the model layer gives back nothing taken at
    /// the provider layer, since a trial is only taken when both admit.
    pub fn admit(
        &self,
        provider: &Arc<str>,
        model: &Arc<str>,
        now: Instant,
        p: &Policy,
    ) -> Admission {
        if self.entries.load(Ordering::Acquire) == 0 {
            return Admission::Allowed;
        }
        let mut providers = lock(&self.providers);
        let mut models = lock(&self.models);
        let pb = providers.get(provider);
        let mb = models.get(&(provider.clone(), model.clone()));
        let (pa, ma) = (
            pb.is_none_or(|b| b.available(now, p)),
            mb.is_none_or(|b| b.available(now, p)),
        );
        if !(pa && ma) {
            return Admission::Refused;
        }
        let mut result = Admission::Allowed;
        if let Some(b) = providers.get_mut(provider)
            && b.admit(now, p) == Admission::Trial
        {
            result = Admission::Trial;
        }
        if let Some(b) = models.get_mut(&(provider.clone(), model.clone()))
            && b.admit(now, p) == Admission::Trial
        {
            result = Admission::Trial;
        }
        result
    }

    pub fn on_success(
        &self,
        provider: &Arc<str>,
        model: &Arc<str>,
        now: Instant,
        p: &Policy,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        if self.entries.load(Ordering::Acquire) == 0 {
            return out;
        }
        {
            let mut providers = lock(&self.providers);
            if let Some(b) = providers.get_mut(provider) {
                if b.on_success(now, p) {
                    out.push(transition(provider, None, b));
                }
                if b.pristine() {
                    providers.remove(provider);
                    self.entries.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
        let key = (provider.clone(), model.clone());
        let mut models = lock(&self.models);
        if let Some(b) = models.get_mut(&key) {
            if b.on_success(now, p) {
                out.push(transition(provider, Some(model), b));
            }
            if b.pristine() {
                models.remove(&key);
                self.entries.fetch_sub(1, Ordering::AcqRel);
            }
        }
        out
    }

    pub fn on_failure(
        &self,
        provider: &Arc<str>,
        model: &Arc<str>,
        kind: &FailureKind,
        error: &str,
        now: Instant,
        p: &Policy,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        match kind.layer() {
            Layer::Provider => {
                let mut providers = lock(&self.providers);
                let b = providers.entry(provider.clone()).or_insert_with(|| {
                    self.entries.fetch_add(1, Ordering::AcqRel);
                    Breaker::default()
                });
                if b.on_failure(kind, error, now, p) {
                    out.push(transition(provider, None, b));
                }
            }
            Layer::Model => {
                let mut models = lock(&self.models);
                let b = models
                    .entry((provider.clone(), model.clone()))
                    .or_insert_with(|| {
                        self.entries.fetch_add(1, Ordering::AcqRel);
                        Breaker::default()
                    });
                if b.on_failure(kind, error, now, p) {
                    out.push(transition(provider, Some(model), b));
                }
            }
        }
        out
    }

    /// Closes breakers: all of them, a provider's (and its models'), or one model's.
    pub fn reset(&self, provider: Option<&str>, model: Option<&str>) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut removed = 0;
        if model.is_none() {
            lock(&self.providers).retain(|k, b| {
                if provider.is_some_and(|p| p != &**k) {
                    return true;
                }
                if b.reset() {
                    out.push(transition(k, None, b));
                }
                removed += 1;
                false
            });
        }
        lock(&self.models).retain(|(pk, mk), b| {
            if !(provider.is_none_or(|p| p == &**pk) && model.is_none_or(|m| m == &**mk)) {
                return true;
            }
            if b.reset() {
                out.push(transition(pk, Some(mk), b));
            }
            removed += 1;
            false
        });
        self.entries.fetch_sub(removed, Ordering::AcqRel);
        out
    }

    pub fn provider(&self, provider: &str) -> Option<Breaker> {
        lock(&self.providers).get(provider).cloned()
    }

    pub fn models_of(&self, provider: &str) -> Vec<(Arc<str>, Breaker)> {
        lock(&self.models)
            .iter()
            .filter(|((p, _), _)| &**p == provider)
            .map(|((_, m), b)| (m.clone(), b.clone()))
            .collect()
    }
}

fn transition(provider: &Arc<str>, model: Option<&Arc<str>>, b: &Breaker) -> Transition {
    Transition {
        key: BreakerKey {
            provider: provider.clone(),
            model: model.cloned(),
        },
        state: b.state,
        reason: b.reason,
    }
}
