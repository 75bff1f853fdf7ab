//! Behavioural tests of the authorization-flow store (requests, codes, refresh-token
//! families, consents) on both backends (SQLite and PostgreSQL), through the public trait.

#[macro_use]
mod common;

use std::sync::Arc;

use common::*;
use rampart_store::{CodeRedemption, IssuedGrant, RefreshRotation, Store};

async fn auth_requests_expire_and_track_the_pending_user(db: TestDb) {
    let store = with_users(&db, &["u"]).await;
    let req = request("r1", NOW + 60);
    store.create_auth_request(&req).await.expect("create");
    assert!(is_conflict(store.create_auth_request(&req).await));
    assert_eq!(
        store.get_auth_request("r1", NOW).await.expect("get"),
        Some(req.clone())
    );
    assert_eq!(
        store.get_auth_request("r1", NOW + 60).await.expect("get"),
        None
    );
    assert_eq!(store.get_auth_request("zz", NOW).await.expect("get"), None);

    store
        .set_auth_request_pending_user("r1", Some(("u", b"tag".as_slice())))
        .await
        .expect("pending");
    let got = store
        .get_auth_request("r1", NOW)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got.pending_user_id.as_deref(), Some("u"));
    store
        .set_auth_request_pending_user("r1", None)
        .await
        .expect("clear");
    assert_eq!(
        store.get_auth_request("r1", NOW).await.expect("get"),
        Some(req)
    );
    assert!(is_not_found(
        store
            .set_auth_request_pending_user("zz", Some(("u", b"tag".as_slice())))
            .await
    ));
    assert!(is_not_found(
        store
            .set_auth_request_pending_user("r1", Some(("ghost", b"tag".as_slice())))
            .await
    ));

    store.delete_auth_request("r1").await.expect("delete");
    store
        .delete_auth_request("r1")
        .await
        .expect("absent is fine");
    assert_eq!(store.get_auth_request("r1", NOW).await.expect("get"), None);
}

async fn codes_redeem_once_and_report_reuse_with_the_grant(db: TestDb) {
    let store = with_users(&db, &["u"]).await;
    let c = code(b"c1", "u", NOW + 60);
    store.create_code(&c).await.expect("create");
    assert!(is_conflict(store.create_code(&c).await));
    assert!(is_not_found(
        store.create_code(&code(b"c9", "ghost", NOW)).await
    ));

    assert_eq!(
        store.redeem_code(b"c1", NOW).await.expect("redeem"),
        CodeRedemption::Redeemed(c.clone())
    );
    assert_eq!(
        store.redeem_code(b"c1", NOW + 1).await.expect("again"),
        CodeRedemption::AlreadyRedeemed(c.clone(), None)
    );
    let grant = IssuedGrant {
        access_jti: "jti-1".into(),
        access_expires_at: NOW + 300,
        refresh_family_id: Some("f1".into()),
    };
    store
        .record_code_grant(b"c1", &grant)
        .await
        .expect("record");
    assert_eq!(
        store.redeem_code(b"c1", NOW + 2).await.expect("again"),
        CodeRedemption::AlreadyRedeemed(c.clone(), Some(grant.clone()))
    );
    // Reuse is still recognised after expiry (the code is kept for a day).
    assert_eq!(
        store.redeem_code(b"c1", NOW + 3_600).await.expect("late"),
        CodeRedemption::AlreadyRedeemed(c.clone(), Some(grant.clone()))
    );
    assert!(is_not_found(store.record_code_grant(b"zz", &grant).await));

    // Expired before redemption, or unknown: Invalid, and stays unredeemed.
    store
        .create_code(&code(b"c2", "u", NOW))
        .await
        .expect("create");
    assert_eq!(
        store.redeem_code(b"c2", NOW).await.expect("expired"),
        CodeRedemption::Invalid
    );
    assert_eq!(
        store.redeem_code(b"c2", NOW + 1).await.expect("expired"),
        CodeRedemption::Invalid
    );
    assert_eq!(
        store.redeem_code(b"nope", NOW).await.expect("unknown"),
        CodeRedemption::Invalid
    );
    // A grant without a refresh family round-trips too.
    store
        .create_code(&code(b"c3", "u", NOW + 60))
        .await
        .expect("create");
    assert!(matches!(
        store.redeem_code(b"c3", NOW).await.expect("redeem"),
        CodeRedemption::Redeemed(_)
    ));
    let access_only = IssuedGrant {
        refresh_family_id: None,
        ..grant
    };
    store
        .record_code_grant(b"c3", &access_only)
        .await
        .expect("record");
    assert_eq!(
        store.redeem_code(b"c3", NOW).await.expect("again"),
        CodeRedemption::AlreadyRedeemed(code(b"c3", "u", NOW + 60), Some(access_only))
    );
}

