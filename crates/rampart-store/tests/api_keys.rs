//! Behavioural tests of API key storage through the public traits, on both backends:
//! every test in `on_both_backends!` runs as `sqlite::NAME` and `postgres::NAME`. The
//! corrupt-column test writes through a raw connection, so it has one version per backend.

#[macro_use]
mod common;

use std::sync::Arc;

use common::{TestDb, is_conflict, is_not_found};
use rampart_store::{
    ApiKeyRecord, ApiKeyStore, PostgresOptions, PostgresStore, SqliteStore, Store, StoreError,
};

fn api_key(id: &str, hash_byte: u8, created_at: i64) -> ApiKeyRecord {
    ApiKeyRecord {
        key_id: id.to_owned(),
        key_hash: vec![hash_byte; 32],
        name: format!("key {id}"),
        owner: "svc-billing".into(),
        scopes: vec!["orders:read".into(), "orders:write".into()],
        audiences: vec!["https://api.example/orders".into()],
        created_at,
        expires_at: Some(created_at + 3600),
        revoked_at: None,
    }
}

async fn crud_lookup_by_hash_and_not_found(db: TestDb) {
    let store = db.open().await;
    assert_eq!(
        store.get_api_key_by_hash(&[1; 32]).await.expect("get"),
        None
    );
    assert_eq!(store.get_api_key("a").await.expect("get"), None);

    let a = api_key("a", 1, 20);
    let mut b = api_key("b", 2, 10);
    b.expires_at = None;
    b.scopes = vec![];
    b.audiences = vec!["https://x".into(), "https://y".into()];
    let c = api_key("c", 3, 10);
    for k in [&a, &b, &c] {
        store.create_api_key(k).await.expect("create");
    }

    assert_eq!(
        store.get_api_key_by_hash(&[1; 32]).await.expect("get"),
        Some(a.clone())
    );
    assert_eq!(
        store.get_api_key_by_hash(&[2; 32]).await.expect("get"),
        Some(b.clone())
    );
    assert_eq!(store.get_api_key("c").await.expect("get"), Some(c.clone()));
    // A hash that differs in one byte finds nothing.
    let mut near = vec![1u8; 32];
    near[31] = 0;
    assert_eq!(store.get_api_key_by_hash(&near).await.expect("get"), None);

    // Ordered by created_at, then key_id.
    let ids: Vec<String> = store
        .list_api_keys()
        .await
        .expect("list")
        .into_iter()
        .map(|k| k.key_id)
        .collect();
    assert_eq!(ids, ["b", "c", "a"]);

    store.delete_api_key("a").await.expect("delete");
    assert_eq!(
        store.get_api_key_by_hash(&[1; 32]).await.expect("get"),
        None
    );
    assert!(is_not_found(store.delete_api_key("a").await));
    assert_eq!(store.list_api_keys().await.expect("list").len(), 2);
    store.close().await;
}

async fn duplicate_id_or_hash_is_a_conflict(db: TestDb) {
    let store = db.open().await;
    let a = api_key("a", 1, 1);
    store.create_api_key(&a).await.expect("create");
    let g = store.api_keys_generation().await.expect("gen");

    // Same hash, other id.
    let same_hash = api_key("other", 1, 2);
    assert!(is_conflict(store.create_api_key(&same_hash).await));
    // Same id, other hash.
    let same_id = api_key("a", 9, 2);
    assert!(is_conflict(store.create_api_key(&same_id).await));
    // Nothing changed, and failed writes do not bump the generation.
    assert_eq!(store.list_api_keys().await.expect("list"), vec![a]);
    assert_eq!(store.api_keys_generation().await.expect("gen"), g);
    store.close().await;
}

async fn revoke_sets_revoked_at_once_and_is_idempotent(db: TestDb) {
    let store = db.open().await;
    store
        .create_api_key(&api_key("a", 1, 1))
        .await
        .expect("create");
    store.revoke_api_key("a", 50).await.expect("revoke");
    let got = store.get_api_key("a").await.expect("get").expect("exists");
    assert_eq!(got.revoked_at, Some(50));
    assert!(!got.is_active(2));
    // A second revocation keeps the first time.
    store.revoke_api_key("a", 70).await.expect("revoke again");
    let got = store
        .get_api_key_by_hash(&[1; 32])
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got.revoked_at, Some(50));
    assert!(is_not_found(store.revoke_api_key("nope", 1).await));
    store.close().await;
}

