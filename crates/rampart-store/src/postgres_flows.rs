//! The PostgreSQL implementation of [`AuthCodeStore`]: authorization requests, codes,
//! refresh-token families and consents; the same statements as `sqlite_flows.rs` in
//! PostgreSQL's dialect.
//!
//! A code is claimed by one conditional `UPDATE` (a concurrent second redemption waits
//! for the first to commit, then finds it redeemed). A refresh-token rotation locks the
//! presented token's row first (`FOR UPDATE`), so of two concurrent rotations of one token
//! the second sees it used and revokes the family, as under SQLite's write lock.

use sqlx::{AssertSqlSafe, Postgres, Transaction};

use super::PostgresStore;
use crate::rows::flows::{
    CODE_COLUMNS, CODE_RETENTION_SECS, CodeRow, FAMILY_COLUMNS, FamilyRow, StoredCode,
    TOKEN_COLUMNS, TokenRow, token_record,
};
use crate::rows::{child_insert_error, from_json, insert_error, one_row, read_error, to_json};
use crate::{
    AuthCodeRecord, AuthCodeStore, AuthRequestRecord, CodeRedemption, IssuedGrant,
    RefreshFamilyRecord, RefreshRotation, RefreshTokenRecord, Result, StoreError,
};

/// Reads a refresh token; `lock` takes its row lock until the transaction ends.
async fn fetch_token(
    tx: &mut Transaction<'static, Postgres>,
    token_hash: &[u8],
    lock: bool,
) -> Result<Option<RefreshTokenRecord>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row: Option<TokenRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS} FROM refresh_tokens WHERE token_hash = $1{lock}"
    )))
    .bind(token_hash)
    .fetch_optional(&mut **tx)
    .await
    .map_err(read_error)?;
    Ok(row.map(token_record))
}

async fn fetch_family(
    tx: &mut Transaction<'static, Postgres>,
    family_id: &str,
) -> Result<RefreshFamilyRecord> {
    let row: Option<FamilyRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {FAMILY_COLUMNS} FROM refresh_families WHERE family_id = $1"
    )))
    .bind(family_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(read_error)?;
    row.ok_or_else(|| StoreError::Corrupt("refresh_tokens.family_id: unknown family".into()))?
        .try_into()
}

async fn insert_token(
    tx: &mut Transaction<'static, Postgres>,
    token: &RefreshTokenRecord,
    family_id: &str,
) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO refresh_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
    )))
    .bind(token.token_hash.as_slice())
    .bind(family_id)
    .bind(token.created_at)
    .bind(token.idle_expires_at)
    .bind(token.used_at)
    .execute(&mut **tx)
    .await
    .map_err(insert_error)?;
    Ok(())
}

async fn fetch_code(
    tx: &mut Transaction<'static, Postgres>,
    code_hash: &[u8],
) -> Result<Option<StoredCode>> {
    let row: Option<CodeRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {CODE_COLUMNS} FROM auth_codes WHERE code_hash = $1"
    )))
    .bind(code_hash)
    .fetch_optional(&mut **tx)
    .await
    .map_err(read_error)?;
    row.map(StoredCode::try_from).transpose()
}

#[async_trait::async_trait]
impl AuthCodeStore for PostgresStore {
    async fn create_auth_request(&self, request: &AuthRequestRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO auth_requests (request_id, client_id, params_json, pushed, \
             pending_user_id, pending_binding, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&request.request_id)
        .bind(&request.client_id)
        .bind(&request.params_json)
        .bind(request.pushed)
        .bind(request.pending_user_id.as_deref())
        .bind(request.pending_binding.as_deref())
        .bind(request.created_at)
        .bind(request.expires_at)
        .execute(&self.pool)
        .await
        .map_err(child_insert_error)?;
        Ok(())
    }

