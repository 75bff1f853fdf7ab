//! The SQLite implementation of [`UserStore`], [`MfaStore`] and [`SessionStore`]
//! (schema: `migrations/sqlite/0003_people.sql`; [`crate::AuthCodeStore`] is in `sqlite_flows.rs`).
//!
//! Single-statement writes run in autocommit mode (atomic on their own); every
//! read-then-write or multi-statement change runs in one `BEGIN IMMEDIATE` transaction.
//! Rows referring to a user carry `ON DELETE CASCADE` foreign keys; [`UserStore::delete_user`]
//! also deletes them explicitly in its transaction, so it does not depend on the pragma.

use sqlx::AssertSqlSafe;

use super::SqliteStore;
use crate::rows::people::{Key, SESSION_COLUMNS, SessionRow, USER_COLUMNS, UserRow};
use crate::rows::{child_insert_error, insert_error, one_row, read_error, to_json};
use crate::{
    MfaStore, Result, SessionRecord, SessionStore, StoreError, TotpRecord, UserRecord, UserStore,
    WebauthnCredentialRecord,
};

impl SqliteStore {
    async fn user_where(&self, clause: &str, key: Key<'_>) -> Result<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {clause}");
        let query = sqlx::query_as::<_, UserRow>(AssertSqlSafe(sql));
        let query = match key {
            Key::Text(text) => query.bind(text),
            Key::Bytes(bytes) => query.bind(bytes),
        };
        let row = query.fetch_optional(&self.pool).await.map_err(read_error)?;
        row.map(UserRecord::try_from).transpose()
    }

    async fn session_where(&self, clause: &str, key: Key<'_>) -> Result<Option<SessionRecord>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE {clause}");
        let query = sqlx::query_as::<_, SessionRow>(AssertSqlSafe(sql));
        let query = match key {
            Key::Text(text) => query.bind(text),
            Key::Bytes(bytes) => query.bind(bytes),
        };
        let row = query.fetch_optional(&self.pool).await.map_err(read_error)?;
        row.map(SessionRecord::try_from).transpose()
    }
}

// ---------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------

