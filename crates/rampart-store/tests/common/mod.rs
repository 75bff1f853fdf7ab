//! Fixtures shared by the test files, and the two backends every contract test runs on.

#![allow(dead_code)] // each test file uses a subset

use std::sync::Arc;

use rampart_store::{
    AuthCodeRecord, AuthRequestRecord, Location, PostgresOptions, RefreshFamilyRecord,
    RefreshTokenRecord, SessionRecord, SqliteStore, Store, StoreError, UserRecord, UserStore,
};

/// A storage backend under test.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the throwaway PostgreSQL server of `rampart-testkit`.
    Postgres,
}

/// One empty database of a backend. Each [`TestDb::open`] is a new handle with its own
/// connection pool, as a second process (the CLI beside the server, another replica) has.
pub struct TestDb {
    location: Location,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh, empty database.
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                TestDb {
                    location: Location::Sqlite(dir.path().join("rampart.db")),
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => TestDb {
                location: Location::Postgres {
                    url: rampart_testkit::postgres_database().await,
                    options: PostgresOptions::default(),
                },
                _dir: None,
            },
        }
    }

    /// Opens a new handle on this database (applying migrations on first open).
    pub async fn open(&self) -> Arc<dyn Store> {
        rampart_store::open(&self.location)
            .await
            .expect("open store")
    }
}

/// Runs each named `async fn(TestDb)` once on SQLite and once on PostgreSQL (tests
/// `sqlite::NAME` and `postgres::NAME`), on a multi-threaded runtime so that concurrent
/// callers really race. (Used with `#[macro_use] mod common;`.)
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::common::TestDb::new($crate::common::Backend::Sqlite).await)
                        .await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(
                        $crate::common::TestDb::new($crate::common::Backend::Postgres).await,
                    )
                    .await;
                }
            )*
        }
    };
}

pub const NOW: i64 = 1_000;

pub fn user(id: &str, created_at: i64) -> UserRecord {
    UserRecord {
        user_id: id.to_owned(),
        username: format!("name-{id}"),
        email_index: format!("idx-{id}").into_bytes(),
        sealed_profile: vec![0, 1, 2, 255],
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        roles: vec!["admin".into()],
        groups: vec!["eng".into(), "ops".into()],
        disabled: false,
        created_at,
        updated_at: created_at,
    }
}

pub fn session(id: &str, user_id: &str, created_at: i64) -> SessionRecord {
    SessionRecord {
        session_id: id.to_owned(),
        cookie_hash: format!("cookie-{id}").into_bytes(),
        user_id: user_id.to_owned(),
        auth_time: created_at,
        amr: vec!["pwd".into()],
        acr: "urn:rampart:acr:pwd".into(),
        created_at,
        last_seen_at: created_at,
        expires_at: created_at + 3_600,
    }
}

pub fn code(hash: &[u8], user_id: &str, expires_at: i64) -> AuthCodeRecord {
    AuthCodeRecord {
        code_hash: hash.to_vec(),
        client_id: "web".into(),
        user_id: user_id.to_owned(),
        session_id: "s1".into(),
        redirect_uri: "https://app.example/cb".into(),
        scope: "openid profile".into(),
        nonce: Some("n-0S6".into()),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        auth_time: NOW - 5,
        amr: vec!["pwd".into(), "otp".into()],
        acr: "urn:rampart:acr:mfa".into(),
        created_at: NOW,
        expires_at,
    }
}

pub fn family(id: &str, user_id: &str, session_id: Option<&str>) -> RefreshFamilyRecord {
    RefreshFamilyRecord {
        family_id: id.to_owned(),
        client_id: "web".into(),
        user_id: user_id.to_owned(),
        session_id: session_id.map(str::to_owned),
        scope: "openid offline_access".into(),
        auth_time: NOW - 5,
        amr: vec!["pwd".into()],
        acr: "urn:rampart:acr:pwd".into(),
        created_at: NOW,
        absolute_expires_at: NOW + 10_000,
        revoked_at: None,
    }
}

pub fn token(hash: &str, family_id: &str, idle_expires_at: i64) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash.as_bytes().to_vec(),
        family_id: family_id.to_owned(),
        created_at: NOW,
        idle_expires_at,
        used_at: None,
    }
}

pub fn request(id: &str, expires_at: i64) -> AuthRequestRecord {
    AuthRequestRecord {
        request_id: id.to_owned(),
        client_id: "web".into(),
        params_json: r#"{"scope":"openid","state":"xyz"}"#.into(),
        pushed: true,
        pending_user_id: None,
        pending_binding: None,
        created_at: NOW,
        expires_at,
    }
}

pub async fn memory_with_users(ids: &[&str]) -> SqliteStore {
    let store = SqliteStore::open_in_memory().await.expect("open");
    for (i, id) in ids.iter().enumerate() {
        store
            .create_user(&user(id, i as i64))
            .await
            .expect("create user");
    }
    store
}

/// Opens `db` and creates users with the given ids (created at 0, 1, ...).
pub async fn with_users(db: &TestDb, ids: &[&str]) -> Arc<dyn Store> {
    let store = db.open().await;
    for (i, id) in ids.iter().enumerate() {
        store
            .create_user(&user(id, i as i64))
            .await
            .expect("create user");
    }
    store
}

pub fn is_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict))
}

pub fn is_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound))
}
