//! What the strategies measure of each (provider, model), kept in its breaker slot (which lives
//! as long as the pair is configured) and updated without a lock on the request path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::breaker::Slot;

/// The weight of a new sample in the moving average: a handful of requests move it.
const ALPHA: f64 = 0.3;

/// `price` when nothing prices the pair (a NaN's bits: no price reads as it).
const UNPRICED: u64 = u64::MAX;

#[derive(Debug)]
pub struct Live {
    /// Moving average of latency in milliseconds, as f64 bits; 0 before the first sample.
    latency: AtomicU64,
    in_flight: AtomicU32,
    /// The `cost` strategy's effective price, as f64 bits, set when the pricing changes (so the
    /// request path never looks it up).
    price: AtomicU64,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            latency: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            price: AtomicU64::new(UNPRICED),
        }
    }
}

impl Live {
    pub fn price(&self) -> Option<f64> {
        let bits = self.price.load(Ordering::Relaxed);
        (bits != UNPRICED).then(|| f64::from_bits(bits))
    }

    pub fn set_price(&self, usd: Option<f64>) {
        let bits = usd.filter(|p| p.is_finite()).map_or(UNPRICED, f64::to_bits);
        self.price.store(bits, Ordering::Relaxed);
    }

    /// Time to first content for streams, total latency for plain answers.
    pub fn latency_ms(&self) -> Option<f64> {
        let bits = self.latency.load(Ordering::Relaxed);
        (bits != 0).then(|| f64::from_bits(bits))
    }

    pub fn observe(&self, took: Duration) {
        // At least a microsecond, so a sample never reads as "not measured".
        let sample = (took.as_secs_f64() * 1000.0).max(0.001);
        let _ = self
            .latency
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let next = if bits == 0 {
                    sample
                } else {
                    let old = f64::from_bits(bits);
                    old + ALPHA * (sample - old)
                };
                Some(next.to_bits())
            });
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// One request in flight at a pair, until dropped (with the response's body, for a stream).
#[derive(Debug)]
pub struct Busy(Arc<Slot>);

impl Busy {
    pub fn enter(slot: &Arc<Slot>) -> Self {
        slot.live.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(slot.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.live.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_starts_at_the_first_sample_and_follows() {
        let l = Live::default();
        assert_eq!(l.latency_ms(), None);
        l.observe(Duration::from_millis(100));
        assert!((l.latency_ms().unwrap() - 100.0).abs() < 1e-9);
        for _ in 0..30 {
            l.observe(Duration::from_millis(10));
        }
        assert!((l.latency_ms().unwrap() - 10.0).abs() < 0.1);
        assert_eq!(l.price(), None);
        l.set_price(Some(0.0));
        assert_eq!(l.price(), Some(0.0), "free is a price");
        l.set_price(Some(f64::NAN));
        assert_eq!(l.price(), None);
    }
}
