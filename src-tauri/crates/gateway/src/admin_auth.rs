//! Admin access: an argon2id password hash (in the settings table; a hash, not a secret) and
//! short-lived session tokens held in memory, stored by their SHA-256.

use std::collections::HashMap;
use std::net::IpAddr;
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
    let path = data_dir.join(crate::store::CONFIG_DB);
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

impl LoginPolicy {
    pub fn from_settings(s: &switchboard_api::settings::Admin) -> Self {
        Self {
            max_failures: s.max_failed_logins.max(1),
            lockout: s.lockout(),
        }
    }
}

/// Guessing the password is slowed by argon2 and stopped by this: after `max_failures`
/// failures in a row from one address (an IPv6 client's /64), that address is locked out for
/// `lockout`, so one guesser on the network cannot keep the owner out. Guessers spread over
/// many addresses meet a second lock, at [`ALL_ADDRESSES_FACTOR`] times the count, that
/// does not apply on loopback: the person at the machine always keeps a way in. A new
/// password (`switchboard admin set-password`, even from another process) lifts every lock.
///
/// Attempts still being judged count against the limit too: a burst of concurrent guesses
/// cannot all pass the check before the first is judged, and a success does not forget them.
#[derive(Default)]
pub struct LoginGuard {
    state: Mutex<Locks>,
}

/// The lock for guesses from everywhere counts this many times an address's.
pub const ALL_ADDRESSES_FACTOR: u32 = 10;
/// Addresses remembered at most; past it, the stalest unlocked ones are forgotten.
const MAX_ADDRESSES: usize = 4096;

#[derive(Default)]
struct Locks {
    /// The password hash the failures were against.
    hash: String,
    by_addr: HashMap<IpAddr, Lock>,
    everywhere: Lock,
}

#[derive(Default)]
struct Lock {
    /// Judged failures in a row.
    failures: u32,
    /// Admitted attempts not judged yet.
    pending: u32,
    until: Option<Instant>,
}

impl Lock {
    fn check(&mut self, now: Instant, max: u32) -> Result<(), Refused> {
        match self.until {
            Some(until) if until > now => return Err(Refused::Locked(until - now)),
            Some(_) => {
                self.failures = 0;
                self.until = None;
            }
            None => {}
        }
        if self.failures + self.pending >= max.max(1) {
            return Err(Refused::Busy);
        }
        Ok(())
    }

    fn judge(&mut self, ok: bool, max: u32, lockout: Duration, at: Instant) -> bool {
        self.pending = self.pending.saturating_sub(1);
        if ok {
            self.failures = 0;
            self.until = None;
            return false;
        }
        self.failures += 1;
        if self.failures >= max.max(1) && self.until.is_none() {
            self.until = Some(at + lockout);
            return true;
        }
        false
    }

    fn idle(&self, now: Instant) -> bool {
        self.pending == 0 && self.until.is_none_or(|u| u <= now)
    }
}

/// The key an address is counted under: itself, or an IPv6 address's /64 (one client's).
fn addr_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
        v4 => v4,
    }
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
    fn lock(&self) -> std::sync::MutexGuard<'_, Locks> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits one attempt from `from` against the password `hash`. Judge it with
    /// [`Attempt::failed`] or [`Attempt::succeeded`]; dropped unjudged (the caller went away),
    /// it counts as failed.
    pub fn begin(
        &self,
        now: Instant,
        hash: &str,
        policy: LoginPolicy,
        from: IpAddr,
    ) -> Result<Attempt<'_>, Refused> {
        let mut s = self.lock();
        if s.hash != hash {
            *s = Locks {
                hash: hash.to_owned(),
                ..Locks::default()
            };
        }
        let key = addr_key(from);
        let everywhere = !from.is_loopback() && !addr_key(from).is_loopback();
        if everywhere {
            s.everywhere.check(
                now,
                policy.max_failures.saturating_mul(ALL_ADDRESSES_FACTOR),
            )?;
        }
        if !s.by_addr.contains_key(&key) && s.by_addr.len() >= MAX_ADDRESSES {
            s.by_addr.retain(|_, l| !l.idle(now));
            if s.by_addr.len() >= MAX_ADDRESSES {
                return Err(Refused::Busy);
            }
        }
        let lock = s.by_addr.entry(key).or_default();
        lock.check(now, policy.max_failures)?;
        lock.pending += 1;
        if everywhere {
            s.everywhere.pending += 1;
        }
        Ok(Attempt {
            guard: self,
            policy,
            at: now,
            key,
            everywhere,
            judged: false,
        })
    }

    /// `at`: when the attempt began; a lock it sets runs from then (argon2 takes a moment).
    fn judge(&self, ok: bool, a: &Attempt<'_>) -> bool {
        let mut s = self.lock();
        let p = a.policy;
        if a.everywhere {
            let max = p.max_failures.saturating_mul(ALL_ADDRESSES_FACTOR);
            s.everywhere.judge(ok, max, p.lockout, a.at);
        }
        s.by_addr
            .get_mut(&a.key)
            .is_some_and(|l| l.judge(ok, p.max_failures, p.lockout, a.at))
    }
}

