//! Rows of the flow tables (codes, refresh-token families and tokens), shared by both
//! backends.

use super::from_json;
use crate::{
    AuthCodeRecord, IssuedGrant, RefreshFamilyRecord, RefreshTokenRecord, Result, StoreError,
};

/// How long past its expiry a code is kept, so that a late second redemption is still
/// recognised as reuse (and revokes what the first one issued).
pub(crate) const CODE_RETENTION_SECS: i64 = 86_400;

pub(crate) const CODE_COLUMNS: &str = "code_hash, client_id, user_id, session_id, redirect_uri, scope, \
     nonce, code_challenge, auth_time, amr, acr, created_at, expires_at, redeemed_at, \
     grant_access_jti, grant_access_expires_at, grant_refresh_family_id";

#[derive(sqlx::FromRow)]
pub(crate) struct CodeRow {
    code_hash: Vec<u8>,
    client_id: String,
    user_id: String,
    session_id: String,
    redirect_uri: String,
    scope: String,
    nonce: Option<String>,
    code_challenge: String,
    auth_time: i64,
    amr: String,
    acr: String,
    created_at: i64,
    expires_at: i64,
    redeemed_at: Option<i64>,
    grant_access_jti: Option<String>,
    grant_access_expires_at: Option<i64>,
    grant_refresh_family_id: Option<String>,
}

/// A stored code: the record, when it was redeemed and what the redemption issued.
pub(crate) struct StoredCode {
    pub(crate) record: AuthCodeRecord,
    pub(crate) redeemed_at: Option<i64>,
    pub(crate) grant: Option<IssuedGrant>,
}

impl TryFrom<CodeRow> for StoredCode {
    type Error = StoreError;

    fn try_from(row: CodeRow) -> Result<Self> {
        let grant = match (row.grant_access_jti, row.grant_access_expires_at) {
            (Some(access_jti), Some(access_expires_at)) => Some(IssuedGrant {
                access_jti,
                access_expires_at,
                refresh_family_id: row.grant_refresh_family_id,
            }),
            (None, None) => None,
            _ => {
                return Err(StoreError::Corrupt(
                    "auth_codes.grant_access_expires_at: inconsistent grant".into(),
                ));
            }
        };
        Ok(StoredCode {
            record: AuthCodeRecord {
                amr: from_json("auth_codes.amr", &row.amr)?,
                code_hash: row.code_hash,
                client_id: row.client_id,
                user_id: row.user_id,
                session_id: row.session_id,
                redirect_uri: row.redirect_uri,
                scope: row.scope,
                nonce: row.nonce,
                code_challenge: row.code_challenge,
                auth_time: row.auth_time,
                acr: row.acr,
                created_at: row.created_at,
                expires_at: row.expires_at,
            },
            redeemed_at: row.redeemed_at,
            grant,
        })
    }
}

pub(crate) const FAMILY_COLUMNS: &str = "family_id, client_id, user_id, session_id, scope, auth_time, amr, \
     acr, created_at, absolute_expires_at, revoked_at";

#[derive(sqlx::FromRow)]
pub(crate) struct FamilyRow {
    family_id: String,
    client_id: String,
    user_id: String,
    session_id: Option<String>,
    scope: String,
    auth_time: i64,
    amr: String,
    acr: String,
    created_at: i64,
    absolute_expires_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<FamilyRow> for RefreshFamilyRecord {
    type Error = StoreError;

    fn try_from(row: FamilyRow) -> Result<Self> {
        Ok(RefreshFamilyRecord {
            amr: from_json("refresh_families.amr", &row.amr)?,
            family_id: row.family_id,
            client_id: row.client_id,
            user_id: row.user_id,
            session_id: row.session_id,
            scope: row.scope,
            auth_time: row.auth_time,
            acr: row.acr,
            created_at: row.created_at,
            absolute_expires_at: row.absolute_expires_at,
            revoked_at: row.revoked_at,
        })
    }
}

pub(crate) const TOKEN_COLUMNS: &str =
    "token_hash, family_id, created_at, idle_expires_at, used_at";

pub(crate) type TokenRow = (Vec<u8>, String, i64, i64, Option<i64>);

pub(crate) fn token_record(row: TokenRow) -> RefreshTokenRecord {
    let (token_hash, family_id, created_at, idle_expires_at, used_at) = row;
    RefreshTokenRecord {
        token_hash,
        family_id,
        created_at,
        idle_expires_at,
        used_at,
    }
}
