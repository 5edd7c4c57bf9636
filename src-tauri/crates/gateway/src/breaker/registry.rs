//! Every provider's and every (provider, model)'s breaker. Each lives in a slot that the live
//! snapshot's providers and candidates point at, with an atomic gate that answers "may a
//! request go there now?" without a lock; a slot's lock is taken only to record an outcome.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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

const CLOSED: u64 = 0;
const FOREVER: u64 = u64::MAX;

/// One breaker and its gate: 0 when closed, else the registry-epoch millisecond from which a
/// request (a half-open trial) may go through, or `u64::MAX` until a reset.
pub struct Slot {
    key: BreakerKey,
    gate: AtomicU64,
    /// The breaker holds some state (a failure count, a doubling): successes must be recorded.
    dirty: AtomicBool,
    breaker: Mutex<Breaker>,
    /// What the routing strategies measure of this (provider, model).
    pub(crate) live: crate::balance::Live,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("key", &self.key)
            .field("gate", &self.gate.load(Ordering::Relaxed))
            .finish()
    }
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn snapshot(&self) -> Breaker {
        self.lock().clone()
    }

    /// Open until a person resets it (its key was refused): no request can do better.
    pub fn until_reset(&self) -> bool {
        self.gate.load(Ordering::Relaxed) == u64::MAX
    }
}

type PairKey = (Arc<str>, Arc<str>);

pub struct BreakerRegistry {
    epoch: Instant,
    providers: Mutex<HashMap<Arc<str>, Arc<Slot>>>,
    models: Mutex<HashMap<PairKey, Arc<Slot>>>,
}

