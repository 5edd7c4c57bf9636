//! What the strategies measure of each (provider, model), kept in its breaker slot (which lives
//! as long as the pair is configured) and updated without a lock on the request path.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::breaker::{FailureKind, Slot};

/// The weight of a new sample in the moving average: a handful of requests move it.
const ALPHA: f64 = 0.3;

/// `price` when nothing prices the pair (a NaN's bits: no price reads as it).
const UNPRICED: u64 = u64::MAX;

/// How long a failure's penalty takes to fall to 1/e of itself with no request at all.
pub const RECOVERY: Duration = Duration::from_secs(60);

/// The share of the remaining penalty a success takes away: a few successes restore a pair.
const SUCCESS_HEALS: f32 = 0.5;

/// A penalty this small is dropped, so a healthy pair reads as exactly healthy (no decay
/// arithmetic on the request path).
const FORGOTTEN: f32 = 0.01;

/// The most a penalty grows to: the worst pair keeps a hundredth of its share, so it is still
/// measured now and then (its breaker, not its health, takes it out of the rotation).
const WORST: f32 = 0.99;

/// How much of the remaining health one failure takes: a 429 (or an exhausted quota, which
/// opens the provider's breaker anyway) a little, a timeout more, a 5xx or a broken connection
/// more still, a refused key or a missing model most.
pub fn penalty(kind: &FailureKind) -> f32 {
    match kind {
        FailureKind::RateLimited { .. } => 0.15,
        FailureKind::Quota => 0.2,
        FailureKind::Timeout => 0.3,
        FailureKind::ServerError => 0.4,
        FailureKind::Network => 0.5,
        FailureKind::Auth | FailureKind::ModelNotFound => 0.6,
    }
}

/// The health clock: tenths of a second since the first call (u32: 13 years). Health is
/// decayed against it rather than against `Instant`, so a reading fits one atomic word.
pub fn ticks(at: Instant) -> u32 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    let tenths = at.saturating_duration_since(epoch).as_millis() / 100;
    u32::try_from(tenths).unwrap_or(u32::MAX)
}

/// A health score in [0.01, 1]: 1 minus a penalty that each failure raises by its kind, that
/// decays with time (by `e` every [`RECOVERY`]) and that each success halves. Packed into one
/// word, the penalty's f32 bits above the tick it was last written at; 0 is "healthy".
#[derive(Debug, Default)]
pub struct Health(AtomicU64);

fn unpack(bits: u64) -> (f32, u32) {
    #[allow(clippy::cast_possible_truncation)]
    let (high, low) = ((bits >> 32) as u32, bits as u32);
    (f32::from_bits(high), low)
}

fn pack(penalty: f32, at: u32) -> u64 {
    if penalty < FORGOTTEN || !penalty.is_finite() {
        return 0;
    }
    (u64::from(penalty.min(WORST).to_bits()) << 32) | u64::from(at)
}

/// The penalty written at `at`, decayed to `now`.
fn decayed((penalty, at): (f32, u32), now: u32) -> f32 {
    let secs = f64::from(now.saturating_sub(at)) / 10.0;
    #[allow(clippy::cast_possible_truncation)]
    let left = (f64::from(penalty) * (-secs / RECOVERY.as_secs_f64()).exp()) as f32;
    left
}

impl Health {
    /// The score at `now` (in [`ticks`]): 1.0 for a pair with no recent failure.
    pub fn at(&self, now: u32) -> f64 {
        let bits = self.0.load(Ordering::Relaxed);
        if bits == 0 {
            return 1.0;
        }
        1.0 - f64::from(decayed(unpack(bits), now))
    }

    pub fn failed(&self, kind: &FailureKind, now: u32) {
        let k = penalty(kind);
        self.update(now, |p| p + (1.0 - p) * k);
    }

    pub fn succeeded(&self, now: u32) {
        if self.0.load(Ordering::Relaxed) != 0 {
            self.update(now, |p| p * (1.0 - SUCCESS_HEALS));
        }
    }

    pub fn clear(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    fn update(&self, now: u32, f: impl Fn(f32) -> f32) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let p = if bits == 0 {
                    0.0
                } else {
                    decayed(unpack(bits), now)
                };
                Some(pack(f(p), now))
            });
    }
}

#[derive(Debug)]
pub struct Live {
    /// Moving average of latency in milliseconds, as f64 bits; 0 before the first sample.
    latency: AtomicU64,
    in_flight: AtomicU32,
    /// The `cost` strategy's effective price, as f64 bits, set when the pricing changes (so the
    /// request path never looks it up).
    price: AtomicU64,
    pub health: Health,
    /// What the pair can take, resolved when the configuration or the price list changes.
    pub caps: arc_swap::ArcSwap<switchboard_api::capabilities::Capabilities>,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            latency: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            price: AtomicU64::new(UNPRICED),
            health: Health::default(),
            caps: Default::default(),
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

    const MINUTE: u32 = 600;

    #[test]
    fn health_falls_by_the_kind_of_failure_and_recovers_with_time() {
        let h = Health::default();
        assert_eq!(h.at(0), 1.0);
        h.failed(&FailureKind::RateLimited { retry_after: None }, 100);
        let after_429 = h.at(100);
        assert!((after_429 - 0.85).abs() < 1e-6, "{after_429}");
        let other = Health::default();
        other.failed(&FailureKind::ServerError, 100);
        let timeout = Health::default();
        timeout.failed(&FailureKind::Timeout, 100);
        assert!(other.at(100) < timeout.at(100) && timeout.at(100) < after_429);
        // Penalties compound but never reach zero health.
        for _ in 0..50 {
            other.failed(&FailureKind::ServerError, 100);
        }
        assert!((other.at(100) - 0.01).abs() < 1e-6, "{}", other.at(100));
        // One RECOVERY later a penalty is 1/e of itself; a few later, forgotten.
        let one = 1.0 - h.at(100 + MINUTE);
        assert!((one - 0.15 / std::f64::consts::E).abs() < 1e-3, "{one}");
        assert!(h.at(100 + 10 * MINUTE) > 0.9999);
        // A clock that went backwards (another thread's earlier reading) decays nothing.
        assert!((h.at(50) - after_429).abs() < 1e-6);
    }

    #[test]
    fn successes_restore_health_quickly() {
        let h = Health::default();
        for _ in 0..5 {
            h.failed(&FailureKind::ServerError, 0);
        }
        assert!(h.at(0) < 0.1);
        let mut n = 0;
        while h.at(0) < 0.95 {
            h.succeeded(0);
            n += 1;
        }
        assert!(n <= 5, "{n} successes");
        for _ in 0..10 {
            h.succeeded(0);
        }
        assert_eq!(
            h.0.load(Ordering::Relaxed),
            0,
            "a tiny penalty is forgotten"
        );
        assert_eq!(h.at(0), 1.0);
    }
}
