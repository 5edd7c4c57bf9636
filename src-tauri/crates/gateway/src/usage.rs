//! What each client key is doing right now: its requests in the last minute (for its limit) and
//! when it was last used. In memory, behind one short lock; last-used times reach the database
//! in batches from a background task, never from the request path.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::auth::KeyHash;

const WINDOW: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Slot {
    /// Start times of the requests admitted in the last minute (at most the limit).
    recent: VecDeque<Instant>,
    last_used: u64,
    /// Used since the last flush to the database.
    dirty: bool,
}

#[derive(Default)]
pub struct KeyUsage {
    slots: Mutex<HashMap<KeyHash, Slot>>,
}

impl KeyUsage {
    /// Counts a request for `key` at `now` (`unix` seconds for the record). With a limit of
    /// `rpm` requests a minute, a request over it is refused: `Err(wait)` says how long until
    /// one more fits.
    pub fn admit(
        &self,
        key: KeyHash,
        rpm: Option<u32>,
        now: Instant,
        unix: u64,
    ) -> Result<(), Duration> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = slots.entry(key).or_default();
        slot.last_used = unix;
        slot.dirty = true;
        let Some(limit) = rpm else {
            return Ok(());
        };
        while slot
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            slot.recent.pop_front();
        }
        if slot.recent.len() >= limit as usize {
            let oldest = slot.recent.front().copied().unwrap_or(now);
            return Err(WINDOW.saturating_sub(now.duration_since(oldest)));
        }
        slot.recent.push_back(now);
        Ok(())
    }

    pub fn last_used(&self, key: &KeyHash) -> Option<u64> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.get(key).map(|s| s.last_used)
    }

    /// The keys used since the last call, with when.
    pub fn take_dirty(&self) -> Vec<(KeyHash, u64)> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots
            .iter_mut()
            .filter(|(_, s)| s.dirty)
            .map(|(k, s)| {
                s.dirty = false;
                (*k, s.last_used)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_a_sliding_minute() {
        let u = KeyUsage::default();
        let k = KeyHash::of("sk-sb-x");
        let t0 = Instant::now();
        assert!(u.admit(k, Some(2), t0, 100).is_ok());
        assert!(
            u.admit(k, Some(2), t0 + Duration::from_secs(10), 110)
                .is_ok()
        );
        assert_eq!(
            u.admit(k, Some(2), t0 + Duration::from_secs(20), 120),
            Err(Duration::from_secs(40))
        );
        // The first request leaves the window: one more fits.
        assert!(
            u.admit(k, Some(2), t0 + Duration::from_secs(60), 160)
                .is_ok()
        );
        assert!(u.admit(k, None, t0, 170).is_ok(), "no limit, no refusal");
        assert_eq!(u.last_used(&k), Some(170));
        assert_eq!(u.take_dirty(), vec![(k, 170)]);
        assert!(u.take_dirty().is_empty());
    }
}
