//! Rampart storage: per-flow storage traits and the SQLite backend.
//!
//! The server and CLI talk to storage only through object-safe traits, so another
//! backend (PostgreSQL) can be added later behind the same traits:
//! - machines and keys: [`ClientStore`], [`KeyStore`], [`RevocationStore`],
//!   [`ReplayStore`] and [`ApiKeyStore`];
//! - people: [`UserStore`] (users), [`MfaStore`] (TOTP, recovery codes, WebAuthn),
//!   [`SessionStore`] (browser sessions) and [`AuthCodeStore`] (authorization requests,
//!   codes, refresh-token families, consents).
//!
//! [`SqliteStore`] is the embedded default and implements all of them.
//!
//! Guarantees of every backend:
//! - an `Ok` from a write means the change is committed and durable;
//! - multi-row changes happen in one transaction (all or nothing);
//! - single-use things are used once even under concurrency: a code is redeemed by exactly
//!   one caller ([`AuthCodeStore::redeem_code`]), a refresh token rotated once (a second
//!   use revokes its family), a TOTP step and a recovery code accepted once;
//! - the store only ever sees hashes and sealed blobs, never plaintext secrets.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod model;
mod people;
pub mod sqlite;
mod traits;

pub use model::{
    ApiKeyRecord, ClientAuthMethod, ClientRecord, ClientTokenFormat, KeyChange, KeyState, StoredKey,
};
pub use people::{
    AuthCodeRecord, AuthCodeStore, AuthRequestRecord, CodeRedemption, IssuedGrant, MfaStore,
    RefreshFamilyRecord, RefreshRotation, RefreshTokenRecord, SessionRecord, SessionStore,
    TotpRecord, UserRecord, UserStore, WebauthnCredentialRecord,
};
pub use sqlite::SqliteStore;
pub use traits::{ApiKeyStore, ClientStore, KeyStore, ReplayStore, RevocationStore};

/// Errors returned by every store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The addressed record does not exist.
    #[error("not found")]
    NotFound,
    /// A record with the same identifier already exists.
    #[error("already exists")]
    Conflict,
    /// The database failed or could not be reached. The message deliberately
    /// contains neither SQL nor data; the source carries the driver error.
    #[error("storage unavailable")]
    Backend(#[source] sqlx::Error),
    /// A stored row could not be interpreted (the payload names the column).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Applying the embedded schema migrations failed.
    #[error("migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::Backend(err)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(err)
    }
}

/// Result type of every store operation.
pub type Result<T> = std::result::Result<T, StoreError>;
