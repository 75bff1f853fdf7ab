//! Introspection of opaque and v4.local tokens against a mock IdP.

mod common;

use std::time::Duration;

use common::*;
use rampart_guard::{Accepted, AuthError, AuthMethod, Authenticator, Guard, IssuerConfig};
use rampart_token::{KeyKind, SigningKey};
use secrecy::SecretString;
use serde_json::json;

const INTROSPECTION: Accepted = Accepted {
    jwt: false,
    paseto: false,
    introspection: true,
    api_key: false,
};

fn active(idp: &MockIdp, aud: serde_json::Value, lifetime: i64) -> serde_json::Value {
    let now = common::now();
    json!({
        "active": true,
        "sub": "bob",
        "client_id": "svc",
        "scope": "orders:read orders:write",
        "aud": aud,
        "iss": idp.base,
        "exp": now + lifetime,
        "iat": now,
        "nbf": now,
        "jti": "op-1",
    })
}

#[tokio::test]
async fn active_token_gives_principal_and_is_cached() {
    let idp = MockIdp::start().await;
    let mut answer = active(&idp, json!([AUDIENCE, "https://b.example"]), 300);
    answer["roles"] = json!(["admin"]);
    answer["groups"] = json!(["eng", "ops"]);
    idp.answer("opaque-abc", answer.clone());
    let guard = idp.guard();
    let p = guard
        .authenticate("opaque-abc", AUDIENCE, INTROSPECTION)
        .await
        .unwrap();
    assert_eq!(p.method, AuthMethod::Introspection);
    assert_eq!(p.subject, "bob");
    assert_eq!(p.client_id.as_deref(), Some("svc"));
    assert_eq!(p.scopes, vec!["orders:read", "orders:write"]);
    assert_eq!(p.audiences, vec![AUDIENCE, "https://b.example"]);
    assert_eq!(p.issuer, idp.base);
    assert_eq!(Some(p.expires_at), answer["exp"].as_i64());
    assert_eq!(p.token_id.as_deref(), Some("op-1"));
    assert_eq!(p.roles, ["admin"]);
    assert_eq!(p.groups, ["eng", "ops"]);
    assert_eq!(idp.introspect_hits(), 1);
    // Cached: no second request, other listed audience fine, unlisted one refused.
    guard
        .authenticate("opaque-abc", "https://b.example", INTROSPECTION)
        .await
        .unwrap();
    assert_eq!(
        guard
            .authenticate("opaque-abc", "https://c.example", INTROSPECTION)
            .await,
        Err(AuthError::WrongAudience)
    );
    assert_eq!(idp.introspect_hits(), 1);
    assert_eq!(idp.jwks_hits(), 0);
}

#[tokio::test]
async fn v4_local_tokens_are_introspected() {
    let idp = MockIdp::start().await;
    let lk = SigningKey::generate(KeyKind::PasetoV4Local).unwrap();
    let t = token(&lk, &claims(&idp.base, AUDIENCE, 300));
    assert!(t.starts_with("v4.local."));
    idp.answer(&t, active(&idp, json!(AUDIENCE), 300));
    let guard = idp.guard();
    let p = guard
        .authenticate(&t, AUDIENCE, INTROSPECTION)
        .await
        .unwrap();
    assert_eq!(p.method, AuthMethod::Introspection);
    assert_eq!(p.audiences, vec![AUDIENCE]);
    assert_eq!(idp.introspect_hits(), 1);
}

#[tokio::test]
async fn positive_cache_respects_ttl() {
    let idp = MockIdp::start().await;
    idp.answer("opaque-ttl", active(&idp, json!(AUDIENCE), 300));
    let mut cfg = idp.config();
    cfg.introspection_ttl = Duration::from_millis(300);
    let guard = Guard::new(cfg).unwrap();
    guard
        .authenticate("opaque-ttl", AUDIENCE, INTROSPECTION)
        .await
        .unwrap();
    guard
        .authenticate("opaque-ttl", AUDIENCE, INTROSPECTION)
        .await
        .unwrap();
    assert_eq!(idp.introspect_hits(), 1);
    // Revoked at the IdP; after the TTL the guard asks again and denies.
    idp.answer("opaque-ttl", json!({"active": false}));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        guard
            .authenticate("opaque-ttl", AUDIENCE, INTROSPECTION)
            .await,
        Err(AuthError::Inactive)
    );
    assert_eq!(idp.introspect_hits(), 2);
}

#[tokio::test]
async fn inactive_is_cached_negatively() {
    let idp = MockIdp::start().await;
    let mut cfg = idp.config();
    cfg.negative_ttl = Duration::from_millis(500);
    let guard = Guard::new(cfg).unwrap();
    for _ in 0..3 {
        assert_eq!(
            guard
                .authenticate("revoked-token", AUDIENCE, INTROSPECTION)
                .await,
            Err(AuthError::Inactive)
        );
    }
    assert_eq!(idp.introspect_hits(), 1);
    // After the negative TTL the IdP is asked again (and now says active).
    idp.answer("revoked-token", active(&idp, json!(AUDIENCE), 300));
    tokio::time::sleep(Duration::from_millis(600)).await;
    guard
        .authenticate("revoked-token", AUDIENCE, INTROSPECTION)
        .await
        .unwrap();
    assert_eq!(idp.introspect_hits(), 2);
}