async fn exactly_one_concurrent_redeemer_wins(db: TestDb) {
    let a = db.open().await;
    let b = db.open().await;
    a.create_user(&user("u", 1)).await.expect("user");
    for round in 0..5u8 {
        let hash = vec![b'c', round];
        a.create_code(&code(&hash, "u", NOW + 60))
            .await
            .expect("code");
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store: Arc<dyn Store> = if i % 2 == 0 { a.clone() } else { b.clone() };
            let hash = hash.clone();
            tasks.push(tokio::spawn(
                async move { store.redeem_code(&hash, NOW).await },
            ));
        }
        let (mut redeemed, mut reused) = (0, 0);
        for task in tasks {
            match task.await.expect("join").expect("redeem") {
                CodeRedemption::Redeemed(_) => redeemed += 1,
                CodeRedemption::AlreadyRedeemed(..) => reused += 1,
                CodeRedemption::Invalid => panic!("a valid code is never Invalid"),
            }
        }
        assert_eq!((redeemed, reused), (1, 15), "round {round}");
    }
    a.close().await;
    b.close().await;
}

async fn refresh_rotation_and_reuse_revokes_the_family(db: TestDb) {
    let store = with_users(&db, &["u"]).await;
    let fam = family("f1", "u", Some("s1"));
    // The first token joins the family whatever its own family_id says.
    store
        .create_refresh_family(&fam, &token("t1", "ignored", NOW + 100))
        .await
        .expect("create");
    assert!(is_conflict(
        store
            .create_refresh_family(&fam, &token("t9", "f1", NOW + 100))
            .await
    ));
    assert!(is_conflict(
        store
            .create_refresh_family(&family("f2", "u", None), &token("t1", "f2", NOW + 100))
            .await
    ));
    // The failed family was rolled back with its token.
    assert!(is_not_found(store.revoke_refresh_family("f2", NOW).await));
    assert!(is_not_found(
        store
            .create_refresh_family(&family("f3", "ghost", None), &token("t3", "f3", NOW))
            .await
    ));

    let (t1, f1) = store
        .get_refresh_family_by_token(b"t1")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(t1, token("t1", "f1", NOW + 100));
    assert_eq!(f1, fam);
    assert_eq!(
        store.get_refresh_family_by_token(b"zz").await.expect("get"),
        None
    );

    // t1 -> t2 -> t3.
    assert_eq!(
        store
            .rotate_refresh_token(b"t1", &token("t2", "other", NOW + 200), NOW + 10)
            .await
            .expect("rotate"),
        RefreshRotation::Rotated(fam.clone())
    );
    let (t1, _) = store
        .get_refresh_family_by_token(b"t1")
        .await
        .expect("get")
        .expect("t1");
    assert_eq!(t1.used_at, Some(NOW + 10));
    let (t2, _) = store
        .get_refresh_family_by_token(b"t2")
        .await
        .expect("get")
        .expect("t2");
    assert_eq!(t2.family_id, "f1");
    assert_eq!(t2.used_at, None);
    assert!(matches!(
        store
            .rotate_refresh_token(b"t2", &token("t3", "f1", NOW + 300), NOW + 20)
            .await
            .expect("rotate"),
        RefreshRotation::Rotated(_)
    ));
    // A successor whose hash exists: Conflict, and t3 stays current.
    assert!(is_conflict(
        store
            .rotate_refresh_token(b"t3", &token("t1", "f1", NOW + 400), NOW + 30)
            .await
    ));
    let (t3, _) = store
        .get_refresh_family_by_token(b"t3")
        .await
        .expect("get")
        .expect("t3");
    assert_eq!(t3.used_at, None);

    // Replaying t1: reuse. The family is revoked, the newest token is now dead too.
    let mut revoked = fam.clone();
    revoked.revoked_at = Some(NOW + 40);
    assert_eq!(
        store
            .rotate_refresh_token(b"t1", &token("t4", "f1", NOW + 500), NOW + 40)
            .await
            .expect("reuse"),
        RefreshRotation::Reused(revoked.clone())
    );
    assert_eq!(
        store
            .rotate_refresh_token(b"t3", &token("t5", "f1", NOW + 500), NOW + 50)
            .await
            .expect("after reuse"),
        RefreshRotation::Invalid
    );
    assert_eq!(
        store
            .rotate_refresh_token(b"t1", &token("t6", "f1", NOW + 500), NOW + 60)
            .await
            .expect("replay again"),
        RefreshRotation::Invalid
    );
    let (_, f1) = store
        .get_refresh_family_by_token(b"t3")
        .await
        .expect("get")
        .expect("t3");
    assert_eq!(f1, revoked);
    assert_eq!(
        store.get_refresh_family_by_token(b"t4").await.expect("get"),
        None
    );
    assert_eq!(
        store.get_refresh_family_by_token(b"t5").await.expect("get"),
        None
    );
    assert_eq!(
        store
            .rotate_refresh_token(b"zz", &token("t7", "f1", NOW + 500), NOW)
            .await
            .expect("unknown"),
        RefreshRotation::Invalid
    );
}

