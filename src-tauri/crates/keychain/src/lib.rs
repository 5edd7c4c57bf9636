//! Provider keys in the OS keychain, behind the engine's `SecretStore`: the Secret Service on
//! Linux (GNOME Keyring, KWallet), the Keychain on macOS, the Credential Manager on Windows.
//! One entry per provider: service `switchboard`, account = the provider's stable id (not its
//! name, so a rename keeps the key).

use keyring::Entry;
use switchboard_gateway::secrets::{Secret, SecretError, SecretStore};

pub const SERVICE: &str = "switchboard";

/// The OS keychain. Calls block (D-Bus round trips on Linux): the engine makes them at start and
/// on admin edits, never on the request path, where keys are read from its cache.
#[derive(Debug)]
pub struct KeychainStore {
    service: String,
}

fn unavailable(e: keyring::Error) -> SecretError {
    SecretError::Unavailable(e.to_string())
}

impl KeychainStore {
    /// Opens the keychain, or says why there is none: a read of an entry that need not exist
    /// tells whether the store answers at all.
    pub fn open() -> Result<Self, String> {
        Self::open_service(SERVICE)
    }

    /// The same under another service name (tests keep their entries apart this way).
    pub fn open_service(service: &str) -> Result<Self, String> {
        let store = Self {
            service: service.to_owned(),
        };
        match store.entry("switchboard-probe")?.get_password() {
            Ok(_) | Err(keyring::Error::NoEntry) => Ok(store),
            Err(e) => Err(e.to_string()),
        }
    }

    fn entry(&self, account: &str) -> Result<Entry, String> {
        Entry::new(&self.service, account).map_err(|e| e.to_string())
    }
}

impl SecretStore for KeychainStore {
    fn get(&self, account: &str) -> Result<Option<Secret>, SecretError> {
        let entry = self.entry(account).map_err(SecretError::Unavailable)?;
        match entry.get_password() {
            Ok(p) => Ok(Some(Secret::new(p))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn set(&self, account: &str, secret: &Secret) -> Result<(), SecretError> {
        let entry = self.entry(account).map_err(SecretError::Unavailable)?;
        entry.set_password(secret.expose()).map_err(unavailable)
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        let entry = self.entry(account).map_err(SecretError::Unavailable)?;
        match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn persistent(&self) -> bool {
        true
    }
}
