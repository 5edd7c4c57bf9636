//! Client keys' budgets and providers' quotas: what each key with a budget (each provider or
//! (provider, model) with a quota) spent this day and this month, and the verdict a request
//! gets before anything goes upstream. The request log's writer counts each
//! record's cost and tokens here as it writes it (the request path only reads); at start, and
//! for a key that gets a budget, the counts are seeded from the log's rows, so they survive a
//! restart. A request is judged on what is counted: requests in flight may take a key past
//! its limit by their own cost, never further.

mod clock;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use switchboard_api::budget::{Budget, BudgetLimit, BudgetUse};
use tokio::sync::broadcast;

pub use clock::Clock;

use crate::events::GatewayEvent;

/// Where a key stands against one of its limits.
#[derive(Clone, Debug, PartialEq)]
pub struct Standing {
    pub limit: BudgetLimit,
    pub used: f64,
    pub amount: f64,
    pub resets_at_ms: i64,
    pub resets_at: String,
}

impl Standing {
    pub fn share(&self) -> f64 {
        if self.amount > 0.0 {
            self.used / self.amount
        } else {
            0.0
        }
    }

    fn view(&self) -> BudgetUse {
        BudgetUse {
            limit: self.limit.as_str().to_owned(),
            used: self.used,
            amount: self.amount,
            resets_at: self.resets_at.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Fine,
    /// At or past the warning share of a limit: the answer says so.
    Warn(Standing),
    /// At a limit: refused until it resets.
    Over(Standing),
}

#[derive(Clone, Copy, Debug, Default)]
struct Window {
    start: i64,
    end: i64,
    usd: f64,
    tokens: u64,
    requests: u64,
    /// The levels told for this window (bit 0: the warning share, bit 1: the limit), per limit.
    told: [u8; 6],
}

impl Window {
    /// Starts the period that holds `now` if this one is over (or has not begun).
    fn roll(&mut self, clock: &Clock, monthly: bool, now: i64) {
        if now >= self.start && now < self.end {
            return;
        }
        let (start, end) = clock.period(monthly, now);
        *self = Window {
            start,
            end,
            ..Default::default()
        };
    }
}

#[derive(Debug)]
struct State {
    budget: Budget,
    clock: Clock,
    day: Window,
    month: Window,
}

/// One key's spend.
#[derive(Debug)]
pub struct Spend {
    state: Mutex<State>,
    /// Unix ms when counting began: the writer counts records from then on, the seed the log's
    /// rows before.
    pub counting_since: i64,
    /// Unix ms until which a limit is reached (0: none): one atomic load for the request path.
    blocked_until: AtomicI64,
}

impl Spend {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every limit's standing now.
    fn standings(state: &mut State, now: i64) -> Vec<Standing> {
        let State {
            budget,
            clock,
            day,
            month,
        } = state;
        day.roll(clock, false, now);
        month.roll(clock, true, now);
        BudgetLimit::ALL
            .into_iter()
            .filter_map(|l| {
                let amount = budget.amount(l)?;
                let w = if l.monthly() { &*month } else { &*day };
                Some(Standing {
                    limit: l,
                    used: if l.usd() {
                        w.usd
                    } else if l.requests() {
                        w.requests as f64
                    } else {
                        w.tokens as f64
                    },
                    amount,
                    resets_at_ms: w.end,
                    resets_at: clock.rfc3339(w.end),
                })
            })
            .collect()
    }

    /// The verdict for a request now: the first limit reached refuses; else the limit nearest
    /// its end past the warning share warns.
    pub fn verdict(&self, now: i64) -> Verdict {
        let mut s = self.lock();
        let warn_at = s.budget.warn_at();
        let standings = Self::standings(&mut s, now);
        if let Some(over) = standings.iter().find(|st| st.used >= st.amount) {
            return Verdict::Over(over.clone());
        }
        standings
            .into_iter()
            .filter(|st| st.share() >= warn_at)
            .max_by(|a, b| a.share().total_cmp(&b.share()))
            .map_or(Verdict::Fine, Verdict::Warn)
    }

    pub fn uses(&self, now: i64) -> Vec<BudgetUse> {
        let mut s = self.lock();
        Self::standings(&mut s, now)
            .iter()
            .map(Standing::view)
            .collect()
    }

    /// The smallest share left of any limit now, in [0, 1].
    pub fn left(&self, now: i64) -> f64 {
        let s = self.lock();
        BudgetLimit::ALL
            .into_iter()
            .filter_map(|l| {
                let amount = s.budget.amount(l)?;
                let w = if l.monthly() { &s.month } else { &s.day };
                let used = if now < w.start || now >= w.end {
                    0.0
                } else if l.usd() {
                    w.usd
                } else if l.requests() {
                    w.requests as f64
                } else {
                    w.tokens as f64
                };
                Some((1.0 - used / amount).clamp(0.0, 1.0))
            })
            .fold(1.0, f64::min)
    }

    /// Whether a limit is reached now (until its reset).
    pub fn blocked(&self, now: i64) -> bool {
        now < self.blocked_until.load(Ordering::Relaxed)
    }

    /// Until when (unix ms) a limit is reached, if one is now.
    pub fn blocked_until(&self, now: i64) -> Option<i64> {
        let until = self.blocked_until.load(Ordering::Relaxed);
        (now < until).then_some(until)
    }

    /// Until when a limit is reached, from the standings just read.
    fn block(&self, standings: &[Standing]) {
        let until = standings
            .iter()
            .filter(|s| s.used >= s.amount)
            .map(|s| s.resets_at_ms)
            .max()
            .unwrap_or(0);
        self.blocked_until.store(until, Ordering::Relaxed);
    }

    /// Reads the standings again (after a seed or a change of limits).
    fn refresh(&self, now: i64) {
        let mut s = self.lock();
        let standings = Self::standings(&mut s, now);
        drop(s);
        self.block(&standings);
    }

    /// Counts a request that began at `at`; answers the levels it crossed (the warning share, the
    /// limit), each once per period.
    fn add(&self, at: i64, used: Used, now: i64) -> Vec<(Standing, bool)> {
        let Used {
            usd,
            tokens,
            requests,
        } = used;
        let mut s = self.lock();
        let warn_at = s.budget.warn_at();
        let State {
            clock, day, month, ..
        } = &mut *s;
        day.roll(clock, false, now);
        month.roll(clock, true, now);
        for w in [&mut *day, &mut *month] {
            // A request of an earlier period (a long stream that began yesterday) is yesterday's.
            if at >= w.start {
                w.usd += usd.max(0.0);
                w.tokens = w.tokens.saturating_add(tokens);
                w.requests = w.requests.saturating_add(requests);
            }
        }
        let standings = Self::standings(&mut s, now);
        self.block(&standings);
        let mut crossed = Vec::new();
        for st in standings {
            let i = BudgetLimit::ALL
                .iter()
                .position(|l| *l == st.limit)
                .unwrap_or(0);
            let w = if st.limit.monthly() {
                &mut s.month
            } else {
                &mut s.day
            };
            for (bit, reached) in [(1u8, st.share() >= warn_at), (2, st.used >= st.amount)] {
                if reached && w.told[i] & bit == 0 {
                    w.told[i] |= bit;
                    crossed.push((st.clone(), bit == 2));
                }
            }
        }
        crossed
    }

    /// Adds what the log holds from before counting began, since each period's start.
    pub fn seed(&self, bounds: (i64, i64), day: Used, month: Used, now: i64) {
        let mut guard = self.lock();
        let s = &mut *guard;
        for (w, u, start) in [(&mut s.day, day, bounds.0), (&mut s.month, month, bounds.1)] {
            if w.start == start {
                w.usd += u.usd;
                w.tokens = w.tokens.saturating_add(u.tokens);
                w.requests = w.requests.saturating_add(u.requests);
            }
        }
        drop(guard);
        self.refresh(now);
    }

    /// Where the day and the month began, for the seed's query.
    pub fn bounds(&self, now: i64) -> (i64, i64) {
        let mut s = self.lock();
        let State {
            clock, day, month, ..
        } = &mut *s;
        day.roll(clock, false, now);
        month.roll(clock, true, now);
        (day.start, month.start)
    }
}

/// What one request (or the log's rows) used.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Used {
    pub usd: f64,
    pub tokens: u64,
    pub requests: u64,
}

/// What a book counts: its events say so.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Counts {
    /// Client keys, by name.
    #[default]
    Keys,
    /// Providers (by name) and (provider, model) pairs (`provider/model`).
    Quotas,
}

