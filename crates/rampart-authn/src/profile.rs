//! Personal data sealed at rest, with a blind index for e-mail look-ups.
//!
//! A [`Profile`] is stored only as an envelope-encrypted blob bound to its
//! user id (a blob copied to another user's row does not open). Finding a
//! user by e-mail uses [`ProfileVault::email_index`], an HMAC-SHA256 of the
//! normalized address under a key derived from the master key, so the
//! database alone reveals neither the addresses nor lets anyone test guesses
//! offline. Other per-user secrets (TOTP secrets, ...) are sealed with
//! [`ProfileVault::seal_secret`].

use std::fmt;

use aws_lc_rs::hmac;
use rampart_crypto::{ENVELOPE_OVERHEAD, Envelope, MasterKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Purpose string of the e-mail index key ([`MasterKey::derive_key`]).
pub const EMAIL_INDEX_PURPOSE: &str = "rampart/email-index/v1";
/// Largest serialized profile, in bytes.
pub const MAX_PROFILE_BYTES: usize = 16 * 1024;
/// Largest secret accepted by [`ProfileVault::seal_secret`], in bytes.
pub const MAX_SECRET_BYTES: usize = 16 * 1024;
/// Longest normalized e-mail address, in bytes.
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest normalized username, in characters.
pub const MAX_USERNAME_CHARS: usize = 64;

/// Envelope context prefix of profiles; the user id follows.
const PROFILE_CONTEXT: &[u8] = b"rampart/profile/v1\0";
/// Envelope context prefix of secrets; the kind (length-prefixed) and the
/// user id follow.
const SECRET_CONTEXT: &[u8] = b"rampart/secret/v1\0";

/// Personal data of a user. `Debug` prints a redaction.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    /// E-mail address (as given; look-ups use the normalized form).
    pub email: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// Whether the address was verified.
    #[serde(default)]
    pub email_verified: bool,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |o: &Option<String>| o.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("Profile")
            .field("email", &"[REDACTED]")
            .field("name", &redact(&self.name))
            .field("phone", &redact(&self.phone))
            .field("email_verified", &self.email_verified)
            .finish()
    }
}

/// Errors of [`ProfileVault`]. Messages never contain personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// Encryption failed.
    #[error("sealing failed")]
    Seal,
    /// Decryption failed: wrong key, user id or kind, tampered or truncated
    /// data.
    #[error("opening failed")]
    Open,
    /// The data exceeds [`MAX_PROFILE_BYTES`] / [`MAX_SECRET_BYTES`].
    #[error("data too large")]
    TooLarge,
    /// The decrypted profile is not valid.
    #[error("sealed profile is corrupt")]
    Decode,
}

/// Seals and opens personal data under the master key, and computes the
/// e-mail blind index. Cheap to clone; `Debug` is redacted.
#[derive(Clone)]
pub struct ProfileVault {
    envelope: Envelope,
    index_key: hmac::Key,
}

impl fmt::Debug for ProfileVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProfileVault([REDACTED])")
    }
}

fn profile_context(user_id: &str) -> Vec<u8> {
    let mut ctx = Vec::with_capacity(PROFILE_CONTEXT.len() + user_id.len());
    ctx.extend_from_slice(PROFILE_CONTEXT);
    ctx.extend_from_slice(user_id.as_bytes());
    ctx
}

/// `prefix | len(kind) as u64 BE | kind | user_id`: unambiguous whatever
/// characters `kind` holds.
fn secret_context(kind: &str, user_id: &str) -> Vec<u8> {
    let mut ctx = Vec::with_capacity(SECRET_CONTEXT.len() + 8 + kind.len() + user_id.len());
    ctx.extend_from_slice(SECRET_CONTEXT);
    ctx.extend_from_slice(&(kind.len() as u64).to_be_bytes());
    ctx.extend_from_slice(kind.as_bytes());
    ctx.extend_from_slice(user_id.as_bytes());
    ctx
}

