//! Local verification of JWT and PASETO v4.public tokens against a mock IdP.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use rampart_guard::{Accepted, AuthError, AuthMethod, Authenticator, Guard, IssuerConfig};

const ALL: Accepted = Accepted {
    jwt: true,
    paseto: true,
    introspection: true,
    api_key: false,
};

#[tokio::test]
async fn valid_jwt_and_paseto_accepted() {
    let idp = MockIdp::start().await;
    let (jk, pk) = (jwt_key(), paseto_key());
    idp.publish(&jk);
    idp.publish(&pk);
    let guard = idp.guard();

    let c = claims(&idp.base, AUDIENCE, 300);
    let p = guard
        .authenticate(&token(&jk, &c), AUDIENCE, ALL)
        .await
        .unwrap();
    assert_eq!(p.subject, "alice");
    assert_eq!(p.client_id.as_deref(), Some("web-app"));
    assert_eq!(p.scopes, vec!["read".to_owned(), "write".to_owned()]);
    assert_eq!(p.audiences, vec![AUDIENCE.to_owned()]);
    assert_eq!(p.issuer, idp.base);
    assert_eq!(p.expires_at, c.exp);
    assert_eq!(p.token_id.as_deref(), Some("jti-1"));
    assert_eq!(p.method, AuthMethod::Jwt);

    let pas = token(&pk, &c);
    assert!(pas.starts_with("v4.public."));
    let p = guard.authenticate(&pas, AUDIENCE, ALL).await.unwrap();
    assert_eq!(p.method, AuthMethod::Paseto);
    assert_eq!(p.subject, "alice");
    assert_eq!(p.expires_at, c.exp);
    assert!(p.roles.is_empty() && p.groups.is_empty());

    // A user's roles and groups (RFC 9068 §7.2.1.1) reach the principal from both formats.
    let with_roles = rampart_token::AccessClaims {
        roles: vec!["admin".into()],
        groups: vec!["eng".into()],
        jti: "jti-2".into(),
        ..c.clone()
    };
    for key in [&jk, &pk] {
        let p = guard
            .authenticate(&token(key, &with_roles), AUDIENCE, ALL)
            .await
            .unwrap();
        assert_eq!(p.roles, ["admin"]);
        assert_eq!(p.groups, ["eng"]);
    }
    // Keys were fetched once (lazily), for both tokens.
    assert_eq!(idp.jwks_hits(), 1);
    assert_eq!(idp.paserk_hits(), 1);
    assert_eq!(idp.introspect_hits(), 0);
}

#[tokio::test]
async fn unknown_kid_refetches_once_then_succeeds() {
    let idp = MockIdp::start().await;
    let k1 = jwt_key();
    idp.publish(&k1);
    let mut cfg = idp.config();
    cfg.key_refresh_min_interval = Duration::from_millis(200);
    let guard = Guard::new(cfg).unwrap();
    let c = claims(&idp.base, AUDIENCE, 300);
    guard
        .authenticate(&token(&k1, &c), AUDIENCE, ALL)
        .await
        .unwrap();
    assert_eq!(idp.jwks_hits(), 1);

    // Rotation: a new key appears at the IdP.
    let k2 = jwt_key();
    idp.publish(&k2);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let t2 = token(&k2, &c);
    let p = guard.authenticate(&t2, AUDIENCE, ALL).await.unwrap();
    assert_eq!(p.subject, "alice");
    assert_eq!(idp.jwks_hits(), 2);
    // Old and new keys both work without more fetches.
    guard.authenticate(&t2, AUDIENCE, ALL).await.unwrap();
    let mut c3 = c.clone();
    c3.jti = "jti-3".into();
    guard
        .authenticate(&token(&k1, &c3), AUDIENCE, ALL)
        .await
        .unwrap();
    assert_eq!(idp.jwks_hits(), 2);
}

#[tokio::test]
async fn unknown_kid_refetch_is_rate_limited() {
    let idp = MockIdp::start().await;
    let k1 = jwt_key();
    idp.publish(&k1);
    let guard = idp.guard(); // default min interval 10 s
    let c = claims(&idp.base, AUDIENCE, 300);
    guard
        .authenticate(&token(&k1, &c), AUDIENCE, ALL)
        .await
        .unwrap();
    let k2 = jwt_key();
    idp.publish(&k2);
    // Within the minimum interval: no refetch, the unknown kid is rejected.
    let err = guard
        .authenticate(&token(&k2, &c), AUDIENCE, ALL)
        .await
        .unwrap_err();
    assert_eq!(err, AuthError::Invalid);
    assert_eq!(idp.jwks_hits(), 1);
}

