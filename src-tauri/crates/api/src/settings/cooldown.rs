//! `[cooldown]`: how long a failed provider or model rests, by the kind of failure (seconds).

/// The longest any cooldown may be: 30 days. Cooldowns go into `now + cooldown`, so no setting
/// can overflow it.
pub const MAX_COOLDOWN_S: u64 = 30 * 86_400;

section! {
    /// `[cooldown]`
    "cooldown" => Cooldown, CooldownPatch {
        /// After a 429.
        rate_limited => cooldown_rate_limited_s: u64 = 180, range(1, MAX_COOLDOWN_S);
        /// After a 5xx.
        server_error => cooldown_server_error_s: u64 = 600, range(1, MAX_COOLDOWN_S);
        timeout => cooldown_timeout_s: u64 = 300, range(1, MAX_COOLDOWN_S);
        network_error => cooldown_network_error_s: u64 = 120, range(1, MAX_COOLDOWN_S);
        model_not_found => cooldown_model_not_found_s: u64 = 3600, range(1, MAX_COOLDOWN_S);
        /// Repeated trips double the cooldown, up to this many times the base.
        max_multiplier => cooldown_max_multiplier: u32 = 8, range(1, 64);
        /// Each this long of health takes one doubling of the cooldown back.
        decay => cooldown_decay_s: u64 = 3600, range(1, MAX_COOLDOWN_S);
        /// The longest an upstream's `Retry-After` may cool a model down: longer ones are
        /// clamped.
        max_retry_after => cooldown_max_retry_after_s: u64 = 3600, range(1, MAX_COOLDOWN_S);
    }
}
