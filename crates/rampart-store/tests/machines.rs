//! Behavioural tests of the machine-facing stores (clients, signing keys, revocations,
//! replay ids) through the public traits, on both backends: every test in
//! `on_both_backends!` runs as `sqlite::NAME` and `postgres::NAME`. The few that need one
//! backend's internals are plain tests, named after it where both have one.

#[macro_use]
mod common;

use std::path::Path;
use std::sync::Arc;

use common::TestDb;
use rampart_store::{
    ClientAuthMethod, ClientRecord, ClientStore, ClientTokenFormat, KeyChange, KeyState, KeyStore,
    PostgresOptions, PostgresStore, ReplayStore, RevocationStore, SqliteStore, Store, StoreError,
    StoredKey,
};

fn client(id: &str, created_at: i64) -> ClientRecord {
    ClientRecord {
        client_id: id.to_owned(),
        name: format!("client {id}"),
        secret_hash: Some(vec![1, 2, 3, 0, 255]),
        auth_method: ClientAuthMethod::ClientSecretBasic,
        jwks: None,
        scopes: vec!["read".into(), "write".into()],
        audiences: vec!["https://api.example".into()],
        token_format: ClientTokenFormat::PasetoPublic,
        access_token_ttl_secs: 300,
        grant_types: vec!["client_credentials".into()],
        redirect_uris: vec![],
        first_party: false,
        require_mfa: false,
        require_par: false,
        created_at,
        updated_at: created_at,
    }
}

fn key(kid: &str, state: KeyState, created_at: i64) -> StoredKey {
    StoredKey {
        kid: kid.to_owned(),
        kind: "jwt-EdDSA".into(),
        state,
        sealed_secret: vec![9, 8, 7, kid.len() as u8],
        created_at,
        activated_at: (state == KeyState::Active).then_some(created_at),
        retired_at: None,
    }
}

/// A PostgreSQL store on a fresh database of the test server, and that database's URL.
async fn postgres_store() -> (PostgresStore, String) {
    let url = rampart_testkit::postgres_database().await;
    let store = PostgresStore::connect(&url, &PostgresOptions::default())
        .await
        .expect("connect");
    (store, url)
}

/// A raw connection beside a store, to write values the store itself never would.
enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Raw {
    async fn sqlite(path: &Path) -> Raw {
        use sqlx::Connection;
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
        Raw::Sqlite(
            sqlx::SqliteConnection::connect_with(&opts)
                .await
                .expect("raw connect"),
        )
    }

    async fn postgres(url: &str) -> Raw {
        use sqlx::Connection;
        Raw::Postgres(sqlx::PgConnection::connect(url).await.expect("raw connect"))
    }

    async fn execute(&mut self, sql: &'static str) {
        match self {
            Raw::Sqlite(conn) => sqlx::query(sql).execute(conn).await.map(drop),
            Raw::Postgres(conn) => sqlx::query(sql).execute(conn).await.map(drop),
        }
        .expect("raw");
    }

    async fn close(self) {
        use sqlx::Connection;
        match self {
            Raw::Sqlite(conn) => conn.close().await,
            Raw::Postgres(conn) => conn.close().await,
        }
        .expect("raw close");
    }
}

