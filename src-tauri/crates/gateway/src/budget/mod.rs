//! Client keys' budgets: what each key with a budget spent this day and this month, and the
//! verdict a request gets before anything goes upstream. The request log's writer counts each
//! record's cost and tokens here as it writes it (the request path only reads); at start, and
//! for a key that gets a budget, the counts are seeded from the log's rows, so they survive a
//! restart. A request is judged on what is counted: requests in flight may take a key past
//! its limit by their own cost, never further.

mod clock;

use std::collections::HashMap;
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
    /// The levels told for this window (bit 0: the warning share, bit 1: the limit), per limit.
    told: [u8; 4],
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
                    used: if l.usd() { w.usd } else { w.tokens as f64 },
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

    /// Counts a request that began at `at`; answers the levels it crossed (the warning share, the
    /// limit), each once per period.
    fn add(&self, at: i64, usd: f64, tokens: u64, now: i64) -> Vec<(Standing, bool)> {
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
            }
        }
        let standings = Self::standings(&mut s, now);
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

    /// Adds what the log holds from before counting began: `day` and `month` are (USD, tokens)
    /// since each period's start.
    pub fn seed(&self, bounds: (i64, i64), day: (f64, u64), month: (f64, u64)) {
        let mut guard = self.lock();
        let s = &mut *guard;
        for (w, (usd, tokens), start) in
            [(&mut s.day, day, bounds.0), (&mut s.month, month, bounds.1)]
        {
            if w.start == start {
                w.usd += usd;
                w.tokens = w.tokens.saturating_add(tokens);
            }
        }
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

/// Every budgeted key's spend, by key name: read without a lock on the request path (one
/// atomic load and a map lookup), changed only when the keys' budgets change.
#[derive(Default)]
pub struct SpendBook {
    slots: ArcSwap<HashMap<Arc<str>, Arc<Spend>>>,
    edit: Mutex<()>,
    events: OnceLock<broadcast::Sender<GatewayEvent>>,
}

impl std::fmt::Debug for SpendBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpendBook")
            .field("keys", &self.slots.load().len())
            .finish()
    }
}

impl SpendBook {
    pub fn get(&self, name: &str) -> Option<Arc<Spend>> {
        self.slots.load().get(name).cloned()
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

    /// The writer counts a record of `key`'s (a key without a budget is not counted), and tells
    /// of each level crossed.
    pub(crate) fn add(&self, key: &str, at: i64, usd: f64, tokens: u64, now: i64) {
        let Some(slot) = self.get(key) else { return };
        if at < slot.counting_since {
            return;
        }
        for (st, over) in slot.add(at, usd, tokens, now) {
            if let Some(tx) = self.events.get() {
                let _ = tx.send(GatewayEvent::Budget {
                    key: key.to_owned(),
                    limit: st.limit.as_str().to_owned(),
                    percent: (st.share() * 100.0).round().clamp(0.0, 1000.0) as u32,
                    reached: over,
                    resets_at: st.resets_at.clone(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
