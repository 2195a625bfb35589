//! Bearer secrets: generation, digests, and the checks around them.

use crate::error::{Result, StoreError};
use sha2::{Digest, Sha256};

/// Every secret starts with this, so that secret scanners and people recognise a leaked one.
pub const SECRET_PREFIX: &str = "scimd_";

/// How stale a token's `last_used` may get: a store records a use only when the one recorded is
/// at least this old, so that a busy identity provider costs one write a minute, not one per
/// request.
pub const LAST_USED_STEP_SECONDS: i64 = 60;

/// Whether a use at `now` should be recorded over `last_used` ([`LAST_USED_STEP_SECONDS`]).
pub fn should_record_use(
    last_used: Option<scim_schema::DateTime>,
    now: scim_schema::DateTime,
) -> bool {
    last_used.is_none_or(|last| now.unix_seconds - last.unix_seconds >= LAST_USED_STEP_SECONDS)
}

/// A fresh secret: the prefix and 32 bytes from the operating system's CSPRNG in hex.
pub fn new_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::backend(format!("OS RNG: {e}")))?;
    Ok(format!("{SECRET_PREFIX}{}", hex(&bytes)))
}

/// A fresh public token id: 16 random bytes in hex, unrelated to the secret.
pub fn new_token_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::backend(format!("OS RNG: {e}")))?;
    Ok(hex(&bytes))
}

/// The digest under which a secret is stored and looked up. A 256-bit random secret cannot be
/// brute-forced, so a plain SHA-256 is as strong as a slow KDF here, and keeps every request's
/// authentication to one hash and one index lookup.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares two digests in time independent of where they differ (the lookup by digest already
/// found the row; this keeps the final check free of an early exit all the same).
pub fn digests_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Decodes lower- or upper-case hex; `None` if `s` is not hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    let bytes = s.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// Checks a tenant name: `[a-z0-9-]{1,63}`, a DNS label's alphabet and length.
pub fn check_tenant_name(name: &str) -> Result<()> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid_value(format!(
            "tenant name {name:?} must be 1 to 63 characters of a-z, 0-9 and '-'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_use_is_recorded_at_most_once_a_step() {
        let at = |s: i64| crate::document::from_nanos(s * 1_000_000_000);
        assert!(should_record_use(None, at(1_000)));
        assert!(!should_record_use(Some(at(1_000)), at(1_000)));
        assert!(!should_record_use(Some(at(1_000)), at(1_059)));
        assert!(should_record_use(Some(at(1_000)), at(1_060)));
        // A clock that went back records nothing until it passes the recorded use again.
        assert!(!should_record_use(Some(at(1_000)), at(900)));
    }

    #[test]
    fn secrets_are_prefixed_random_and_hash_stably() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(a.len(), SECRET_PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_eq!(digest(&a), digest(&a));
        assert_ne!(digest(&a), digest(&b));
        assert!(digests_equal(&digest(&a), &digest(&a)));
        assert!(!digests_equal(&digest(&a), &digest(&b)));
        assert!(!digests_equal(&[1, 2], &[1, 2, 3]));
    }

    #[test]
    fn tenant_names_are_dns_labels() {
        for ok in ["acme", "a", "acme-2", &"x".repeat(63)] {
            assert!(check_tenant_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Acme", "a_b", "a b", "é", &"x".repeat(64)] {
            assert!(check_tenant_name(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn hex_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(unhex(&hex(&bytes)), Some(bytes));
        }
    }
}
