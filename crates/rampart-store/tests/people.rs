//! Behavioural tests of the people stores (users, second factors, sessions) on both backends
//! (SQLite and PostgreSQL), through the public traits. Codes, refresh tokens and consents:
//! `people_flows.rs`.

#[macro_use]
mod common;

use std::sync::Arc;

use common::*;
use rampart_store::{
    AuthCodeStore, CodeRedemption, MfaStore, SessionStore, SqliteStore, Store, TotpRecord,
    UserStore, WebauthnCredentialRecord,
};

async fn users_crud_lookups_conflicts_and_not_found(db: TestDb) {
    let store = db.open().await;
    assert_eq!(store.get_user("a").await.expect("get"), None);
    let a = user("a", 20);
    let b = user("b", 10);
    let c = user("c", 10);
    for u in [&a, &b, &c] {
        store.create_user(u).await.expect("create");
    }
    assert_eq!(store.get_user("a").await.expect("get"), Some(a.clone()));
    assert_eq!(
        store.get_user_by_username("name-b").await.expect("get"),
        Some(b.clone())
    );
    assert_eq!(
        store.get_user_by_email_index(b"idx-c").await.expect("get"),
        Some(c.clone())
    );
    assert_eq!(
        store.get_user_by_username("nobody").await.expect("get"),
        None
    );
    assert_eq!(
        store.get_user_by_email_index(b"none").await.expect("get"),
        None
    );
    let listed = store.list_users().await.expect("list");
    assert_eq!(listed, vec![b.clone(), c.clone(), a.clone()]);

    // Duplicate id, username or e-mail index: Conflict, nothing changed.
    let mut dup = user("x", 1);
    dup.user_id = "a".into();
    assert!(is_conflict(store.create_user(&dup).await));
    let mut dup = user("x", 1);
    dup.username = "name-a".into();
    assert!(is_conflict(store.create_user(&dup).await));
    let mut dup = user("x", 1);
    dup.email_index = b"idx-a".to_vec();
    assert!(is_conflict(store.create_user(&dup).await));
    assert_eq!(store.list_users().await.expect("list").len(), 3);

    store
        .set_password_hash("a", "$argon2id$new", 30)
        .await
        .expect("set hash");
    store
        .set_user_disabled("a", true, 31)
        .await
        .expect("disable");
    let got = store.get_user("a").await.expect("get").expect("exists");
    assert_eq!(got.password_hash, "$argon2id$new");
    assert!(got.disabled);
    assert_eq!((got.created_at, got.updated_at), (20, 31));
    store
        .set_user_disabled("a", false, 32)
        .await
        .expect("enable");
    assert!(
        !store
            .get_user("a")
            .await
            .expect("get")
            .expect("exists")
            .disabled
    );
    assert!(is_not_found(store.set_password_hash("zz", "h", 1).await));
    assert!(is_not_found(store.set_user_disabled("zz", true, 1).await));

    store.delete_user("a").await.expect("delete");
    assert_eq!(store.get_user("a").await.expect("get"), None);
    assert!(is_not_found(store.delete_user("a").await));
    // The username and e-mail index are free again.
    store.create_user(&user("a", 40)).await.expect("recreate");
}

