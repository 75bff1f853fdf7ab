//! Rows as the backends read them, their conversion into records, and the error and
//! encoding helpers both backends share. Everything here is independent of the SQL dialect:
//! the SQLite and PostgreSQL schemas have the same tables and columns, list columns hold
//! JSON arrays in both, and `sqlx::FromRow` decodes a row of either database.

pub(crate) mod flows;
pub(crate) mod people;

use crate::{
    ApiKeyRecord, ClientAuthMethod, ClientRecord, ClientTokenFormat, KeyState, Result, StoreError,
    StoredKey,
};

pub(crate) const GEN_CLIENTS: &str = "clients";
pub(crate) const GEN_KEYS: &str = "keys";
pub(crate) const GEN_API_KEYS: &str = "api_keys";
pub(crate) const GEN_REVOCATIONS: &str = "revocations";

/// Maps an insert of a row that refers to a user: a missing user is `NotFound`, a unique
/// violation `Conflict`.
pub(crate) fn child_insert_error(err: sqlx::Error) -> StoreError {
    if err
        .as_database_error()
        .is_some_and(|db| db.is_foreign_key_violation())
    {
        StoreError::NotFound
    } else {
        insert_error(err)
    }
}

/// `NotFound` unless a row changed.
pub(crate) fn one_row(rows_affected: u64) -> Result<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

/// Maps an insert error: a unique violation is a `Conflict`.
pub(crate) fn insert_error(err: sqlx::Error) -> StoreError {
    if is_unique_violation(&err) {
        StoreError::Conflict
    } else {
        StoreError::Backend(err)
    }
}

/// Maps a read error: a value of the wrong type is `Corrupt`.
pub(crate) fn read_error(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::ColumnDecode { index, .. } => {
            StoreError::Corrupt(format!("column {index} has an invalid value"))
        }
        other => StoreError::Backend(other),
    }
}

pub(crate) fn to_json(column: &str, values: &[String]) -> Result<String> {
    serde_json::to_string(values)
        .map_err(|_| StoreError::Corrupt(format!("{column}: cannot encode as JSON")))
}

pub(crate) fn from_json(column: &str, text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text)
        .map_err(|_| StoreError::Corrupt(format!("{column}: not a JSON array of strings")))
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClientRow {
    client_id: String,
    name: String,
    secret_hash: Option<Vec<u8>>,
    auth_method: String,
    jwks: Option<String>,
    scopes: String,
    audiences: String,
    token_format: String,
    access_token_ttl_secs: i64,
    grant_types: String,
    redirect_uris: String,
    first_party: bool,
    require_mfa: bool,
    require_par: bool,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ClientRow> for ClientRecord {
    type Error = StoreError;

    fn try_from(row: ClientRow) -> Result<Self> {
        let auth_method = ClientAuthMethod::parse(&row.auth_method)
            .ok_or_else(|| StoreError::Corrupt("clients.auth_method: unknown value".into()))?;
        let token_format = ClientTokenFormat::parse(&row.token_format)
            .ok_or_else(|| StoreError::Corrupt("clients.token_format: unknown value".into()))?;
        Ok(ClientRecord {
            scopes: from_json("clients.scopes", &row.scopes)?,
            audiences: from_json("clients.audiences", &row.audiences)?,
            grant_types: from_json("clients.grant_types", &row.grant_types)?,
            redirect_uris: from_json("clients.redirect_uris", &row.redirect_uris)?,
            client_id: row.client_id,
            name: row.name,
            secret_hash: row.secret_hash,
            auth_method,
            jwks: row.jwks,
            token_format,
            access_token_ttl_secs: row.access_token_ttl_secs,
            first_party: row.first_party,
            require_mfa: row.require_mfa,
            require_par: row.require_par,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub(crate) const CLIENT_COLUMNS: &str = "client_id, name, secret_hash, auth_method, jwks, scopes, audiences, \
     token_format, access_token_ttl_secs, grant_types, redirect_uris, first_party, require_mfa, \
     require_par, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    kid: String,
    kind: String,
    state: String,
    sealed_secret: Vec<u8>,
    created_at: i64,
    activated_at: Option<i64>,
    retired_at: Option<i64>,
}

impl TryFrom<KeyRow> for StoredKey {
    type Error = StoreError;

    fn try_from(row: KeyRow) -> Result<Self> {
        let state = KeyState::parse(&row.state)
            .ok_or_else(|| StoreError::Corrupt("signing_keys.state: unknown value".into()))?;
        Ok(StoredKey {
            kid: row.kid,
            kind: row.kind,
            state,
            sealed_secret: row.sealed_secret,
            created_at: row.created_at,
            activated_at: row.activated_at,
            retired_at: row.retired_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    key_id: String,
    key_hash: Vec<u8>,
    name: String,
    owner: String,
    scopes: String,
    audiences: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TryFrom<ApiKeyRow> for ApiKeyRecord {
    type Error = StoreError;

    fn try_from(row: ApiKeyRow) -> Result<Self> {
        Ok(ApiKeyRecord {
            scopes: from_json("api_keys.scopes", &row.scopes)?,
            audiences: from_json("api_keys.audiences", &row.audiences)?,
            key_id: row.key_id,
            key_hash: row.key_hash,
            name: row.name,
            owner: row.owner,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        })
    }
}

pub(crate) const API_KEY_COLUMNS: &str =
    "key_id, key_hash, name, owner, scopes, audiences, created_at, expires_at, revoked_at";
