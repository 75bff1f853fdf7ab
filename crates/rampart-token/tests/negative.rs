//! Negative cases: every one must be rejected with the expected error.

mod common;

use aws_lc_rs::encoding::AsDer;
use common::{NOW, b64u, b64u_dec, claims, ed25519_jws, hs256_jws, pem, validation};
use rampart_token::{
    JwtAlg, KeyKind, KeySet, MAX_TOKEN_BYTES, SigningKey, TokenError, issue, paseto, verify,
    verify_client_assertion,
};
use serde_json::json;

fn ed_setup() -> (SigningKey, KeySet) {
    let key = SigningKey::generate(KeyKind::Jwt(JwtAlg::EdDSA)).unwrap();
    let mut set = KeySet::new();
    set.insert(&key);
    (key, set)
}

fn claims_json() -> serde_json::Value {
    serde_json::to_value(claims()).unwrap()
}

fn err(token: &str, set: &KeySet) -> TokenError {
    verify(token, set, &validation()).unwrap_err()
}

#[test]
fn alg_none_is_rejected() {
    let (key, set) = ed_setup();
    let header = json!({ "alg": "none", "typ": "at+jwt", "kid": key.kid() });
    let token = format!(
        "{}.{}.",
        b64u(serde_json::to_vec(&header).unwrap()),
        b64u(serde_json::to_vec(&claims_json()).unwrap())
    );
    assert_eq!(err(&token, &set), TokenError::AlgorithmMismatch);
    // Also with a (bogus) signature part.
    assert_eq!(
        err(&format!("{token}AAAA"), &set),
        TokenError::AlgorithmMismatch
    );
}

#[test]
fn hs256_with_public_key_bytes_is_rejected() {
    let (key, set) = ed_setup();
    let raw_pk = b64u_dec(key.public_jwk().unwrap()["x"].as_str().unwrap());
    let header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": key.kid() });
    let token = hs256_jws(&raw_pk, &header, &claims_json());
    assert_eq!(err(&token, &set), TokenError::AlgorithmMismatch);
}

#[test]
fn hs256_with_public_key_pem_is_rejected() {
    let (key, set) = ed_setup();
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&key.secret_bytes()).unwrap();
    let spki = aws_lc_rs::signature::KeyPair::public_key(&pair)
        .as_der()
        .unwrap();
    let pem_text = pem("PUBLIC KEY", spki.as_ref());
    let header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": key.kid() });
    let token = hs256_jws(pem_text.as_bytes(), &header, &claims_json());
    assert_eq!(err(&token, &set), TokenError::AlgorithmMismatch);

    // Same with an RSA key and its SPKI PEM (the classic confusion).
    let rs = SigningKey::generate(KeyKind::Jwt(JwtAlg::RS256)).unwrap();
    let mut rset = KeySet::new();
    rset.insert(&rs);
    let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&rs.secret_bytes()).unwrap();
    let spki = aws_lc_rs::signature::KeyPair::public_key(&pair)
        .as_der()
        .unwrap();
    let pem_text = pem("PUBLIC KEY", spki.as_ref());
    let header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": rs.kid() });
    let token = hs256_jws(pem_text.as_bytes(), &header, &claims_json());
    assert_eq!(err(&token, &rset), TokenError::AlgorithmMismatch);
}

#[test]
fn alg_of_another_asymmetric_family_is_rejected() {
    let (key, set) = ed_setup();
    let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": key.kid() });
    let token = ed25519_jws(&key.secret_bytes(), &header, &claims_json());
    assert_eq!(err(&token, &set), TokenError::AlgorithmMismatch);
}

#[test]
fn unknown_kid_is_rejected() {
    let (key, _) = ed_setup();
    let (_, other_set) = ed_setup();
    let token = issue(&key, &claims()).unwrap();
    assert_eq!(err(&token, &other_set), TokenError::UnknownKey);
    // Missing kid on an access token.
    let (key, set) = ed_setup();
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt" });
    let token = ed25519_jws(&key.secret_bytes(), &header, &claims_json());
    assert_eq!(err(&token, &set), TokenError::UnknownKey);
}

