//! Admin access: an argon2id password hash (in the settings table; a hash, not a secret) and
//! short-lived session tokens held in memory, stored by their SHA-256.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::auth::KeyHash;

pub const MIN_PASSWORD_LEN: usize = 8;
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

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

#[derive(Default)]
pub struct Sessions {
    tokens: Mutex<HashMap<KeyHash, Instant>>,
}

impl Sessions {
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

    #[test]
    fn tokens_expire() {
        let s = Sessions::default();
        let t = s.issue(SESSION_TTL).unwrap();
        assert!(s.valid(&t));
        assert!(!s.valid("nope"));
        let short = s.issue(Duration::ZERO).unwrap();
        assert!(!s.valid(&short));
    }
}