    async fn get_auth_request(
        &self,
        request_id: &str,
        now: i64,
    ) -> Result<Option<AuthRequestRecord>> {
        type Row = (
            String,
            String,
            String,
            bool,
            Option<String>,
            Option<Vec<u8>>,
            i64,
            i64,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT request_id, client_id, params_json, pushed, pending_user_id, \
             pending_binding, created_at, expires_at FROM auth_requests WHERE request_id = $1 AND expires_at > $2",
        )
        .bind(request_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(read_error)?;
        Ok(row.map(
            |(
                request_id,
                client_id,
                params_json,
                pushed,
                pending_user_id,
                pending_binding,
                created_at,
                expires_at,
            )| {
                AuthRequestRecord {
                    request_id,
                    client_id,
                    params_json,
                    pushed,
                    pending_user_id,
                    pending_binding,
                    created_at,
                    expires_at,
                }
            },
        ))
    }

    async fn set_auth_request_pending_user(
        &self,
        request_id: &str,
        pending: Option<(&str, &[u8])>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE auth_requests SET pending_user_id = $1, pending_binding = $2 \
             WHERE request_id = $3",
        )
        .bind(pending.map(|p| p.0))
        .bind(pending.map(|p| p.1))
        .bind(request_id)
        .execute(&self.pool)
        .await
        .map_err(child_insert_error)?;
        one_row(done.rows_affected())
    }

    async fn set_auth_request_params(&self, request_id: &str, params_json: &str) -> Result<()> {
        let done = sqlx::query("UPDATE auth_requests SET params_json = $1 WHERE request_id = $2")
            .bind(params_json)
            .bind(request_id)
            .execute(&self.pool)
            .await?;
        one_row(done.rows_affected())
    }

