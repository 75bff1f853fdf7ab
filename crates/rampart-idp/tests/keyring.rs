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

fn count(m: &KeyManager, family: KeyFamily, state: KeyState) -> usize {
    m.snapshot()
        .entries()
        .iter()
        .filter(|e| KeyFamily::of(e.key.kind()) == family && e.state == state)
        .count()
}

fn claims(exp: i64) -> AccessClaims {
    AccessClaims {
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
    assert_eq!(rotations.len(), 3);
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
