//! `[routing]`: attempts, timeouts while waiting on an upstream, model-list sync and probes.

use std::time::Duration;

section! {
    /// `[routing]`
    "routing" => Routing, RoutingPatch {
        /// A 200 reply whose body holds one of these fails over.
        retry_on_keywords => retry_on_keywords: Vec<String> = Vec::new();
        max_attempts => max_attempts: u32 = 4, range(1, 20);
        first_byte_timeout_s => first_byte_timeout_s: u64 = 60, range(1, 3600);
        stream_idle_timeout_s => stream_idle_timeout_s: u64 = 120, range(1, 3600);
        sync_interval_s => sync_interval_s: u64 = 6 * 3600, range(1, 30 * 86_400);
        /// Network failures in a row that open a provider's breaker.
        network_failure_threshold => network_failure_threshold: u32 = 3, range(1, 100);
        /// Server errors in a row that open a model's breaker.
        server_error_threshold => server_error_threshold: u32 = 1, range(1, 100);
        /// Seconds between active probes of every candidate; 0 turns probes off.
        probe_interval_s => probe_interval_s: u64 = 0, range(0, 86_400);
        /// Parameters every request gets when it does not set them (`max_tokens`,
        /// `temperature`, ...); a unified model's own `default_params` win over these.
        default_params => default_params: serde_json::Map<String, serde_json::Value> =
            serde_json::Map::new();
    }
}

impl Routing {
    pub fn first_byte_timeout(&self) -> Duration {
        Duration::from_secs(self.first_byte_timeout_s)
    }

    pub fn stream_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.stream_idle_timeout_s)
    }
}
