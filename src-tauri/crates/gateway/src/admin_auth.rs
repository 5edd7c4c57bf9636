//! Admin access: an argon2id password hash (in the settings table; a hash, not a secret) and
//! short-lived session tokens held in memory, stored by their SHA-256.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::auth::KeyHash;

pub const MIN_PASSWORD_LEN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the admin password must be at least {MIN_PASSWORD_LEN} characters")]
    TooShort,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(PasswordError::TooShort);
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Sets (or resets) the admin password in the database of `data_dir`, for
/// `switchboard admin set-password`. A running gateway reads the hash at each login, so the new
/// password works at once, and it ends the sessions of the old one within seconds.
pub fn set_password(data_dir: &std::path::Path, password: &str) -> Result<(), String> {
    let hash = hash_password(password).map_err(|e| e.to_string())?;
    crate::store::private_dir(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let path = data_dir.join(crate::engine::CONFIG_DB);
    let mut conn = crate::store::open_connection(&path).map_err(|e| e.to_string())?;
    crate::store::migrate(&mut conn).map_err(|e| e.to_string())?;
    crate::store::set_admin_password_hash(&conn, &hash).map_err(|e| e.to_string())
}

#[derive(Default)]
pub struct Sessions {
    tokens: Mutex<HashMap<KeyHash, Instant>>,
    /// The tokens that a password login gave (not the desktop window's): a new password ends
    /// these.
    logins: Mutex<std::collections::HashSet<KeyHash>>,
}

impl Sessions {
    /// A new token for a password login, valid for `ttl`.
    pub fn issue_login(&self, ttl: Duration) -> Result<String, getrandom::Error> {
        let token = self.issue(ttl)?;
        let mut logins = self.logins.lock().unwrap_or_else(PoisonError::into_inner);
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        logins.retain(|h| tokens.contains_key(h));
        logins.insert(KeyHash::of(&token));
        Ok(token)
    }

    /// A new random token, valid for `ttl`.
    pub fn issue(&self, ttl: Duration) -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let token = hex::encode(bytes);
        let now = Instant::now();
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.retain(|_, until| *until > now);
        tokens.insert(KeyHash::of(&token), now + ttl);
        Ok(token)
    }

    pub fn valid(&self, token: &str) -> bool {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens
            .get(&KeyHash::of(token))
            .is_some_and(|until| *until > Instant::now())
    }

    /// Logout: the token stops working at once. Answers whether it was a live token.
    pub fn revoke(&self, token: &str) -> bool {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.remove(&KeyHash::of(token)).is_some()
    }

    /// Every password login's session ends (a new password was set); the desktop window,
    /// which never knew the password, keeps its token.
    pub fn revoke_logins(&self) {
        let mut logins = self.logins.lock().unwrap_or_else(PoisonError::into_inner);
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        for h in logins.drain() {
            tokens.remove(&h);
        }
    }
}

/// How many failed logins in a row lock login, and for how long (settings `[admin]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginPolicy {
    pub max_failures: u32,
    pub lockout: Duration,
}

/// Guessing the password is slowed by argon2 and stopped by this: after `max_failures`
/// failures in a row, login is locked for `lockout`, for every caller (a guesser can change
/// addresses; the person at the machine can wait or reset the password). A new password
/// (`switchboard admin set-password`, even from another process) lifts the lock.
///
/// Attempts still being judged count against the limit too: a burst of concurrent guesses
/// cannot all pass the check before the first is judged, and a success does not forget them.
#[derive(Default)]
pub struct LoginGuard {
    state: Mutex<Lock>,
}

#[derive(Default)]
struct Lock {
    /// Judged failures in a row.
    failures: u32,
    /// Admitted attempts not judged yet.
    pending: u32,
    until: Option<Instant>,
    /// The password hash the failures were against.
    hash: String,
}

/// Why an attempt was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Locked for this much longer.
    Locked(Duration),
    /// As many attempts are being judged as may still fail before the lock: wait for them.
    Busy,
}

impl LoginGuard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Lock> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits one attempt against the password `hash`. Judge it with [`Attempt::failed`] or
    /// [`Attempt::succeeded`]; dropped unjudged (the caller went away), it counts as failed.
    pub fn begin(
        &self,
        now: Instant,
        hash: &str,
        policy: LoginPolicy,
    ) -> Result<Attempt<'_>, Refused> {
        let mut s = self.lock();
        if s.hash != hash {
            s.hash = hash.to_owned();
            s.failures = 0;
            s.until = None;
        }
        match s.until {
            Some(until) if until > now => return Err(Refused::Locked(until - now)),
            Some(_) => {
                s.failures = 0;
                s.until = None;
            }
            None => {}
        }
        if s.failures + s.pending >= policy.max_failures.max(1) {
            return Err(Refused::Busy);
        }
        s.pending += 1;
        Ok(Attempt {
            guard: self,
            policy,
            at: now,
            judged: false,
        })
    }

    /// `at`: when the attempt began; a lock it sets runs from then (argon2 takes a moment).
    fn judge(&self, ok: bool, policy: LoginPolicy, at: Instant) -> bool {
        let mut s = self.lock();
        s.pending = s.pending.saturating_sub(1);
        if ok {
            s.failures = 0;
            s.until = None;
            return false;
        }
        s.failures += 1;
        if s.failures >= policy.max_failures.max(1) && s.until.is_none() {
            s.until = Some(at + policy.lockout);
            return true;
        }
        false
    }
}

