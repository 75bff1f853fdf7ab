//! Revoked access tokens: a durable write, then an in-memory set checked on every
//! introspection (a map lookup, not a database read). Revocations made by another process
//! on the same database (a replica sharing PostgreSQL) are picked up by
//! [`RevocationList::refresh_if_changed`], which the server polls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use rampart_store::{RevocationStore, StoreError};

/// The revoked token ids (`jti`) with the expiry of their token.
pub struct RevocationList {
    store: Arc<dyn RevocationStore>,
    revoked: RwLock<HashMap<String, i64>>,
    /// The store's revocation generation the set was loaded at.
    generation: AtomicI64,
}

impl RevocationList {
    /// Loads every revocation whose token has not expired.
    pub async fn load(store: Arc<dyn RevocationStore>, now: i64) -> Result<Self, StoreError> {
        // The generation first: a revocation committed in between is loaded now and again
        // at the next refresh, never missed.
        let generation = store.revocations_generation().await?;
        let revoked = store.revoked_since(now).await?.into_iter().collect();
        Ok(Self {
            store,
            revoked: RwLock::new(revoked),
            generation: AtomicI64::new(generation),
        })
    }

    /// Reloads the set when the store's revocation generation moved (a token revoked by
    /// another process). Returns whether it reloaded.
    pub async fn refresh_if_changed(&self, now: i64) -> Result<bool, StoreError> {
        let generation = self.store.revocations_generation().await?;
        if generation == self.generation.load(Ordering::Acquire) {
            return Ok(false);
        }
        let revoked: HashMap<String, i64> =
            self.store.revoked_since(now).await?.into_iter().collect();
        let mut current = self
            .revoked
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Entries revoked here meanwhile are in the store too (durable before they were
        // added): keeping them is never wrong, dropping one could be.
        current.extend(revoked);
        self.generation.store(generation, Ordering::Release);
        Ok(true)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_revocation_made_by_another_process_is_picked_up_by_refresh() {
        let store = Arc::new(
            rampart_store::SqliteStore::open_in_memory()
                .await
                .expect("store"),
        );
        let here = RevocationList::load(store.clone(), 100)
            .await
            .expect("load");
        let elsewhere = RevocationList::load(store.clone(), 100)
            .await
            .expect("load");
        assert!(!here.refresh_if_changed(100).await.expect("refresh"));

        elsewhere.revoke("jti-1", 1_000).await.expect("revoke");
        assert!(elsewhere.is_revoked("jti-1"));
        assert!(!here.is_revoked("jti-1"), "not yet refreshed");
        assert!(here.refresh_if_changed(100).await.expect("refresh"));
        assert!(here.is_revoked("jti-1"));
        assert!(!here.refresh_if_changed(100).await.expect("refresh"));

        // Revoking the same token again changes nothing, so nobody reloads.
        elsewhere
            .revoke("jti-1", 2_000)
            .await
            .expect("revoke again");
        assert!(!here.refresh_if_changed(100).await.expect("refresh"));
    }
}