#[tokio::test]
async fn concurrent_unknown_kid_burst_fetches_once() {
    let idp = MockIdp::start().await;
    let k1 = jwt_key();
    idp.publish(&k1);
    let mut cfg = idp.config();
    cfg.key_refresh_min_interval = Duration::from_millis(100);
    let guard = Arc::new(Guard::new(cfg).unwrap());
    let c = claims(&idp.base, AUDIENCE, 300);
    guard
        .authenticate(&token(&k1, &c), AUDIENCE, ALL)
        .await
        .unwrap();
    assert_eq!(idp.jwks_hits(), 1);

    let k2 = jwt_key();
    idp.publish(&k2);
    *idp.state.key_delay.lock().unwrap() = Duration::from_millis(200);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let t2 = token(&k2, &c);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (g, t) = (guard.clone(), t2.clone());
        tasks.push(tokio::spawn(async move {
            g.authenticate(&t, AUDIENCE, ALL).await
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().is_ok());
    }
    assert_eq!(idp.jwks_hits(), 2, "one refetch for the whole burst");

    // A burst with a kid that never appears: still at most one fetch.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let stranger = jwt_key();
    let t3 = token(&stranger, &c);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (g, t) = (guard.clone(), t3.clone());
        tasks.push(tokio::spawn(async move {
            g.authenticate(&t, AUDIENCE, ALL).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Err(AuthError::Invalid));
    }
    assert_eq!(idp.jwks_hits(), 3);
}

#[tokio::test]
async fn verified_cache_hit_and_expiry() {
    let idp = MockIdp::start().await;
    let k = jwt_key();
    idp.publish(&k);
    let mut cfg = idp.config();
    cfg.leeway_secs = 0;
    let guard = Guard::new(cfg).unwrap();
    let c = claims(&idp.base, AUDIENCE, 2);
    let t = token(&k, &c);
    // Not verified yet: no answer without waiting.
    assert!(guard.authenticate_now(&t, AUDIENCE, ALL).is_none());
    guard.authenticate(&t, AUDIENCE, ALL).await.unwrap();
    assert_eq!(guard.cached_tokens(), 1);
    let p = guard.authenticate(&t, AUDIENCE, ALL).await.unwrap();
    assert_eq!(p.subject, "alice");
    assert_eq!(guard.cached_tokens(), 1);
    assert_eq!(idp.jwks_hits(), 1);
    // Cached: the answer without waiting is the same principal, shared.
    let now = guard.authenticate_now(&t, AUDIENCE, ALL).expect("cached");
    assert!(Arc::ptr_eq(&now.unwrap(), &p));
    // The cached entry still checks the audience, with or without waiting.
    assert_eq!(
        guard.authenticate(&t, "https://other.example", ALL).await,
        Err(AuthError::WrongAudience)
    );
    assert_eq!(
        guard.authenticate_now(&t, "https://other.example", ALL),
        Some(Err(AuthError::WrongAudience))
    );
    // The cached entry still checks the route's accepted kinds.
    let no_jwt = Accepted { jwt: false, ..ALL };
    assert_eq!(
        guard.authenticate(&t, AUDIENCE, no_jwt).await,
        Err(AuthError::NotAccepted)
    );
    assert_eq!(
        guard.authenticate_now(&t, AUDIENCE, no_jwt),
        Some(Err(AuthError::NotAccepted))
    );
    // Malformed input is decided without waiting too.
    assert_eq!(
        guard.authenticate_now("", AUDIENCE, ALL),
        Some(Err(AuthError::Missing))
    );
    assert_eq!(
        guard.authenticate_now("a b", AUDIENCE, ALL),
        Some(Err(AuthError::Malformed))
    );
    // After expiry: rejected, without any fetch.
    while common::now() < c.exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // An expired entry leaves the cache: only the full check answers.
    assert!(guard.authenticate_now(&t, AUDIENCE, ALL).is_none());
    assert_eq!(
        guard.authenticate(&t, AUDIENCE, ALL).await,
        Err(AuthError::Expired)
    );
    assert_eq!(idp.jwks_hits(), 1);
}

#[tokio::test]
async fn rejections() {
    let idp = MockIdp::start().await;
    let (k, pk) = (jwt_key(), paseto_key());
    idp.publish(&k);
    idp.publish(&pk);
    let guard = idp.guard();
    let c = claims(&idp.base, AUDIENCE, 300);

    // Wrong audience.
    let other = claims(&idp.base, "https://other.example", 300);
    assert_eq!(
        guard.authenticate(&token(&k, &other), AUDIENCE, ALL).await,
        Err(AuthError::WrongAudience)
    );
    assert_eq!(
        guard.authenticate(&token(&pk, &other), AUDIENCE, ALL).await,
        Err(AuthError::WrongAudience)
    );
    // Untrusted issuer (signed by a published key, still rejected without any fetch to it).
    let evil = claims("https://evil.example", AUDIENCE, 300);
    assert_eq!(
        guard.authenticate(&token(&k, &evil), AUDIENCE, ALL).await,
        Err(AuthError::UntrustedIssuer)
    );
    // Expired.
    let mut old = c.clone();
    old.iat -= 3600;
    old.nbf -= 3600;
    old.exp = common::now() - 600;
    assert_eq!(
        guard.authenticate(&token(&k, &old), AUDIENCE, ALL).await,
        Err(AuthError::Expired)
    );
    // Forged: signed by a key the IdP never published.
    let forger = jwt_key();
    assert_eq!(
        guard.authenticate(&token(&forger, &c), AUDIENCE, ALL).await,
        Err(AuthError::Invalid)
    );
    let forger_p = paseto_key();
    assert_eq!(
        guard
            .authenticate(&token(&forger_p, &c), AUDIENCE, ALL)
            .await,
        Err(AuthError::Invalid)
    );
    // Tampered payload under a genuine header and signature.
    let good = token(&k, &c);
    let parts: Vec<&str> = good.split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = "admin".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap()),
        parts[2]
    );
    assert_eq!(
        guard.authenticate(&tampered, AUDIENCE, ALL).await,
        Err(AuthError::Invalid)
    );
    // alg: none, naming a genuine kid.
    let header = serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": k.kid()});
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
        parts[1]
    );
    assert_eq!(
        guard.authenticate(&none, AUDIENCE, ALL).await,
        Err(AuthError::Invalid)
    );
    // A JWT naming the PASETO key's kid (algorithm pinned by the key).
    let header = serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": pk.kid()});
    let confused = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
        parts[1],
        parts[2]
    );
    assert_eq!(
        guard.authenticate(&confused, AUDIENCE, ALL).await,
        Err(AuthError::Invalid)
    );
    // None of these got cached or caused extra fetches beyond the rate limit.
    assert_eq!(guard.cached_tokens(), 0);
    assert_eq!(idp.jwks_hits(), 1);
}