/// One admitted login attempt.
pub struct Attempt<'a> {
    guard: &'a LoginGuard,
    policy: LoginPolicy,
    at: Instant,
    key: IpAddr,
    everywhere: bool,
    judged: bool,
}

impl Attempt<'_> {
    /// Answers whether this failure locked login for its address.
    pub fn failed(mut self) -> bool {
        self.judged = true;
        self.guard.judge(false, &self)
    }

    pub fn succeeded(mut self) {
        self.judged = true;
        self.guard.judge(true, &self);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.judged {
            self.guard.judge(false, self);
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

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn fail(g: &LoginGuard, now: Instant, hash: &str, p: LoginPolicy) -> Result<bool, Refused> {
        g.begin(now, hash, p, LOCAL).map(Attempt::failed)
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
            g.begin(t0 + minute, "h1", POLICY, LOCAL).err(),
            Some(Refused::Locked(POLICY.lockout - minute))
        );
        let later = t0 + POLICY.lockout;
        g.begin(later, "h1", POLICY, LOCAL)
            .expect("unlocked after the lockout")
            .succeeded();
        for _ in 0..5 {
            let _ = fail(&g, later, "h1", POLICY);
        }
        assert!(g.begin(later, "h1", POLICY, LOCAL).is_err());
        let a = g
            .begin(later, "h2", POLICY, LOCAL)
            .expect("a new password lifts the lock");
        // A success starts the count again.
        a.succeeded();
        for _ in 0..4 {
            assert_eq!(fail(&g, later, "h2", POLICY), Ok(false));
        }
        g.begin(later, "h2", POLICY, LOCAL).unwrap().succeeded();
        for _ in 0..4 {
            assert_eq!(fail(&g, later, "h2", POLICY), Ok(false));
        }
    }

    #[test]
    fn attempts_being_judged_count_and_a_success_does_not_forget_them() {
        let g = LoginGuard::default();
        let t0 = Instant::now();
        // Five guesses begun at once, none judged yet: a sixth is not heard.
        let mut burst: Vec<Attempt<'_>> = (0..5)
            .map(|_| g.begin(t0, "h", POLICY, LOCAL).unwrap())
            .collect();
        assert_eq!(g.begin(t0, "h", POLICY, LOCAL).err(), Some(Refused::Busy));
        // The owner gets in while four guesses are still being judged.
        burst.pop().unwrap().succeeded();
        let owner_done = g.begin(t0, "h", POLICY, LOCAL).unwrap();
        owner_done.succeeded();
        // The four fail: one more guess is left before the lock, not five.
        for a in burst {
            assert!(!a.failed());
        }
        assert_eq!(fail(&g, t0, "h", POLICY), Ok(true));
        assert!(matches!(
            g.begin(t0, "h", POLICY, LOCAL),
            Err(Refused::Locked(_))
        ));
    }

    #[test]
    fn a_guesser_locks_out_its_own_address_not_the_owner() {
        let g = LoginGuard::default();
        let t0 = Instant::now();
        let guesser: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..5 {
            let _ = g.begin(t0, "h", POLICY, guesser).map(Attempt::failed);
        }
        assert!(matches!(
            g.begin(t0, "h", POLICY, guesser),
            Err(Refused::Locked(_))
        ));
        g.begin(t0, "h", POLICY, LOCAL).unwrap().succeeded();
        let lan: IpAddr = "192.0.2.8".parse().unwrap();
        g.begin(t0, "h", POLICY, lan).unwrap().succeeded();
        // One /64 is one client: changing the low bits does not buy more guesses.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        for i in 0..5 {
            let _ = g
                .begin(t0, "h", POLICY, v6(&format!("2001:db8::{i}")))
                .map(Attempt::failed);
        }
        assert!(g.begin(t0, "h", POLICY, v6("2001:db8::ffff")).is_err());
        assert!(g.begin(t0, "h", POLICY, v6("2001:db8:0:1::1")).is_ok());
    }

    #[test]
    fn guessers_on_many_addresses_meet_a_lock_that_spares_loopback() {
        let g = LoginGuard::default();
        let t0 = Instant::now();
        let total = POLICY.max_failures * ALL_ADDRESSES_FACTOR;
        for i in 0..total {
            let from: IpAddr = format!("198.51.100.{}", i % 250).parse().unwrap();
            let _ = g.begin(t0, "h", POLICY, from).map(Attempt::failed);
        }
        let fresh: IpAddr = "203.0.113.1".parse().unwrap();
        assert!(matches!(
            g.begin(t0, "h", POLICY, fresh),
            Err(Refused::Locked(_))
        ));
        assert!(
            g.begin(t0, "h", POLICY, LOCAL).is_ok(),
            "the owner at the machine"
        );
    }

    #[test]
    fn an_attempt_dropped_unjudged_counts_as_failed() {
        let g = LoginGuard::default();
        let t0 = Instant::now();
        let p = LoginPolicy {
            max_failures: 2,
            lockout: Duration::from_secs(30),
        };
        drop(g.begin(t0, "h", p, LOCAL).unwrap());
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
            g.begin(t0, "h", p, LOCAL).err(),
            Some(Refused::Locked(Duration::from_secs(30)))
        );
        assert!(g.begin(t0 + Duration::from_secs(30), "h", p, LOCAL).is_ok());
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
