//! The real Secret Service: GNOME Keyring in the private D-Bus session that `scripts/test`
//! (`scripts/with-keyring`) starts. Outside such a session this test fails and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use switchboard_gateway::secrets::{Secret, SecretStore};
use switchboard_keychain::KeychainStore;

fn store() -> KeychainStore {
    KeychainStore::open_service("switchboard-test").unwrap_or_else(|e| {
        panic!("no Secret Service ({e}): run the tests through scripts/with-keyring (scripts/test does)")
    })
}

#[test]
fn store_read_back_and_delete() {
    let account = format!("provider-{}", std::process::id());
    let a = store();
    assert_eq!(a.get(&account).unwrap(), None);
    a.set(&account, &Secret::new("sk-live-kept-in-the-keyring"))
        .unwrap();
    // Another handle (as after a restart) reads the same entry from the daemon.
    let b = store();
    assert_eq!(
        b.get(&account).unwrap().map(|s| s.expose().to_owned()),
        Some("sk-live-kept-in-the-keyring".to_owned())
    );
    // Replacing a key replaces it.
    b.set(&account, &Secret::new("sk-live-second")).unwrap();
    assert_eq!(a.get(&account).unwrap().unwrap().expose(), "sk-live-second");
    a.delete(&account).unwrap();
    assert_eq!(b.get(&account).unwrap(), None);
    // Deleting what is not there is not an error.
    a.delete(&account).unwrap();
    assert!(a.persistent());
}