async fn refresh_expiry_revocation_and_disabled_users_are_invalid(db: TestDb) {
    let store = with_users(&db, &["u", "v"]).await;
    let mut fam = family("f1", "u", None);
    fam.absolute_expires_at = NOW + 1_000;
    store
        .create_refresh_family(&fam, &token("t1", "f1", NOW + 100))
        .await
        .expect("create");

    // Idle expiry: Invalid, and the token is not marked used.
    let next = token("t2", "f1", NOW + 300);
    assert_eq!(
        store
            .rotate_refresh_token(b"t1", &next, NOW + 100)
            .await
            .expect("idle"),
        RefreshRotation::Invalid
    );
    let (t1, f1) = store
        .get_refresh_family_by_token(b"t1")
        .await
        .expect("get")
        .expect("t1");
    assert_eq!((t1.used_at, f1.revoked_at), (None, None));
    assert!(matches!(
        store
            .rotate_refresh_token(b"t1", &next, NOW + 99)
            .await
            .expect("rotate"),
        RefreshRotation::Rotated(_)
    ));
    // Absolute expiry: Invalid even for the current token.
    assert_eq!(
        store
            .rotate_refresh_token(b"t2", &token("t3", "f1", NOW + 2_000), NOW + 1_000)
            .await
            .expect("absolute"),
        RefreshRotation::Invalid
    );

    // A disabled user's tokens cannot be refreshed; re-enabled, they can.
    store
        .create_refresh_family(&family("f2", "u", None), &token("u1", "f2", NOW + 100))
        .await
        .expect("create");
    store
        .set_user_disabled("u", true, NOW)
        .await
        .expect("disable");
    let next = token("u2", "f2", NOW + 200);
    assert_eq!(
        store
            .rotate_refresh_token(b"u1", &next, NOW)
            .await
            .expect("disabled"),
        RefreshRotation::Invalid
    );
    store
        .set_user_disabled("u", false, NOW)
        .await
        .expect("enable");
    assert!(matches!(
        store
            .rotate_refresh_token(b"u1", &next, NOW)
            .await
            .expect("rotate"),
        RefreshRotation::Rotated(_)
    ));

    // Explicit revocation: idempotent, keeps the first time.
    store
        .revoke_refresh_family("f2", NOW + 5)
        .await
        .expect("revoke");
    store
        .revoke_refresh_family("f2", NOW + 6)
        .await
        .expect("again");
    let (_, f2) = store
        .get_refresh_family_by_token(b"u2")
        .await
        .expect("get")
        .expect("u2");
    assert_eq!(f2.revoked_at, Some(NOW + 5));
    assert_eq!(
        store
            .rotate_refresh_token(b"u2", &token("u3", "f2", NOW + 300), NOW + 7)
            .await
            .expect("revoked"),
        RefreshRotation::Invalid
    );
    assert!(is_not_found(store.revoke_refresh_family("zz", NOW).await));

    // Per-user revocation counts only newly revoked families.
    store
        .create_refresh_family(&family("f3", "u", None), &token("w1", "f3", NOW + 100))
        .await
        .expect("create");
    store
        .create_refresh_family(&family("fv", "v", None), &token("v1", "fv", NOW + 100))
        .await
        .expect("create");
    assert_eq!(
        store
            .revoke_user_refresh_families("u", NOW + 8)
            .await
            .expect("revoke"),
        2
    );
    assert_eq!(
        store
            .revoke_user_refresh_families("u", NOW + 9)
            .await
            .expect("revoke"),
        0
    );
    let (_, fv) = store
        .get_refresh_family_by_token(b"v1")
        .await
        .expect("get")
        .expect("v1");
    assert_eq!(fv.revoked_at, None);
}

async fn concurrent_rotations_of_one_token_rotate_once(db: TestDb) {
    let a = db.open().await;
    let b = db.open().await;
    a.create_user(&user("u", 1)).await.expect("user");
    a.create_refresh_family(&family("f1", "u", None), &token("t0", "f1", NOW + 100))
        .await
        .expect("family");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let next = token(&format!("next-{i}"), "f1", NOW + 200);
            store.rotate_refresh_token(b"t0", &next, NOW).await
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("join").expect("rotate"));
    }
    let rotated = outcomes
        .iter()
        .filter(|o| matches!(o, RefreshRotation::Rotated(_)))
        .count();
    assert_eq!(rotated, 1, "{outcomes:?}");
    // The first loser sees reuse and revokes; later ones find the family revoked.
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, RefreshRotation::Reused(_)))
    );
    let (_, fam) = a
        .get_refresh_family_by_token(b"t0")
        .await
        .expect("get")
        .expect("t0");
    assert!(fam.revoked_at.is_some());
    a.close().await;
    b.close().await;
}

