//! Effective settings: defaults, overlaid by what the database holds (imported from the config
//! file or set in the admin UI), overlaid by command-line flags and environment at start.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SettingsPatch;

pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 7340;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub request_timeout_s: u64,
    pub max_body_mb: u64,
    /// Web origins (`https://chat.example`, or `*`) whose pages may call the client API; any
    /// other foreign Origin or Host is refused.
    pub allowed_origins: Vec<String>,
    /// How long a connection may wait for a request's headers, idle keep-alive included.
    pub header_timeout_s: u64,
    /// How long reading one request body may take.
    pub body_timeout_s: u64,
    /// Open client connections at once; more are refused (and logged).
    pub max_connections: u32,
    /// Request-body bytes held at once across all requests; a body waits for room.
    pub body_budget_mb: u64,
    pub retry_on_keywords: Vec<String>,
    pub max_attempts: u32,
    pub cooldown_rate_limited_s: u64,
    pub cooldown_server_error_s: u64,
    pub cooldown_timeout_s: u64,
    pub cooldown_network_error_s: u64,
    pub cooldown_model_not_found_s: u64,
    pub cooldown_max_multiplier: u32,
    /// Each this long of health takes one doubling of the cooldown back.
    pub cooldown_decay_s: u64,
    /// The longest an upstream's `Retry-After` may cool a model down: longer ones are clamped.
    pub cooldown_max_retry_after_s: u64,
    pub first_byte_timeout_s: u64,
    pub stream_idle_timeout_s: u64,
    pub sync_interval_s: u64,
    pub network_failure_threshold: u32,
    pub server_error_threshold: u32,
    /// Seconds between active probes of every candidate; 0 turns probes off.
    pub probe_interval_s: u64,
    /// Desktop: a notification when a provider trips or recovers.
    pub notifications: bool,
    /// Desktop: start in the tray at login.
    pub start_at_login: bool,
    /// Failed admin logins in a row that lock login for [`Self::lockout_s`].
    pub max_failed_logins: u32,
    pub lockout_s: u64,
    /// How long an admin session (a login's token) lasts.
    pub session_ttl_s: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
            request_timeout_s: 120,
            max_body_mb: 32,
            allowed_origins: Vec::new(),
            header_timeout_s: 30,
            body_timeout_s: 60,
            max_connections: 1024,
            body_budget_mb: 256,
            retry_on_keywords: Vec::new(),
            max_attempts: 4,
            cooldown_rate_limited_s: 180,
            cooldown_server_error_s: 600,
            cooldown_timeout_s: 300,
            cooldown_network_error_s: 120,
            cooldown_model_not_found_s: 3600,
            cooldown_max_multiplier: 8,
            cooldown_decay_s: 3600,
            cooldown_max_retry_after_s: 3600,
            first_byte_timeout_s: 60,
            stream_idle_timeout_s: 120,
            sync_interval_s: 6 * 3600,
            network_failure_threshold: 3,
            server_error_threshold: 1,
            probe_interval_s: 0,
            notifications: true,
            start_at_login: false,
            max_failed_logins: 5,
            lockout_s: 15 * 60,
            session_ttl_s: 12 * 3600,
        }
    }
}

impl Settings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_s)
    }

    pub fn first_byte_timeout(&self) -> Duration {
        Duration::from_secs(self.first_byte_timeout_s)
    }

    pub fn stream_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.stream_idle_timeout_s)
    }

    pub fn breaker_policy(&self) -> crate::breaker::Policy {
        let s = Duration::from_secs;
        crate::breaker::Policy {
            rate_limited: s(self.cooldown_rate_limited_s),
            server_error: s(self.cooldown_server_error_s),
            timeout: s(self.cooldown_timeout_s),
            network_error: s(self.cooldown_network_error_s),
            model_not_found: s(self.cooldown_model_not_found_s),
            network_threshold: self.network_failure_threshold,
            server_error_threshold: self.server_error_threshold,
            max_multiplier: self.cooldown_max_multiplier,
            decay: s(self.cooldown_decay_s.max(1)),
            max_retry_after: s(self.cooldown_max_retry_after_s),
            trial_timeout: s(self.request_timeout_s),
        }
    }

    pub fn login_policy(&self) -> crate::admin_auth::LoginPolicy {
        crate::admin_auth::LoginPolicy {
            max_failures: self.max_failed_logins.max(1),
            lockout: Duration::from_secs(self.lockout_s),
        }
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_s)
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_s.max(1))
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_s.max(1))
    }

    pub fn max_body_bytes(&self) -> usize {
        usize::try_from(self.max_body_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }
}

impl SettingsPatch {
    /// The patch as (key, JSON value) pairs named like the fields of [`Settings`], for the
    /// settings table.
    pub fn entries(&self) -> Vec<(&'static str, serde_json::Value)> {
        let mut out = Vec::new();
        // The patch's fields are named like the settings' so one list serves both.
        macro_rules! put {
            ($($field:ident),* $(,)?) => {$(
                if let Some(v) = &self.$field {
                    out.push((stringify!($field), serde_json::json!(v)));
                }
            )*};
        }
        put!(
            host,
            port,
            request_timeout_s,
            max_body_mb,
            allowed_origins,
            header_timeout_s,
            body_timeout_s,
            max_connections,
            body_budget_mb,
            retry_on_keywords,
            max_attempts,
            cooldown_rate_limited_s,
            cooldown_server_error_s,
            cooldown_timeout_s,
            cooldown_network_error_s,
            cooldown_model_not_found_s,
            cooldown_max_multiplier,
            cooldown_decay_s,
            cooldown_max_retry_after_s,
            first_byte_timeout_s,
            stream_idle_timeout_s,
            sync_interval_s,
            network_failure_threshold,
            server_error_threshold,
            probe_interval_s,
            notifications,
            start_at_login,
            max_failed_logins,
            lockout_s,
            session_ttl_s,
        );
        out
    }
}