#[test]
fn expired_is_rejected() {
    for kind in [
        KeyKind::Jwt(JwtAlg::EdDSA),
        KeyKind::PasetoV4Public,
        KeyKind::PasetoV4Local,
    ] {
        let key = SigningKey::generate(kind).unwrap();
        let mut set = KeySet::new();
        set.insert(&key);
        let mut c = claims();
        c.exp = NOW - 1;
        assert_eq!(
            err(&issue(&key, &c).unwrap(), &set),
            TokenError::Expired,
            "{kind}"
        );
        c.exp = NOW;
        assert_eq!(
            err(&issue(&key, &c).unwrap(), &set),
            TokenError::Expired,
            "{kind}"
        );
    }
}

#[test]
fn missing_exp_is_rejected() {
    let (key, set) = ed_setup();
    let mut payload = claims_json();
    payload.as_object_mut().unwrap().remove("exp");
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": key.kid() });
    let token = ed25519_jws(&key.secret_bytes(), &header, &payload);
    assert_eq!(err(&token, &set), TokenError::MissingClaim("exp"));
}

#[test]
fn nbf_in_future_is_rejected() {
    for kind in [KeyKind::Jwt(JwtAlg::ES256), KeyKind::PasetoV4Public] {
        let key = SigningKey::generate(kind).unwrap();
        let mut set = KeySet::new();
        set.insert(&key);
        let mut c = claims();
        c.nbf = NOW + 60;
        let token = issue(&key, &c).unwrap();
        assert_eq!(err(&token, &set), TokenError::NotYetValid, "{kind}");
        let mut v = validation();
        v.leeway_secs = 60;
        assert!(verify(&token, &set, &v).is_ok());
    }
}

#[test]
fn wrong_audience_is_rejected() {
    for kind in [KeyKind::Jwt(JwtAlg::EdDSA), KeyKind::PasetoV4Local] {
        let key = SigningKey::generate(kind).unwrap();
        let mut set = KeySet::new();
        set.insert(&key);
        let mut c = claims();
        c.aud = vec!["https://other.example.test".into()];
        assert_eq!(
            err(&issue(&key, &c).unwrap(), &set),
            TokenError::WrongAudience
        );
        c.aud = vec![];
        assert_eq!(
            err(&issue(&key, &c).unwrap(), &set),
            TokenError::WrongAudience
        );
    }
}

#[test]
fn wrong_issuer_is_rejected() {
    for kind in [KeyKind::Jwt(JwtAlg::RS256), KeyKind::PasetoV4Public] {
        let key = SigningKey::generate(kind).unwrap();
        let mut set = KeySet::new();
        set.insert(&key);
        let mut c = claims();
        c.iss = "https://evil.example.test".into();
        assert_eq!(
            err(&issue(&key, &c).unwrap(), &set),
            TokenError::WrongIssuer
        );
    }
}

