//! Passive health: every attempt's outcome is classified for the breakers and kept in a small
//! per (provider, model) record for the status page.

mod classify;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

pub(crate) use classify::failure_kind;

/// The last outcomes, latency and time to first byte of one (provider, model).
#[derive(Clone, Debug, Default)]
pub struct HealthRecord {
    /// Bit i set: the i-th most recent of the last `total` outcomes failed.
    window: u64,
    total: u32,
    pub latency_ewma_ms: Option<f64>,
    pub ttfb_ewma_ms: Option<f64>,
    pub last_error: Option<String>,
    pub last_success: Option<SystemTime>,
    pub last_failure: Option<SystemTime>,
    /// Since start, for the overview's counts (the window above forgets).
    pub requests: u64,
    pub failures: u64,
}

const WINDOW: u32 = 64;
const ALPHA: f64 = 0.2;

fn ewma(old: Option<f64>, sample: f64) -> Option<f64> {
    Some(old.map_or(sample, |o| o + ALPHA * (sample - o)))
}

impl HealthRecord {
    pub fn record(
        &mut self,
        ok: bool,
        latency: Duration,
        ttfb: Option<Duration>,
        error: Option<&str>,
    ) {
        self.window = (self.window << 1) | u64::from(!ok);
        self.total = (self.total + 1).min(WINDOW);
        self.requests += 1;
        self.failures += u64::from(!ok);
        if ok {
            self.last_success = Some(SystemTime::now());
            self.latency_ewma_ms = ewma(self.latency_ewma_ms, latency.as_secs_f64() * 1000.0);
            if let Some(t) = ttfb {
                self.ttfb_ewma_ms = ewma(self.ttfb_ewma_ms, t.as_secs_f64() * 1000.0);
            }
        } else {
            self.last_failure = Some(SystemTime::now());
            self.last_error = error.map(|e| e.chars().take(500).collect());
        }
    }

    /// Share of successes over the last (up to 64) outcomes; None before the first.
    pub fn success_rate(&self) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let mask = if self.total >= 64 {
            u64::MAX
        } else {
            (1u64 << self.total) - 1
        };
        let failures = (self.window & mask).count_ones();
        Some(f64::from(self.total - failures) / f64::from(self.total))
    }

    pub fn samples(&self) -> u32 {
        self.total
    }
}

/// (provider uid, model id).
type ModelKey = (Arc<str>, Arc<str>);

#[derive(Default)]
pub struct HealthBook {
    records: Mutex<HashMap<ModelKey, HealthRecord>>,
}

impl HealthBook {
    pub fn record(
        &self,
        provider: &Arc<str>,
        model: &Arc<str>,
        ok: bool,
        latency: Duration,
        ttfb: Option<Duration>,
        error: Option<&str>,
    ) {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records
            .entry((provider.clone(), model.clone()))
            .or_default()
            .record(ok, latency, ttfb, error);
    }

    /// Forgets the records of (provider, model) pairs that are gone from the configuration.
    pub fn retain(&self, pairs: &std::collections::HashSet<(&str, &str)>) {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records.retain(|(uid, model), _| pairs.contains(&(&**uid, &**model)));
    }

    pub fn get(&self, provider: &Arc<str>, model: &Arc<str>) -> Option<HealthRecord> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records.get(&(provider.clone(), model.clone())).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_rate_over_a_sliding_window() {
        let mut h = HealthRecord::default();
        assert_eq!(h.success_rate(), None);
        for i in 0..10 {
            h.record(i % 2 == 0, Duration::from_millis(100), None, Some("x"));
        }
        assert_eq!(h.success_rate(), Some(0.5));
        for _ in 0..64 {
            h.record(
                true,
                Duration::from_millis(100),
                Some(Duration::from_millis(10)),
                None,
            );
        }
        assert_eq!(h.success_rate(), Some(1.0), "old failures slid out");
        assert_eq!(h.samples(), 64);
        assert!((h.latency_ewma_ms.unwrap() - 100.0).abs() < 1e-6);
        assert_eq!(h.last_error.as_deref(), Some("x"));
    }
}
