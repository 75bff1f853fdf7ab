//! SQLite backend: [`SqliteStore`].
//!
//! Connections run in WAL mode with `synchronous=FULL`, so a write that
//! returned `Ok` survives `kill -9` and power loss. Every multi-statement
//! write runs in a `BEGIN IMMEDIATE` transaction, which takes the write lock
//! up front and therefore waits on the busy timeout instead of failing with
//! `SQLITE_BUSY` when another process (the CLI next to the server) writes.
//!
//! The people traits are implemented in `sqlite_people.rs` (users, second
//! factors, sessions) and `sqlite_flows.rs` (requests, codes, refresh tokens,
//! consents); the schema is in `migrations/sqlite/0003_people.sql`.

use std::path::Path;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::rows::{
    API_KEY_COLUMNS, ApiKeyRow, CLIENT_COLUMNS, ClientRow, GEN_API_KEYS, GEN_CLIENTS, GEN_KEYS,
    GEN_REVOCATIONS, KeyRow, insert_error, read_error, to_json,
};
use crate::{
    ApiKeyRecord, ApiKeyStore, ClientRecord, ClientStore, KeyChange, KeyState, KeyStore,
    ReplayStore, Result, RevocationStore, StoreError, StoredKey,
};

#[path = "sqlite_flows.rs"]
mod flows;
#[path = "sqlite_people.rs"]
mod people;

/// Embedded schema migrations (`crates/rampart-store/migrations/sqlite`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a connection waits for another writer's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Pool size for file databases.
const MAX_CONNECTIONS: u32 = 4;
/// Extra attempts of [`SqliteStore::open`] when a concurrent opener (e.g.
/// the CLI and the server starting on a fresh file) holds a lock that the
/// busy timeout cannot wait on (switching to WAL, racing migrations).
const OPEN_RETRIES: u32 = 5;

/// The SQLite implementation of every store trait. Cloning is cheap (the
/// clones share one connection pool).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path`, configures WAL,
    /// `synchronous=FULL`, foreign keys and a 5 s busy timeout, and applies
    /// pending migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let mut attempt = 0;
        loop {
            match Self::try_open(path).await {
                Ok(store) => return Ok(store),
                Err(err) if attempt < OPEN_RETRIES && is_transient_open_error(&err) => {
                    attempt += 1;
                    tracing::debug!(attempt, "sqlite store busy while opening, retrying");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn try_open(path: &Path) -> Result<SqliteStore> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        Self::migrate(pool).await
    }

    /// Opens a private in-memory database (for tests). It uses a single
    /// connection that is never recycled, so all clones share the same data;
    /// the data is gone after [`SqliteStore::close`].
    pub async fn open_in_memory() -> Result<SqliteStore> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::migrate(pool).await
    }

    /// Applies pending migrations under the write lock (`BEGIN IMMEDIATE`), so that two
    /// processes opening the same file never run the same DDL concurrently (an
    /// `ALTER TABLE ... ADD COLUMN` is not idempotent): the second one waits, then finds
    /// everything applied.
    async fn migrate(pool: SqlitePool) -> Result<SqliteStore> {
        async fn run(pool: &SqlitePool) -> Result<()> {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            MIGRATOR.run(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        }
        if let Err(err) = run(&pool).await {
            pool.close().await;
            return Err(err);
        }
        Ok(SqliteStore { pool })
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

    /// Starts a write transaction holding the write lock from the start.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn generation(&self, name: &str) -> Result<i64> {
        let value: Option<i64> = sqlx::query_scalar("SELECT value FROM generations WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(read_error)?;
        value.ok_or_else(|| StoreError::Corrupt(format!("generations: missing row {name:?}")))
    }
}

/// Bumps a generation counter inside `tx`.
async fn bump_generation(tx: &mut Transaction<'static, Sqlite>, name: &str) -> Result<()> {
    let done = sqlx::query("UPDATE generations SET value = value + 1 WHERE name = ?")
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

/// SQLite primary result codes that mean "someone else holds a lock".
fn is_busy(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|db| db.code())
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6)) // SQLITE_BUSY, SQLITE_LOCKED
}

fn is_transient_open_error(err: &StoreError) -> bool {
    match err {
        StoreError::Backend(e) => is_busy(e),
        StoreError::Migrate(MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _)) => {
            // A concurrent opener may have applied the same migration first.
            is_busy(e)
                || e.as_database_error()
                    .is_some_and(|db| db.is_unique_violation())
        }
        _ => false,
    }
}