#[tokio::test]
async fn bounded_inputs_and_not_accepted() {
    let idp = MockIdp::start().await;
    let (k, pk) = (jwt_key(), paseto_key());
    idp.publish(&k);
    idp.publish(&pk);
    let guard = idp.guard();
    let c = claims(&idp.base, AUDIENCE, 300);

    assert_eq!(
        guard.authenticate("", AUDIENCE, ALL).await,
        Err(AuthError::Missing)
    );
    let huge = "a".repeat(rampart_token::MAX_TOKEN_BYTES + 1);
    assert_eq!(
        guard.authenticate(&huge, AUDIENCE, ALL).await,
        Err(AuthError::Malformed)
    );
    assert_eq!(
        guard.authenticate("tökén", AUDIENCE, ALL).await,
        Err(AuthError::Malformed)
    );
    assert_eq!(
        guard.authenticate("abc def", AUDIENCE, ALL).await,
        Err(AuthError::Malformed)
    );

    let only_introspection = Accepted {
        jwt: false,
        paseto: false,
        introspection: true,
        api_key: false,
    };
    assert_eq!(
        guard
            .authenticate(&token(&k, &c), AUDIENCE, only_introspection)
            .await,
        Err(AuthError::NotAccepted)
    );
    assert_eq!(
        guard
            .authenticate(&token(&pk, &c), AUDIENCE, only_introspection)
            .await,
        Err(AuthError::NotAccepted)
    );
    let only_jwt = Accepted {
        jwt: true,
        paseto: false,
        introspection: false,
        api_key: false,
    };
    assert_eq!(
        guard.authenticate("opaque-token", AUDIENCE, only_jwt).await,
        Err(AuthError::NotAccepted)
    );
    assert_eq!(
        guard
            .authenticate(&token(&pk, &c), AUDIENCE, only_jwt)
            .await,
        Err(AuthError::NotAccepted)
    );
    // Nothing was fetched for refused kinds.
    assert_eq!(idp.jwks_hits(), 0);
    assert_eq!(idp.introspect_hits(), 0);
}