impl ProfileVault {
    /// Creates the vault: index key = `master.derive_key("rampart/email-index/v1")`,
    /// envelope = `master.envelope()`.
    pub fn new(master: &MasterKey) -> Self {
        let key = master.derive_key(EMAIL_INDEX_PURPOSE);
        ProfileVault {
            envelope: master.envelope(),
            index_key: hmac::Key::new(hmac::HMAC_SHA256, &key[..]),
        }
    }

    /// Seals a profile for `user_id` (bound as additional authenticated
    /// data: it opens only for the same user id).
    pub fn seal(&self, user_id: &str, profile: &Profile) -> Result<Vec<u8>, VaultError> {
        let json = Zeroizing::new(serde_json::to_vec(profile).map_err(|_| VaultError::Seal)?);
        if json.len() > MAX_PROFILE_BYTES {
            return Err(VaultError::TooLarge);
        }
        self.envelope
            .seal(&json, &profile_context(user_id))
            .map_err(|_| VaultError::Seal)
    }

    /// Opens a profile sealed by [`seal`](Self::seal) for the same
    /// `user_id`.
    pub fn open(&self, user_id: &str, sealed: &[u8]) -> Result<Profile, VaultError> {
        if sealed.len() > MAX_PROFILE_BYTES + ENVELOPE_OVERHEAD {
            return Err(VaultError::TooLarge);
        }
        let json = self
            .envelope
            .open(sealed, &profile_context(user_id))
            .map_err(|_| VaultError::Open)?;
        serde_json::from_slice(&json).map_err(|_| VaultError::Decode)
    }

    /// The blind index of an e-mail address: HMAC-SHA256 under the index
    /// key. Pass the output of [`normalize_email`], so that look-ups ignore
    /// case and surrounding spaces. Deterministic for one master key.
    pub fn email_index(&self, normalized_email: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.index_key, normalized_email.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Seals a per-user secret (e.g. `kind = "totp"`); it opens only with
    /// the same `kind` and `user_id`.
    pub fn seal_secret(
        &self,
        kind: &str,
        user_id: &str,
        secret: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        if secret.len() > MAX_SECRET_BYTES {
            return Err(VaultError::TooLarge);
        }
        self.envelope
            .seal(secret, &secret_context(kind, user_id))
            .map_err(|_| VaultError::Seal)
    }

    /// Opens a secret sealed by [`seal_secret`](Self::seal_secret).
    pub fn open_secret(
        &self,
        kind: &str,
        user_id: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if sealed.len() > MAX_SECRET_BYTES + ENVELOPE_OVERHEAD {
            return Err(VaultError::TooLarge);
        }
        self.envelope
            .open(sealed, &secret_context(kind, user_id))
            .map_err(|_| VaultError::Open)
    }
}

/// Normalizes an e-mail address for look-ups and uniqueness: surrounding
/// whitespace trimmed, lower-cased; `None` unless it has exactly one `@`
/// with non-empty parts, at most 254 bytes and no control or space
/// characters.
pub fn normalize_email(input: &str) -> Option<String> {
    let trimmed = input.trim();
    // Lower-casing can grow a string; bound the work first.
    if trimmed.len() > MAX_EMAIL_BYTES * 4 {
        return None;
    }
    let email = trimmed.to_lowercase();
    if email.len() > MAX_EMAIL_BYTES || email.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    let (local, domain) = email.split_once('@')?;
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return None;
    }
    Some(email)
}

/// Normalizes a username: surrounding whitespace trimmed, lower-cased;
/// `None` unless it is 1 to 64 characters of `a-z 0-9 . _ - @` (the `@`
/// lets e-mail-like usernames work). Non-ASCII input is refused rather
/// than folded, so no two distinct inputs look alike.
pub fn normalize_username(input: &str) -> Option<String> {
    let trimmed = input.trim();
    if trimmed.is_empty() || trimmed.len() > MAX_USERNAME_CHARS || !trimmed.is_ascii() {
        return None;
    }
    let name = trimmed.to_ascii_lowercase();
    name.bytes()
        .all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-' | b'@')
        })
        .then_some(name)
}

#[cfg(test)]
mod tests;
