//! Rampart authentication of people.
//!
//! - [`password`]: the new-password policy ([`check_new_password`]: length,
//!   a shipped list of about 30 000 common breached passwords, trivial
//!   patterns, user data) and Argon2id hashing ([`PasswordHasher`]) on a
//!   bounded pool of tokio blocking threads that answers
//!   [`PasswordError::Busy`] at once instead of queueing without limit.
//!   Unknown users are verified against a dummy hash so they cost the same.
//! - [`totp`]: RFC 6238 one-time codes (SHA-1, 6 digits, 30 s) with a ±1
//!   step window, constant-time comparison and the matched step returned so
//!   the caller can reject replays; `otpauth://` provisioning URIs.
//! - [`recovery`]: single-use recovery codes (about 74 bits each) and their
//!   canonical form for hashing.
//! - [`throttle`]: in-memory, bounded login throttling per account and per
//!   client address (IPv6 by /64): growing delays, then a lockout;
//!   [`shared_throttle`]: the same rules with counters in Redis, shared by
//!   every server of a deployment, falling back to the in-memory ones.
//! - [`qr`]: QR codes as a self-contained SVG (no script, no external
//!   reference).
//! - [`profile`]: personal data sealed at rest under the master key
//!   ([`ProfileVault`]), a keyed blind index for e-mail look-ups, and
//!   normalization of e-mail addresses and usernames.
//!
//! Nothing here is hand-written cryptography: Argon2id comes from `argon2`,
//! TOTP from `totp-rs`, HMAC, randomness, AEAD and constant-time comparison
//! from `rampart-crypto` / `aws-lc-rs`. Secret-bearing types print a
//! redaction through `Debug`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod password;
pub mod profile;
pub mod qr;
pub mod recovery;
pub mod shared_throttle;
pub mod throttle;
pub mod totp;

pub use password::{
    Argon2Params, HashingLimits, MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, PasswordCheck,
    PasswordError, PasswordHasher, PasswordRejection, check_new_password,
};
pub use profile::{Profile, ProfileVault, VaultError, normalize_email, normalize_username};
pub use qr::QrError;
pub use recovery::{
    RECOVERY_CODE_COUNT, RecoveryError, generate_recovery_codes, normalize_recovery_code,
};
pub use shared_throttle::{
    RedisTlsFiles, SharedLoginThrottle, SharedThrottleConfig, SharedThrottleError,
};
pub use throttle::{LoginThrottle, ThrottleConfig, ThrottleDecision};
pub use totp::{
    TotpAlgorithm, TotpError, TotpSecret, code_at, generate_code, provisioning_uri, verify_code,
};

/// Re-exported so callers need not depend on `secrecy` themselves.
pub use rampart_crypto::{ExposeSecret, SecretString};
