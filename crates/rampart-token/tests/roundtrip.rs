//! Issue / verify round trips, key persistence and published documents.

mod common;

use common::{NOW, claims, validation};
use rampart_token::{
    AudienceCheck, JwtAlg, KeyKind, KeySet, SigningKey, TokenError, TokenFormat, issue,
    jwks_document, paserk_document, peek_format, verify,
};

const ALL: [KeyKind; 5] = [
    KeyKind::Jwt(JwtAlg::EdDSA),
    KeyKind::Jwt(JwtAlg::ES256),
    KeyKind::Jwt(JwtAlg::RS256),
    KeyKind::PasetoV4Public,
    KeyKind::PasetoV4Local,
];

#[test]
fn issue_and_verify_every_kind() {
    for kind in ALL {
        let key = SigningKey::generate(kind).unwrap();
        let mut set = KeySet::new();
        set.insert(&key);
        let token = issue(&key, &claims()).unwrap();
        assert_eq!(peek_format(&token), Some(kind.token_format()), "{kind}");
        let v = verify(&token, &set, &validation()).unwrap();
        assert_eq!(v.claims(), &claims(), "{kind}");
        assert_eq!(v.format(), kind.token_format());
        assert_eq!(v.kid(), key.kid());
        assert_eq!(v.into_claims(), claims());
        // Audience "Any" (introspection) also accepts it.
        let mut any = validation();
        any.audience = AudienceCheck::Any;
        assert!(verify(&token, &set, &any).is_ok());
    }
}

#[test]
fn token_encodings_follow_profiles() {
    let jwt_key = SigningKey::generate(KeyKind::Jwt(JwtAlg::EdDSA)).unwrap();
    let token = issue(&jwt_key, &claims()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let header: serde_json::Value = serde_json::from_slice(&common::b64u_dec(parts[0])).unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], jwt_key.kid());
    let payload: serde_json::Value = serde_json::from_slice(&common::b64u_dec(parts[1])).unwrap();
    assert_eq!(payload["exp"], NOW + 300);
    assert_eq!(payload["aud"], "https://api.example.test");

    let pkey = SigningKey::generate(KeyKind::PasetoV4Public).unwrap();
    let token = issue(&pkey, &claims()).unwrap();
    assert!(token.starts_with("v4.public."));
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 4);
    let footer: serde_json::Value = serde_json::from_slice(&common::b64u_dec(parts[3])).unwrap();
    assert_eq!(footer, serde_json::json!({ "kid": pkey.kid() }));
    assert!(pkey.kid().starts_with("k4.pid."));
    let raw = common::b64u_dec(parts[2]);
    let payload: serde_json::Value = serde_json::from_slice(&raw[..raw.len() - 64]).unwrap();
    assert_eq!(payload["exp"], "2026-11-25T15:05:00+00:00");
    assert_eq!(payload["iat"], "2026-11-25T14:59:50+00:00");

    let lkey = SigningKey::generate(KeyKind::PasetoV4Local).unwrap();
    assert!(lkey.kid().starts_with("k4.lid."));
    assert!(issue(&lkey, &claims()).unwrap().starts_with("v4.local."));
}

#[test]
fn secret_bytes_round_trip_keeps_kid() {
    for kind in ALL {
        let key = SigningKey::generate(kind).unwrap();
        let again = SigningKey::from_secret_bytes(kind, &key.secret_bytes()).unwrap();
        assert_eq!(again.kid(), key.kid(), "{kind}");
        assert_eq!(again.kind(), kind);
        // A token from the re-imported key verifies with the original's set.
        let mut set = KeySet::new();
        set.insert(&key);
        let token = issue(&again, &claims()).unwrap();
        assert!(verify(&token, &set, &validation()).is_ok(), "{kind}");
        assert_eq!(KeyKind::parse(kind.as_str()).unwrap(), kind);
    }
    assert_eq!(
        SigningKey::generate(KeyKind::PasetoV4Public)
            .unwrap()
            .secret_bytes()
            .len(),
        64
    );
    assert_eq!(
        SigningKey::generate(KeyKind::PasetoV4Local)
            .unwrap()
            .secret_bytes()
            .len(),
        32
    );
    assert!(KeyKind::parse("jwt-HS256").is_err());
    // Wrong kind for the bytes.
    let ed = SigningKey::generate(KeyKind::Jwt(JwtAlg::EdDSA)).unwrap();
    assert!(
        SigningKey::from_secret_bytes(KeyKind::Jwt(JwtAlg::ES256), &ed.secret_bytes()).is_err()
    );
    assert!(
        SigningKey::from_secret_bytes(KeyKind::Jwt(JwtAlg::RS256), &ed.secret_bytes()).is_err()
    );
}

