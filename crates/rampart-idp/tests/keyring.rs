//! The keyring lifecycle on a real (in-memory SQLite) store: bootstrap, rotation on schedule,
//! pruning after retention, and tokens verifying across rotations.

use std::sync::Arc;

use rampart_crypto::MasterKey;
use rampart_idp::IdpConfig;
use rampart_idp::keys::{KeyFamily, KeyManager};
use rampart_store::{KeyState, SqliteStore};
use rampart_token::{AccessClaims, AudienceCheck, Validation};

const NOW: i64 = 1_800_000_000;

fn config() -> IdpConfig {
    let mut c = IdpConfig::new("https://issuer.example");
    c.key_rotation_interval_secs = 3600;
    c.max_access_token_ttl = 600;
    c.leeway_secs = 30;
    c
}

async fn manager(master: &MasterKey) -> (KeyManager, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let m = KeyManager::load(store.clone(), master.envelope(), &config(), NOW)
        .await
        .unwrap();
    (m, store)
}

/// Inserts every key of `other` (another server's bootstrap on a store of its own) into
/// `store`, as that server's bootstrap on the shared database would have.
async fn insert_keys_of(other: &SqliteStore, store: &SqliteStore) {
    use rampart_store::{KeyChange, KeyStore};
    let rows: Vec<KeyChange> = other
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(KeyChange::Insert)
        .collect();
    store.apply_key_changes(&rows).await.unwrap();
}

fn count(m: &KeyManager, family: KeyFamily, state: KeyState) -> usize {
    m.snapshot()
        .entries()
        .iter()
        .filter(|e| e.family == family && e.state == state)
        .count()
}

fn claims(exp: i64) -> AccessClaims {
    AccessClaims {
        roles: Vec::new(),
        groups: Vec::new(),
        iss: "https://issuer.example".into(),
        sub: "svc".into(),
        aud: vec!["api://x".into()],
        exp,
        iat: exp - 600,
        nbf: exp - 600,
        jti: "j1".into(),
        client_id: "svc".into(),
        scope: None,
    }
}

#[tokio::test]
async fn bootstrap_creates_active_and_next_per_family() {
    let master = MasterKey::generate().unwrap();
    let (m, _) = manager(&master).await;
    for family in KeyFamily::ALL {
        assert_eq!(count(&m, family, KeyState::Active), 1, "{family:?}");
        assert_eq!(count(&m, family, KeyState::Next), 1, "{family:?}");
    }
}

#[tokio::test]
async fn scheduled_rotation_and_pruning() {
    let master = MasterKey::generate().unwrap();
    let (m, _) = manager(&master).await;
    let first = m.snapshot().active(KeyFamily::Jwt).unwrap().clone();
    let token = rampart_token::issue(&first, &claims(NOW + 600)).unwrap();

    // Not due yet: nothing happens.
    assert!(m.maintain(NOW + 10).await.unwrap().is_empty());
    // Due: every family rotates; the old key is retired, not removed.
    let rotations = m.maintain(NOW + 3600).await.unwrap();
    assert_eq!(rotations.len(), 4);
    assert_ne!(
        m.snapshot().active(KeyFamily::Jwt).unwrap().kid(),
        first.kid()
    );
    assert_eq!(count(&m, KeyFamily::Jwt, KeyState::Retired), 1);
    let validation = Validation {
        issuer: "https://issuer.example".into(),
        audience: AudienceCheck::Any,
        leeway_secs: 30,
        now: Some(NOW + 100),
    };
    rampart_token::verify(&token, m.snapshot().verification_keys(), &validation)
        .expect("a token of the retired key still verifies");

    // Past max_ttl + leeway after retirement the retired key is gone.
    m.maintain(NOW + 3600 + 600 + 31).await.unwrap();
    assert_eq!(count(&m, KeyFamily::Jwt, KeyState::Retired), 0);
    assert!(!m.snapshot().verification_keys().contains(first.kid()));
}

#[tokio::test]
async fn wrong_master_key_cannot_load_the_keyring() {
    let master = MasterKey::generate().unwrap();
    let (_, store) = manager(&master).await;
    let other = MasterKey::generate().unwrap();
    let err = KeyManager::load(store, other.envelope(), &config(), NOW)
        .await
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("wrong master key"), "{err}");
}

fn kids(m: &KeyManager, family: KeyFamily, state: KeyState) -> Vec<String> {
    m.snapshot()
        .entries()
        .iter()
        .filter(|e| e.family == family && e.state == state)
        .map(|e| e.key.kid().to_owned())
        .collect()
}