async fn generation_bumps_on_changes_only_and_is_separate_from_clients(db: TestDb) {
    let store = db.open().await;
    let clients_before = store.clients_generation().await.expect("gen");
    let g0 = store.api_keys_generation().await.expect("gen");

    store
        .create_api_key(&api_key("a", 1, 1))
        .await
        .expect("create");
    let g1 = store.api_keys_generation().await.expect("gen");
    assert!(g1 > g0, "create must bump");

    store.get_api_key("a").await.expect("get");
    store.get_api_key_by_hash(&[1; 32]).await.expect("get");
    store.list_api_keys().await.expect("list");
    assert_eq!(store.api_keys_generation().await.expect("gen"), g1);

    store.revoke_api_key("a", 5).await.expect("revoke");
    let g2 = store.api_keys_generation().await.expect("gen");
    assert!(g2 > g1, "revoke must bump");

    assert!(store.revoke_api_key("zz", 5).await.is_err());
    assert!(store.delete_api_key("zz").await.is_err());
    assert_eq!(store.api_keys_generation().await.expect("gen"), g2);

    store.delete_api_key("a").await.expect("delete");
    assert!(
        store.api_keys_generation().await.expect("gen") > g2,
        "delete must bump"
    );

    assert_eq!(
        store.clients_generation().await.expect("gen"),
        clients_before,
        "API key changes do not invalidate client caches"
    );
    store.close().await;
}

async fn api_keys_survive_reopen_and_are_seen_by_a_second_handle(db: TestDb) {
    let reader = db.open().await;
    let g0 = reader.api_keys_generation().await.expect("gen");
    {
        // Dropped without close: committed data must still be there.
        let writer = db.open().await;
        writer
            .create_api_key(&api_key("a", 1, 1))
            .await
            .expect("create");
        writer
            .create_api_key(&api_key("b", 2, 2))
            .await
            .expect("create");
        writer.revoke_api_key("b", 9).await.expect("revoke");
    }
    // Another handle on the same database sees the change through the generation.
    assert_eq!(reader.api_keys_generation().await.expect("gen"), g0 + 3);
    reader.close().await;

    let store = db.open().await;
    assert_eq!(
        store.get_api_key_by_hash(&[1; 32]).await.expect("get"),
        Some(api_key("a", 1, 1))
    );
    let b = store.get_api_key("b").await.expect("get").expect("b");
    assert_eq!(b.revoked_at, Some(9));
    assert_eq!(store.api_keys_generation().await.expect("gen"), g0 + 3);
    store.close().await;
}

/// Checks that the key `a`, whose `scopes` were overwritten with a non-JSON value, is
/// reported as corrupt with the column named.
async fn check_corrupt_scope_is_reported(store: &dyn Store) {
    match store.get_api_key("a").await {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("api_keys.scopes"), "{msg}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    store.close().await;
}

// One per backend: the bad value goes in through a raw connection of the backend's own.
#[tokio::test]
async fn corrupt_scope_column_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rampart.db");
    let store = SqliteStore::open(&path).await.expect("open");
    store
        .create_api_key(&api_key("a", 1, 1))
        .await
        .expect("create");
    store.close().await;
    {
        use sqlx::Connection;
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
        let mut conn = sqlx::SqliteConnection::connect_with(&opts)
            .await
            .expect("raw connect");
        sqlx::query("UPDATE api_keys SET scopes = 'not json'")
            .execute(&mut conn)
            .await
            .expect("corrupt");
    }
    let store = SqliteStore::open(&path).await.expect("reopen");
    check_corrupt_scope_is_reported(&store).await;
}

#[tokio::test]
async fn postgres_corrupt_scope_column_is_reported() {
    let url = rampart_testkit::postgres_database().await;
    let options = PostgresOptions::default();
    let store = PostgresStore::connect(&url, &options)
        .await
        .expect("connect");
    store
        .create_api_key(&api_key("a", 1, 1))
        .await
        .expect("create");
    store.close().await;
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url)
            .await
            .expect("raw connect");
        sqlx::query("UPDATE api_keys SET scopes = 'not json'")
            .execute(&mut conn)
            .await
            .expect("corrupt");
        conn.close().await.expect("raw close");
    }
    let store = PostgresStore::connect(&url, &options)
        .await
        .expect("reconnect");
    check_corrupt_scope_is_reported(&store).await;
}

async fn api_key_store_is_object_safe(db: TestDb) {
    let store = db.open().await;
    // Upcast from the whole `Store`: the view shares the handle's pool.
    let keys: Arc<dyn ApiKeyStore> = store.clone();
    keys.create_api_key(&api_key("x", 7, 1))
        .await
        .expect("create");
    assert!(store.get_api_key("x").await.expect("get").is_some());
    store.close().await;
}

on_both_backends!(
    crud_lookup_by_hash_and_not_found,
    duplicate_id_or_hash_is_a_conflict,
    revoke_sets_revoked_at_once_and_is_idempotent,
    generation_bumps_on_changes_only_and_is_separate_from_clients,
    api_keys_survive_reopen_and_are_seen_by_a_second_handle,
    api_key_store_is_object_safe,
);
