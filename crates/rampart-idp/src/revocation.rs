//! Revoked access tokens: a durable write, then an in-memory set checked on every
//! introspection (a map lookup, not a database read).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rampart_store::{RevocationStore, StoreError};

/// The revoked token ids (`jti`) with the expiry of their token.
pub struct RevocationList {
    store: Arc<dyn RevocationStore>,
    revoked: RwLock<HashMap<String, i64>>,
}

impl RevocationList {
    /// Loads every revocation whose token has not expired.
    pub async fn load(store: Arc<dyn RevocationStore>, now: i64) -> Result<Self, StoreError> {
        let revoked = store.revoked_since(now).await?.into_iter().collect();
        Ok(Self {
            store,
            revoked: RwLock::new(revoked),
        })
    }

    /// Revokes a token until it expires. Durable before it returns.
    pub async fn revoke(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        self.store.revoke(jti, expires_at).await?;
        self.revoked
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(jti.to_owned(), expires_at);
        Ok(())
    }

    /// Whether the token with this id was revoked.
    pub fn is_revoked(&self, jti: &str) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(jti)
    }

    /// Forgets revocations of tokens that have expired anyway.
    pub async fn purge(&self, now: i64) -> Result<(), StoreError> {
        self.store.purge_expired_revocations(now).await?;
        self.revoked
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, exp| *exp > now);
        Ok(())
    }

    /// How many revocations are held in memory.
    pub fn len(&self) -> usize {
        self.revoked
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