#[test]
fn jwks_document_round_trip() {
    let keys: Vec<SigningKey> = ALL
        .iter()
        .map(|k| SigningKey::generate(*k).unwrap())
        .collect();
    let doc = jwks_document(&keys);
    let arr = doc["keys"].as_array().unwrap();
    assert_eq!(arr.len(), 3, "PASETO keys are not in the JWKS");
    for jwk in arr {
        assert_eq!(jwk["use"], "sig");
        assert!(jwk.get("d").is_none());
    }
    assert_eq!(arr[1]["kty"], "EC");
    assert_eq!(arr[2]["kty"], "RSA");
    assert_eq!(arr[2]["e"], "AQAB");
    let set = KeySet::from_jwks(&serde_json::to_vec(&doc).unwrap()).unwrap();
    assert_eq!(set.len(), 3);
    for key in &keys[..3] {
        assert!(set.contains(key.kid()));
        let token = issue(key, &claims()).unwrap();
        assert!(
            verify(&token, &set, &validation()).is_ok(),
            "{:?}",
            key.kind()
        );
    }
    // The kid is the RFC 7638 thumbprint: recompute it for the EC key.
    let ec = &arr[1];
    let canon = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        ec["x"].as_str().unwrap(),
        ec["y"].as_str().unwrap()
    );
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canon.as_bytes());
    assert_eq!(ec["kid"], common::b64u(digest.as_ref()));
}

#[test]
fn jwks_inference_and_skipping() {
    let ed = SigningKey::generate(KeyKind::Jwt(JwtAlg::EdDSA)).unwrap();
    let rs = SigningKey::generate(KeyKind::Jwt(JwtAlg::RS256)).unwrap();
    let mut no_alg = ed.public_jwk().unwrap();
    no_alg.as_object_mut().unwrap().remove("alg");
    no_alg.as_object_mut().unwrap().remove("use");
    let mut enc = rs.public_jwk().unwrap();
    enc["use"] = "enc".into();
    let mut no_kid = rs.public_jwk().unwrap();
    no_kid.as_object_mut().unwrap().remove("kid");
    let mut wrong_alg = rs.public_jwk().unwrap();
    wrong_alg["alg"] = "HS256".into();
    wrong_alg["kid"] = "other".into();
    let oct = serde_json::json!({ "kty": "oct", "k": "c2VjcmV0", "kid": "hmac" });
    let doc = serde_json::json!({ "keys": [no_alg, enc, no_kid, wrong_alg, oct] });
    let set = KeySet::from_jwks(&serde_json::to_vec(&doc).unwrap()).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set.kind_of(ed.kid()), Some(KeyKind::Jwt(JwtAlg::EdDSA)));
    assert!(verify(&issue(&ed, &claims()).unwrap(), &set, &validation()).is_ok());
    assert_eq!(
        verify(&issue(&rs, &claims()).unwrap(), &set, &validation()).unwrap_err(),
        TokenError::UnknownKey
    );
}

#[test]
fn jwks_bounds() {
    let ed = SigningKey::generate(KeyKind::Jwt(JwtAlg::EdDSA)).unwrap();
    let jwk = ed.public_jwk().unwrap();
    let many: Vec<_> = (0..65)
        .map(|i| {
            let mut j = jwk.clone();
            j["kid"] = format!("k{i}").into();
            j
        })
        .collect();
    let doc = serde_json::to_vec(&serde_json::json!({ "keys": many })).unwrap();
    assert_eq!(KeySet::from_jwks(&doc).unwrap_err(), TokenError::TooLarge);
    let big = vec![b' '; 64 * 1024 + 1];
    assert_eq!(KeySet::from_jwks(&big).unwrap_err(), TokenError::TooLarge);
    assert_eq!(
        KeySet::from_jwks(b"[1,2]").unwrap_err(),
        TokenError::Malformed
    );
    let dup = serde_json::to_vec(&serde_json::json!({ "keys": [jwk.clone(), jwk] })).unwrap();
    assert_eq!(KeySet::from_jwks(&dup).unwrap_err(), TokenError::Malformed);
}

#[test]
fn paserk_document_round_trip() {
    let keys: Vec<SigningKey> = ALL
        .iter()
        .map(|k| SigningKey::generate(*k).unwrap())
        .collect();
    let doc = paserk_document(&keys);
    let arr = doc["keys"].as_array().unwrap();
    assert_eq!(arr.len(), 1, "only v4.public keys");
    let mut set = KeySet::new();
    set.insert_paserk_public(
        arr[0]["kid"].as_str().unwrap(),
        arr[0]["paserk"].as_str().unwrap(),
    )
    .unwrap();
    let token = issue(&keys[3], &claims()).unwrap();
    let v = verify(&token, &set, &validation()).unwrap();
    assert_eq!(v.format(), TokenFormat::PasetoV4Public);
    assert!(keys[3].public_paserk().unwrap().starts_with("k4.public."));
    assert!(keys[0].public_paserk().is_none());
    assert!(keys[4].public_jwk().is_none());
}

#[test]
fn leeway_and_aud_arrays() {
    let key = SigningKey::generate(KeyKind::Jwt(JwtAlg::ES256)).unwrap();
    let mut set = KeySet::new();
    set.insert(&key);
    let mut c = claims();
    c.exp = NOW - 5;
    c.aud = vec!["other".into(), "https://api.example.test".into()];
    let token = issue(&key, &c).unwrap();
    assert_eq!(
        verify(&token, &set, &validation()).unwrap_err(),
        TokenError::Expired
    );
    let mut v = validation();
    v.leeway_secs = 10;
    assert_eq!(verify(&token, &set, &v).unwrap().claims().aud.len(), 2);
}
