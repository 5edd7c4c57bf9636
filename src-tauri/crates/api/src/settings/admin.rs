//! `[admin]`: admin login, how many failed attempts lock it and for how long, and how long a
//! session lasts.

use std::time::Duration;

section! {
    /// `[admin]`
    "admin" => Admin, AdminPatch {
        /// Failed admin logins in a row that lock login for `lockout_s`.
        max_failed_logins => max_failed_logins: u32 = 5, range(1, 1000);
        lockout_s => lockout_s: u64 = 15 * 60, range(1, 7 * 86_400);
        /// How long an admin session (a login's token) lasts.
        session_ttl_s => session_ttl_s: u64 = 12 * 3600, range(10, 30 * 86_400);
    }
}

impl Admin {
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_s)
    }

    pub fn lockout(&self) -> Duration {
        Duration::from_secs(self.lockout_s)
    }
}
