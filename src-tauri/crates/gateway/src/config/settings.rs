//! Effective settings: defaults, overlaid by what the database holds (imported from the config
//! file or set in the admin UI), overlaid by command-line flags and environment at start. The
//! sections are defined once, in `switchboard_api::settings`, which the admin UI shares.

pub use switchboard_api::settings::{
    AdminPatch, AppPatch, CooldownPatch, DEFAULT_PORT, LogsPatch, MAX_COOLDOWN_S, OutOfRange,
    PricingPatch, RoutingPatch, SECTIONS, ServerPatch, Settings, SettingsPatch,
};
