//! Provider secrets: where a key comes from, and a wrapper that never prints it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// A secret value. Debug, Display and Serialize give `*****` so a key cannot leak through a log
/// line, an error message, a panic or a JSON answer.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The real value, for the one place that needs it: the upstream request header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its last four characters (fewer for a key of eight or less, none for four or less), to
    /// tell keys apart in the UI without showing them.
    pub fn last4(&self) -> String {
        let n = self.0.chars().count();
        let show = if n <= 4 {
            0
        } else if n <= 8 {
            n - 4
        } else {
            4
        }
        .min(4);
        self.0.chars().skip(n - show).collect()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("*****")
    }
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret store is unavailable: {0}")]
    Unavailable(String),
    #[error(
        "no OS keychain is available ({0}), so a literal API key cannot be stored: use api_key = \"env:NAME\" (the key stays in that environment variable), or start a Secret Service (GNOME Keyring, KWallet) and try again"
    )]
    NoKeychain(String),
}

/// Where provider keys live. The engine only knows this trait: the OS keychain implements it in
/// its own crate, so the engine builds and tests without any keychain library.
pub trait SecretStore: Send + Sync + 'static {
    fn get(&self, account: &str) -> Result<Option<Secret>, SecretError>;
    fn set(&self, account: &str, secret: &Secret) -> Result<(), SecretError>;
    fn delete(&self, account: &str) -> Result<(), SecretError>;
    /// Whether a key stored here survives a restart (the in-memory store does not).
    fn persistent(&self) -> bool;
}

/// Holds keys for the life of the process only: it serves the engine's tests.
#[derive(Default)]
pub struct MemorySecretStore {
    entries: Mutex<HashMap<String, Secret>>,
}

impl SecretStore for MemorySecretStore {
    fn get(&self, account: &str) -> Result<Option<Secret>, SecretError> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(entries.get(account).cloned())
    }

    fn set(&self, account: &str, secret: &Secret) -> Result<(), SecretError> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.insert(account.to_owned(), secret.clone());
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(account);
        Ok(())
    }

    fn persistent(&self) -> bool {
        false
    }
}

/// What the gateway uses when the machine has no keychain (a headless server without a Secret
/// Service): `env:` keys work, a literal key is refused with a way forward.
#[derive(Debug)]
pub struct NoSecretStore {
    reason: String,
}

impl NoSecretStore {
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

impl SecretStore for NoSecretStore {
    fn get(&self, _account: &str) -> Result<Option<Secret>, SecretError> {
        Ok(None)
    }

    fn set(&self, _account: &str, _secret: &Secret) -> Result<(), SecretError> {
        Err(SecretError::NoKeychain(self.reason.clone()))
    }

    fn delete(&self, _account: &str) -> Result<(), SecretError> {
        Ok(())
    }

    fn persistent(&self) -> bool {
        false
    }
}

/// How a provider's key is found at request time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderKey {
    /// No key: the upstream is called without `Authorization`.
    None,
    /// `env:NAME`, read when used so that a changed environment needs no re-import.
    Env(String),
    /// Held by the secret store, cached here so the request path never calls the store.
    Stored(Secret),
    /// The database says a stored key exists, but the store did not have it (e.g. a literal key
    /// from an earlier run, held in memory only).
    Missing,
}

impl ProviderKey {
    pub fn resolve(&self) -> Option<Secret> {
        match self {
            Self::None | Self::Missing => None,
            Self::Env(name) => std::env::var(name).ok().map(Secret::new),
            Self::Stored(secret) => Some(secret.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("sk-live-123");
        assert_eq!(format!("{s:?} {s}"), "***** *****");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"*****\"");
        assert_eq!(s.expose(), "sk-live-123");
        assert_eq!(s.last4(), "-123");
        assert_eq!(Secret::new("abcdef").last4(), "ef");
        assert_eq!(Secret::new("abc").last4(), "");
    }

    #[test]
    fn an_unset_env_key_resolves_to_no_key() {
        let name = "SWITCHBOARD_TEST_ENV_KEY_READ_WHEN_USED";
        let key = ProviderKey::Env(name.into());
        // The variable is unset here; the set case is covered end to end (tests/openai_path.rs).
        assert_eq!(key.resolve(), None);
    }
}
