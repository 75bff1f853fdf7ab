//! Recovery codes: single-use codes a user keeps on paper to sign in when the
//! second factor is lost.
//!
//! A code is 15 characters from a 31-letter alphabet without look-alikes
//! (no `0 o 1 l i`), shown in three groups of five (`k7f2q-9xm4t-bn3wz`):
//! 15 × log2(31) ≈ 74 bits. Store only a keyed hash of the canonical form
//! ([`normalize_recovery_code`]; e.g. with `rampart_crypto::SecretHasher`)
//! and delete it when used.

use rampart_crypto::{SecretString, random_bytes};
use zeroize::Zeroizing;

/// Number of codes generated at a time.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Characters in a code, without separators.
pub const RECOVERY_CODE_CHARS: usize = 15;
/// Characters per displayed group.
const GROUP: usize = 5;
/// The alphabet: digits 2-9 and lower-case letters without `i l o`.
const ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";
/// Random bytes at or above this value are redrawn, so that `byte % 31` is
/// uniform (248 = 8 × 31).
const REJECT_FROM: u8 = 248;
/// Inputs longer than this are refused before any work.
const MAX_INPUT_BYTES: usize = 64;

/// Errors of this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    /// The system random number generator failed.
    #[error("random number generator failure")]
    Random,
}

/// Generates [`RECOVERY_CODE_COUNT`] fresh codes, formatted for display
/// (`k7f2q-9xm4t-bn3wz`). Each is uniformly random over 31^15 values
/// (about 74 bits).
pub fn generate_recovery_codes() -> Result<Vec<SecretString>, RecoveryError> {
    (0..RECOVERY_CODE_COUNT).map(|_| generate_one()).collect()
}

fn generate_one() -> Result<SecretString, RecoveryError> {
    let mut chars = Zeroizing::new(Vec::with_capacity(RECOVERY_CODE_CHARS));
    let mut buf = Zeroizing::new([0u8; 32]);
    while chars.len() < RECOVERY_CODE_CHARS {
        random_bytes(&mut buf[..]).map_err(|_| RecoveryError::Random)?;
        for &b in buf.iter() {
            if chars.len() == RECOVERY_CODE_CHARS {
                break;
            }
            if b < REJECT_FROM {
                chars.push(ALPHABET[usize::from(b % 31)]);
            }
        }
    }
    let mut out = String::with_capacity(RECOVERY_CODE_CHARS + RECOVERY_CODE_CHARS / GROUP);
    for (i, group) in chars.chunks(GROUP).enumerate() {
        if i > 0 {
            out.push('-');
        }
        out.extend(group.iter().map(|&b| char::from(b)));
    }
    Ok(SecretString::from(out))
}

/// The canonical form of a code as typed by a user: spaces and dashes
/// removed, lower-cased, then exactly [`RECOVERY_CODE_CHARS`] characters of
/// the code alphabet. This is the form to hash and compare. `None` for
/// anything else.
pub fn normalize_recovery_code(input: &str) -> Option<String> {
    if input.len() > MAX_INPUT_BYTES {
        return None;
    }
    let canonical: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let valid =
        canonical.len() == RECOVERY_CODE_CHARS && canonical.bytes().all(|b| ALPHABET.contains(&b));
    valid.then_some(canonical)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashSet;

    use rampart_crypto::ExposeSecret;

    use super::*;

    #[test]
    fn alphabet_is_unambiguous() {
        let set: HashSet<u8> = ALPHABET.iter().copied().collect();
        assert_eq!(set.len(), 31);
        for c in b"01ilo" {
            assert!(!set.contains(c));
        }
        // At least 60 bits per code.
        assert!(RECOVERY_CODE_CHARS as f64 * 31f64.log2() >= 60.0);
    }

    #[test]
    fn generated_codes() {
        let codes = generate_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
        let mut seen = HashSet::new();
        for code in &codes {
            let s = code.expose_secret();
            assert_eq!(s.len(), 17);
            let groups: Vec<&str> = s.split('-').collect();
            assert_eq!(groups.len(), 3);
            assert!(groups.iter().all(|g| g.len() == 5));
            let canonical = normalize_recovery_code(s).unwrap();
            assert_eq!(canonical, s.replace('-', ""));
            assert!(seen.insert(canonical));
        }
    }

    #[test]
    fn uses_whole_alphabet() {
        let mut seen = HashSet::new();
        for _ in 0..40 {
            for code in generate_recovery_codes().unwrap() {
                seen.extend(code.expose_secret().bytes().filter(|&b| b != b'-'));
            }
        }
        assert_eq!(seen.len(), 31);
    }

    #[test]
    fn normalization() {
        assert_eq!(
            normalize_recovery_code("K7F2Q-9XM4T-BN3WZ").as_deref(),
            Some("k7f2q9xm4tbn3wz")
        );
        assert_eq!(
            normalize_recovery_code("  k7f2q 9xm4t\tbn3wz ").as_deref(),
            Some("k7f2q9xm4tbn3wz")
        );
        assert_eq!(
            normalize_recovery_code("k7f2q9xm4tbn3wz").as_deref(),
            Some("k7f2q9xm4tbn3wz")
        );
        for bad in [
            "",
            "k7f2q-9xm4t",
            "k7f2q-9xm4t-bn3wz-a",
            "k7f2q-9xm4t-bn3w0",
            "k7f2q-9xm4t-bn3wl",
            "k7f2q-9xm4t-bn3wé",
            "k7f2q_9xm4t_bn3wz",
        ] {
            assert_eq!(normalize_recovery_code(bad), None, "{bad}");
        }
        assert_eq!(normalize_recovery_code(&"-".repeat(10_000)), None);
    }

    #[test]
    fn debug_is_redacted() {
        let codes = generate_recovery_codes().unwrap();
        let dbg = format!("{codes:?}");
        assert!(!dbg.contains(codes[0].expose_secret()));
    }
}
