//! Switchboard's engine: config, store, routing and the HTTP gateway. It names no GUI toolkit and
//! no keychain library; the desktop shell and the keychain backend plug in from outside.
//!
//! Layers, each importing only those before it (docs/architecture.md has the map):
//! the foundations (`config`, `store`, `secrets`, `protocol`, `error`, ...), the domain
//! (`catalog`, `balance`, `breaker`, `health`, `admin_auth`, `usage`, `access`), the engine and
//! its calls to providers (`engine`, `dispatch`), the operations (`service`), the HTTP edge
//! (`server`), and the process (`runtime`).

pub(crate) mod access;
pub(crate) mod admin_auth;
pub(crate) mod auth;
pub(crate) mod balance;
pub(crate) mod bodies;
pub(crate) mod body_budget;
pub(crate) mod breaker;
pub(crate) mod budget;
pub(crate) mod capabilities;
pub(crate) mod catalog;
pub(crate) mod config;
// Public: the agent-client tests drive the real CLIs on the files it writes.
pub mod connect;
pub(crate) mod dispatch;
pub(crate) mod engine;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod metrics;
pub(crate) mod origins;
pub(crate) mod outside;
pub(crate) mod pricing;
pub mod protocol;
pub(crate) mod requestlog;
pub(crate) mod runtime;
pub mod secrets;
pub(crate) mod server;
pub mod service;
pub(crate) mod store;
pub(crate) mod tiers;
pub(crate) mod tokens;
pub mod totp;
pub(crate) mod usage;

// What the shell, the tests, the fuzzers and the benches use; the rest stays inside. Four
// modules are public whole: `protocol` (the conversions, a library of their own), `secrets`
// (the interface a keychain backend implements), `service` (the operations, which the shell
// calls as the admin API does) and `totp` (RFC 6238, which the tests use as an authenticator).
pub use admin_auth::set_password;
pub use balance::{Health, Measures, Score, Sticky, choose, pick, ticks};
pub use breaker::{BreakerRegistry, FailureKind};
pub use budget::{Clock as BudgetClock, SpendBook};
pub use capabilities::{Limits, Needs};
pub use catalog::Snapshot;
pub use config::{
    DEFAULT_PORT, Protocol, Rule, RuleKind, Settings, Strategy, parse as parse_config,
};
pub use engine::{Engine, unix_seconds};
pub use events::GatewayEvent;
pub use runtime::{GatewayHandle, Shutdown, StartError, StartOptions, local_access, start};
pub use serde_json::Value as JsonValue;
pub use server::ui::UiFile;
pub use store::logs_db;
pub use store::logs_stats;
pub use store::{
    CONFIG_DB, KeyRef, LOGS_DB, StoredModel, StoredProvider, StoredState, private_dir,
};
pub use tiers::{Cache as TierCache, Signals, Tiered};
