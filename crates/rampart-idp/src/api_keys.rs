//! API keys: long-lived credentials that the authorization server issues and that
//! gateways verify through introspection (RFC 7662), like opaque tokens.
//!
//! A key is `rk_` followed by 32 random bytes in base64url (256 bits). It is shown once
//! when created; the store only keeps its keyed hash (HMAC-SHA256 with a key derived from
//! the master key), which is also the lookup key, so a leaked database reveals no key and
//! does not allow offline guessing. Keys are managed by a separate, public `key_id`.
//!
//! Lookups are cached in memory by hash. Another process (the `rampart api-key ...` CLI)
//! may change the same database while the server runs: the cache is dropped whenever the
//! store's API key generation counter moves (checked every poll interval), and changes
//! made through this registry drop it at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use rampart_crypto::{ExposeSecret, SecretHasher, SecretString, random_token};
use rampart_store::{ApiKeyRecord, ApiKeyStore, StoreError};

use crate::clients::{RegistryError, validate_audiences, validate_scopes};

/// Every API key starts with this.
pub const API_KEY_PREFIX: &str = "rk_";
/// Longest string that is looked up as an API key; longer ones are rejected unhashed.
pub const MAX_API_KEY_LEN: usize = 256;
/// Random bytes in a key (256 bits).
const KEY_BYTES: usize = 32;
/// Random bytes in a `key_id`.
const KEY_ID_BYTES: usize = 16;
/// Longest `key_id` accepted as input (generated ids are 22 characters).
const MAX_KEY_ID_LEN: usize = 64;
/// Longest key name.
const MAX_ITEM_LEN: usize = 256;
/// Longest owner (it becomes `sub` and `client_id`).
const MAX_OWNER_LEN: usize = 128;
/// Longest lifetime of a key: ten years.
pub const MAX_API_KEY_TTL_SECS: i64 = 10 * 366 * 86_400;
/// Most cached lookups (hits and misses); when full the cache starts over.
const MAX_CACHE_ENTRIES: usize = 100_000;

/// What a caller asks for when creating an API key.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    /// A display name.
    pub name: String,
    /// The subject the key acts for, reported as `sub` and `client_id`.
    pub owner: String,
    /// Scopes (each entry may hold several, separated by spaces).
    pub scopes: Vec<String>,
    /// Audiences (absolute URIs without fragment); at least one.
    pub audiences: Vec<String>,
    /// Lifetime in seconds; `None` for a key that does not expire.
    pub ttl_secs: Option<i64>,
}

/// A newly created key: the record and the key itself, shown only this once.
#[derive(Debug)]
pub struct CreatedApiKey {
    /// The stored record (holds only the key's hash).
    pub record: ApiKeyRecord,
    /// The key; never stored. `Debug` is redacted.
    pub key: SecretString,
}

/// Whether `s` has the shape of an API key (prefix and bounded length). Says nothing about
/// whether it is valid.
pub fn looks_like_api_key(s: &str) -> bool {
    s.starts_with(API_KEY_PREFIX) && s.len() <= MAX_API_KEY_LEN
}

type Cache = HashMap<[u8; 32], Option<Arc<ApiKeyRecord>>>;

/// Creates, lists, revokes and deletes API keys, and verifies presented keys.
pub struct ApiKeyRegistry {
    store: Arc<dyn ApiKeyStore>,
    hasher: SecretHasher,
    /// Lookups by key hash; `None` remembers an unknown key.
    cache: RwLock<Cache>,
    seen_generation: AtomicI64,
}

impl std::fmt::Debug for ApiKeyRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRegistry").finish_non_exhaustive()
    }
}

impl ApiKeyRegistry {
    /// A registry over `store`; keys are hashed with `hasher` (the master key's secret
    /// hasher, the same in the server and the CLI).
    pub fn new(store: Arc<dyn ApiKeyStore>, hasher: SecretHasher) -> Self {
        Self {
            store,
            hasher,
            cache: RwLock::new(HashMap::new()),
            seen_generation: AtomicI64::new(i64::MIN),
        }
    }