#[async_trait::async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &UserRecord) -> Result<()> {
        let roles = to_json("users.roles", &user.roles)?;
        let groups = to_json("users.user_groups", &user.groups)?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )))
        .bind(&user.user_id)
        .bind(&user.username)
        .bind(user.email_index.as_slice())
        .bind(user.sealed_profile.as_slice())
        .bind(&user.password_hash)
        .bind(roles)
        .bind(groups)
        .bind(user.disabled)
        .bind(user.created_at)
        .bind(user.updated_at)
        .execute(&self.pool)
        .await
        .map_err(insert_error)?;
        Ok(())
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>> {
        self.user_where("user_id = ?", Key::Text(user_id)).await
    }

    async fn get_user_by_username(&self, username: &str) -> Result<Option<UserRecord>> {
        self.user_where("username = ?", Key::Text(username)).await
    }

    async fn get_user_by_email_index(&self, email_index: &[u8]) -> Result<Option<UserRecord>> {
        self.user_where("email_index = ?", Key::Bytes(email_index))
            .await
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        let rows: Vec<UserRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY created_at, user_id"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?;
        rows.into_iter().map(UserRecord::try_from).collect()
    }

    async fn set_password_hash(&self, user_id: &str, hash: &str, updated_at: i64) -> Result<()> {
        let done =
            sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE user_id = ?")
                .bind(hash)
                .bind(updated_at)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
        one_row(done.rows_affected())
    }

    async fn set_user_disabled(
        &self,
        user_id: &str,
        disabled: bool,
        updated_at: i64,
    ) -> Result<()> {
        let done = sqlx::query("UPDATE users SET disabled = ?, updated_at = ? WHERE user_id = ?")
            .bind(disabled)
            .bind(updated_at)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        one_row(done.rows_affected())
    }

    async fn delete_user(&self, user_id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // Children first, explicitly: correct even on a connection without foreign keys.
        for sql in [
            "DELETE FROM refresh_tokens WHERE family_id IN \
             (SELECT family_id FROM refresh_families WHERE user_id = ?)",
            "DELETE FROM refresh_families WHERE user_id = ?",
            "DELETE FROM auth_codes WHERE user_id = ?",
            "DELETE FROM auth_requests WHERE pending_user_id = ?",
            "DELETE FROM consents WHERE user_id = ?",
            "DELETE FROM sessions WHERE user_id = ?",
            "DELETE FROM webauthn_credentials WHERE user_id = ?",
            "DELETE FROM recovery_codes WHERE user_id = ?",
            "DELETE FROM totp WHERE user_id = ?",
        ] {
            sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM users WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Second factors
// ---------------------------------------------------------------------------------------

#[async_trait::async_trait]
impl MfaStore for SqliteStore {
    async fn put_pending_totp(&self, record: &TotpRecord) -> Result<()> {
        // One statement: insert, or replace an unconfirmed enrollment. A confirmed one makes
        // the conditional update a no-op. A new secret starts unconfirmed with no used step.
        let done = sqlx::query(
            "INSERT INTO totp (user_id, sealed_secret, confirmed, last_step, created_at) \
             VALUES (?, ?, 0, NULL, ?) \
             ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
             confirmed = 0, last_step = NULL, created_at = excluded.created_at \
             WHERE totp.confirmed = 0",
        )
        .bind(&record.user_id)
        .bind(record.sealed_secret.as_slice())
        .bind(record.created_at)
        .execute(&self.pool)
        .await
        .map_err(child_insert_error)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn get_totp(&self, user_id: &str) -> Result<Option<TotpRecord>> {
        let row: Option<(String, Vec<u8>, bool, Option<i64>, i64)> = sqlx::query_as(
            "SELECT user_id, sealed_secret, confirmed, last_step, created_at \
             FROM totp WHERE user_id = ?",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(read_error)?;
        Ok(row.map(
            |(user_id, sealed_secret, confirmed, last_step, created_at)| TotpRecord {
                user_id,
                sealed_secret,
                confirmed,
                last_step,
                created_at,
            },
        ))
    }

    async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE totp SET last_step = ?, confirmed = 1 \
             WHERE user_id = ? AND (last_step IS NULL OR last_step < ?)",
        )
        .bind(step)
        .bind(user_id)
        .bind(step)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[Vec<u8>],
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE user_id = ?")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(read_error)?;
        if exists.is_none() {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for hash in hashes {
            // A duplicate hash is a `Conflict`; dropping `tx` rolls everything back.
            sqlx::query(
                "INSERT INTO recovery_codes (user_id, code_hash, created_at, used_at) \
                 VALUES (?, ?, ?, NULL)",
            )
            .bind(user_id)
            .bind(hash.as_slice())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(insert_error)?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn use_recovery_code(&self, user_id: &str, hash: &[u8], now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = ? \
             WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn remaining_recovery_codes(&self, user_id: &str) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await
        .map_err(read_error)?;
        u64::try_from(count).map_err(|_| StoreError::Corrupt("recovery_codes: bad count".into()))
    }

    async fn add_webauthn_credential(&self, credential: &WebauthnCredentialRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO webauthn_credentials (credential_id, user_id, name, credential_json, \
             created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(credential.credential_id.as_slice())
        .bind(&credential.user_id)
        .bind(&credential.name)
        .bind(&credential.credential_json)
        .bind(credential.created_at)
        .bind(credential.last_used_at)
        .execute(&self.pool)
        .await
        .map_err(child_insert_error)?;
        Ok(())
    }

    async fn list_webauthn_credentials(
        &self,
        user_id: &str,
    ) -> Result<Vec<WebauthnCredentialRecord>> {
        let rows: Vec<(Vec<u8>, String, String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT credential_id, user_id, name, credential_json, created_at, last_used_at \
             FROM webauthn_credentials WHERE user_id = ? ORDER BY created_at, credential_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?;
        Ok(rows
            .into_iter()
            .map(
                |(credential_id, user_id, name, credential_json, created_at, last_used_at)| {
                    WebauthnCredentialRecord {
                        credential_id,
                        user_id,
                        name,
                        credential_json,
                        created_at,
                        last_used_at,
                    }
                },
            )
            .collect())
    }

    async fn update_webauthn_credential(
        &self,
        credential_id: &[u8],
        credential_json: &str,
        last_used_at: i64,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE webauthn_credentials SET credential_json = ?, last_used_at = ? \
             WHERE credential_id = ?",
        )
        .bind(credential_json)
        .bind(last_used_at)
        .bind(credential_id)
        .execute(&self.pool)
        .await?;
        one_row(done.rows_affected())
    }

    async fn reset_mfa(&self, user_id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for sql in [
            "DELETE FROM totp WHERE user_id = ?",
            "DELETE FROM recovery_codes WHERE user_id = ?",
            "DELETE FROM webauthn_credentials WHERE user_id = ?",
        ] {
            sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------

#[async_trait::async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, session: &SessionRecord) -> Result<()> {
        let amr = to_json("sessions.amr", &session.amr)?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )))
        .bind(&session.session_id)
        .bind(session.cookie_hash.as_slice())
        .bind(&session.user_id)
        .bind(session.auth_time)
        .bind(amr)
        .bind(&session.acr)
        .bind(session.created_at)
        .bind(session.last_seen_at)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await
        .map_err(child_insert_error)?;
        Ok(())
    }

    async fn get_session_by_cookie(&self, cookie_hash: &[u8]) -> Result<Option<SessionRecord>> {
        self.session_where("cookie_hash = ?", Key::Bytes(cookie_hash))
            .await
    }

    async fn get_session(&self, session_id: &str) -> Result<Option<SessionRecord>> {
        self.session_where("session_id = ?", Key::Text(session_id))
            .await
    }

    async fn touch_session(&self, session_id: &str, now: i64) -> Result<()> {
        let done = sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE session_id = ?")
            .bind(now)
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        one_row(done.rows_affected())
    }

    async fn update_session_auth(
        &self,
        session_id: &str,
        auth_time: i64,
        amr: &[String],
        acr: &str,
    ) -> Result<()> {
        let amr = to_json("sessions.amr", amr)?;
        let done =
            sqlx::query("UPDATE sessions SET auth_time = ?, amr = ?, acr = ? WHERE session_id = ?")
                .bind(auth_time)
                .bind(amr)
                .bind(acr)
                .bind(session_id)
                .execute(&self.pool)
                .await?;
        one_row(done.rows_affected())
    }

    async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionRecord>> {
        let rows: Vec<SessionRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ? \
             ORDER BY created_at DESC, session_id DESC"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?;
        rows.into_iter().map(SessionRecord::try_from).collect()
    }

    async fn delete_session(&self, session_id: &str, now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM sessions WHERE session_id = ?")
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "UPDATE refresh_families SET revoked_at = ? \
             WHERE session_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: &str, now: i64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE refresh_families SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn purge_expired_sessions(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
