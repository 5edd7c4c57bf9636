//! Every end-to-end test of the app in one binary: each area is a module, so `tests/common` and
//! the whole app are compiled and linked once, not once per area. The desktop tests need the
//! tray app, so they build only with the `desktop` feature.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod admin_api;
mod admin_security;
mod agent_clients;
mod budgets;
mod capabilities;
mod connect_cli;
#[cfg(feature = "desktop")]
mod desktop;
mod keychain;
mod metrics;
mod openai_path;
#[cfg(feature = "desktop")]
mod packages;
mod pricing;
mod protocols;
mod request_log;
mod routing;
mod sdk_clients;
mod serve_cli;
mod strategies;
mod tiers;
mod ui_browser;