    /// Validates and stores a new key; returns it once. Durable when this returns.
    pub async fn create(&self, new: NewApiKey, now: i64) -> Result<CreatedApiKey, RegistryError> {
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.len() > MAX_ITEM_LEN || name.chars().any(char::is_control) {
            return Err(RegistryError::Invalid(
                "name: must be 1 to 256 printable characters".into(),
            ));
        }
        let owner = new.owner.trim().to_owned();
        if owner.is_empty()
            || owner.len() > MAX_OWNER_LEN
            || !owner.bytes().all(|b| (0x21..=0x7E).contains(&b))
        {
            return Err(RegistryError::Invalid(
                "owner: must be 1 to 128 visible ASCII characters without spaces".into(),
            ));
        }
        let scopes = validate_scopes(&new.scopes)?;
        let audiences = validate_audiences(&new.audiences)?;
        let expires_at = match new.ttl_secs {
            None => None,
            Some(ttl) if (1..=MAX_API_KEY_TTL_SECS).contains(&ttl) => Some(
                now.checked_add(ttl)
                    .ok_or_else(|| RegistryError::Invalid("ttl: out of range".into()))?,
            ),
            Some(_) => {
                return Err(RegistryError::Invalid(format!(
                    "ttl: must be between 1 and {MAX_API_KEY_TTL_SECS} seconds"
                )));
            }
        };
        let key = SecretString::from(format!(
            "{API_KEY_PREFIX}{}",
            random_token(KEY_BYTES).map_err(|_| RegistryError::Crypto)?
        ));
        let key_id =
            rampart_crypto::random_identifier(KEY_ID_BYTES).map_err(|_| RegistryError::Crypto)?;
        let record = ApiKeyRecord {
            key_id,
            key_hash: self.hasher.hash(key.expose_secret().as_bytes()).to_vec(),
            name,
            owner,
            scopes,
            audiences,
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        self.store.create_api_key(&record).await?;
        self.invalidate().await;
        Ok(CreatedApiKey { record, key })
    }

    /// All keys, from the store (hashes included; never show them).
    pub async fn list(&self) -> Result<Vec<ApiKeyRecord>, RegistryError> {
        Ok(self.store.list_api_keys().await?)
    }

    /// One key by id, from the store.
    pub async fn get(&self, key_id: &str) -> Result<ApiKeyRecord, RegistryError> {
        if !valid_key_id(key_id) {
            return Err(RegistryError::NotFound);
        }
        self.store
            .get_api_key(key_id)
            .await?
            .ok_or(RegistryError::NotFound)
    }

    /// Revokes a key; on this server it stops working at once. Idempotent. Returns the
    /// updated record.
    pub async fn revoke(&self, key_id: &str, now: i64) -> Result<ApiKeyRecord, RegistryError> {
        if !valid_key_id(key_id) {
            return Err(RegistryError::NotFound);
        }
        self.store.revoke_api_key(key_id, now).await?;
        self.invalidate().await;
        self.get(key_id).await
    }

    /// Deletes a key; on this server it stops working at once.
    pub async fn delete(&self, key_id: &str) -> Result<(), RegistryError> {
        if !valid_key_id(key_id) {
            return Err(RegistryError::NotFound);
        }
        self.store.delete_api_key(key_id).await?;
        self.invalidate().await;
        Ok(())
    }

    /// The record of a presented key if it is active at `now` (known, not revoked, not
    /// expired); `None` otherwise, also for anything that is not shaped like a key.
    pub async fn verify(
        &self,
        presented: &str,
        now: i64,
    ) -> Result<Option<Arc<ApiKeyRecord>>, StoreError> {
        if !looks_like_api_key(presented) {
            return Ok(None);
        }
        let hash = self.hasher.hash(presented.as_bytes());
        let cached = self.cache_read().get(&hash).cloned();
        let found = match cached {
            Some(entry) => entry,
            None => {
                // The generation this lookup belongs to: if the cache is invalidated while
                // the store is read, the (possibly stale) result is not cached.
                let generation = self.seen_generation.load(Ordering::Acquire);
                let entry = self.store.get_api_key_by_hash(&hash).await?.map(Arc::new);
                let mut cache = self.cache_write();
                if self.seen_generation.load(Ordering::Acquire) == generation {
                    if cache.len() >= MAX_CACHE_ENTRIES {
                        cache.clear();
                    }
                    cache.insert(hash, entry.clone());
                }
                entry
            }
        };
        // The lookup was by keyed hash already; this checks it again in constant time.
        Ok(found.filter(|record| {
            self.hasher.verify(presented.as_bytes(), &record.key_hash) && record.is_active(now)
        }))
    }

    /// Drops the cache when another process changed a key. `Ok(true)` if it did.
    pub async fn refresh_if_changed(&self) -> Result<bool, StoreError> {
        let generation = self.store.api_keys_generation().await?;
        let mut cache = self.cache_write();
        let seen = self.seen_generation.swap(generation, Ordering::AcqRel);
        if seen != generation {
            cache.clear();
            return Ok(true);
        }
        Ok(false)
    }

    /// Number of cached lookups.
    pub fn cached(&self) -> usize {
        self.cache_read().len()
    }

    /// After a write through this registry: pick up the new generation and drop the cache
    /// now rather than at the next poll.
    async fn invalidate(&self) {
        if let Err(e) = self.refresh_if_changed().await {
            tracing::warn!(error = %e, "API key generation check failed");
            // Fall back to dropping the cache; a lookup racing with this may cache a stale
            // entry until the next generation change.
            self.cache_write().clear();
        }
    }

    fn cache_read(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cache_write(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Key ids are generated as base64url; anything else cannot exist.
fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_crypto::MasterKey;
    use rampart_store::SqliteStore;

    const AUD: &str = "https://api.example/orders";

    fn new_key(ttl: Option<i64>) -> NewApiKey {
        NewApiKey {
            name: "billing".into(),
            owner: "svc-billing".into(),
            scopes: vec!["orders:read orders:write".into(), "orders:read".into()],
            audiences: vec![AUD.into()],
            ttl_secs: ttl,
        }
    }

    async fn registry() -> (ApiKeyRegistry, SqliteStore, MasterKey) {
        let store = SqliteStore::open_in_memory().await.expect("store");
        let master = MasterKey::generate().expect("master");
        let registry = ApiKeyRegistry::new(Arc::new(store.clone()), master.secret_hasher());
        registry.refresh_if_changed().await.expect("refresh");
        (registry, store, master)
    }

    #[tokio::test]
    async fn created_key_has_format_is_stored_hashed_and_verifies() {
        let (registry, store, master) = registry().await;
        let created = registry.create(new_key(None), 100).await.expect("create");
        let key = created.key.expose_secret().to_owned();
        assert!(key.starts_with("rk_"));
        assert_eq!(key.len(), 3 + 43, "rk_ + 32 bytes base64url");
        assert_eq!(created.record.scopes, ["orders:read", "orders:write"]);
        assert_eq!(created.record.expires_at, None);
        assert!(!format!("{created:?}").contains(&key[3..]));

        let stored = store
            .get_api_key(&created.record.key_id)
            .await
            .expect("get")
            .expect("stored");
        assert_eq!(
            stored.key_hash,
            master.secret_hasher().hash(key.as_bytes()).to_vec()
        );
        assert_ne!(stored.key_hash.as_slice(), key.as_bytes());

        let found = registry
            .verify(&key, 101)
            .await
            .expect("verify")
            .expect("active");
        assert_eq!(found.owner, "svc-billing");
        // One character changed: not found.
        let mut wrong = key.clone();
        let last = wrong.pop().expect("char");
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        assert!(
            registry
                .verify(&wrong, 101)
                .await
                .expect("verify")
                .is_none()
        );
        // Not shaped like a key, or too long: not even looked up.
        assert!(registry.verify("abc", 101).await.expect("verify").is_none());
        let long = format!("rk_{}", "a".repeat(300));
        assert!(registry.verify(&long, 101).await.expect("verify").is_none());
        // A key hashed with another master key does not verify.
        let other = ApiKeyRegistry::new(
            Arc::new(store.clone()),
            MasterKey::generate().expect("m").secret_hasher(),
        );
        assert!(other.verify(&key, 101).await.expect("verify").is_none());
    }

    #[tokio::test]
    async fn expiry_and_revocation_take_effect_at_once() {
        let (registry, _store, _) = registry().await;
        let created = registry
            .create(new_key(Some(10)), 100)
            .await
            .expect("create");
        let key = created.key.expose_secret().to_owned();
        assert_eq!(created.record.expires_at, Some(110));
        assert!(registry.verify(&key, 109).await.expect("v").is_some());
        assert!(registry.verify(&key, 110).await.expect("v").is_none());

        let created = registry.create(new_key(None), 100).await.expect("create");
        let key = created.key.expose_secret().to_owned();
        assert!(registry.verify(&key, 101).await.expect("v").is_some());
        assert!(registry.cached() > 0);
        let revoked = registry
            .revoke(&created.record.key_id, 102)
            .await
            .expect("revoke");
        assert_eq!(revoked.revoked_at, Some(102));
        assert!(registry.verify(&key, 103).await.expect("v").is_none());

        let created = registry.create(new_key(None), 100).await.expect("create");
        let key = created.key.expose_secret().to_owned();
        assert!(registry.verify(&key, 101).await.expect("v").is_some());
        registry
            .delete(&created.record.key_id)
            .await
            .expect("delete");
        assert!(registry.verify(&key, 101).await.expect("v").is_none());
        assert!(matches!(
            registry.delete(&created.record.key_id).await,
            Err(RegistryError::NotFound)
        ));
        assert!(matches!(
            registry.revoke("bad id!", 1).await,
            Err(RegistryError::NotFound)
        ));
    }

    #[tokio::test]
    async fn changes_by_another_process_are_seen_after_refresh() {
        let (server, store, master) = registry().await;
        let cli = ApiKeyRegistry::new(Arc::new(store.clone()), master.secret_hasher());
        let created = cli.create(new_key(None), 100).await.expect("create");
        let key = created.key.expose_secret().to_owned();
        assert!(server.verify(&key, 101).await.expect("v").is_some());
        cli.revoke(&created.record.key_id, 102)
            .await
            .expect("revoke");
        // Still cached as active until the server polls.
        assert!(server.verify(&key, 103).await.expect("v").is_some());
        assert!(server.refresh_if_changed().await.expect("refresh"));
        assert!(server.verify(&key, 103).await.expect("v").is_none());
        assert!(!server.refresh_if_changed().await.expect("refresh"));
    }

    #[tokio::test]
    async fn invalid_input_is_rejected() {
        let (registry, store, _) = registry().await;
        let cases: Vec<(NewApiKey, &str)> = vec![
            (
                NewApiKey {
                    name: " ".into(),
                    ..new_key(None)
                },
                "name",
            ),
            (
                NewApiKey {
                    name: "x".repeat(257),
                    ..new_key(None)
                },
                "name",
            ),
            (
                NewApiKey {
                    owner: "".into(),
                    ..new_key(None)
                },
                "owner",
            ),
            (
                NewApiKey {
                    owner: "a b".into(),
                    ..new_key(None)
                },
                "owner",
            ),
            (
                NewApiKey {
                    owner: "o".repeat(129),
                    ..new_key(None)
                },
                "owner",
            ),
            (
                NewApiKey {
                    scopes: vec!["a\"b".into()],
                    ..new_key(None)
                },
                "scope",
            ),
            (
                NewApiKey {
                    scopes: vec![
                        (0..65)
                            .map(|i| format!("s{i}"))
                            .collect::<Vec<_>>()
                            .join(" "),
                    ],
                    ..new_key(None)
                },
                "scope",
            ),
            (
                NewApiKey {
                    audiences: vec![],
                    ..new_key(None)
                },
                "audience",
            ),
            (
                NewApiKey {
                    audiences: vec!["orders".into()],
                    ..new_key(None)
                },
                "audience",
            ),
            (
                NewApiKey {
                    audiences: vec![AUD.into(); 17],
                    ..new_key(None)
                },
                "audience",
            ),
            (new_key(Some(0)), "ttl"),
            (new_key(Some(-5)), "ttl"),
            (new_key(Some(MAX_API_KEY_TTL_SECS + 1)), "ttl"),
        ];
        for (new, field) in cases {
            match registry.create(new, 1).await {
                Err(RegistryError::Invalid(msg)) => assert!(msg.starts_with(field), "{msg}"),
                other => panic!("{field}: expected Invalid, got {other:?}"),
            }
        }
        assert!(store.list_api_keys().await.expect("list").is_empty());
    }
}