/// Two servers on one empty database that bootstrap at the same moment both insert an
/// active and a next key per family. Reproduced exactly: B's keys are made on a store of
/// its own, then inserted into A's as B's bootstrap would have.
#[tokio::test]
async fn keys_of_servers_that_bootstrapped_at_once_are_reduced_to_one_active_and_one_next() {
    let master = MasterKey::generate().unwrap();
    let (a, store) = manager(&master).await;
    let (b, other_store) = manager(&master).await;
    let b_jwt = b.snapshot().active(KeyFamily::Jwt).unwrap().clone();
    let b_token = rampart_token::issue(&b_jwt, &claims(NOW + 600)).unwrap();
    insert_keys_of(&other_store, &store).await;
    a.reload().await.unwrap();
    for family in KeyFamily::ALL {
        assert_eq!(count(&a, family, KeyState::Active), 2, "{family:?}");
        assert_eq!(count(&a, family, KeyState::Next), 2, "{family:?}");
    }
    // Before any repair, every server already signs with the same one of the two.
    let c = KeyManager::load(store.clone(), master.envelope(), &config(), NOW)
        .await
        .unwrap();
    let signing = c
        .snapshot()
        .active(KeyFamily::Jwt)
        .unwrap()
        .kid()
        .to_owned();
    assert_eq!(a.snapshot().active(KeyFamily::Jwt).unwrap().kid(), signing);

    // Loading repaired it: one active, one next per family; the other active key retired.
    for family in KeyFamily::ALL {
        assert_eq!(kids(&c, family, KeyState::Active).len(), 1, "{family:?}");
        assert_eq!(kids(&c, family, KeyState::Next).len(), 1, "{family:?}");
        assert_eq!(kids(&c, family, KeyState::Retired).len(), 1, "{family:?}");
    }
    assert_eq!(
        kids(&c, KeyFamily::Jwt, KeyState::Active),
        std::slice::from_ref(&signing)
    );
    // A token B signed before the repair still verifies: its key is retired, not gone.
    let validation = Validation {
        issuer: "https://issuer.example".into(),
        audience: AudienceCheck::Any,
        leeway_secs: 30,
        now: Some(NOW + 100),
    };
    rampart_token::verify(&b_token, c.snapshot().verification_keys(), &validation)
        .expect("B's token verifies after the repair");
    // The other server sees the same keyring at its next change check; nothing left to do.
    assert!(a.refresh_if_changed().await.unwrap());
    assert_eq!(kids(&a, KeyFamily::Jwt, KeyState::Active), [signing]);
    assert_eq!(a.repair_duplicates(NOW + 1).await.unwrap(), 0);
}

/// Two servers repairing the same duplicates at once: the fixes are the same on both, so
/// the one that commits second finds its keys already changed (a next key it would delete is
/// gone). It reads the keyring again and has nothing left to do, instead of failing to start.
#[tokio::test]
async fn a_repair_that_lost_the_race_reads_again_instead_of_failing() {
    let master = MasterKey::generate().unwrap();
    let (a, store) = manager(&master).await;
    let (_, other_store) = manager(&master).await;
    insert_keys_of(&other_store, &store).await;
    a.reload().await.unwrap();
    assert_eq!(count(&a, KeyFamily::Jwt, KeyState::Next), 2);
    // Another server loads and repairs first; `a` still holds the keyring with duplicates.
    let c = KeyManager::load(store.clone(), master.envelope(), &config(), NOW)
        .await
        .unwrap();
    assert_eq!(count(&c, KeyFamily::Jwt, KeyState::Next), 1);
    assert_eq!(a.repair_duplicates(NOW + 1).await.unwrap(), 0);
    for family in KeyFamily::ALL {
        assert_eq!(count(&a, family, KeyState::Active), 1, "{family:?}");
        assert_eq!(count(&a, family, KeyState::Next), 1, "{family:?}");
        assert_eq!(
            kids(&a, family, KeyState::Active),
            kids(&c, family, KeyState::Active)
        );
    }
}

/// The race itself, on one SQLite file opened twice: however the two bootstraps
/// interleave, a third start finds one active and one next key per family.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_bootstraps_end_with_one_active_and_one_next_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.db");
    let master = MasterKey::generate().unwrap();
    let first = Arc::new(SqliteStore::open(&path).await.unwrap());
    let second = Arc::new(SqliteStore::open(&path).await.unwrap());
    let settings = config();
    let (a, b) = tokio::join!(
        KeyManager::load(first.clone(), master.envelope(), &settings, NOW),
        KeyManager::load(second, master.envelope(), &settings, NOW),
    );
    a.unwrap();
    b.unwrap();
    let c = KeyManager::load(first, master.envelope(), &config(), NOW)
        .await
        .unwrap();
    for family in KeyFamily::ALL {
        assert_eq!(count(&c, family, KeyState::Active), 1, "{family:?}");
        assert_eq!(count(&c, family, KeyState::Next), 1, "{family:?}");
    }
}

/// A rotation while two active keys exist (before any repair) retires both, so the
/// promoted key stays the only active one and no later repair undoes the rotation.
#[tokio::test]
async fn rotating_over_duplicate_active_keys_leaves_the_promoted_key_alone_active() {
    let master = MasterKey::generate().unwrap();
    let (a, store) = manager(&master).await;
    let (_, other_store) = manager(&master).await;
    insert_keys_of(&other_store, &store).await;
    let rotations = a.rotate(&KeyFamily::ALL, None, NOW + 10).await.unwrap();
    for rotation in &rotations {
        let family = KeyFamily::parse(rotation.family).unwrap();
        assert_eq!(
            kids(&a, family, KeyState::Active),
            std::slice::from_ref(&rotation.activated),
            "{family:?}"
        );
        assert_eq!(kids(&a, family, KeyState::Retired).len(), 2, "{family:?}");
    }
    a.repair_duplicates(NOW + 11).await.unwrap();
    for rotation in &rotations {
        let family = KeyFamily::parse(rotation.family).unwrap();
        assert_eq!(
            kids(&a, family, KeyState::Active),
            std::slice::from_ref(&rotation.activated),
            "{family:?}"
        );
        assert_eq!(kids(&a, family, KeyState::Next).len(), 1, "{family:?}");
    }
}