async fn client_crud_conflict_and_not_found(db: TestDb) {
    let store = db.open().await;
    assert_eq!(store.get_client("a").await.expect("get"), None);

    let mut b = client("b", 10);
    b.auth_method = ClientAuthMethod::PrivateKeyJwt;
    b.secret_hash = None;
    b.jwks = Some(r#"{"keys":[]}"#.into());
    b.scopes = vec![];
    b.token_format = ClientTokenFormat::Jwt;
    let a = client("a", 20);
    let c = client("c", 10);
    store.create_client(&a).await.expect("create a");
    store.create_client(&b).await.expect("create b");
    store.create_client(&c).await.expect("create c");

    assert_eq!(store.get_client("a").await.expect("get"), Some(a.clone()));
    assert_eq!(store.get_client("b").await.expect("get"), Some(b.clone()));

    // Ordered by created_at, then client_id.
    let ids: Vec<String> = store
        .list_clients()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(ids, ["b", "c", "a"]);

    // Duplicate id => Conflict, original unchanged.
    let mut dup = client("a", 99);
    dup.name = "other".into();
    assert!(matches!(
        store.create_client(&dup).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.get_client("a").await.expect("get"), Some(a.clone()));

    // Secret rotation.
    store
        .set_client_secret_hash("a", &[42; 32], 50)
        .await
        .expect("set secret");
    let got = store.get_client("a").await.expect("get").expect("exists");
    assert_eq!(got.secret_hash, Some(vec![42; 32]));
    assert_eq!(got.updated_at, 50);
    assert_eq!(got.created_at, 20);
    assert!(matches!(
        store.set_client_secret_hash("nope", &[1], 1).await,
        Err(StoreError::NotFound)
    ));

    // Delete.
    store.delete_client("a").await.expect("delete");
    assert_eq!(store.get_client("a").await.expect("get"), None);
    assert!(matches!(
        store.delete_client("a").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.list_clients().await.expect("list").len(), 2);
    store.close().await;
}

async fn client_flow_settings_round_trip(db: TestDb) {
    let mut public = client("spa", 1);
    public.auth_method = ClientAuthMethod::None;
    public.secret_hash = None;
    public.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    public.redirect_uris = vec![
        "https://app.example/cb".into(),
        "http://127.0.0.1:8080/cb?x=\"1\"".into(),
    ];
    public.first_party = true;
    public.require_mfa = true;
    public.require_par = true;
    let mut mixed = client("web", 2);
    mixed.first_party = true;
    mixed.require_par = true;
    {
        let store = db.open().await;
        store.create_client(&public).await.expect("create");
        store.create_client(&mixed).await.expect("create");
        assert_eq!(
            store.get_client("spa").await.expect("get"),
            Some(public.clone())
        );
        store.close().await;
    }
    let store = db.open().await;
    assert_eq!(
        store.list_clients().await.expect("list"),
        vec![public, mixed]
    );
    store.close().await;
}

// SQLite only: it replays SQLite's migration history (PostgreSQL starts from one schema).
#[tokio::test]
async fn clients_from_before_the_people_migration_get_defaults() {
    use sqlx::Connection;
    static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rampart.db");
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut raw = sqlx::SqliteConnection::connect_with(&opts)
        .await
        .expect("raw connect");
    MIGRATOR.run_to(2, &mut raw).await.expect("migrate to 0002");
    sqlx::query(
        "INSERT INTO clients (client_id, name, secret_hash, auth_method, jwks, scopes, \
         audiences, token_format, access_token_ttl_secs, created_at, updated_at) \
         VALUES ('old', 'client old', x'01020300ff', 'client_secret_basic', NULL, \
         '[\"read\",\"write\"]', '[\"https://api.example\"]', 'paseto-public', 300, 7, 7)",
    )
    .execute(&mut raw)
    .await
    .expect("insert old row");
    raw.close().await.expect("raw close");

    let store = SqliteStore::open(&path).await.expect("open migrates");
    // The defaults are exactly what `client()` builds: a machine-to-machine client.
    assert_eq!(
        store.get_client("old").await.expect("get"),
        Some(client("old", 7))
    );
    store.close().await;
}

async fn clients_generation_bumps_on_changes_only(db: TestDb) {
    let store = db.open().await;
    let g0 = store.clients_generation().await.expect("gen");

    store.create_client(&client("a", 1)).await.expect("create");
    let g1 = store.clients_generation().await.expect("gen");
    assert!(g1 > g0, "create must bump");

    // Reads do not bump.
    store.get_client("a").await.expect("get");
    store.list_clients().await.expect("list");
    assert_eq!(store.clients_generation().await.expect("gen"), g1);

    store
        .set_client_secret_hash("a", &[7], 2)
        .await
        .expect("set");
    let g2 = store.clients_generation().await.expect("gen");
    assert!(g2 > g1, "update must bump");

    // Failed writes do not bump.
    let _ = store.create_client(&client("a", 1)).await;
    let _ = store.delete_client("missing").await;
    let _ = store.set_client_secret_hash("missing", &[1], 3).await;
    assert_eq!(store.clients_generation().await.expect("gen"), g2);

    store.delete_client("a").await.expect("delete");
    let g3 = store.clients_generation().await.expect("gen");
    assert!(g3 > g2, "delete must bump");

    // Key changes do not touch the clients generation.
    store
        .apply_key_changes(&[KeyChange::Insert(key("k", KeyState::Next, 1))])
        .await
        .expect("keys");
    assert_eq!(store.clients_generation().await.expect("gen"), g3);
    store.close().await;
}

async fn key_rotation_and_generation(db: TestDb) {
    let store = db.open().await;
    assert!(store.list_keys().await.expect("list").is_empty());
    let g0 = store.keys_generation().await.expect("gen");

    store
        .apply_key_changes(&[
            KeyChange::Insert(key("k1", KeyState::Active, 100)),
            KeyChange::Insert(key("k2", KeyState::Next, 200)),
        ])
        .await
        .expect("insert");
    let g1 = store.keys_generation().await.expect("gen");
    assert!(g1 > g0);
    assert_eq!(store.list_keys().await.expect("list").len(), 2);
    // Reads do not bump.
    assert_eq!(store.keys_generation().await.expect("gen"), g1);

    // Rotation: k1 retires, k2 activates, k3 becomes next — atomically.
    store
        .apply_key_changes(&[
            KeyChange::SetState {
                kid: "k1".into(),
                state: KeyState::Retired,
                at: 300,
            },
            KeyChange::SetState {
                kid: "k2".into(),
                state: KeyState::Active,
                at: 300,
            },
            KeyChange::Insert(key("k3", KeyState::Next, 300)),
        ])
        .await
        .expect("rotate");
    let g2 = store.keys_generation().await.expect("gen");
    assert!(g2 > g1);

    let keys = store.list_keys().await.expect("list");
    let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["k1", "k2", "k3"]);
    assert_eq!(keys[0].state, KeyState::Retired);
    assert_eq!(keys[0].activated_at, Some(100));
    assert_eq!(keys[0].retired_at, Some(300));
    assert_eq!(keys[1].state, KeyState::Active);
    assert_eq!(keys[1].activated_at, Some(300));
    assert_eq!(keys[1].retired_at, None);
    assert_eq!(keys[2], key("k3", KeyState::Next, 300));

    store
        .apply_key_changes(&[KeyChange::Delete { kid: "k1".into() }])
        .await
        .expect("delete");
    assert!(store.keys_generation().await.expect("gen") > g2);
    assert_eq!(store.list_keys().await.expect("list").len(), 2);

    // Empty batch is a no-op.
    let g = store.keys_generation().await.expect("gen");
    store.apply_key_changes(&[]).await.expect("empty");
    assert_eq!(store.keys_generation().await.expect("gen"), g);
    store.close().await;
}

async fn failing_key_batch_leaves_nothing_applied(db: TestDb) {
    let store = db.open().await;
    store
        .apply_key_changes(&[
            KeyChange::Insert(key("k1", KeyState::Active, 100)),
            KeyChange::Insert(key("k2", KeyState::Next, 200)),
        ])
        .await
        .expect("insert");
    let before = store.list_keys().await.expect("list");
    let g = store.keys_generation().await.expect("gen");

    // Duplicate kid as the last change: earlier changes must be rolled back.
    let err = store
        .apply_key_changes(&[
            KeyChange::SetState {
                kid: "k1".into(),
                state: KeyState::Retired,
                at: 300,
            },
            KeyChange::Delete { kid: "k2".into() },
            KeyChange::Insert(key("k3", KeyState::Next, 300)),
            KeyChange::Insert(key("k1", KeyState::Next, 300)),
        ])
        .await;
    assert!(matches!(err, Err(StoreError::Conflict)), "{err:?}");
    assert_eq!(store.list_keys().await.expect("list"), before);
    assert_eq!(store.keys_generation().await.expect("gen"), g);

    // Unknown kid as the last change: NotFound, nothing applied.
    let err = store
        .apply_key_changes(&[
            KeyChange::Insert(key("k4", KeyState::Next, 400)),
            KeyChange::SetState {
                kid: "ghost".into(),
                state: KeyState::Active,
                at: 400,
            },
        ])
        .await;
    assert!(matches!(err, Err(StoreError::NotFound)), "{err:?}");
    let err = store
        .apply_key_changes(&[
            KeyChange::Insert(key("k5", KeyState::Next, 400)),
            KeyChange::Delete {
                kid: "ghost".into(),
            },
        ])
        .await;
    assert!(matches!(err, Err(StoreError::NotFound)), "{err:?}");
    assert_eq!(store.list_keys().await.expect("list"), before);
    assert_eq!(store.keys_generation().await.expect("gen"), g);

    // The store is still usable after rollbacks.
    store
        .apply_key_changes(&[KeyChange::Insert(key("k3", KeyState::Next, 300))])
        .await
        .expect("insert after rollback");
    assert_eq!(store.list_keys().await.expect("list").len(), 3);
    store.close().await;
}

async fn revocations_idempotent_filtered_and_purged(db: TestDb) {
    let store = db.open().await;
    let other = db.open().await;
    let start = store.revocations_generation().await.expect("generation");
    store.revoke("j1", 100).await.expect("revoke");
    // A new revocation moves the generation, as another handle sees it.
    let after_one = other.revocations_generation().await.expect("generation");
    assert!(after_one > start);
    store.revoke("j1", 100).await.expect("revoke again");
    store
        .revoke("j1", 999)
        .await
        .expect("revoke again, other expiry");
    // Revoking a revoked token changes nothing, so nobody needs to reload.
    assert_eq!(
        other.revocations_generation().await.expect("generation"),
        after_one
    );
    store.revoke("j2", 200).await.expect("revoke");
    store.revoke("j3", 50).await.expect("revoke");
    assert!(other.revocations_generation().await.expect("generation") > after_one);
    other.close().await;

    assert_eq!(
        store.revoked_since(0).await.expect("since"),
        vec![("j1".into(), 100), ("j2".into(), 200), ("j3".into(), 50)]
    );
    assert_eq!(
        store.revoked_since(100).await.expect("since"),
        vec![("j2".to_owned(), 200)]
    );
    assert!(store.revoked_since(200).await.expect("since").is_empty());

    assert_eq!(
        store.purge_expired_revocations(100).await.expect("purge"),
        2
    );
    assert_eq!(
        store.purge_expired_revocations(100).await.expect("purge"),
        0
    );
    assert_eq!(
        store.revoked_since(0).await.expect("since"),
        vec![("j2".to_owned(), 200)]
    );
    store.close().await;
}

async fn record_once_detects_replays_and_expiry(db: TestDb) {
    let store = db.open().await;
    assert!(store.record_once("pkjwt", "j", 100, 10).await.expect("rec"));
    assert!(!store.record_once("pkjwt", "j", 100, 10).await.expect("rec"));
    assert!(!store.record_once("pkjwt", "j", 200, 99).await.expect("rec"));
    // Same id in another scope is independent.
    assert!(store.record_once("other", "j", 100, 10).await.expect("rec"));

    // Expired record (expires_at <= now) may be recorded again, without purge.
    assert!(
        store
            .record_once("pkjwt", "j", 300, 100)
            .await
            .expect("rec")
    );
    assert!(
        !store
            .record_once("pkjwt", "j", 300, 150)
            .await
            .expect("rec")
    );

    // Purge removes only expired ones.
    assert!(store.record_once("pkjwt", "k", 120, 10).await.expect("rec"));
    assert_eq!(store.purge_expired_replays(200).await.expect("purge"), 2); // other/j, pkjwt/k
    assert!(
        !store
            .record_once("pkjwt", "j", 400, 200)
            .await
            .expect("rec")
    );
    assert!(
        store
            .record_once("pkjwt", "k", 400, 200)
            .await
            .expect("rec")
    );
    store.close().await;
}

async fn record_once_is_atomic_under_concurrency(db: TestDb) {
    let a = db.open().await;
    let b = db.open().await; // a second pool, like another process
    let stores = [Arc::clone(&a), Arc::clone(&b)];

    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = Arc::clone(&stores[i % 2]);
        tasks.push(tokio::spawn(async move {
            store.record_once("pkjwt", "same-jti", 1_000, 10).await
        }));
    }
    let mut fresh = 0;
    for task in tasks {
        if task.await.expect("join").expect("record_once") {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1, "exactly one caller may see the id as new");
    a.close().await;
    b.close().await;
}

async fn writes_survive_close_and_reopen(db: TestDb) {
    {
        let store = db.open().await;
        store.create_client(&client("a", 1)).await.expect("create");
        store
            .apply_key_changes(&[KeyChange::Insert(key("k1", KeyState::Active, 1))])
            .await
            .expect("keys");
        store.revoke("j1", 100).await.expect("revoke");
        assert!(store.record_once("s", "r1", 100, 1).await.expect("rec"));
        store.close().await;
    }
    {
        // Dropped without close: committed data must still be there.
        let store = db.open().await;
        assert_eq!(
            store.get_client("a").await.expect("get"),
            Some(client("a", 1))
        );
        store.create_client(&client("b", 2)).await.expect("create");
    }
    let store = db.open().await;
    assert_eq!(store.list_clients().await.expect("list").len(), 2);
    assert_eq!(store.clients_generation().await.expect("gen"), 2);
    assert_eq!(
        store.list_keys().await.expect("keys"),
        vec![key("k1", KeyState::Active, 1)]
    );
    assert_eq!(store.keys_generation().await.expect("gen"), 1);
    assert_eq!(
        store.revoked_since(0).await.expect("since"),
        vec![("j1".to_owned(), 100)]
    );
    assert!(!store.record_once("s", "r1", 100, 1).await.expect("rec"));
    store.close().await;
}

async fn two_handles_on_one_database_write_concurrently(db: TestDb) {
    let server = db.open().await;
    let cli = db.open().await;
    let seen = server.clients_generation().await.expect("gen");

    let mut tasks = Vec::new();
    for i in 0..40 {
        let (store, tag) = if i % 2 == 0 {
            (Arc::clone(&server), "server")
        } else {
            (Arc::clone(&cli), "cli")
        };
        tasks.push(tokio::spawn(async move {
            let id = format!("{tag}-{i}");
            store.create_client(&client(&id, i)).await?;
            store.set_client_secret_hash(&id, &[1; 32], i + 1).await?;
            store
                .apply_key_changes(&[KeyChange::Insert(key(&id, KeyState::Next, i))])
                .await?;
            store.revoke(&id, 1_000).await?;
            Ok::<_, StoreError>(())
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("no busy/locked errors");
    }

    assert_eq!(server.list_clients().await.expect("list").len(), 40);
    assert_eq!(cli.list_keys().await.expect("list").len(), 40);
    assert_eq!(server.revoked_since(0).await.expect("since").len(), 40);
    // 40 creates + 40 updates, from both handles.
    assert_eq!(server.clients_generation().await.expect("gen"), seen + 80);
    assert_eq!(server.keys_generation().await.expect("gen"), 40);

    // The server sees a change made through the CLI's handle.
    let before = server.clients_generation().await.expect("gen");
    cli.delete_client("server-0").await.expect("cli delete");
    assert_eq!(server.clients_generation().await.expect("gen"), before + 1);
    assert_eq!(server.get_client("server-0").await.expect("get"), None);

    server.close().await;
    cli.close().await;
}

/// Writes values the store never writes, through `raw`, and checks that reads report the
/// column. (The raw write needs a backend's own connection: one test per backend.)
async fn check_corrupt_rows_are_reported_with_column(store: &dyn Store, mut raw: Raw) {
    store.create_client(&client("a", 1)).await.expect("create");
    store
        .apply_key_changes(&[KeyChange::Insert(key("k", KeyState::Next, 1))])
        .await
        .expect("keys");

    raw.execute("UPDATE clients SET auth_method = 'bogus'")
        .await;
    match store.get_client("a").await {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("auth_method"), "{msg}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(
        store.list_clients().await,
        Err(StoreError::Corrupt(_))
    ));

    raw.execute("UPDATE clients SET auth_method = 'private_key_jwt', token_format = 'JWT'")
        .await;
    match store.get_client("a").await {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("token_format"), "{msg}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }

    raw.execute("UPDATE clients SET token_format = 'jwt', scopes = '{\"not\":\"a list\"}'")
        .await;
    match store.get_client("a").await {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("scopes"), "{msg}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }

    raw.execute("UPDATE signing_keys SET state = 'revoked'")
        .await;
    match store.list_keys().await {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("state"), "{msg}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }

    raw.close().await;
    store.close().await;
}

// One per backend: the bad values go in through a raw connection of the backend's own.
#[tokio::test]
async fn corrupt_rows_are_reported_with_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rampart.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let raw = Raw::sqlite(&path).await;
    check_corrupt_rows_are_reported_with_column(&store, raw).await;
}

#[tokio::test]
async fn postgres_corrupt_rows_are_reported_with_column() {
    let (store, url) = postgres_store().await;
    let raw = Raw::postgres(&url).await;
    check_corrupt_rows_are_reported_with_column(&store, raw).await;
}

#[test]
fn error_messages_do_not_leak_details() {
    assert_eq!(StoreError::NotFound.to_string(), "not found");
    assert_eq!(StoreError::Conflict.to_string(), "already exists");
    let backend = StoreError::Backend(sqlx::Error::Protocol("SELECT secret".into()));
    assert_eq!(backend.to_string(), "storage unavailable");
}

// One per backend: each coerces clones of its concrete store type to every trait.
#[tokio::test]
async fn traits_are_object_safe() {
    let store = SqliteStore::open_in_memory().await.expect("open");
    let clients: Arc<dyn ClientStore> = Arc::new(store.clone());
    let keys: Arc<dyn KeyStore> = Arc::new(store.clone());
    let revocations: Arc<dyn RevocationStore> = Arc::new(store.clone());
    let replays: Arc<dyn ReplayStore> = Arc::new(store.clone());
    // Clones share the same in-memory database.
    clients
        .create_client(&client("x", 1))
        .await
        .expect("create");
    assert!(store.get_client("x").await.expect("get").is_some());
    assert!(keys.list_keys().await.expect("keys").is_empty());
    revocations.revoke("j", 5).await.expect("revoke");
    assert!(replays.record_once("s", "i", 5, 1).await.expect("rec"));
    store.ping().await.expect("ping");
    store.close().await;
}

#[tokio::test]
async fn postgres_traits_are_object_safe() {
    let (store, _) = postgres_store().await;
    let clients: Arc<dyn ClientStore> = Arc::new(store.clone());
    let keys: Arc<dyn KeyStore> = Arc::new(store.clone());
    let revocations: Arc<dyn RevocationStore> = Arc::new(store.clone());
    let replays: Arc<dyn ReplayStore> = Arc::new(store.clone());
    // Clones share the same connection pool.
    clients
        .create_client(&client("x", 1))
        .await
        .expect("create");
    assert!(store.get_client("x").await.expect("get").is_some());
    assert!(keys.list_keys().await.expect("keys").is_empty());
    revocations.revoke("j", 5).await.expect("revoke");
    assert!(replays.record_once("s", "i", 5, 1).await.expect("rec"));
    store.ping().await.expect("ping");
    store.close().await;
}

// One per backend: concurrent first opens race on creating the schema, which each backend
// guards its own way (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: the migrator's advisory lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_open_of_a_fresh_file_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fresh.db");
    let (a, b, c) = tokio::join!(
        SqliteStore::open(&path),
        SqliteStore::open(&path),
        SqliteStore::open(&path)
    );
    let (a, b, c) = (a.expect("open a"), b.expect("open b"), c.expect("open c"));
    a.create_client(&client("a", 1)).await.expect("create");
    assert!(c.get_client("a").await.expect("get").is_some());
    assert_eq!(b.clients_generation().await.expect("gen"), 1);
    for s in [a, b, c] {
        s.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connect_to_a_fresh_postgres_database_succeeds() {
    let url = rampart_testkit::postgres_database().await;
    let options = PostgresOptions::default();
    let (a, b, c) = tokio::join!(
        PostgresStore::connect(&url, &options),
        PostgresStore::connect(&url, &options),
        PostgresStore::connect(&url, &options)
    );
    let (a, b, c) = (a.expect("open a"), b.expect("open b"), c.expect("open c"));
    a.create_client(&client("a", 1)).await.expect("create");
    assert!(c.get_client("a").await.expect("get").is_some());
    assert_eq!(b.clients_generation().await.expect("gen"), 1);
    for s in [a, b, c] {
        s.close().await;
    }
}

on_both_backends!(
    client_crud_conflict_and_not_found,
    client_flow_settings_round_trip,
    clients_generation_bumps_on_changes_only,
    key_rotation_and_generation,
    failing_key_batch_leaves_nothing_applied,
    revocations_idempotent_filtered_and_purged,
    record_once_detects_replays_and_expiry,
    record_once_is_atomic_under_concurrency,
    writes_survive_close_and_reopen,
    two_handles_on_one_database_write_concurrently,
);