#[tokio::test]
async fn unreachable_key_endpoint_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut cfg = rampart_guard::GuardConfig::new(vec![IssuerConfig::new(base.clone())]);
    cfg.http_timeout = Duration::from_secs(2);
    let guard = Guard::new(cfg).unwrap();
    guard.prefetch().await; // logs, does not fail
    let k = jwt_key();
    let t = token(&k, &claims(&base, AUDIENCE, 300));
    assert_eq!(
        guard.authenticate(&t, AUDIENCE, ALL).await,
        Err(AuthError::Unavailable)
    );
}

#[tokio::test]
async fn keys_refetched_after_max_age_and_paserk_rotation() {
    let idp = MockIdp::start().await;
    let p1 = paseto_key();
    idp.publish(&p1);
    let mut cfg = idp.config();
    cfg.key_max_age = Duration::from_millis(300);
    cfg.key_refresh_min_interval = Duration::from_millis(100);
    let guard = Guard::new(cfg).unwrap();
    let c = claims(&idp.base, AUDIENCE, 300);
    guard
        .authenticate(&token(&p1, &c), AUDIENCE, ALL)
        .await
        .unwrap();
    assert_eq!(idp.paserk_hits(), 1);
    // A new v4.public key: its unknown kid triggers one refetch.
    let p2 = paseto_key();
    idp.publish(&p2);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let p = guard
        .authenticate(&token(&p2, &c), AUDIENCE, ALL)
        .await
        .unwrap();
    assert_eq!(p.method, AuthMethod::Paseto);
    assert_eq!(idp.paserk_hits(), 2);
    // Past the maximum age, keys are fetched again even for known kids.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let mut c2 = c.clone();
    c2.jti = "jti-2".into();
    guard
        .authenticate(&token(&p1, &c2), AUDIENCE, ALL)
        .await
        .unwrap();
    assert_eq!(idp.paserk_hits(), 3);
    assert_eq!(idp.jwks_hits(), 3);
}

#[tokio::test]
async fn readiness_and_keys_carried_over_to_a_new_guard() {
    let idp = MockIdp::start().await;
    let k = jwt_key();
    idp.publish(&k);
    let first = idp.guard();
    assert_eq!(first.issuers_without_keys(), vec![idp.base.clone()]);
    first.prefetch().await;
    assert!(first.issuers_without_keys().is_empty());
    assert_eq!(idp.jwks_hits(), 1);

    // A guard replacing it (a reload) takes the keys over: ready at once, no fetch.
    let second = idp.guard();
    assert_eq!(second.issuers_without_keys(), vec![idp.base.clone()]);
    assert!(!second.inherit_keys(&first, "https://other.test"));
    assert!(second.inherit_keys(&first, &idp.base));
    assert!(second.issuers_without_keys().is_empty());
    let t = token(&k, &claims(&idp.base, AUDIENCE, 300));
    assert!(second.authenticate(&t, AUDIENCE, ALL).await.is_ok());
    assert_eq!(idp.jwks_hits(), 1, "no fetch after inheriting");
    // Never over keys the new guard already has.
    assert!(!second.inherit_keys(&first, &idp.base));

    // Not from a guard fetching from other URLs.
    let mut other = idp.issuer_config();
    other.jwks_uri = Some(format!("{}/other-jwks.json", idp.base));
    let third = Guard::new(rampart_guard::GuardConfig::new(vec![other])).unwrap();
    assert!(!third.inherit_keys(&first, &idp.base));
    assert_eq!(third.issuers_without_keys(), vec![idp.base.clone()]);
}
