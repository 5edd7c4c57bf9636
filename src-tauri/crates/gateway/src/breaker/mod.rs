//! Circuit breakers: a small synchronous state machine per provider and per (provider, model).
//! Time is a parameter (`now`), never read inside, so tests drive it with a fake clock.

mod registry;

use std::time::{Duration, Instant};

pub use registry::{BreakerRegistry, Slot, Transition};

/// Why an attempt failed, as far as the breakers care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// 401/403: the key or base URL is wrong. Open until it changes or a person resets it.
    Auth,
    /// 402 or a quota message: the account is out of credit.
    Quota,
    /// Connect, TLS or reset before any byte.
    Network,
    /// First byte, idle or total timeout.
    Timeout,
    /// 429 (with the upstream's Retry-After when given), or a retry keyword in a 200 answer.
    RateLimited { retry_after: Option<Duration> },
    /// 5xx.
    ServerError,
    /// 404 naming the model: the provider no longer has it.
    ModelNotFound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    Provider,
    Model,
}

impl FailureKind {
    pub fn layer(&self) -> Layer {
        match self {
            Self::Auth | Self::Quota | Self::Network => Layer::Provider,
            Self::Timeout | Self::RateLimited { .. } | Self::ServerError | Self::ModelNotFound => {
                Layer::Model
            }
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Self::Auth => "auth failed",
            Self::Quota => "quota exhausted",
            Self::Network => "network error",
            Self::Timeout => "timeout",
            Self::RateLimited { .. } => "rate limited",
            Self::ServerError => "server error",
            Self::ModelNotFound => "model not found",
        }
    }
}

/// Thresholds and durations: all settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub rate_limited: Duration,
    pub server_error: Duration,
    pub timeout: Duration,
    pub network_error: Duration,
    pub model_not_found: Duration,
    /// Consecutive network failures before a provider opens.
    pub network_threshold: u32,
    /// Consecutive 5xx before a model opens.
    pub server_error_threshold: u32,
    /// Cooldowns double on each failed half-open trial, up to this factor.
    pub max_multiplier: u32,
    /// Each this long of health takes one doubling back.
    pub decay: Duration,
    /// A half-open trial that never reports back frees its slot after this long.
    pub trial_timeout: Duration,
    /// An upstream's `Retry-After` cools for at most this long.
    pub max_retry_after: Duration,
}

impl Policy {
    pub fn from_settings(s: &crate::config::Settings) -> Self {
        let secs = Duration::from_secs;
        let c = &s.cooldown;
        Self {
            rate_limited: secs(c.cooldown_rate_limited_s),
            server_error: secs(c.cooldown_server_error_s),
            timeout: secs(c.cooldown_timeout_s),
            network_error: secs(c.cooldown_network_error_s),
            model_not_found: secs(c.cooldown_model_not_found_s),
            network_threshold: s.routing.network_failure_threshold,
            server_error_threshold: s.routing.server_error_threshold,
            max_multiplier: c.cooldown_max_multiplier,
            decay: secs(c.cooldown_decay_s.max(1)),
            max_retry_after: secs(c.cooldown_max_retry_after_s),
            trial_timeout: s.server.request_timeout(),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            rate_limited: Duration::from_secs(180),
            server_error: Duration::from_secs(600),
            timeout: Duration::from_secs(300),
            network_error: Duration::from_secs(120),
            model_not_found: Duration::from_secs(3600),
            network_threshold: 3,
            server_error_threshold: 1,
            max_multiplier: 8,
            decay: Duration::from_secs(3600),
            trial_timeout: Duration::from_secs(120),
            max_retry_after: Duration::from_secs(3600),
        }
    }
}

impl Policy {
    fn base_cooldown(&self, kind: &FailureKind) -> Duration {
        match kind {
            FailureKind::Auth => Duration::MAX,
            FailureKind::Quota | FailureKind::RateLimited { .. } => self.rate_limited,
            FailureKind::Network => self.network_error,
            FailureKind::Timeout => self.timeout,
            FailureKind::ServerError => self.server_error,
            FailureKind::ModelNotFound => self.model_not_found,
        }
    }

    fn threshold(&self, kind: &FailureKind) -> u32 {
        match kind {
            FailureKind::Network => self.network_threshold.max(1),
            FailureKind::ServerError => self.server_error_threshold.max(1),
            _ => 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Closed,
    /// `until: None` stays open until reset (auth failures).
    Open {
        until: Option<Instant>,
    },
    HalfOpen,
}

/// What a caller may do with a candidate right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Allowed as the one half-open trial: report its outcome.
    Trial,
    Refused,
}

#[derive(Clone, Debug)]
pub struct Breaker {
    pub state: State,
    pub reason: Option<&'static str>,
    pub last_error: Option<String>,
    consecutive: u32,
    /// Number of doublings applied to the next cooldown.
    level: u32,
    healthy_since: Option<Instant>,
    pub(crate) trial_started: Option<Instant>,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            state: State::Closed,
            reason: None,
            last_error: None,
            consecutive: 0,
            level: 0,
            healthy_since: None,
            trial_started: None,
        }
    }
}