async fn totp_enrollment_confirmation_and_replay(db: TestDb) {
    let store = with_users(&db, &["u", "v"]).await;
    assert_eq!(store.get_totp("u").await.expect("get"), None);
    assert!(!store.accept_totp_step("u", 5).await.expect("no enrollment"));

    let pending = TotpRecord {
        user_id: "u".into(),
        sealed_secret: vec![1, 2, 3],
        confirmed: false,
        last_step: None,
        created_at: NOW,
    };
    store.put_pending_totp(&pending).await.expect("put");
    assert_eq!(
        store.get_totp("u").await.expect("get"),
        Some(pending.clone())
    );

    // An unconfirmed enrollment is replaced by a new one.
    let replacement = TotpRecord {
        sealed_secret: vec![4, 5, 6],
        created_at: NOW + 1,
        ..pending.clone()
    };
    store.put_pending_totp(&replacement).await.expect("replace");
    assert_eq!(
        store.get_totp("u").await.expect("get"),
        Some(replacement.clone())
    );

    // The first accepted step confirms; the same or an earlier step is a replay.
    assert!(store.accept_totp_step("u", 100).await.expect("accept"));
    let got = store.get_totp("u").await.expect("get").expect("exists");
    assert!(got.confirmed);
    assert_eq!(got.last_step, Some(100));
    assert!(!store.accept_totp_step("u", 100).await.expect("same step"));
    assert!(!store.accept_totp_step("u", 99).await.expect("earlier step"));
    assert!(store.accept_totp_step("u", 101).await.expect("later step"));
    assert_eq!(
        store
            .get_totp("u")
            .await
            .expect("get")
            .expect("exists")
            .last_step,
        Some(101)
    );
    // Another user's enrollment is separate.
    assert!(!store.accept_totp_step("v", 102).await.expect("v"));

    // A confirmed enrollment is not replaced: Conflict, unchanged.
    assert!(is_conflict(store.put_pending_totp(&pending).await));
    assert_eq!(
        store
            .get_totp("u")
            .await
            .expect("get")
            .expect("exists")
            .sealed_secret,
        vec![4, 5, 6]
    );
    // After a reset it can be enrolled again, starting fresh.
    store.reset_mfa("u").await.expect("reset");
    assert_eq!(store.get_totp("u").await.expect("get"), None);
    store.put_pending_totp(&pending).await.expect("re-enroll");
    assert_eq!(store.get_totp("u").await.expect("get"), Some(pending));

    let orphan = TotpRecord {
        user_id: "ghost".into(),
        sealed_secret: vec![1],
        confirmed: false,
        last_step: None,
        created_at: NOW,
    };
    assert!(is_not_found(store.put_pending_totp(&orphan).await));
}

async fn totp_step_is_accepted_once_under_concurrency(db: TestDb) {
    let a = db.open().await;
    let b = db.open().await;
    a.create_user(&user("u", 1)).await.expect("user");
    let pending = TotpRecord {
        user_id: "u".into(),
        sealed_secret: vec![1],
        confirmed: false,
        last_step: None,
        created_at: NOW,
    };
    a.put_pending_totp(&pending).await.expect("put");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(
            async move { store.accept_totp_step("u", 7).await },
        ));
    }
    let mut accepted = 0;
    for task in tasks {
        if task.await.expect("join").expect("accept") {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1);
    a.close().await;
    b.close().await;
}

async fn recovery_codes_are_single_use_and_replaced_atomically(db: TestDb) {
    let store = with_users(&db, &["u", "v"]).await;
    assert_eq!(store.remaining_recovery_codes("u").await.expect("count"), 0);
    let codes = vec![b"r1".to_vec(), b"r2".to_vec(), b"r3".to_vec()];
    store
        .replace_recovery_codes("u", &codes, NOW)
        .await
        .expect("replace");
    assert_eq!(store.remaining_recovery_codes("u").await.expect("count"), 3);

    assert!(store.use_recovery_code("u", b"r2", NOW).await.expect("use"));
    assert!(
        !store
            .use_recovery_code("u", b"r2", NOW + 1)
            .await
            .expect("reuse")
    );
    assert!(
        !store
            .use_recovery_code("u", b"nope", NOW)
            .await
            .expect("unknown")
    );
    assert!(
        !store
            .use_recovery_code("v", b"r1", NOW)
            .await
            .expect("other user")
    );
    assert_eq!(store.remaining_recovery_codes("u").await.expect("count"), 2);

    // A duplicate in the new set: Conflict, and the old set is intact.
    let dup = vec![b"n1".to_vec(), b"n1".to_vec()];
    assert!(is_conflict(
        store.replace_recovery_codes("u", &dup, NOW).await
    ));
    assert_eq!(store.remaining_recovery_codes("u").await.expect("count"), 2);
    assert!(
        store
            .use_recovery_code("u", b"r1", NOW)
            .await
            .expect("old still valid")
    );

    // Replacing drops the old codes, used or not.
    let fresh = vec![b"n1".to_vec(), b"n2".to_vec()];
    store
        .replace_recovery_codes("u", &fresh, NOW)
        .await
        .expect("replace");
    assert_eq!(store.remaining_recovery_codes("u").await.expect("count"), 2);
    assert!(
        !store
            .use_recovery_code("u", b"r3", NOW)
            .await
            .expect("old gone")
    );
    assert!(store.use_recovery_code("u", b"n1", NOW).await.expect("new"));

    assert!(is_not_found(
        store.replace_recovery_codes("ghost", &fresh, NOW).await
    ));
    store.reset_mfa("u").await.expect("reset");
    assert_eq!(store.remaining_recovery_codes("u").await.expect("count"), 0);
}

