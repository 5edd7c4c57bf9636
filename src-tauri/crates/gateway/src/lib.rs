//! Switchboard's engine: config, store, routing and the HTTP gateway. It names no GUI toolkit and
//! no keychain library; the desktop shell and the keychain backend plug in from outside.
//!
//! Layers, each importing only those before it (docs/architecture.md has the map):
//! the foundations (`config`, `store`, `secrets`, `protocol`, `error`, ...), the domain
//! (`catalog`, `balance`, `breaker`, `health`, `admin_auth`, `usage`, `access`), the engine and
//! its calls to providers (`engine`, `dispatch`), the operations (`service`), the HTTP edge
//! (`server`), and the process (`runtime`).

pub(crate) mod access;
pub mod admin_auth;
pub(crate) mod auth;
pub mod balance;
pub(crate) mod body_budget;
pub mod breaker;
pub mod catalog;
pub mod config;
pub(crate) mod dispatch;
pub mod engine;
pub mod error;
pub mod events;
pub(crate) mod health;
pub(crate) mod origins;
pub(crate) mod outside;
pub mod protocol;
pub(crate) mod requestlog;
pub(crate) mod runtime;
pub mod secrets;
pub(crate) mod server;
pub mod service;
pub mod store;
pub mod totp;
pub(crate) mod usage;

pub use runtime::{GatewayHandle, Shutdown, StartError, StartOptions, start};
pub use server::ui::UiFile;
