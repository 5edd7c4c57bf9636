//! Things that happened inside the gateway, broadcast to whoever listens (the tray, the admin
//! UI's live view). Sending never blocks: a slow listener misses events, not the gateway.

use tokio::sync::broadcast;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayEvent {
    /// A new snapshot (config, providers, models, keys) is live.
    ConfigApplied { providers: usize, models: usize },
}

pub fn channel() -> broadcast::Sender<GatewayEvent> {
    broadcast::channel(256).0
}