#[tokio::test]
async fn audience_issuer_and_expiry_checks() {
    let idp = MockIdp::start().await;
    idp.answer(
        "other-aud",
        active(&idp, json!("https://other.example"), 300),
    );
    idp.answer(
        "no-aud",
        json!({"active": true, "sub": "x", "exp": common::now() + 300}),
    );
    let mut wrong_iss = active(&idp, json!(AUDIENCE), 300);
    wrong_iss["iss"] = json!("https://evil.example");
    idp.answer("wrong-iss", wrong_iss);
    let mut no_exp = active(&idp, json!(AUDIENCE), 300);
    no_exp.as_object_mut().unwrap().remove("exp");
    idp.answer("no-exp", no_exp);
    idp.answer("expired", active(&idp, json!(AUDIENCE), -600));
    let guard = idp.guard();
    let cases = [
        ("other-aud", AuthError::WrongAudience),
        ("no-aud", AuthError::WrongAudience),
        ("wrong-iss", AuthError::UntrustedIssuer),
        ("no-exp", AuthError::Invalid),
        ("expired", AuthError::Expired),
    ];
    for (t, want) in cases {
        assert_eq!(
            guard.authenticate(t, AUDIENCE, INTROSPECTION).await,
            Err(want),
            "{t}"
        );
    }
}

#[tokio::test]
async fn introspection_server_down_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut ic = IssuerConfig::new(base.clone());
    ic.introspection_uri = Some(format!("{base}/introspect"));
    let guard = Guard::new(rampart_guard::GuardConfig::new(vec![ic])).unwrap();
    for _ in 0..2 {
        assert_eq!(
            guard.authenticate("opaque", AUDIENCE, INTROSPECTION).await,
            Err(AuthError::Unavailable)
        );
    }
}

#[tokio::test]
async fn introspection_uses_configured_basic_credentials() {
    let idp = MockIdp::start().await;
    idp.answer("opaque-auth", active(&idp, json!(AUDIENCE), 300));
    // Wrong secret: the mock refuses (401) and the guard fails closed.
    let mut ic = idp.issuer_config();
    ic.client_secret = Some(SecretString::from("wrong"));
    let guard = Guard::new(rampart_guard::GuardConfig::new(vec![ic])).unwrap();
    assert_eq!(
        guard
            .authenticate("opaque-auth", AUDIENCE, INTROSPECTION)
            .await,
        Err(AuthError::Unavailable)
    );
    // No credentials at all: same.
    let mut ic = idp.issuer_config();
    ic.client_id = None;
    ic.client_secret = None;
    let guard = Guard::new(rampart_guard::GuardConfig::new(vec![ic])).unwrap();
    assert_eq!(
        guard
            .authenticate("opaque-auth", AUDIENCE, INTROSPECTION)
            .await,
        Err(AuthError::Unavailable)
    );
    // The configured credentials: accepted.
    let guard = idp.guard();
    guard
        .authenticate("opaque-auth", AUDIENCE, INTROSPECTION)
        .await
        .unwrap();
    assert_eq!(idp.introspect_hits(), 3);
}

#[tokio::test]
async fn no_introspection_endpoint_denies() {
    let idp = MockIdp::start().await;
    let guard = Guard::new(rampart_guard::GuardConfig::new(vec![IssuerConfig::new(
        idp.base.clone(),
    )]))
    .unwrap();
    assert_eq!(
        guard.authenticate("opaque", AUDIENCE, INTROSPECTION).await,
        Err(AuthError::UntrustedIssuer)
    );
    assert_eq!(idp.introspect_hits(), 0);
}

#[tokio::test]
async fn api_keys_and_access_tokens_are_not_interchangeable() {
    let idp = MockIdp::start().await;
    let guard = idp.guard();
    let exp = common::now() + 300;
    let active = |token_type: &str| {
        json!({"active": true, "token_type": token_type, "sub": "svc", "client_id": "svc",
               "scope": "orders:read", "aud": AUDIENCE, "iss": idp.base, "exp": exp})
    };
    idp.answer("rk_key", active("api_key"));
    idp.answer("opaque-access-token", active("Bearer"));
    let api_key_only = Accepted {
        api_key: true,
        introspection: false,
        ..INTROSPECTION
    };

    // An API key is accepted where keys are, with the ApiKey method...
    let p = guard
        .authenticate("rk_key", AUDIENCE, api_key_only)
        .await
        .unwrap();
    assert_eq!(p.method, AuthMethod::ApiKey);
    // ...but not as a bearer token on an introspection route, even from the cache.
    assert_eq!(
        guard.authenticate("rk_key", AUDIENCE, INTROSPECTION).await,
        Err(AuthError::NotAccepted)
    );
    // An access token is not accepted in place of an API key.
    assert_eq!(
        guard
            .authenticate("opaque-access-token", AUDIENCE, api_key_only)
            .await,
        Err(AuthError::NotAccepted)
    );
    let p = guard
        .authenticate("opaque-access-token", AUDIENCE, INTROSPECTION)
        .await
        .unwrap();
    assert_eq!(p.method, AuthMethod::Introspection);
}
