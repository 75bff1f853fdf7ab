//! Rows of the people tables (users, sessions), shared by both backends.

use super::from_json;
use crate::{Result, SessionRecord, StoreError, UserRecord};

pub(crate) const USER_COLUMNS: &str = "user_id, username, email_index, sealed_profile, password_hash, \
     roles, user_groups, disabled, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    user_id: String,
    username: String,
    email_index: Vec<u8>,
    sealed_profile: Vec<u8>,
    password_hash: String,
    roles: String,
    user_groups: String,
    disabled: bool,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self> {
        Ok(UserRecord {
            roles: from_json("users.roles", &row.roles)?,
            groups: from_json("users.user_groups", &row.user_groups)?,
            user_id: row.user_id,
            username: row.username,
            email_index: row.email_index,
            sealed_profile: row.sealed_profile,
            password_hash: row.password_hash,
            disabled: row.disabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub(crate) const SESSION_COLUMNS: &str = "session_id, cookie_hash, user_id, auth_time, amr, acr, \
     created_at, last_seen_at, expires_at";

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    session_id: String,
    cookie_hash: Vec<u8>,
    user_id: String,
    auth_time: i64,
    amr: String,
    acr: String,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
}

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> Result<Self> {
        Ok(SessionRecord {
            amr: from_json("sessions.amr", &row.amr)?,
            session_id: row.session_id,
            cookie_hash: row.cookie_hash,
            user_id: row.user_id,
            auth_time: row.auth_time,
            acr: row.acr,
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
            expires_at: row.expires_at,
        })
    }
}

/// A lookup key bound to a `WHERE` clause with one placeholder.
#[derive(Clone, Copy)]
pub(crate) enum Key<'a> {
    Text(&'a str),
    Bytes(&'a [u8]),
}
