//! Switchboard's engine: config, store, routing and the HTTP gateway. It names no GUI toolkit and
//! no keychain library; the desktop shell and the keychain backend plug in from outside.

pub mod auth;
pub mod catalog;
pub mod config;
pub mod dispatch;
pub mod engine;
pub mod error;
pub mod events;
pub mod origins;
pub mod outside;
pub mod protocol;
pub mod requestlog;
pub mod secrets;
pub mod server;
pub mod store;
pub mod totp;
pub mod usage;

pub use engine::{GatewayHandle, Shutdown, StartError, StartOptions, start};
pub use server::ui::UiFile;
pub mod admin_auth;
pub mod balance;
pub mod breaker;
pub mod health;
pub mod service;