impl Breaker {
    /// Whether a request may go to this candidate; moves an expired Open to HalfOpen.
    pub fn admit(&mut self, now: Instant, policy: &Policy) -> Admission {
        match self.state {
            State::Closed => Admission::Allowed,
            State::Open { until: None } => Admission::Refused,
            State::Open { until: Some(t) } if now < t => Admission::Refused,
            State::Open { .. } => {
                self.state = State::HalfOpen;
                self.trial_started = Some(now);
                Admission::Trial
            }
            State::HalfOpen => match self.trial_started {
                Some(t) if now.saturating_duration_since(t) < policy.trial_timeout => {
                    Admission::Refused
                }
                _ => {
                    self.trial_started = Some(now);
                    Admission::Trial
                }
            },
        }
    }

    /// Frees the trial begun at `started` if it is still in flight: it ended without saying
    /// anything of this breaker (a failure of the other layer, the client's own mistake, the
    /// client gone), so the next request may try at once. Returns whether it was freed.
    pub fn release_trial(&mut self, started: Instant) -> bool {
        if self.state == State::HalfOpen && self.trial_started == Some(started) {
            self.trial_started = None;
            return true;
        }
        false
    }

    /// Would [`Breaker::admit`] let a request through (without taking the trial)?
    pub fn available(&self, now: Instant, policy: &Policy) -> bool {
        match self.state {
            State::Closed => true,
            State::Open { until: None } => false,
            State::Open { until: Some(t) } => now >= t,
            State::HalfOpen => self
                .trial_started
                .is_none_or(|t| now.saturating_duration_since(t) >= policy.trial_timeout),
        }
    }

    /// Closed with nothing counted: indistinguishable from a breaker never touched.
    pub fn pristine(&self) -> bool {
        self.state == State::Closed && self.consecutive == 0 && self.level == 0
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    pub fn until(&self) -> Option<Instant> {
        match self.state {
            State::Open { until } => until,
            _ => None,
        }
    }

    /// Returns true when the state changed.
    pub fn on_success(&mut self, now: Instant, policy: &Policy) -> bool {
        self.consecutive = 0;
        self.trial_started = None;
        let changed = self.state != State::Closed;
        if changed {
            self.state = State::Closed;
            self.reason = None;
            self.healthy_since = Some(now);
        }
        let since = *self.healthy_since.get_or_insert(now);
        if self.level > 0 && now.saturating_duration_since(since) >= policy.decay {
            let steps = (now.saturating_duration_since(since).as_secs()
                / policy.decay.as_secs().max(1)) as u32;
            self.level = self.level.saturating_sub(steps.max(1));
            self.healthy_since = Some(now);
        }
        changed
    }

    /// Returns true when the state changed.
    pub fn on_failure(
        &mut self,
        kind: &FailureKind,
        error: &str,
        now: Instant,
        policy: &Policy,
    ) -> bool {
        self.last_error = Some(error.chars().take(500).collect());
        self.healthy_since = None;
        let was = self.state;
        let trial_failed = was == State::HalfOpen;
        self.trial_started = None;
        self.consecutive = self.consecutive.saturating_add(1);
        if !trial_failed && self.consecutive < policy.threshold(kind) {
            return false;
        }
        if trial_failed {
            let max_level = policy.max_multiplier.max(1).ilog2();
            self.level = (self.level + 1).min(max_level);
        }
        let until = if *kind == FailureKind::Auth {
            None
        } else {
            let base = policy.base_cooldown(kind);
            let mut cooldown = base.saturating_mul(1 << self.level);
            if let FailureKind::RateLimited {
                retry_after: Some(ra),
            } = kind
            {
                if *ra > policy.max_retry_after {
                    tracing::warn!(
                        retry_after_s = ra.as_secs(),
                        max_s = policy.max_retry_after.as_secs(),
                        "the upstream's Retry-After is beyond cooldown.max_retry_after; clamped"
                    );
                }
                cooldown = (*ra).min(policy.max_retry_after);
            }
            // Bounded above, but an Instant can still overflow near its end: never panic.
            let mut until = now
                .checked_add(cooldown)
                .unwrap_or_else(|| now + Duration::from_secs(crate::config::MAX_COOLDOWN_S));
            // A later, shorter value never shortens a running cooldown.
            if let State::Open { until: Some(t) } = was {
                until = until.max(t);
            }
            Some(until)
        };
        self.state = State::Open { until };
        self.reason = Some(kind.reason());
        was != self.state
    }

    pub fn reset(&mut self) -> bool {
        let changed = self.state != State::Closed;
        *self = Self::default();
        changed
    }
}

#[cfg(test)]
mod tests;
