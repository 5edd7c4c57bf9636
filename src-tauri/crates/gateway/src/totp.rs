//! TOTP (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), the optional second factor of the
//! admin login. The shared secret comes from SWITCHBOARD_ADMIN_TOTP (base32, as authenticator
//! apps show it): like an `env:` provider key, it is never written anywhere.

use hmac::{Hmac, Mac};
use sha1::Sha1;

const STEP: u64 = 30;

/// RFC 4648 base32 (spaces and `=` padding ignored, any case).
pub fn decode_base32(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut acc, mut bits) = (0u64, 0u32);
    for c in s.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u64 - 'A' as u64,
            c @ '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => return None,
        };
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The code for the step that holds unix time `t`.
pub fn code_at(secret: &[u8], t: u64) -> u32 {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return 0;
    };
    mac.update(&(t / STEP).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[19] & 0x0f);
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    bin % 1_000_000
}

/// The time step (`t / 30`) whose code `code` is, within one step of drift: remembering the
/// last one used makes each code good for one login only.
pub fn matching_step(secret: &[u8], code: &str, now: u64) -> Option<u64> {
    let code = code.trim().parse::<u32>().ok()?;
    [now.saturating_sub(STEP), now, now.saturating_add(STEP)]
        .into_iter()
        .find(|t| code_at(secret, *t) == code)
        .map(|t| t / STEP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_vectors() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890", last 6 digits.
        let secret = b"12345678901234567890";
        for (t, code) in [
            (59, 287_082),
            (1_111_111_109, 81_804),
            (1_234_567_890, 5_924),
            (2_000_000_000, 279_037),
        ] {
            assert_eq!(code_at(secret, t), code, "t={t}");
        }
        assert_eq!(matching_step(secret, "287082", 59), Some(1));
        assert_eq!(
            matching_step(secret, "287082", 59 + 30),
            Some(1),
            "one step of drift"
        );
        assert_eq!(matching_step(secret, "287082", 59 + 90), None);
        assert_eq!(matching_step(secret, "nope", 59), None);
    }

    #[test]
    fn base32_as_apps_show_it() {
        assert_eq!(
            decode_base32("GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ").as_deref(),
            Some(&b"12345678901234567890"[..])
        );
        assert_eq!(decode_base32("gezdgnbv").as_deref(), Some(&b"12345"[..]));
        assert!(decode_base32("not base32!").is_none());
    }
}
