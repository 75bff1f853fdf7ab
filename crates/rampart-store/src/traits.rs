//! Object-safe storage traits, one per flow.

use crate::{ApiKeyRecord, ClientRecord, KeyChange, Result, StoredKey};

/// Registered OAuth2 clients.
#[async_trait::async_trait]
pub trait ClientStore: Send + Sync {
    /// Creates a client. `Conflict` if the `client_id` already exists.
    async fn create_client(&self, client: &ClientRecord) -> Result<()>;

    /// Fetches a client by id.
    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>>;

    /// Lists all clients ordered by `created_at`, then `client_id`.
    async fn list_clients(&self) -> Result<Vec<ClientRecord>>;

    /// Deletes a client. `NotFound` if absent.
    async fn delete_client(&self, client_id: &str) -> Result<()>;

    /// Replaces a client's secret hash and sets `updated_at`. `NotFound` if absent.
    async fn set_client_secret_hash(
        &self,
        client_id: &str,
        secret_hash: &[u8],
        updated_at: i64,
    ) -> Result<()>;

    /// A counter bumped in the same transaction as every client create,
    /// delete or update. Cheap to read; a changed value means cached clients
    /// are stale (another process, e.g. the CLI, may have written).
    async fn clients_generation(&self) -> Result<i64>;
}

/// Signing keys and their rotation.
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync {
    /// Lists all keys ordered by `created_at`, then `kid`.
    async fn list_keys(&self) -> Result<Vec<StoredKey>>;

    /// Applies all changes in one transaction: either every change is
    /// applied or none is (the first failing change's error is returned).
    /// An empty slice is a no-op and does not bump the generation.
    async fn apply_key_changes(&self, changes: &[KeyChange]) -> Result<()>;

    /// A counter bumped by every non-empty, successful [`KeyStore::apply_key_changes`].
    async fn keys_generation(&self) -> Result<i64>;
}

/// Revoked access tokens, by `jti`.
#[async_trait::async_trait]
pub trait RevocationStore: Send + Sync {
    /// Revokes `jti` until `expires_at` (unix seconds). Idempotent: revoking
    /// an already revoked `jti` succeeds and keeps the first expiry. A new
    /// revocation bumps [`RevocationStore::revocations_generation`] in the same
    /// transaction.
    async fn revoke(&self, jti: &str, expires_at: i64) -> Result<()>;

    /// A counter bumped by every new revocation, so that other processes on the same
    /// database (replicas, the CLI) notice it and reload their revocation lists.
    async fn revocations_generation(&self) -> Result<i64>;

    /// All `(jti, expires_at)` with `expires_at > now`, ordered by `jti`.
    async fn revoked_since(&self, now: i64) -> Result<Vec<(String, i64)>>;

    /// Deletes revocations with `expires_at <= now`; returns how many.
    async fn purge_expired_revocations(&self, now: i64) -> Result<u64>;
}

/// One-time identifiers (replay protection).
#[async_trait::async_trait]
pub trait ReplayStore: Send + Sync {
    /// Records a one-time identifier (e.g. a `private_key_jwt` assertion
    /// `jti`) in `scope` until `expires_at`. `Ok(true)` if it was new (or
    /// its previous record had expired, i.e. `expires_at <= now`), `Ok(false)`
    /// if it is already recorded and not expired (a replay). Atomic under
    /// concurrency: a single conditional upsert on a unique key, no
    /// read-then-write race.
    async fn record_once(&self, scope: &str, id: &str, expires_at: i64, now: i64) -> Result<bool>;

    /// Deletes records with `expires_at <= now`; returns how many.
    async fn purge_expired_replays(&self, now: i64) -> Result<u64>;
}

/// API keys, stored as keyed hashes.
#[async_trait::async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Creates a key. `Conflict` if the `key_id` or the `key_hash` exists.
    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<()>;

    /// Fetches a key by the keyed hash of the presented key.
    async fn get_api_key_by_hash(&self, key_hash: &[u8]) -> Result<Option<ApiKeyRecord>>;

    /// Fetches a key by its public id.
    async fn get_api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>>;

    /// Lists all keys ordered by `created_at`, then `key_id`.
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>>;

    /// Marks a key revoked at `revoked_at`. `NotFound` if absent. Idempotent:
    /// revoking a revoked key succeeds and keeps the first `revoked_at`.
    async fn revoke_api_key(&self, key_id: &str, revoked_at: i64) -> Result<()>;

    /// Deletes a key. `NotFound` if absent.
    async fn delete_api_key(&self, key_id: &str) -> Result<()>;

    /// A counter bumped in the same transaction as every key create, revoke
    /// or delete, so that caches in other processes notice the change.
    async fn api_keys_generation(&self) -> Result<i64>;
}