async fn consents_are_replaced_per_user_and_client(db: TestDb) {
    let store = with_users(&db, &["u"]).await;
    assert_eq!(store.get_consent("u", "web").await.expect("get"), None);
    let first = vec!["openid".to_owned(), "profile".to_owned()];
    store
        .put_consent("u", "web", &first, NOW)
        .await
        .expect("put");
    assert_eq!(
        store.get_consent("u", "web").await.expect("get"),
        Some(first)
    );
    let second = vec!["openid".to_owned()];
    store
        .put_consent("u", "web", &second, NOW + 1)
        .await
        .expect("replace");
    assert_eq!(
        store.get_consent("u", "web").await.expect("get"),
        Some(second)
    );
    assert_eq!(store.get_consent("u", "other").await.expect("get"), None);
    store
        .put_consent("u", "other", &[], NOW)
        .await
        .expect("empty");
    assert_eq!(
        store.get_consent("u", "other").await.expect("get"),
        Some(vec![])
    );
    assert!(is_not_found(
        store.put_consent("ghost", "web", &[], NOW).await
    ));
}

async fn purge_removes_expired_requests_codes_and_families(db: TestDb) {
    let store = with_users(&db, &["u"]).await;
    store
        .create_auth_request(&request("r-old", NOW))
        .await
        .expect("req");
    store
        .create_auth_request(&request("r-new", NOW + 1))
        .await
        .expect("req");
    // Codes are kept a day past expiry for reuse detection.
    store
        .create_code(&code(b"c-old", "u", NOW - 86_400))
        .await
        .expect("code");
    store
        .create_code(&code(b"c-day", "u", NOW - 86_399))
        .await
        .expect("code");
    store
        .create_code(&code(b"c-new", "u", NOW + 60))
        .await
        .expect("code");
    let mut old = family("f-old", "u", None);
    old.absolute_expires_at = NOW;
    store
        .create_refresh_family(&old, &token("o1", "f-old", NOW))
        .await
        .expect("family");
    store
        .rotate_refresh_token(b"o1", &token("o2", "f-old", NOW), NOW - 1)
        .await
        .expect("rotate");
    store
        .create_refresh_family(&family("f-new", "u", None), &token("n1", "f-new", NOW - 5))
        .await
        .expect("family");

    // 1 request + 1 code + 2 tokens + 1 family.
    assert_eq!(store.purge_expired_flows(NOW).await.expect("purge"), 5);
    assert_eq!(store.purge_expired_flows(NOW).await.expect("purge"), 0);
    assert!(
        store
            .get_auth_request("r-new", NOW)
            .await
            .expect("get")
            .is_some()
    );
    assert_eq!(
        store.redeem_code(b"c-old", NOW).await.expect("gone"),
        CodeRedemption::Invalid
    );
    assert!(is_not_found(
        store
            .record_code_grant(
                b"c-old",
                &IssuedGrant {
                    access_jti: "j".into(),
                    access_expires_at: NOW,
                    refresh_family_id: None,
                }
            )
            .await
    ));
    assert!(matches!(
        store.redeem_code(b"c-new", NOW).await.expect("kept"),
        CodeRedemption::Redeemed(_)
    ));
    assert_eq!(
        store.get_refresh_family_by_token(b"o1").await.expect("get"),
        None
    );
    assert_eq!(
        store.get_refresh_family_by_token(b"o2").await.expect("get"),
        None
    );
    assert!(is_not_found(
        store.revoke_refresh_family("f-old", NOW).await
    ));
    // An idle-expired token of a live family stays (for reuse detection).
    assert!(
        store
            .get_refresh_family_by_token(b"n1")
            .await
            .expect("get")
            .is_some()
    );
}

on_both_backends!(
    auth_requests_expire_and_track_the_pending_user,
    codes_redeem_once_and_report_reuse_with_the_grant,
    exactly_one_concurrent_redeemer_wins,
    refresh_rotation_and_reuse_revokes_the_family,
    refresh_expiry_revocation_and_disabled_users_are_invalid,
    concurrent_rotations_of_one_token_rotate_once,
    consents_are_replaced_per_user_and_client,
    purge_removes_expired_requests_codes_and_families,
);
