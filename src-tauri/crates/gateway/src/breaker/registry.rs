//! The breakers of every provider and every (provider, model), behind short synchronous locks:
//! no lock here is ever held across an `.await`.

use std::collections::HashMap;
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
        let pa = lock(&self.providers)
            .get(provider)
            .is_none_or(|b| b.available(now, p));
        pa && lock(&self.models)
            .get(&(provider.clone(), model.clone()))
            .is_none_or(|b| b.available(now, p))
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
        if let Some(b) = lock(&self.providers).get_mut(provider)
            && b.on_success(now, p)
        {
            out.push(transition(provider, None, b));
        }
        if let Some(b) = lock(&self.models).get_mut(&(provider.clone(), model.clone()))
            && b.on_success(now, p)
        {
            out.push(transition(provider, Some(model), b));
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
                let b = providers.entry(provider.clone()).or_default();
                if b.on_failure(kind, error, now, p) {
                    out.push(transition(provider, None, b));
                }
            }
            Layer::Model => {
                let mut models = lock(&self.models);
                let b = models.entry((provider.clone(), model.clone())).or_default();
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
        if model.is_none() {
            for (k, b) in lock(&self.providers).iter_mut() {
                if provider.is_none_or(|p| p == &**k) && b.reset() {
                    out.push(transition(k, None, b));
                }
            }
        }
        for ((pk, mk), b) in lock(&self.models).iter_mut() {
            if provider.is_none_or(|p| p == &**pk) && model.is_none_or(|m| m == &**mk) && b.reset()
            {
                out.push(transition(pk, Some(mk), b));
            }
        }
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