/// Every budgeted key's (or quota's) spend, by name: read without a lock on the request path
/// (one atomic load and a map lookup), changed only when the budgets change.
#[derive(Default)]
pub struct SpendBook {
    slots: ArcSwap<HashMap<Arc<str>, Arc<Spend>>>,
    edit: Mutex<()>,
    events: OnceLock<broadcast::Sender<GatewayEvent>>,
    counts: Counts,
}

thread_local! {
    /// `provider/model`, made here without an allocation per look-up.
    static PAIR: RefCell<String> = const { RefCell::new(String::new()) };
}

impl std::fmt::Debug for SpendBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpendBook")
            .field("keys", &self.slots.load().len())
            .finish()
    }
}

impl SpendBook {
    pub fn quotas() -> Self {
        Self {
            counts: Counts::Quotas,
            ..Default::default()
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Spend>> {
        self.slots.load().get(name).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.load().is_empty()
    }

    /// A quota book: whether the provider, or this model of it, is at a limit now.
    pub fn blocked(&self, provider: &str, model: &str, now: i64) -> bool {
        let slots = self.slots.load();
        if slots.is_empty() {
            return false;
        }
        if slots.get(provider).is_some_and(|s| s.blocked(now)) {
            return true;
        }
        PAIR.with_borrow_mut(|k| {
            k.clear();
            k.push_str(provider);
            k.push('/');
            k.push_str(model);
            slots.get(k.as_str()).is_some_and(|s| s.blocked(now))
        })
    }

    /// The share of the provider's and this model's quotas left (the smaller), 1 without one.
    pub fn left(&self, provider: &str, model: &str, now: i64) -> f64 {
        let slots = self.slots.load();
        let whole = slots.get(provider).map_or(1.0, |s| s.left(now));
        let pair = PAIR.with_borrow_mut(|k| {
            k.clear();
            k.push_str(provider);
            k.push('/');
            k.push_str(model);
            slots.get(k.as_str()).map_or(1.0, |s| s.left(now))
        });
        whole.min(pair)
    }

    /// Why the provider or this model of it is at a limit now: `relay/m is at its quota
    /// daily_requests (100 of 100) until ...`.
    pub fn why(&self, provider: &str, model: &str, now: i64) -> Option<String> {
        let pair = format!("{provider}/{model}");
        [provider, pair.as_str()].into_iter().find_map(|scope| {
            let slot = self.get(scope).filter(|s| s.blocked(now))?;
            let mut s = slot.lock();
            let st = Spend::standings(&mut s, now)
                .into_iter()
                .find(|st| st.used >= st.amount)?;
            Some(format!(
                "{scope} is at its quota {} ({} of {}) until {}",
                st.limit.as_str(),
                st.used,
                st.amount,
                st.resets_at
            ))
        })
    }

    pub(crate) fn set_events(&self, tx: broadcast::Sender<GatewayEvent>) {
        let _ = self.events.set(tx);
    }

    /// Keeps a slot for exactly these keys, with their budgets; a key's counts survive a change
    /// of its amounts. Answers the keys whose slot is new (to be seeded from the log).
    pub fn retain(
        &self,
        keys: &[(Arc<str>, Budget, Clock)],
        now: i64,
    ) -> Vec<(Arc<str>, Arc<Spend>)> {
        let _one = self.edit.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.slots.load_full();
        let mut next = HashMap::with_capacity(keys.len());
        let mut fresh = Vec::new();
        for (name, budget, clock) in keys {
            let slot = match old.get(name) {
                Some(s) => {
                    let mut st = s.lock();
                    st.budget = budget.clone();
                    if st.clock != *clock {
                        // Another zone or reset time: the periods are measured again, the
                        // counts kept.
                        st.clock = clock.clone();
                        (st.day.start, st.day.end) = clock.period(false, now);
                        (st.month.start, st.month.end) = clock.period(true, now);
                    }
                    drop(st);
                    s.refresh(now);
                    s.clone()
                }
                None => {
                    let s = Arc::new(Spend {
                        state: Mutex::new(State {
                            budget: budget.clone(),
                            clock: clock.clone(),
                            day: Window::default(),
                            month: Window::default(),
                        }),
                        counting_since: now,
                        blocked_until: AtomicI64::new(0),
                    });
                    fresh.push((name.clone(), s.clone()));
                    s
                }
            };
            next.insert(name.clone(), slot);
        }
        self.slots.store(Arc::new(next));
        fresh
    }

    /// The writer counts a record under `name` (a name without a budget is not counted), and
    /// tells of each level crossed.
    pub(crate) fn add(&self, name: &str, at: i64, used: Used, now: i64) {
        let Some(slot) = self.get(name) else { return };
        if at < slot.counting_since {
            return;
        }
        for (st, reached) in slot.add(at, used, now) {
            let Some(tx) = self.events.get() else {
                continue;
            };
            let (limit, percent, resets_at) = (
                st.limit.as_str().to_owned(),
                (st.share() * 100.0).round().clamp(0.0, 1000.0) as u32,
                st.resets_at.clone(),
            );
            let _ = tx.send(match self.counts {
                Counts::Keys => GatewayEvent::Budget {
                    key: name.to_owned(),
                    limit,
                    percent,
                    reached,
                    resets_at,
                },
                Counts::Quotas => GatewayEvent::Quota {
                    scope: name.to_owned(),
                    limit,
                    percent,
                    reached,
                    resets_at,
                },
            });
        }
    }

    /// A quota book: the writer counts a record answered by `provider` with `model`.
    pub(crate) fn add_answer(&self, provider: &str, model: &str, at: i64, used: Used, now: i64) {
        if self.is_empty() {
            return;
        }
        self.add(provider, at, used, now);
        self.add(&format!("{provider}/{model}"), at, used, now);
    }
}

#[cfg(test)]
mod tests;
