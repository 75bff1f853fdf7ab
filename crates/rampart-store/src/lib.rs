//! Rampart storage: per-flow storage traits and their two backends, SQLite (embedded, the
//! default) and PostgreSQL (shared by several servers).
//!
//! The server and CLI talk to storage only through object-safe traits:
//! - machines and keys: [`ClientStore`], [`KeyStore`], [`RevocationStore`],
//!   [`ReplayStore`] and [`ApiKeyStore`];
//! - people: [`UserStore`] (users), [`MfaStore`] (TOTP, recovery codes, WebAuthn),
//!   [`SessionStore`] (browser sessions) and [`AuthCodeStore`] (authorization requests,
//!   codes, refresh-token families, consents).
//!
//! [`SqliteStore`] (the embedded default) and [`PostgresStore`] implement all of them, and
//! [`Store`] names that whole set; [`open`] opens the backend a [`Location`] names. Both
//! backends pass the same contract tests (`tests/`).
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
pub mod postgres;
mod rows;
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
pub use postgres::{PostgresOptions, PostgresStore};
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

/// Every storage trait at once: what the server and the CLI open. An `Arc<dyn Store>`
/// converts to an `Arc<dyn ClientStore>` (or any other of the traits) by coercion.
#[async_trait::async_trait]
pub trait Store:
    ClientStore
    + KeyStore
    + RevocationStore
    + ReplayStore
    + ApiKeyStore
    + UserStore
    + MfaStore
    + SessionStore
    + AuthCodeStore
    + 'static
{
    /// Checks that the database answers (readiness probes).
    async fn ping(&self) -> Result<()>;

    /// Closes every connection, waiting for operations in flight.
    async fn close(&self);

    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        SqliteStore::ping(self).await
    }

    async fn close(&self) {
        SqliteStore::close(self).await;
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<()> {
        PostgresStore::ping(self).await
    }

    async fn close(&self) {
        PostgresStore::close(self).await;
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}

/// Where the data lives.
#[derive(Clone)]
pub enum Location {
    /// A SQLite database file (created if missing).
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database.
    Postgres {
        /// `postgres://` URL. It may hold a password: never log it.
        url: String,
        /// Pool settings.
        options: PostgresOptions,
    },
}

impl std::fmt::Debug for Location {
    // The URL may carry a password: only the backend and the file path are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Location::Postgres { options, .. } => f
                .debug_struct("Postgres")
                .field("options", options)
                .finish_non_exhaustive(),
        }
    }
}

/// Opens the store at `location`, applying pending migrations.
pub async fn open(location: &Location) -> Result<std::sync::Arc<dyn Store>> {
    Ok(match location {
        Location::Sqlite(path) => std::sync::Arc::new(SqliteStore::open(path).await?),
        Location::Postgres { url, options } => {
            std::sync::Arc::new(PostgresStore::connect(url, options).await?)
        }
    })
}