    async fn delete_auth_request(&self, request_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM auth_requests WHERE request_id = $1")
            .bind(request_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_code(&self, code: &AuthCodeRecord) -> Result<()> {
        let amr = to_json("auth_codes.amr", &code.amr)?;
        sqlx::query(
            "INSERT INTO auth_codes (code_hash, client_id, user_id, session_id, redirect_uri, \
             scope, nonce, code_challenge, auth_time, amr, acr, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(code.code_hash.as_slice())
        .bind(&code.client_id)
        .bind(&code.user_id)
        .bind(&code.session_id)
        .bind(&code.redirect_uri)
        .bind(&code.scope)
        .bind(code.nonce.as_deref())
        .bind(&code.code_challenge)
        .bind(code.auth_time)
        .bind(amr)
        .bind(&code.acr)
        .bind(code.created_at)
        .bind(code.expires_at)
        .execute(&self.pool)
        .await
        .map_err(child_insert_error)?;
        Ok(())
    }

    async fn redeem_code(&self, code_hash: &[u8], now: i64) -> Result<CodeRedemption> {
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query(
            "UPDATE auth_codes SET redeemed_at = $1 \
             WHERE code_hash = $2 AND redeemed_at IS NULL AND expires_at > $3",
        )
        .bind(now)
        .bind(code_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let stored = fetch_code(&mut tx, code_hash).await?;
        let outcome = match (stored, claimed) {
            (Some(code), true) => CodeRedemption::Redeemed(code.record),
            (None, true) => {
                return Err(StoreError::Corrupt(
                    "auth_codes: redeemed row vanished".into(),
                ));
            }
            // Redeemed before, expired or not: reuse (codes are kept past expiry for this).
            (Some(code), false) if code.redeemed_at.is_some() => {
                CodeRedemption::AlreadyRedeemed(code.record, code.grant)
            }
            // Unknown, or never redeemed and expired.
            (_, false) => CodeRedemption::Invalid,
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn record_code_grant(&self, code_hash: &[u8], grant: &IssuedGrant) -> Result<()> {
        let done = sqlx::query(
            "UPDATE auth_codes SET grant_access_jti = $1, grant_access_expires_at = $2, \
             grant_refresh_family_id = $3 WHERE code_hash = $4",
        )
        .bind(&grant.access_jti)
        .bind(grant.access_expires_at)
        .bind(grant.refresh_family_id.as_deref())
        .bind(code_hash)
        .execute(&self.pool)
        .await?;
        one_row(done.rows_affected())
    }

    async fn create_refresh_family(
        &self,
        family: &RefreshFamilyRecord,
        first: &RefreshTokenRecord,
    ) -> Result<()> {
        let amr = to_json("refresh_families.amr", &family.amr)?;
        let mut tx = self.begin_write().await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO refresh_families ({FAMILY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        )))
        .bind(&family.family_id)
        .bind(&family.client_id)
        .bind(&family.user_id)
        .bind(family.session_id.as_deref())
        .bind(&family.scope)
        .bind(family.auth_time)
        .bind(amr)
        .bind(&family.acr)
        .bind(family.created_at)
        .bind(family.absolute_expires_at)
        .bind(family.revoked_at)
        .execute(&mut *tx)
        .await
        .map_err(child_insert_error)?;
        // The first token belongs to this family, whatever its `family_id` says.
        insert_token(&mut tx, first, &family.family_id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        token_hash: &[u8],
        next: &RefreshTokenRecord,
        now: i64,
    ) -> Result<RefreshRotation> {
        let mut tx = self.begin_write().await?;
        let Some(token) = fetch_token(&mut tx, token_hash, true).await? else {
            tx.rollback().await?;
            return Ok(RefreshRotation::Invalid);
        };
        let mut family = fetch_family(&mut tx, &token.family_id).await?;
        // A disabled (or vanished) user's tokens cannot be refreshed.
        let disabled: Option<bool> =
            sqlx::query_scalar("SELECT disabled FROM users WHERE user_id = $1")
                .bind(&family.user_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(read_error)?;
        if family.revoked_at.is_some()
            || family.absolute_expires_at <= now
            || disabled.unwrap_or(true)
        {
            tx.rollback().await?;
            return Ok(RefreshRotation::Invalid);
        }
        if token.used_at.is_some() {
            // Reuse: someone holds a token that was already exchanged. Revoke the family.
            sqlx::query(
                "UPDATE refresh_families SET revoked_at = COALESCE(revoked_at, $1) \
                 WHERE family_id = $2",
            )
            .bind(now)
            .bind(&family.family_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            family.revoked_at = Some(now);
            return Ok(RefreshRotation::Reused(family));
        }
        if token.idle_expires_at <= now {
            tx.rollback().await?;
            return Ok(RefreshRotation::Invalid);
        }
        let done = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            // Impossible under the token's row lock; fail closed.
            return Err(StoreError::Corrupt("refresh_tokens: concurrent use".into()));
        }
        insert_token(&mut tx, next, &family.family_id).await?;
        tx.commit().await?;
        Ok(RefreshRotation::Rotated(family))
    }

    async fn get_refresh_family_by_token(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<(RefreshTokenRecord, RefreshFamilyRecord)>> {
        // A read transaction: the token and its family come from one snapshot.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let Some(token) = fetch_token(&mut tx, token_hash, false).await? else {
            return Ok(None);
        };
        let family = fetch_family(&mut tx, &token.family_id).await?;
        tx.commit().await?;
        Ok(Some((token, family)))
    }

    async fn revoke_refresh_family(&self, family_id: &str, now: i64) -> Result<()> {
        let done = sqlx::query(
            "UPDATE refresh_families SET revoked_at = COALESCE(revoked_at, $1) WHERE family_id = $2",
        )
        .bind(now)
        .bind(family_id)
        .execute(&self.pool)
        .await?;
        one_row(done.rows_affected())
    }

    async fn revoke_user_refresh_families(&self, user_id: &str, now: i64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn put_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
        now: i64,
    ) -> Result<()> {
        let scopes = to_json("consents.scopes", scopes)?;
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scopes, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, \
             updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scopes)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(child_insert_error)?;
        Ok(())
    }

    async fn get_consent(&self, user_id: &str, client_id: &str) -> Result<Option<Vec<String>>> {
        let scopes: Option<String> =
            sqlx::query_scalar("SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2")
                .bind(user_id)
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(read_error)?;
        scopes
            .map(|text| from_json("consents.scopes", &text))
            .transpose()
    }

    async fn purge_expired_flows(&self, now: i64) -> Result<u64> {
        let code_cutoff = now.saturating_sub(CODE_RETENTION_SECS);
        let mut tx = self.begin_write().await?;
        let mut removed = 0;
        for (sql, cutoff) in [
            ("DELETE FROM auth_requests WHERE expires_at <= $1", now),
            ("DELETE FROM auth_codes WHERE expires_at <= $1", code_cutoff),
            // Tokens before their families, so that each is counted (a cascade is not).
            (
                "DELETE FROM refresh_tokens WHERE family_id IN \
                 (SELECT family_id FROM refresh_families WHERE absolute_expires_at <= $1)",
                now,
            ),
            (
                "DELETE FROM refresh_families WHERE absolute_expires_at <= $1",
                now,
            ),
        ] {
            removed += sqlx::query(sql)
                .bind(cutoff)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(removed)
    }
}