#[async_trait::async_trait]
impl ClientStore for SqliteStore {
    async fn create_client(&self, client: &ClientRecord) -> Result<()> {
        let scopes = to_json("clients.scopes", &client.scopes)?;
        let audiences = to_json("clients.audiences", &client.audiences)?;
        let grant_types = to_json("clients.grant_types", &client.grant_types)?;
        let redirect_uris = to_json("clients.redirect_uris", &client.redirect_uris)?;
        let mut tx = self.begin_write().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO clients ({CLIENT_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = ?"
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
        let done = sqlx::query("DELETE FROM clients WHERE client_id = ?")
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
        let done =
            sqlx::query("UPDATE clients SET secret_hash = ?, updated_at = ? WHERE client_id = ?")
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
impl KeyStore for SqliteStore {
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

async fn apply_key_change(tx: &mut Transaction<'static, Sqlite>, change: &KeyChange) -> Result<()> {
    match change {
        KeyChange::Insert(key) => {
            sqlx::query(
                "INSERT INTO signing_keys (kid, kind, state, sealed_secret, created_at, \
                 activated_at, retired_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
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
                KeyState::Next => sqlx::query("UPDATE signing_keys SET state = ? WHERE kid = ?")
                    .bind(state.as_str())
                    .bind(kid),
                KeyState::Active => {
                    sqlx::query("UPDATE signing_keys SET state = ?, activated_at = ? WHERE kid = ?")
                        .bind(state.as_str())
                        .bind(*at)
                        .bind(kid)
                }
                KeyState::Retired => {
                    sqlx::query("UPDATE signing_keys SET state = ?, retired_at = ? WHERE kid = ?")
                        .bind(state.as_str())
                        .bind(*at)
                        .bind(kid)
                }
            };
            let done = query.execute(&mut **tx).await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        }
        KeyChange::Delete { kid } => {
            let done = sqlx::query("DELETE FROM signing_keys WHERE kid = ?")
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
impl RevocationStore for SqliteStore {
    async fn revoke(&self, jti: &str, expires_at: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO revocations (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING",
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
            "SELECT jti, expires_at FROM revocations WHERE expires_at > ? ORDER BY jti",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?;
        Ok(rows)
    }

    async fn purge_expired_revocations(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM revocations WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait::async_trait]
impl ReplayStore for SqliteStore {
    async fn record_once(&self, scope: &str, id: &str, expires_at: i64, now: i64) -> Result<bool> {
        // One statement: insert, or take over an expired record. A live
        // record makes the conditional update a no-op (0 rows affected).
        let done = sqlx::query(
            "INSERT INTO replay_ids (scope, id, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (scope, id) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE replay_ids.expires_at <= ?",
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
        let done = sqlx::query("DELETE FROM replay_ids WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait::async_trait]
impl ApiKeyStore for SqliteStore {
    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        let scopes = to_json("api_keys.scopes", &key.scopes)?;
        let audiences = to_json("api_keys.audiences", &key.audiences)?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO api_keys (key_id, key_hash, name, owner, scopes, audiences, \
             created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?"
        )))
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(read_error)?;
        row.map(ApiKeyRecord::try_from).transpose()
    }

    async fn get_api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>> {
        let row: Option<ApiKeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_id = ?"
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
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ?",
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
        let done = sqlx::query("DELETE FROM api_keys WHERE key_id = ?")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_connections_use_wal_full_sync_fk_and_busy_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        let mut conn = store.pool.acquire().await.expect("acquire");
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .expect("journal_mode");
        assert_eq!(mode.to_ascii_lowercase(), "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .expect("synchronous");
        assert_eq!(sync, 2, "synchronous must be FULL");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await
            .expect("foreign_keys");
        assert_eq!(fk, 1);
        let timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut *conn)
            .await
            .expect("busy_timeout");
        assert_eq!(timeout, 5000);
        drop(conn);
        store.close().await;
    }

    #[test]
    fn busy_codes_are_recognised_only_via_database_errors() {
        assert!(!is_busy(&sqlx::Error::PoolTimedOut));
        assert!(!is_transient_open_error(&StoreError::NotFound));
    }
}
