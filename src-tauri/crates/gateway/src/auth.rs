//! Client keys: generated, hashed, looked up.

use sha2::{Digest, Sha256};

/// SHA-256 of a client key. Keys are random and long, so a fast unsalted hash is enough: there
/// is nothing to brute-force that is cheaper than guessing the key itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    pub fn of(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Self(out))
    }
}

pub const CLIENT_KEY_PREFIX: &str = "sk-sb-";

/// A new client key from the OS RNG: `sk-sb-` and 48 hex digits (192 bits).
pub fn generate_client_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{CLIENT_KEY_PREFIX}{}", hex::encode(bytes)))
}

/// The key a client sent, in any of the headers the contract accepts.
pub fn client_key_from(headers: &http::HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v)
            .trim();
        if !token.is_empty() {
            return Some(token.to_owned());
        }
    }
    for name in ["x-api-key", "x-goog-api-key"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok())
            && !v.trim().is_empty()
        {
            return Some(v.trim().to_owned());
        }
    }
    let query = query?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "key")
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256() {
        // echo -n abc | sha256sum
        assert_eq!(
            KeyHash::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let h = KeyHash::of("sk-sb-x");
        assert_eq!(KeyHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(KeyHash::from_hex("zz"), None);
    }

    #[test]
    fn generated_keys_are_long_unique_and_prefixed() {
        let a = generate_client_key().unwrap();
        let b = generate_client_key().unwrap();
        assert!(a.starts_with("sk-sb-") && a.len() == 6 + 48);
        assert_ne!(a, b);
    }

    #[test]
    fn key_from_each_header() {
        let mut h = http::HeaderMap::new();
        assert_eq!(client_key_from(&h, None), None);
        h.insert("x-goog-api-key", "g".parse().unwrap());
        assert_eq!(client_key_from(&h, None).as_deref(), Some("g"));
        h.insert("x-api-key", "a".parse().unwrap());
        assert_eq!(client_key_from(&h, None).as_deref(), Some("a"));
        h.insert("authorization", "Bearer  b ".parse().unwrap());
        assert_eq!(client_key_from(&h, None).as_deref(), Some("b"));
        let empty = http::HeaderMap::new();
        assert_eq!(
            client_key_from(&empty, Some("alt=sse&key=q")).as_deref(),
            Some("q")
        );
    }
}
