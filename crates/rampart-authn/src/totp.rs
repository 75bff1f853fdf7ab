//! Time-based one-time passwords (RFC 6238), computed with `totp-rs`.
//!
//! Enrollment uses SHA-1, 6 digits and a 30-second period, the only
//! combination every authenticator app supports. [`verify_code`] accepts the
//! previous, current and next time step, compares in constant time and
//! returns the matched step: store it and refuse any code whose step is not
//! greater than the last accepted one, so a code cannot be replayed.

use std::fmt;

use rampart_crypto::{constant_time_eq, random_bytes};
use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

/// Length of generated secrets, in bytes (160 bits, as RFC 4226 advises).
pub const SECRET_BYTES: usize = 20;
/// Shortest accepted secret, in bytes (128 bits, the RFC 4226 minimum).
pub const MIN_SECRET_BYTES: usize = 16;
/// Longest accepted secret, in bytes.
pub const MAX_SECRET_BYTES: usize = 64;
/// Digits of enrolled codes.
pub const DIGITS: u8 = 6;
/// Time step of enrolled codes, in seconds.
pub const PERIOD_SECS: u64 = 30;

/// Errors of this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// The secret is shorter than 16 or longer than 64 bytes.
    #[error("TOTP secret must be 16 to 64 bytes long")]
    InvalidSecretLength,
    /// The number of digits is not 6, 7 or 8.
    #[error("TOTP codes have 6 to 8 digits")]
    InvalidDigits,
    /// The system random number generator failed.
    #[error("random number generator failure")]
    Random,
}

/// HMAC algorithm of a TOTP code (only for [`code_at`]; enrollment is SHA-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TotpAlgorithm {
    /// HMAC-SHA-1 (the default of RFC 6238 and of authenticator apps).
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl TotpAlgorithm {
    fn to_totp_rs(self) -> Algorithm {
        match self {
            TotpAlgorithm::Sha1 => Algorithm::SHA1,
            TotpAlgorithm::Sha256 => Algorithm::SHA256,
            TotpAlgorithm::Sha512 => Algorithm::SHA512,
        }
    }
}

/// A TOTP shared secret. Zeroized on drop; `Debug` prints a redaction.
///
/// Store it sealed (see [`ProfileVault::seal_secret`](crate::ProfileVault::seal_secret)).
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([REDACTED])")
    }
}

impl TotpSecret {
    /// Generates a random 160-bit secret.
    pub fn generate() -> Result<Self, TotpError> {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        random_bytes(&mut bytes).map_err(|_| TotpError::Random)?;
        Ok(TotpSecret(bytes))
    }

    /// Wraps existing secret bytes (16 to 64 bytes).
    pub fn from_bytes(b: &[u8]) -> Result<Self, TotpError> {
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&b.len()) {
            return Err(TotpError::InvalidSecretLength);
        }
        Ok(TotpSecret(Zeroizing::new(b.to_vec())))
    }

    /// The raw secret bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret in unpadded RFC 4648 base32, as authenticator apps expect
    /// it for manual entry.
    pub fn to_base32(&self) -> String {
        base32_encode(&self.0)
    }

    /// A `totp-rs` instance for this secret. The secret length was checked
    /// at construction and `digits` is checked by the callers, so the
    /// unchecked builder is safe to use here.
    fn totp(&self, algorithm: Algorithm, digits: u8) -> Totp {
        Builder::new()
            .with_algorithm(algorithm)
            .with_digits(digits)
            .with_skew(0)
            .with_step_duration(PERIOD_SECS)
            .with_secret(self.0.to_vec())
            .build_noncompliant()
    }
}

/// RFC 4648 base32 without padding (not cryptography; an encoding).
fn base32_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u16 = 0;
    let mut bits = 0u32;
    for &byte in data {
        buffer = (buffer << 8) | u16::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[usize::from((buffer >> bits) & 0x1f)]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            ALPHABET[usize::from((buffer << (5 - bits)) & 0x1f)],
        ));
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Removes what the Key URI format forbids in a label part: `:` (the
/// issuer/account separator) and control characters.
fn label_part(s: &str) -> String {
    s.chars()
        .filter(|c| *c != ':' && !c.is_control())
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30`
/// URI for enrollment (show it as a QR code, see [`crate::qr::svg`]).
///
/// `:` and control characters are removed from `issuer` and `account`
/// (the format forbids a colon in either), and both are percent-encoded.
pub fn provisioning_uri(secret: &TotpSecret, issuer: &str, account: &str) -> String {
    let issuer = percent_encode(&label_part(issuer));
    let account = percent_encode(&label_part(account));
    format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={PERIOD_SECS}",
        secret.to_base32()
    )
}

/// The code for `secret` at `unix` seconds with any RFC 6238 algorithm and
/// 6 to 8 digits (30-second period, T0 = 0). Used by the RFC test vectors
/// and test clients.
pub fn code_at(
    secret: &TotpSecret,
    algorithm: TotpAlgorithm,
    digits: u8,
    unix: u64,
) -> Result<String, TotpError> {
    if !(6..=8).contains(&digits) {
        return Err(TotpError::InvalidDigits);
    }
    Ok(secret
        .totp(algorithm.to_totp_rs(), digits)
        .generate(unix)
        .to_string())
}

/// The enrollment code (SHA-1, 6 digits, 30 s) at `now_unix`, for tests and
/// test clients.
pub fn generate_code(secret: &TotpSecret, now_unix: u64) -> String {
    secret
        .totp(Algorithm::SHA1, DIGITS)
        .generate(now_unix)
        .to_string()
}

/// Checks an enrollment code (SHA-1, 6 digits, 30 s) at `now_unix`.
///
/// Spaces are stripped; what is left must be exactly 6 ASCII digits. The
/// steps `now-1`, `now` and `now+1` are all computed and compared in
/// constant time (no early exit). Returns the matched time step (the
/// greatest one, should two match): the caller must store it and refuse a
/// later code whose step is not greater, so a code is accepted only once.
pub fn verify_code(secret: &TotpSecret, code: &str, now_unix: u64) -> Option<i64> {
    // Bound the work before allocating.
    if code.len() > 32 {
        return None;
    }
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = secret.totp(Algorithm::SHA1, DIGITS);
    let now_step = now_unix / PERIOD_SECS;
    let mut matched: Option<u64> = None;
    for step in [
        now_step.checked_sub(1),
        Some(now_step),
        now_step.checked_add(1),
    ]
    .into_iter()
    .flatten()
    {
        let Some(time) = step.checked_mul(PERIOD_SECS) else {
            continue;
        };
        let expected = Zeroizing::new(totp.generate(time).to_string());
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            matched = Some(step);
        }
    }
    matched.and_then(|s| i64::try_from(s).ok())
}

#[cfg(test)]
mod tests;
