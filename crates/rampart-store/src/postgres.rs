//! PostgreSQL backend: [`PostgresStore`], the scale-out store. Several servers (and the
//! CLI) share one database; the schema is `migrations/postgres`, the same tables and
//! columns as SQLite's.
//!
//! Transactions run at PostgreSQL's default isolation, READ COMMITTED. Where SQLite
//! serialises writers with `BEGIN IMMEDIATE`, this backend relies on row locks: every
//! single-use change is one conditional `UPDATE` (a concurrent second `UPDATE` of the
//! row waits, then finds the condition false), every read that a later write depends on
//! takes `FOR UPDATE`, and each change to clients, keys and API keys bumps its generation
//! row, which serialises those writers. A write that returned `Ok` is committed
//! (`synchronous_commit` is the server's; keep it `on`).
//!
//! The people traits are implemented in `postgres_people.rs` (users, second factors,
//! sessions) and `postgres_flows.rs` (requests, codes, refresh tokens, consents).

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::rows::{
    API_KEY_COLUMNS, ApiKeyRow, CLIENT_COLUMNS, ClientRow, GEN_API_KEYS, GEN_CLIENTS, GEN_KEYS,
    GEN_REVOCATIONS, KeyRow, insert_error, read_error, to_json,
};
use crate::{
    ApiKeyRecord, ApiKeyStore, ClientRecord, ClientStore, KeyChange, KeyState, KeyStore,
    ReplayStore, Result, RevocationStore, StoreError, StoredKey,
};

#[path = "postgres_flows.rs"]
mod flows;
#[path = "postgres_people.rs"]
mod people;