impl Default for BreakerRegistry {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            providers: Mutex::default(),
            models: Mutex::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl BreakerRegistry {
    fn ms(&self, t: Instant) -> u64 {
        // Rounded up, so a gate never opens before its instant; never 0, which means closed.
        let d = t.saturating_duration_since(self.epoch);
        (d.as_nanos().div_ceil(1_000_000) as u64).max(1)
    }

    fn set_gate(&self, slot: &Slot, b: &Breaker, p: &Policy) {
        let gate = match b.state {
            State::Closed => CLOSED,
            State::Open { until: None } => FOREVER,
            State::Open { until: Some(t) } => self.ms(t),
            State::HalfOpen => b.trial_started.map_or(1, |t| self.ms(t + p.trial_timeout)),
        };
        slot.gate.store(gate, Ordering::Release);
    }

    /// The slot of a provider's breaker (made on first use; kept across snapshots).
    pub fn provider_slot(&self, uid: &Arc<str>) -> Arc<Slot> {
        lock(&self.providers)
            .entry(uid.clone())
            .or_insert_with(|| {
                Arc::new(Slot {
                    key: BreakerKey {
                        provider: uid.clone(),
                        model: None,
                    },
                    gate: AtomicU64::new(CLOSED),
                    dirty: AtomicBool::new(false),
                    breaker: Mutex::default(),
                    live: crate::balance::Live::default(),
                })
            })
            .clone()
    }

    pub fn model_slot(&self, uid: &Arc<str>, model: &Arc<str>) -> Arc<Slot> {
        lock(&self.models)
            .entry((uid.clone(), model.clone()))
            .or_insert_with(|| {
                Arc::new(Slot {
                    key: BreakerKey {
                        provider: uid.clone(),
                        model: Some(model.clone()),
                    },
                    gate: AtomicU64::new(CLOSED),
                    dirty: AtomicBool::new(false),
                    breaker: Mutex::default(),
                    live: crate::balance::Live::default(),
                })
            })
            .clone()
    }

    fn open_at(&self, slot: &Slot, now: Instant) -> bool {
        let gate = slot.gate.load(Ordering::Acquire);
        gate == CLOSED || (gate != FOREVER && gate <= self.ms(now))
    }

    /// Could a request go to this (provider slot, model slot) now, counting a due trial?
    /// Lock-free.
    pub fn available(&self, provider: &Slot, model: &Slot, now: Instant) -> bool {
        self.open_at(provider, now) && self.open_at(model, now)
    }

    /// Closed at both layers: no trial due or in flight. Lock-free.
    pub fn closed(&self, provider: &Slot, model: &Slot) -> bool {
        provider.gate.load(Ordering::Acquire) == CLOSED
            && model.gate.load(Ordering::Acquire) == CLOSED
    }

    /// Admits a request at both layers; a trial is taken only when both layers admit.
    /// Also answers the breakers that went half-open for this trial.
    pub fn admit(
        &self,
        provider: &Slot,
        model: &Slot,
        now: Instant,
        p: &Policy,
    ) -> (Admission, Vec<Transition>) {
        if self.closed(provider, model) {
            return (Admission::Allowed, Vec::new());
        }
        if !self.available(provider, model, now) {
            return (Admission::Refused, Vec::new());
        }
        let mut result = Admission::Allowed;
        let mut out = Vec::new();
        for slot in [provider, model] {
            if slot.gate.load(Ordering::Acquire) == CLOSED {
                continue;
            }
            let mut b = slot.lock();
            let was = b.state;
            match b.admit(now, p) {
                Admission::Refused => return (Admission::Refused, out),
                Admission::Trial => result = Admission::Trial,
                Admission::Allowed => {}
            }
            if b.state != was {
                out.push(transition(slot, &b));
            }
            self.set_gate(slot, &b, p);
        }
        (result, out)
    }

    pub fn on_success(
        &self,
        provider: &Slot,
        model: &Slot,
        now: Instant,
        p: &Policy,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        for slot in [provider, model] {
            // The common case, a healthy slot, has nothing to record: no lock taken.
            if !slot.dirty.load(Ordering::Acquire) {
                continue;
            }
            let mut b = slot.lock();
            if b.on_success(now, p) {
                out.push(transition(slot, &b));
            }
            self.set_gate(slot, &b, p);
            slot.dirty.store(!b.pristine(), Ordering::Release);
        }
        out
    }

    pub fn on_failure(
        &self,
        provider: &Slot,
        model: &Slot,
        kind: &FailureKind,
        error: &str,
        now: Instant,
        p: &Policy,
    ) -> Vec<Transition> {
        let slot = match kind.layer() {
            Layer::Provider => provider,
            Layer::Model => model,
        };
        let mut b = slot.lock();
        let changed = b.on_failure(kind, error, now, p);
        slot.dirty.store(true, Ordering::Release);
        self.set_gate(slot, &b, p);
        if changed {
            vec![transition(slot, &b)]
        } else {
            Vec::new()
        }
    }

    /// Frees, at both layers, the trial admitted at `started` if it is still in flight: every
    /// way a trial ends settles it, the ones that record nothing on its layer included.
    pub fn release_trial(&self, provider: &Slot, model: &Slot, started: Instant, p: &Policy) {
        for slot in [provider, model] {
            if slot.gate.load(Ordering::Acquire) == CLOSED {
                continue;
            }
            let mut b = slot.lock();
            if b.release_trial(started) {
                self.set_gate(slot, &b, p);
            }
        }
    }

    /// Closes the breakers opened by `reasons` (both layers): what an outage on this machine's
    /// side (sleep, a lost network) caused, not the provider.
    pub fn reset_opened_by(&self, reasons: &[&str]) -> Vec<Transition> {
        let slots: Vec<Arc<Slot>> = lock(&self.providers)
            .values()
            .chain(lock(&self.models).values())
            .cloned()
            .collect();
        let mut out = Vec::new();
        for slot in slots {
            if slot.gate.load(Ordering::Acquire) == CLOSED {
                continue;
            }
            let mut b = slot.lock();
            if b.reason.is_some_and(|r| reasons.contains(&r)) && b.reset() {
                out.push(transition(&slot, &b));
                slot.gate.store(CLOSED, Ordering::Release);
                slot.dirty.store(false, Ordering::Release);
            }
        }
        out
    }

    /// Closes breakers: all of them, a provider's (and its models'), or one model's, by uid.
    pub fn reset(&self, provider: Option<&str>, model: Option<&str>) -> Vec<Transition> {
        let mut slots: Vec<Arc<Slot>> = Vec::new();
        if model.is_none() {
            slots.extend(
                lock(&self.providers)
                    .iter()
                    .filter(|(k, _)| provider.is_none_or(|p| p == &***k))
                    .map(|(_, s)| s.clone()),
            );
        }
        slots.extend(
            lock(&self.models)
                .iter()
                .filter(|((pk, mk), _)| {
                    provider.is_none_or(|p| p == &**pk) && model.is_none_or(|m| m == &**mk)
                })
                .map(|(_, s)| s.clone()),
        );
        let mut out = Vec::new();
        for slot in slots {
            // A person (or a last resort that worked) says the pair is fine: its score too.
            slot.live.health.clear();
            let mut b = slot.lock();
            if b.reset() {
                out.push(transition(&slot, &b));
            }
            slot.gate.store(CLOSED, Ordering::Release);
            slot.dirty.store(false, Ordering::Release);
        }
        out
    }

    /// Forgets the breakers of providers and (provider, model) pairs that are gone from the
    /// configuration, so that a long run of edits and model-list syncs does not pile them up.
    pub fn retain(&self, providers: &HashSet<&str>, pairs: &HashSet<(&str, &str)>) {
        lock(&self.providers).retain(|uid, _| providers.contains(&**uid));
        lock(&self.models).retain(|(uid, model), _| pairs.contains(&(&**uid, &**model)));
    }

    pub fn provider(&self, uid: &str) -> Option<Breaker> {
        lock(&self.providers).get(uid).map(|s| s.snapshot())
    }

    pub fn models_of(&self, uid: &str) -> Vec<(Arc<str>, Breaker)> {
        self.model_slots(uid)
            .into_iter()
            .map(|(m, s)| (m, s.snapshot()))
            .collect()
    }

    /// The health scores (`balance::Health`) of a provider and its models at `tick`.
    pub fn scores_of(&self, uid: &str, tick: u32) -> (f64, Vec<(Arc<str>, f64)>) {
        let own = lock(&self.providers)
            .get(uid)
            .map_or(1.0, |s| s.live.health.at(tick));
        let models = self
            .model_slots(uid)
            .into_iter()
            .map(|(m, s)| (m, s.live.health.at(tick)))
            .collect();
        (own, models)
    }

    fn model_slots(&self, uid: &str) -> Vec<(Arc<str>, Arc<Slot>)> {
        lock(&self.models)
            .iter()
            .filter(|((p, _), _)| &**p == uid)
            .map(|((_, m), s)| (m.clone(), s.clone()))
            .collect()
    }
}

fn transition(slot: &Slot, b: &Breaker) -> Transition {
    Transition {
        key: slot.key.clone(),
        state: b.state,
        reason: b.reason,
    }
}
