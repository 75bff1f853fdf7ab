//! The PostgreSQL implementation of [`UserStore`], [`MfaStore`] and [`SessionStore`]
//! ([`crate::AuthCodeStore`] is in `postgres_flows.rs`); the same statements as
//! `sqlite_people.rs` in PostgreSQL's dialect.
//!
//! Single-statement writes run in autocommit mode (atomic on their own; a TOTP step or a
//! recovery code is accepted by one conditional `UPDATE`, so two concurrent uses cannot
//! both succeed); multi-statement changes run in one transaction, and a read that the
//! following writes depend on locks its row (`FOR UPDATE`).

use sqlx::AssertSqlSafe;

use super::PostgresStore;
use crate::rows::people::{Key, SESSION_COLUMNS, SessionRow, USER_COLUMNS, UserRow};
use crate::rows::{child_insert_error, insert_error, one_row, read_error, to_json};
use crate::{
    MfaStore, Result, SessionRecord, SessionStore, StoreError, TotpRecord, UserRecord, UserStore,
    WebauthnCredentialRecord,
};

impl PostgresStore {
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
impl UserStore for PostgresStore {
    async fn create_user(&self, user: &UserRecord) -> Result<()> {
        let roles = to_json("users.roles", &user.roles)?;
        let groups = to_json("users.user_groups", &user.groups)?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
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
        self.user_where("user_id = $1", Key::Text(user_id)).await
    }

    async fn get_user_by_username(&self, username: &str) -> Result<Option<UserRecord>> {
        self.user_where("username = $1", Key::Text(username)).await
    }

    async fn get_user_by_email_index(&self, email_index: &[u8]) -> Result<Option<UserRecord>> {
        self.user_where("email_index = $1", Key::Bytes(email_index))
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
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE user_id = $3")
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
        let done =
            sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE user_id = $3")
                .bind(disabled)
                .bind(updated_at)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
        one_row(done.rows_affected())
    }

    async fn delete_user(&self, user_id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // Children first, explicitly, as the SQLite backend does (the foreign keys cascade too).
        for sql in [
            "DELETE FROM refresh_tokens WHERE family_id IN \
             (SELECT family_id FROM refresh_families WHERE user_id = $1)",
            "DELETE FROM refresh_families WHERE user_id = $1",
            "DELETE FROM auth_codes WHERE user_id = $1",
            "DELETE FROM auth_requests WHERE pending_user_id = $1",
            "DELETE FROM consents WHERE user_id = $1",
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM webauthn_credentials WHERE user_id = $1",
            "DELETE FROM recovery_codes WHERE user_id = $1",
            "DELETE FROM totp WHERE user_id = $1",
        ] {
            sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM users WHERE user_id = $1")
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
impl MfaStore for PostgresStore {
    async fn put_pending_totp(&self, record: &TotpRecord) -> Result<()> {
        // One statement: insert, or replace an unconfirmed enrollment. A confirmed one makes
        // the conditional update a no-op. A new secret starts unconfirmed with no used step.
        let done = sqlx::query(
            "INSERT INTO totp (user_id, sealed_secret, confirmed, last_step, created_at) \
             VALUES ($1, $2, FALSE, NULL, $3) \
             ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
             confirmed = FALSE, last_step = NULL, created_at = excluded.created_at \
             WHERE NOT totp.confirmed",
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
             FROM totp WHERE user_id = $1",
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
            "UPDATE totp SET last_step = $1, confirmed = TRUE \
             WHERE user_id = $2 AND (last_step IS NULL OR last_step < $3)",
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
        // The user's row lock orders concurrent replacements (each deletes, then inserts).
        let exists: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM users WHERE user_id = $1 FOR UPDATE")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(read_error)?;
        if exists.is_none() {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for hash in hashes {
            // A duplicate hash is a `Conflict`; dropping `tx` rolls everything back.
            sqlx::query(
                "INSERT INTO recovery_codes (user_id, code_hash, created_at, used_at) \
                 VALUES ($1, $2, $3, NULL)",
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
            "UPDATE recovery_codes SET used_at = $1 \
             WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
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
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
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
             created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6)",
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
             FROM webauthn_credentials WHERE user_id = $1 ORDER BY created_at, credential_id",
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
            "UPDATE webauthn_credentials SET credential_json = $1, last_used_at = $2 \
             WHERE credential_id = $3",
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
            "DELETE FROM totp WHERE user_id = $1",
            "DELETE FROM recovery_codes WHERE user_id = $1",
            "DELETE FROM webauthn_credentials WHERE user_id = $1",
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
impl SessionStore for PostgresStore {
    async fn create_session(&self, session: &SessionRecord) -> Result<()> {
        let amr = to_json("sessions.amr", &session.amr)?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
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
        self.session_where("cookie_hash = $1", Key::Bytes(cookie_hash))
            .await
    }

    async fn get_session(&self, session_id: &str) -> Result<Option<SessionRecord>> {
        self.session_where("session_id = $1", Key::Text(session_id))
            .await
    }

    async fn touch_session(&self, session_id: &str, now: i64) -> Result<()> {
        let done = sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE session_id = $2")
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
        let done = sqlx::query(
            "UPDATE sessions SET auth_time = $1, amr = $2, acr = $3 WHERE session_id = $4",
        )
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
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 \
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
        let done = sqlx::query("DELETE FROM sessions WHERE session_id = $1")
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1 \
             WHERE session_id = $2 AND revoked_at IS NULL",
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
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn purge_expired_sessions(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