/// One admitted login attempt.
pub struct Attempt<'a> {
    guard: &'a LoginGuard,
    policy: LoginPolicy,
    at: Instant,
    judged: bool,
}

impl Attempt<'_> {
    /// Answers whether this failure locked login.
    pub fn failed(mut self) -> bool {
        self.judged = true;
        self.guard.judge(false, self.policy, self.at)
    }

    pub fn succeeded(mut self) {
        self.judged = true;
        self.guard.judge(true, self.policy, self.at);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.judged {
            self.guard.judge(false, self.policy, self.at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        assert!(matches!(
            hash_password("short"),
            Err(PasswordError::TooShort)
        ));
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse!", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    const POLICY: LoginPolicy = LoginPolicy {
        max_failures: 5,
        lockout: Duration::from_secs(15 * 60),
    };

    fn fail(g: &LoginGuard, now: Instant, hash: &str, p: LoginPolicy) -> Result<bool, Refused> {
        g.begin(now, hash, p).map(Attempt::failed)
    }

    #[test]
    fn five_failures_lock_login_for_fifteen_minutes() {
        let g = LoginGuard::default();
        let t0 = Instant::now();
        for _ in 0..4 {
            assert_eq!(fail(&g, t0, "h1", POLICY), Ok(false));
        }
        assert_eq!(fail(&g, t0, "h1", POLICY), Ok(true), "the fifth locks");
        let minute = Duration::from_secs(60);
        assert_eq!(
            g.begin(t0 + minute, "h1", POLICY).err(),
            Some(Refused::Locked(POLICY.lockout - minute))
        );
        let later = t0 + POLICY.lockout;
        g.begin(later, "h1", POLICY)
            .expect("unlocked after the lockout")
            .succeeded();
        for _ in 0..5 {
            let _ = fail(&g, later, "h1", POLICY);
        }
        assert!(g.begin(later, "h1", POLICY).is_err());
        let a = g
            .begin(later, "h2", POLICY)
            .expect("a new password lifts the lock");
        // A success starts the count again.
        a.succeeded();
        for _ in 0..4 {
            assert_eq!(fail(&g, later, "h2", POLICY), Ok(false));
        }
        g.begin(later, "h2", POLICY).unwrap().succeeded();
        for _ in 0..4 {
            assert_eq!(fail(&g, later, "h2", POLICY), Ok(false));
        }
    }

    #[test]
    fn attempts_being_judged_count_and_a_success_does_not_forget_them() {
        let g = LoginGuard::default();
        let t0 = Instant::now();
        // Five guesses begun at once, none judged yet: a sixth is not heard.
        let mut burst: Vec<Attempt<'_>> =
            (0..5).map(|_| g.begin(t0, "h", POLICY).unwrap()).collect();
        assert_eq!(g.begin(t0, "h", POLICY).err(), Some(Refused::Busy));
        // The owner gets in while four guesses are still being judged.
        burst.pop().unwrap().succeeded();
        let owner_done = g.begin(t0, "h", POLICY).unwrap();
        owner_done.succeeded();
        // The four fail: one more guess is left before the lock, not five.
        for a in burst {
            assert!(!a.failed());
        }
        assert_eq!(fail(&g, t0, "h", POLICY), Ok(true));
        assert!(matches!(g.begin(t0, "h", POLICY), Err(Refused::Locked(_))));
    }

    #[test]
    fn an_attempt_dropped_unjudged_counts_as_failed() {
        let g = LoginGuard::default();
        let t0 = Instant::now();
        let p = LoginPolicy {
            max_failures: 2,
            lockout: Duration::from_secs(30),
        };
        drop(g.begin(t0, "h", p).unwrap());
        assert_eq!(fail(&g, t0, "h", p), Ok(true));
    }

    #[test]
    fn the_policy_sets_the_count_and_the_lockout() {
        let g = LoginGuard::default();
        let t0 = Instant::now();
        let p = LoginPolicy {
            max_failures: 2,
            lockout: Duration::from_secs(30),
        };
        assert_eq!(fail(&g, t0, "h", p), Ok(false));
        assert_eq!(fail(&g, t0, "h", p), Ok(true));
        assert_eq!(
            g.begin(t0, "h", p).err(),
            Some(Refused::Locked(Duration::from_secs(30)))
        );
        assert!(g.begin(t0 + Duration::from_secs(30), "h", p).is_ok());
    }

    #[test]
    fn tokens_expire() {
        let s = Sessions::default();
        let t = s.issue(Duration::from_secs(3600)).unwrap();
        assert!(s.valid(&t));
        assert!(!s.valid("nope"));
        let short = s.issue(Duration::ZERO).unwrap();
        assert!(!s.valid(&short));
        assert!(s.revoke(&t));
        assert!(!s.valid(&t), "logged out");
        assert!(!s.revoke(&t));
    }
}