async fn webauthn_credentials_add_list_update_and_reset(db: TestDb) {
    let store = with_users(&db, &["u", "v"]).await;
    let cred = |id: &[u8], user: &str, created_at: i64| WebauthnCredentialRecord {
        credential_id: id.to_vec(),
        user_id: user.to_owned(),
        name: format!("key {created_at}"),
        credential_json: r#"{"counter":0}"#.into(),
        created_at,
        last_used_at: None,
    };
    let k2 = cred(b"k2", "u", 20);
    let k1 = cred(b"k1", "u", 10);
    let kv = cred(b"kv", "v", 5);
    for c in [&k2, &k1, &kv] {
        store.add_webauthn_credential(c).await.expect("add");
    }
    assert_eq!(
        store.list_webauthn_credentials("u").await.expect("list"),
        vec![k1.clone(), k2.clone()]
    );
    // Credential ids are globally unique.
    assert!(is_conflict(
        store.add_webauthn_credential(&cred(b"k1", "v", 30)).await
    ));
    assert!(is_not_found(
        store
            .add_webauthn_credential(&cred(b"k9", "ghost", 30))
            .await
    ));

    store
        .update_webauthn_credential(b"k1", r#"{"counter":7}"#, 50)
        .await
        .expect("update");
    let listed = store.list_webauthn_credentials("u").await.expect("list");
    assert_eq!(listed[0].credential_json, r#"{"counter":7}"#);
    assert_eq!(listed[0].last_used_at, Some(50));
    assert!(is_not_found(
        store.update_webauthn_credential(b"zz", "{}", 1).await
    ));

    store.reset_mfa("u").await.expect("reset");
    assert!(
        store
            .list_webauthn_credentials("u")
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        store.list_webauthn_credentials("v").await.expect("list"),
        vec![kv]
    );
}

async fn sessions_crud_and_logout_revokes_refresh_families(db: TestDb) {
    let store = with_users(&db, &["u", "v"]).await;
    let s1 = session("s1", "u", 10);
    let s2 = session("s2", "u", 20);
    let sv = session("sv", "v", 30);
    for s in [&s1, &s2, &sv] {
        store.create_session(s).await.expect("create");
    }
    let mut dup = session("s1", "u", 1);
    dup.cookie_hash = b"other".to_vec();
    assert!(is_conflict(store.create_session(&dup).await));
    let mut dup = session("s9", "u", 1);
    dup.cookie_hash = s1.cookie_hash.clone();
    assert!(is_conflict(store.create_session(&dup).await));
    assert!(is_not_found(
        store.create_session(&session("s9", "ghost", 1)).await
    ));

    assert_eq!(
        store
            .get_session_by_cookie(b"cookie-s1")
            .await
            .expect("get"),
        Some(s1.clone())
    );
    assert_eq!(
        store.get_session_by_cookie(b"nope").await.expect("get"),
        None
    );
    assert_eq!(
        store.get_session("s2").await.expect("get"),
        Some(s2.clone())
    );
    assert_eq!(
        store.list_sessions("u").await.expect("list"),
        vec![s2.clone(), s1.clone()]
    );

    store.touch_session("s1", 15).await.expect("touch");
    let amr = vec!["pwd".to_owned(), "hwk".to_owned()];
    store
        .update_session_auth("s1", 16, &amr, "urn:rampart:acr:mfa")
        .await
        .expect("step-up");
    let got = store.get_session("s1").await.expect("get").expect("exists");
    assert_eq!(got.last_seen_at, 15);
    assert_eq!(
        (got.auth_time, got.amr, got.acr.as_str()),
        (16, amr.clone(), "urn:rampart:acr:mfa")
    );
    assert!(is_not_found(store.touch_session("zz", 1).await));
    assert!(is_not_found(
        store.update_session_auth("zz", 1, &amr, "x").await
    ));

    // Families: one per session of u, one without a session, one of v.
    for (fam, user, sid) in [
        ("f1", "u", Some("s1")),
        ("f2", "u", Some("s2")),
        ("f3", "u", None),
        ("fv", "v", Some("sv")),
    ] {
        store
            .create_refresh_family(
                &family(fam, user, sid),
                &token(&format!("t-{fam}"), fam, NOW + 100),
            )
            .await
            .expect("family");
    }
    let revoked_at = |store: Arc<dyn Store>, fam: &'static str| async move {
        store
            .get_refresh_family_by_token(format!("t-{fam}").as_bytes())
            .await
            .expect("get")
            .expect("exists")
            .1
            .revoked_at
    };

    // Logging out of s1 revokes only f1.
    store.delete_session("s1", 500).await.expect("delete");
    assert_eq!(store.get_session("s1").await.expect("get"), None);
    assert!(is_not_found(store.delete_session("s1", 501).await));
    assert_eq!(revoked_at(store.clone(), "f1").await, Some(500));
    assert_eq!(revoked_at(store.clone(), "f2").await, None);
    assert_eq!(revoked_at(store.clone(), "f3").await, None);

    // Logging out everywhere revokes all of u's families, not v's.
    assert_eq!(store.delete_user_sessions("u", 600).await.expect("all"), 1);
    assert!(store.list_sessions("u").await.expect("list").is_empty());
    assert_eq!(revoked_at(store.clone(), "f1").await, Some(500));
    assert_eq!(revoked_at(store.clone(), "f2").await, Some(600));
    assert_eq!(revoked_at(store.clone(), "f3").await, Some(600));
    assert_eq!(revoked_at(store.clone(), "fv").await, None);
    assert_eq!(store.delete_user_sessions("u", 700).await.expect("none"), 0);

    // Purge by absolute expiry.
    store
        .create_session(&session("s3", "u", 100))
        .await
        .expect("create");
    assert_eq!(
        store
            .purge_expired_sessions(sv.expires_at - 1)
            .await
            .expect("purge"),
        0
    );
    assert_eq!(
        store
            .purge_expired_sessions(sv.expires_at)
            .await
            .expect("purge"),
        1
    );
    assert_eq!(store.get_session("sv").await.expect("get"), None);
    assert!(store.get_session("s3").await.expect("get").is_some());
}

async fn delete_user_removes_everything_that_belongs_to_them(db: TestDb) {
    let store = with_users(&db, &["u", "v"]).await;
    for id in ["u", "v"] {
        let totp = TotpRecord {
            user_id: id.into(),
            sealed_secret: vec![1],
            confirmed: false,
            last_step: None,
            created_at: NOW,
        };
        store.put_pending_totp(&totp).await.expect("totp");
        store
            .replace_recovery_codes(id, &[format!("rc-{id}").into_bytes()], NOW)
            .await
            .expect("codes");
        store
            .add_webauthn_credential(&WebauthnCredentialRecord {
                credential_id: format!("cred-{id}").into_bytes(),
                user_id: id.into(),
                name: "key".into(),
                credential_json: "{}".into(),
                created_at: NOW,
                last_used_at: None,
            })
            .await
            .expect("webauthn");
        store
            .create_session(&session(&format!("s-{id}"), id, NOW))
            .await
            .expect("session");
        let mut req = request(&format!("r-{id}"), NOW + 60);
        req.pending_user_id = Some(id.into());
        store.create_auth_request(&req).await.expect("request");
        store
            .create_code(&code(format!("c-{id}").as_bytes(), id, NOW + 60))
            .await
            .expect("code");
        let fam = format!("f-{id}");
        store
            .create_refresh_family(
                &family(&fam, id, None),
                &token(&format!("t-{id}"), &fam, NOW + 60),
            )
            .await
            .expect("family");
        store
            .put_consent(id, "web", &["openid".into()], NOW)
            .await
            .expect("consent");
    }

    store.delete_user("u").await.expect("delete");

    assert_eq!(store.get_user("u").await.expect("get"), None);
    assert_eq!(store.get_totp("u").await.expect("totp"), None);
    assert_eq!(store.remaining_recovery_codes("u").await.expect("codes"), 0);
    assert!(
        store
            .list_webauthn_credentials("u")
            .await
            .expect("webauthn")
            .is_empty()
    );
    assert!(store.list_sessions("u").await.expect("sessions").is_empty());
    assert_eq!(
        store
            .get_session_by_cookie(b"cookie-s-u")
            .await
            .expect("cookie"),
        None
    );
    assert_eq!(
        store.get_auth_request("r-u", NOW).await.expect("request"),
        None
    );
    assert_eq!(
        store.redeem_code(b"c-u", NOW).await.expect("code"),
        CodeRedemption::Invalid
    );
    assert_eq!(
        store
            .get_refresh_family_by_token(b"t-u")
            .await
            .expect("token"),
        None
    );
    assert!(is_not_found(store.revoke_refresh_family("f-u", NOW).await));
    assert_eq!(store.get_consent("u", "web").await.expect("consent"), None);

    // v is untouched.
    assert!(store.get_totp("v").await.expect("totp").is_some());
    assert_eq!(store.remaining_recovery_codes("v").await.expect("codes"), 1);
    assert_eq!(
        store
            .list_webauthn_credentials("v")
            .await
            .expect("webauthn")
            .len(),
        1
    );
    assert_eq!(store.list_sessions("v").await.expect("sessions").len(), 1);
    assert!(
        store
            .get_auth_request("r-v", NOW)
            .await
            .expect("request")
            .is_some()
    );
    assert!(matches!(
        store.redeem_code(b"c-v", NOW).await.expect("code"),
        CodeRedemption::Redeemed(_)
    ));
    assert!(
        store
            .get_refresh_family_by_token(b"t-v")
            .await
            .expect("token")
            .is_some()
    );
    assert!(
        store
            .get_consent("v", "web")
            .await
            .expect("consent")
            .is_some()
    );
}

async fn users_and_sessions_survive_reopen(db: TestDb) {
    let u = user("u", 1);
    let s = session("s1", "u", 2);
    {
        let store = db.open().await;
        store.create_user(&u).await.expect("user");
        store.create_session(&s).await.expect("session");
        store
            .create_refresh_family(
                &family("f1", "u", Some("s1")),
                &token("t1", "f1", NOW + 100),
            )
            .await
            .expect("family");
        store
            .create_code(&code(b"c1", "u", NOW + 60))
            .await
            .expect("code");
        // Dropped without close: committed data must still be there.
    }
    {
        let store = db.open().await;
        assert_eq!(store.get_user("u").await.expect("get"), Some(u.clone()));
        assert_eq!(
            store
                .get_session_by_cookie(&s.cookie_hash)
                .await
                .expect("get"),
            Some(s.clone())
        );
        assert!(matches!(
            store.redeem_code(b"c1", NOW).await.expect("redeem"),
            CodeRedemption::Redeemed(_)
        ));
        store.touch_session("s1", 50).await.expect("touch");
        store.close().await;
    }
    let store = db.open().await;
    assert_eq!(store.list_users().await.expect("list"), vec![u]);
    assert_eq!(
        store
            .get_session("s1")
            .await
            .expect("get")
            .expect("s1")
            .last_seen_at,
        50
    );
    assert!(matches!(
        store.redeem_code(b"c1", NOW).await.expect("redeem"),
        CodeRedemption::AlreadyRedeemed(..)
    ));
    assert!(
        store
            .get_refresh_family_by_token(b"t1")
            .await
            .expect("get")
            .is_some()
    );
    store.close().await;
}

// SQLite-only: coerces a concrete store type into each trait object (backend-independent).
#[tokio::test]
async fn people_traits_are_object_safe() {
    let store = SqliteStore::open_in_memory().await.expect("open");
    let users: Arc<dyn UserStore> = Arc::new(store.clone());
    let mfa: Arc<dyn MfaStore> = Arc::new(store.clone());
    let sessions: Arc<dyn SessionStore> = Arc::new(store.clone());
    let codes: Arc<dyn AuthCodeStore> = Arc::new(store.clone());
    users.create_user(&user("u", 1)).await.expect("user");
    assert_eq!(mfa.remaining_recovery_codes("u").await.expect("mfa"), 0);
    assert!(
        sessions
            .list_sessions("u")
            .await
            .expect("sessions")
            .is_empty()
    );
    assert_eq!(codes.purge_expired_flows(NOW).await.expect("purge"), 0);
    store.close().await;
}

on_both_backends!(
    users_crud_lookups_conflicts_and_not_found,
    totp_enrollment_confirmation_and_replay,
    totp_step_is_accepted_once_under_concurrency,
    recovery_codes_are_single_use_and_replaced_atomically,
    webauthn_credentials_add_list_update_and_reset,
    sessions_crud_and_logout_revokes_refresh_families,
    delete_user_removes_everything_that_belongs_to_them,
    users_and_sessions_survive_reopen,
);
