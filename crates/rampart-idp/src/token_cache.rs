//! A cache of verified tokens, keyed by the SHA-256 of the token, so that introspecting a
//! token again costs a hash and a map lookup instead of a signature check.
//!
//! Only the cryptographic verification is cached. Lifetime, audience and revocation are
//! checked again on every hit, so a revoked or expired token is never answered from the cache.
//! A retired key's tokens stay valid while it is published, so rotations need no flush.

use std::collections::HashMap;
use std::sync::RwLock;

use rampart_token::VerifiedClaims;

/// Most cached tokens; when full, expired entries are dropped, and if that frees too little the
/// cache starts over. Each entry is a few hundred bytes.
pub const MAX_ENTRIES: usize = 100_000;

/// Verified tokens by token hash.
#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<[u8; 32], VerifiedClaims>>,
}

/// The cache key of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

impl TokenCache {
    /// A previously verified token.
    pub fn get(&self, hash: &[u8; 32]) -> Option<VerifiedClaims> {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(hash)
            .cloned()
    }

    /// Remembers a verified token.
    pub fn insert(&self, hash: [u8; 32], verified: VerifiedClaims, now: i64) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, v| v.claims().exp > now);
            if entries.len() >= MAX_ENTRIES * 9 / 10 {
                entries.clear();
            }
        }
        entries.insert(hash, verified);
    }

    /// Drops entries of expired tokens.
    pub fn purge(&self, now: i64) {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, v| v.claims().exp > now);
    }

    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
