//! Things that happened inside the gateway, broadcast to whoever listens (the tray, the admin
//! UI's live view, `/api/events`). Sending never blocks: a slow listener misses events, not the
//! gateway.

use serde::Serialize;
use tokio::sync::broadcast;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GatewayEvent {
    /// A new snapshot (config, providers, models, keys) is live.
    ConfigApplied {
        providers: usize,
        models: usize,
    },
    /// A breaker opened, went half-open or closed. `model` is absent for a provider's breaker.
    Breaker {
        provider: String,
        model: Option<String>,
        state: switchboard_api::BreakerState,
        reason: Option<&'static str>,
        /// Unix seconds; absent when closed or open until reset.
        until: Option<u64>,
    },
    ProviderPaused {
        provider: String,
        /// Unix seconds when the pause ends by itself.
        until: Option<u64>,
    },
    ProviderResumed {
        provider: String,
    },
    ModelsSynced {
        provider: String,
        models: usize,
        error: Option<String>,
    },
    /// A provider (`relay`) or one of its models (`relay/model`) crossed its quota's warning share
    /// (`reached` false) or a limit.
    Quota {
        scope: String,
        limit: String,
        percent: u32,
        reached: bool,
        resets_at: String,
    },
    /// A client key's spend crossed its budget's warning share (`reached` false) or a limit.
    Budget {
        key: String,
        /// `daily_usd`, `monthly_usd`, `daily_tokens` or `monthly_tokens`.
        limit: String,
        percent: u32,
        reached: bool,
        /// RFC 3339, in the budget's time zone.
        resets_at: String,
    },
}

pub fn channel() -> broadcast::Sender<GatewayEvent> {
    broadcast::channel(256).0
}
