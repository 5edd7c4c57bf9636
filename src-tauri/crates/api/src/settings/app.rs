//! `[app]`: the desktop app's own preferences; `serve` keeps them but does not use them.

section! {
    /// `[app]`
    "app" => App, AppPatch {
        /// A notification when a provider trips or recovers.
        notifications => notifications: bool = true;
        /// Start in the tray at login.
        start_at_login => start_at_login: bool = false;
    }
}