#[test]
fn tampered_payload_is_rejected() {
    let (key, set) = ed_setup();
    let token = issue(&key, &claims()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut c = claims_json();
    c["sub"] = "admin".into();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64u(serde_json::to_vec(&c).unwrap()),
        parts[2]
    );
    assert_eq!(err(&forged, &set), TokenError::BadSignature);

    // PASETO v4.public: flip a payload byte.
    let pkey = SigningKey::generate(KeyKind::PasetoV4Public).unwrap();
    let mut pset = KeySet::new();
    pset.insert(&pkey);
    let token = issue(&pkey, &claims()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut raw = b64u_dec(parts[2]);
    raw[5] ^= 1;
    let forged = format!("v4.public.{}.{}", b64u(&raw), parts[3]);
    assert_eq!(err(&forged, &pset), TokenError::BadSignature);

    // PASETO v4.local: flip a ciphertext byte.
    let lkey = SigningKey::generate(KeyKind::PasetoV4Local).unwrap();
    let mut lset = KeySet::new();
    lset.insert(&lkey);
    let token = issue(&lkey, &claims()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut raw = b64u_dec(parts[2]);
    raw[40] ^= 1;
    let forged = format!("v4.local.{}.{}", b64u(&raw), parts[3]);
    assert_eq!(err(&forged, &lset), TokenError::BadSignature);
}

#[test]
fn truncated_tokens_are_rejected() {
    for kind in [
        KeyKind::Jwt(JwtAlg::EdDSA),
        KeyKind::PasetoV4Public,
        KeyKind::PasetoV4Local,
    ] {
        let key = SigningKey::generate(kind).unwrap();
        let mut set = KeySet::new();
        set.insert(&key);
        let token = issue(&key, &claims()).unwrap();
        for cut in [1, 5, 20, token.len() / 2, token.len() - 1] {
            assert!(
                verify(&token[..token.len() - cut], &set, &validation()).is_err(),
                "{kind} {cut}"
            );
        }
    }
}

#[test]
fn other_paseto_versions_and_purposes_are_unsupported() {
    let set = KeySet::new();
    for t in [
        "v3.public.AAAA.e30",
        "v2.local.AAAA",
        "v1.local.AAAA",
        "v4.secret.AAAA",
        "v4.PUBLIC.AAAA",
        "v5.public.AAAA",
        "k4.public.AAAA",
    ] {
        assert_eq!(err(t, &set), TokenError::UnsupportedFormat, "{t}");
    }
}

#[test]
fn paseto_local_token_against_public_key_kid_is_rejected() {
    // A v4.local token whose footer names a v4.public key of the set: the key
    // pins the format, so the public key must never be used as a local key.
    let pkey = SigningKey::generate(KeyKind::PasetoV4Public).unwrap();
    let mut set = KeySet::new();
    set.insert(&pkey);
    let payload = serde_json::to_vec(&json!({
        "iss": common::ISS, "sub": "x", "aud": "https://api.example.test",
        "exp": "2030-01-01T00:00:00+00:00", "iat": "2026-01-01T00:00:00+00:00",
        "jti": "j", "client_id": "c"
    }))
    .unwrap();
    let footer = serde_json::to_vec(&json!({ "kid": pkey.kid() })).unwrap();
    // The attacker even uses the public key bytes as the symmetric key.
    let pk_bytes = &pkey.secret_bytes()[32..];
    let token = paseto::encrypt_v4_local(pk_bytes, &payload, &footer, b"").unwrap();
    assert_eq!(err(&token, &set), TokenError::AlgorithmMismatch);
}

#[test]
fn paseto_public_token_against_local_key_kid_is_rejected() {
    let lkey = SigningKey::generate(KeyKind::PasetoV4Local).unwrap();
    let mut set = KeySet::new();
    set.insert(&lkey);
    let signer = SigningKey::generate(KeyKind::PasetoV4Public).unwrap();
    let footer = serde_json::to_vec(&json!({ "kid": lkey.kid() })).unwrap();
    let token = paseto::sign_v4_public(&signer.secret_bytes(), b"{\"a\":1}", &footer, b"").unwrap();
    assert_eq!(err(&token, &set), TokenError::AlgorithmMismatch);
    // And a JWT key's kid named by a PASETO footer.
    let (jkey, jset) = ed_setup();
    let footer = serde_json::to_vec(&json!({ "kid": jkey.kid() })).unwrap();
    let token = paseto::sign_v4_public(&signer.secret_bytes(), b"{\"a\":1}", &footer, b"").unwrap();
    assert_eq!(err(&token, &jset), TokenError::AlgorithmMismatch);
}

#[test]
fn paseto_footer_must_be_kid_json() {
    let pkey = SigningKey::generate(KeyKind::PasetoV4Public).unwrap();
    let mut set = KeySet::new();
    set.insert(&pkey);
    let sk = pkey.secret_bytes();
    let no_footer = paseto::sign_v4_public(&sk, b"{}", b"", b"").unwrap();
    assert_eq!(err(&no_footer, &set), TokenError::UnknownKey);
    let not_json = paseto::sign_v4_public(&sk, b"{}", b"kid", b"").unwrap();
    assert_eq!(err(&not_json, &set), TokenError::Malformed);
    let extra = format!(r#"{{"kid":"{}","wpk":"x"}}"#, pkey.kid());
    let extra = paseto::sign_v4_public(&sk, b"{}", extra.as_bytes(), b"").unwrap();
    assert_eq!(err(&extra, &set), TokenError::Malformed);
}

#[test]
fn oversized_token_is_too_large() {
    let (key, set) = ed_setup();
    let token = issue(&key, &claims()).unwrap();
    let big = format!("{token}{}", "A".repeat(MAX_TOKEN_BYTES));
    assert_eq!(err(&big, &set), TokenError::TooLarge);
    assert_eq!(
        err(&"x".repeat(MAX_TOKEN_BYTES + 1), &set),
        TokenError::TooLarge
    );
    assert_eq!(
        err(&format!("v4.public.{}", "A".repeat(MAX_TOKEN_BYTES)), &set),
        TokenError::TooLarge
    );
    // Issuing refuses to produce a token that could not be verified.
    let mut c = claims();
    c.scope = Some("s ".repeat(MAX_TOKEN_BYTES));
    assert_eq!(issue(&key, &c).unwrap_err(), TokenError::TooLarge);
}

#[test]
fn garbage_is_rejected_without_panic() {
    let (_, set) = ed_setup();
    for t in [
        "",
        ".",
        "..",
        "...",
        "a.b.c",
        "a.b",
        "not a token",
        "eyJ.eyJ.",
        "e30.e30.",
        "W10.e30.AA",
        "bnVsbA.e30.AA",
        "v4.public.",
        "v4.local.",
        "v4.public.!!!",
        "v4.local.AAAA.AAAA",
        "v4.public.AAAA.AAAA.AAAA",
        "\u{0}\u{1}",
        "ééé.ééé.ééé",
        "eyJhbGciOiJFZERTQSJ9.%%%.AA",
    ] {
        assert!(verify(t, &set, &validation()).is_err(), "{t:?}");
    }
}

#[test]
fn crit_header_is_rejected() {
    let (key, set) = ed_setup();
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": key.kid(), "crit": ["exp"] });
    let token = ed25519_jws(&key.secret_bytes(), &header, &claims_json());
    assert_eq!(err(&token, &set), TokenError::CriticalHeader);
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": key.kid(), "crit": [] });
    let token = ed25519_jws(&key.secret_bytes(), &header, &claims_json());
    assert_eq!(err(&token, &set), TokenError::CriticalHeader);
}

#[test]
fn wrong_typ_on_access_token_is_rejected() {
    let (key, set) = ed_setup();
    for typ in [Some("JWT"), Some("jwt"), Some("at+jwt2"), None] {
        let mut header = json!({ "alg": "EdDSA", "kid": key.kid() });
        if let Some(t) = typ {
            header["typ"] = t.into();
        }
        let token = ed25519_jws(&key.secret_bytes(), &header, &claims_json());
        assert_eq!(err(&token, &set), TokenError::WrongType, "{typ:?}");
    }
    // Accepted spellings.
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
        let header = json!({ "alg": "EdDSA", "kid": key.kid(), "typ": typ });
        let token = ed25519_jws(&key.secret_bytes(), &header, &claims_json());
        assert!(verify(&token, &set, &validation()).is_ok(), "{typ}");
    }
}

#[test]
fn small_rsa_key_is_rejected_on_import() {
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(common::RSA1024_PKCS8_B64)
        .unwrap();
    let e = SigningKey::from_secret_bytes(KeyKind::Jwt(JwtAlg::RS256), &der).unwrap_err();
    assert!(matches!(e, TokenError::Key(_)));
    // And a 1024-bit public JWK is skipped by from_jwks.
    let rs = SigningKey::generate(KeyKind::Jwt(JwtAlg::RS256)).unwrap();
    let mut jwk = rs.public_jwk().unwrap();
    let n = b64u_dec(jwk["n"].as_str().unwrap());
    jwk["n"] = b64u(&n[..128]).into();
    let set = KeySet::from_jwks(&serde_json::to_vec(&json!({ "keys": [jwk] })).unwrap()).unwrap();
    assert!(set.is_empty());
}

#[test]
fn debug_of_signing_key_has_no_key_bytes() {
    for kind in [
        KeyKind::Jwt(JwtAlg::EdDSA),
        KeyKind::Jwt(JwtAlg::ES256),
        KeyKind::PasetoV4Public,
        KeyKind::PasetoV4Local,
    ] {
        let key = SigningKey::generate(kind).unwrap();
        let dbg = format!("{key:?} {:#?}", key);
        assert!(dbg.contains(key.kid()));
        let secret = key.secret_bytes();
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!dbg.to_lowercase().contains(&hex[hex.len() - 16..]));
        assert!(!dbg.contains(&b64u(&secret[secret.len() - 12..])));
        assert!(!dbg.contains(&common::b64std(&secret[secret.len() - 12..])));
        // Decimal byte lists (derived Debug of Vec<u8>) would show commas.
        let list = format!("{:?}", &secret[secret.len() - 4..]);
        assert!(!dbg.contains(&list[1..list.len() - 1]));
        let set_dbg = {
            let mut s = KeySet::new();
            s.insert(&key);
            format!("{s:?}")
        };
        assert!(!set_dbg.contains(&hex[hex.len() - 16..]));
    }
}

type Mutation = Box<dyn Fn(&mut serde_json::Value)>;

fn assertion_setup() -> (SigningKey, KeySet, Vec<String>) {
    let (key, set) = ed_setup();
    (key, set, vec!["https://auth.example.test/token".to_owned()])
}

fn assertion(
    key: &SigningKey,
    header: serde_json::Value,
    mut f: impl FnMut(&mut serde_json::Value),
) -> String {
    let mut payload = json!({
        "iss": "client-a", "sub": "client-a", "aud": "https://auth.example.test/token",
        "exp": NOW + 60, "iat": NOW, "jti": "assert-1"
    });
    f(&mut payload);
    ed25519_jws(&key.secret_bytes(), &header, &payload)
}

#[test]
fn client_assertion_checks() {
    let (key, set, auds) = assertion_setup();
    let ok_header = json!({ "alg": "EdDSA", "kid": key.kid() });
    let check = |t: &str| verify_client_assertion(t, &set, "client-a", &auds, 300, Some(NOW));

    let c = check(&assertion(&key, ok_header.clone(), |_| {})).unwrap();
    assert_eq!(c.jti, "assert-1");
    assert_eq!(c.aud, auds);
    // No kid, single key: accepted.
    assert!(check(&assertion(&key, json!({ "alg": "EdDSA" }), |_| {})).is_ok());
    // typ JWT is fine, at+jwt is not.
    assert!(
        check(&assertion(
            &key,
            json!({ "alg": "EdDSA", "typ": "JWT" }),
            |_| {}
        ))
        .is_ok()
    );
    let at = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": key.kid() });
    assert_eq!(
        check(&assertion(&key, at, |_| {})).unwrap_err(),
        TokenError::WrongType
    );
    let crit = json!({ "alg": "EdDSA", "kid": key.kid(), "crit": ["b64"] });
    assert_eq!(
        check(&assertion(&key, crit, |_| {})).unwrap_err(),
        TokenError::CriticalHeader
    );
    let none = json!({ "alg": "none", "kid": key.kid() });
    assert_eq!(
        check(&assertion(&key, none, |_| {})).unwrap_err(),
        TokenError::AlgorithmMismatch
    );

    let cases: Vec<(Mutation, TokenError)> = vec![
        (
            Box::new(|p| p["iss"] = "client-b".into()),
            TokenError::WrongIssuer,
        ),
        (
            Box::new(|p| p["sub"] = "client-b".into()),
            TokenError::WrongIssuer,
        ),
        (
            Box::new(|p| p["aud"] = json!(["https://x.test"])),
            TokenError::WrongAudience,
        ),
        (
            Box::new(|p| p["exp"] = (NOW - 31).into()),
            TokenError::Expired,
        ),
        (
            Box::new(|p| p["exp"] = (NOW + 3600).into()),
            TokenError::LifetimeTooLong,
        ),
        (
            Box::new(|p| p["nbf"] = (NOW + 120).into()),
            TokenError::NotYetValid,
        ),
        (
            Box::new(|p| p["jti"] = "".into()),
            TokenError::MissingClaim("jti"),
        ),
        (
            Box::new(|p| p["jti"] = "j".repeat(257).into()),
            TokenError::Malformed,
        ),
        (
            Box::new(|p| {
                p.as_object_mut().unwrap().remove("exp");
            }),
            TokenError::MissingClaim("exp"),
        ),
    ];
    for (i, (f, want)) in cases.into_iter().enumerate() {
        let t = assertion(&key, ok_header.clone(), f);
        assert_eq!(check(&t).unwrap_err(), want, "case {i}");
    }
    // Leeway: expired 10 s ago is still within the 30 s leeway.
    assert!(check(&assertion(&key, ok_header.clone(), |p| p["exp"] = (NOW - 10).into())).is_ok());

    // Two keys and no kid: ambiguous.
    let (other, _) = ed_setup();
    let mut two = set.clone();
    two.insert(&other);
    let t = assertion(&key, json!({ "alg": "EdDSA" }), |_| {});
    assert_eq!(
        verify_client_assertion(&t, &two, "client-a", &auds, 300, Some(NOW)).unwrap_err(),
        TokenError::UnknownKey
    );
    // Signed by another key with our kid.
    let t = assertion(&other, ok_header, |_| {});
    assert_eq!(check(&t).unwrap_err(), TokenError::BadSignature);
}