/// Embedded schema migrations (`crates/rampart-store/migrations/postgres`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How to reach the database.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Connections kept at most in the pool.
    pub max_connections: u32,
    /// How long to wait for a connection (opening one, or a free one from the pool).
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The PostgreSQL implementation of every store trait. Cloning is cheap (the clones share
/// one connection pool).
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`;
    /// `sslmode=verify-full&sslrootcert=...` for TLS) and applies pending migrations.
    /// Servers starting together are safe: the migrator holds an advisory lock while it runs.
    pub async fn connect(url: &str, options: &PostgresOptions) -> Result<PostgresStore> {
        let connect: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        if let Err(err) = MIGRATOR.run(&pool).await {
            pool.close().await;
            return Err(err.into());
        }
        Ok(PostgresStore { pool })
    }

    /// Closes all connections, waiting for in-flight operations to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Checks that the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Starts a write transaction (READ COMMITTED; see the module documentation for how
    /// concurrent writers are ordered).
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    async fn generation(&self, name: &str) -> Result<i64> {
        let value: Option<i64> =
            sqlx::query_scalar("SELECT value FROM generations WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(read_error)?;
        value.ok_or_else(|| StoreError::Corrupt(format!("generations: missing row {name:?}")))
    }
}

/// Bumps a generation counter inside `tx`.
async fn bump_generation(tx: &mut Transaction<'static, Postgres>, name: &str) -> Result<()> {
    let done = sqlx::query("UPDATE generations SET value = value + 1 WHERE name = $1")
        .bind(name)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Corrupt(format!(
            "generations: missing row {name:?}"
        )));
    }
    Ok(())
}

#[async_trait::async_trait]
impl ClientStore for PostgresStore {
    async fn create_client(&self, client: &ClientRecord) -> Result<()> {
        let scopes = to_json("clients.scopes", &client.scopes)?;
        let audiences = to_json("clients.audiences", &client.audiences)?;
        let grant_types = to_json("clients.grant_types", &client.grant_types)?;
        let redirect_uris = to_json("clients.redirect_uris", &client.redirect_uris)?;
        let mut tx = self.begin_write().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO clients ({CLIENT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        )))
        .bind(&client.client_id)
        .bind(&client.name)
        .bind(client.secret_hash.as_deref())
        .bind(client.auth_method.as_str())
        .bind(client.jwks.as_deref())
        .bind(scopes)
        .bind(audiences)
        .bind(client.token_format.as_str())
        .bind(client.access_token_ttl_secs)
        .bind(grant_types)
        .bind(redirect_uris)
        .bind(client.first_party)
        .bind(client.require_mfa)
        .bind(client.require_par)
        .bind(client.created_at)
        .bind(client.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(insert_error)?;
        bump_generation(&mut tx, GEN_CLIENTS).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        let row: Option<ClientRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1"
        )))
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(read_error)?;
        row.map(ClientRecord::try_from).transpose()
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>> {
        let rows: Vec<ClientRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CLIENT_COLUMNS} FROM clients ORDER BY created_at, client_id"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?;
        rows.into_iter().map(ClientRecord::try_from).collect()
    }

    async fn delete_client(&self, client_id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        }
        bump_generation(&mut tx, GEN_CLIENTS).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_client_secret_hash(
        &self,
        client_id: &str,
        secret_hash: &[u8],
        updated_at: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE clients SET secret_hash = $1, updated_at = $2 WHERE client_id = $3",
        )
        .bind(secret_hash)
        .bind(updated_at)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        }
        bump_generation(&mut tx, GEN_CLIENTS).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn clients_generation(&self) -> Result<i64> {
        self.generation(GEN_CLIENTS).await
    }
}

#[async_trait::async_trait]
impl KeyStore for PostgresStore {
    async fn list_keys(&self) -> Result<Vec<StoredKey>> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT kid, kind, state, sealed_secret, created_at, activated_at, retired_at \
             FROM signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?;
        rows.into_iter().map(StoredKey::try_from).collect()
    }

    async fn apply_key_changes(&self, changes: &[KeyChange]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for change in changes {
            // On error `tx` is dropped, which rolls back every earlier change.
            apply_key_change(&mut tx, change).await?;
        }
        bump_generation(&mut tx, GEN_KEYS).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn keys_generation(&self) -> Result<i64> {
        self.generation(GEN_KEYS).await
    }
}

async fn apply_key_change(
    tx: &mut Transaction<'static, Postgres>,
    change: &KeyChange,
) -> Result<()> {
    match change {
        KeyChange::Insert(key) => {
            sqlx::query(
                "INSERT INTO signing_keys (kid, kind, state, sealed_secret, created_at, \
                 activated_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&key.kid)
            .bind(&key.kind)
            .bind(key.state.as_str())
            .bind(key.sealed_secret.as_slice())
            .bind(key.created_at)
            .bind(key.activated_at)
            .bind(key.retired_at)
            .execute(&mut **tx)
            .await
            .map_err(insert_error)?;
        }
        KeyChange::SetState { kid, state, at } => {
            let query = match state {
                KeyState::Next => sqlx::query("UPDATE signing_keys SET state = $1 WHERE kid = $2")
                    .bind(state.as_str())
                    .bind(kid),
                KeyState::Active => sqlx::query(
                    "UPDATE signing_keys SET state = $1, activated_at = $2 WHERE kid = $3",
                )
                .bind(state.as_str())
                .bind(*at)
                .bind(kid),
                KeyState::Retired => sqlx::query(
                    "UPDATE signing_keys SET state = $1, retired_at = $2 WHERE kid = $3",
                )
                .bind(state.as_str())
                .bind(*at)
                .bind(kid),
            };
            let done = query.execute(&mut **tx).await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        }
        KeyChange::Delete { kid } => {
            let done = sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                .bind(kid)
                .execute(&mut **tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl RevocationStore for PostgresStore {
    async fn revoke(&self, jti: &str, expires_at: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO revocations (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            bump_generation(&mut tx, GEN_REVOCATIONS).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn revocations_generation(&self) -> Result<i64> {
        self.generation(GEN_REVOCATIONS).await
    }

    async fn revoked_since(&self, now: i64) -> Result<Vec<(String, i64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT jti, expires_at FROM revocations WHERE expires_at > $1 ORDER BY jti",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?;
        Ok(rows)
    }

    async fn purge_expired_revocations(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM revocations WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait::async_trait]
impl ReplayStore for PostgresStore {
    async fn record_once(&self, scope: &str, id: &str, expires_at: i64, now: i64) -> Result<bool> {
        // One statement: insert, or take over an expired record. A live
        // record makes the conditional update a no-op (0 rows affected).
        let done = sqlx::query(
            "INSERT INTO replay_ids (scope, id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (scope, id) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE replay_ids.expires_at <= $4",
        )
        .bind(scope)
        .bind(id)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_expired_replays(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM replay_ids WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait::async_trait]
impl ApiKeyStore for PostgresStore {
    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        let scopes = to_json("api_keys.scopes", &key.scopes)?;
        let audiences = to_json("api_keys.audiences", &key.audiences)?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO api_keys (key_id, key_hash, name, owner, scopes, audiences, \
             created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&key.key_id)
        .bind(key.key_hash.as_slice())
        .bind(&key.name)
        .bind(&key.owner)
        .bind(scopes)
        .bind(audiences)
        .bind(key.created_at)
        .bind(key.expires_at)
        .bind(key.revoked_at)
        .execute(&mut *tx)
        .await
        .map_err(insert_error)?;
        bump_generation(&mut tx, GEN_API_KEYS).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_api_key_by_hash(&self, key_hash: &[u8]) -> Result<Option<ApiKeyRecord>> {
        let row: Option<ApiKeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"
        )))
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(read_error)?;
        row.map(ApiKeyRecord::try_from).transpose()
    }

    async fn get_api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>> {
        let row: Option<ApiKeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_id = $1"
        )))
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(read_error)?;
        row.map(ApiKeyRecord::try_from).transpose()
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        let rows: Vec<ApiKeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?;
        rows.into_iter().map(ApiKeyRecord::try_from).collect()
    }

    async fn revoke_api_key(&self, key_id: &str, revoked_at: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE key_id = $2",
        )
        .bind(revoked_at)
        .bind(key_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        }
        bump_generation(&mut tx, GEN_API_KEYS).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_api_key(&self, key_id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM api_keys WHERE key_id = $1")
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        }
        bump_generation(&mut tx, GEN_API_KEYS).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn api_keys_generation(&self) -> Result<i64> {
        self.generation(GEN_API_KEYS).await
    }
}
