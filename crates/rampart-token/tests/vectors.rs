//! Official PASETO v4 / PASERK vectors and the RFC 8037 Ed25519 JWS vector.

mod common;

use common::{b64u, hex};
use rampart_token::{
    JwtAlg, KeyKind, KeySet, SigningKey, TokenError, paseto, verify, verify_jws_signature,
};
use serde_json::Value;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors");

fn load(rel: &str) -> Value {
    let path = format!("{VECTORS}/{rel}");
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_slice(&data).expect("json")
}

fn s<'a>(t: &'a Value, k: &str) -> &'a str {
    t[k].as_str().unwrap_or("")
}

#[test]
fn paseto_v4_official_vectors() {
    let doc = load("paseto/v4.json");
    let tests = doc["tests"].as_array().expect("tests");
    let (mut enc, mut sig, mut fail) = (0, 0, 0);
    for t in tests {
        let name = s(t, "name");
        let token = s(t, "token");
        let footer = s(t, "footer").as_bytes();
        let implicit = s(t, "implicit-assertion").as_bytes();
        if t["expect-fail"].as_bool() == Some(true) {
            fail += 1;
            // "key" is a symmetric key: try it as both local key and (raw
            // bytes) public key. "public-key" is only ever a public key: the
            // key-type confusion of 4-F-1 (public key used as a local key) is
            // prevented by the typed KeySet, see tests/negative.rs.
            let mut attempts = 0;
            if !s(t, "key").is_empty() {
                let key = hex(s(t, "key"));
                attempts += 1;
                assert!(
                    paseto::decrypt_v4_local(&key, token, footer, implicit).is_err(),
                    "{name} must fail (local)"
                );
                assert!(
                    paseto::verify_v4_public(&key, token, footer, implicit).is_err(),
                    "{name} must fail (public, symmetric key bytes)"
                );
            }
            if !s(t, "public-key").is_empty() {
                let pk = hex(s(t, "public-key"));
                attempts += 1;
                assert!(
                    paseto::verify_v4_public(&pk, token, footer, implicit).is_err(),
                    "{name} must fail (public)"
                );
            }
            assert!(attempts > 0, "{name}: no key");
            continue;
        }
        let payload = s(t, "payload").as_bytes();
        if name.starts_with("4-E-") {
            enc += 1;
            let out = paseto::decrypt_v4_local(&hex(s(t, "key")), token, footer, implicit)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(out, payload, "{name}");
            // Wrong implicit assertion must fail.
            assert!(paseto::decrypt_v4_local(&hex(s(t, "key")), token, footer, b"x").is_err());
        } else if name.starts_with("4-S-") {
            sig += 1;
            let sk = hex(s(t, "secret-key"));
            let pk = hex(s(t, "public-key"));
            let signed = paseto::sign_v4_public(&sk, payload, footer, implicit).unwrap();
            assert_eq!(signed, token, "{name}: Ed25519 is deterministic");
            let out = paseto::verify_v4_public(&pk, token, footer, implicit).unwrap();
            assert_eq!(out, payload, "{name}");
            assert!(paseto::verify_v4_public(&pk, token, b"{}", implicit).is_err());
        } else {
            panic!("unexpected vector {name}");
        }
    }
    assert_eq!((enc, sig), (9, 3));
    assert!(fail >= 5);
}

#[test]
fn older_paseto_versions_are_unsupported() {
    let mut n = 0;
    for file in ["paseto/v2.json", "paseto/v3.json", "paseto/v1.json"] {
        let doc = load(file);
        for t in doc["tests"].as_array().unwrap() {
            let token = s(t, "token");
            if ["v1.", "v2.", "v3."].iter().any(|p| token.starts_with(p)) {
                n += 1;
                let err = verify(token, &KeySet::new(), &common::validation()).unwrap_err();
                assert_eq!(err, TokenError::UnsupportedFormat, "{}", s(t, "name"));
            }
        }
    }
    assert!(n > 20, "only {n} tokens");
}

#[test]
fn paserk_k4_vectors() {
    for (file, f) in [
        (
            "paseto/PASERK/k4.pid.json",
            paseto::paserk_pid as fn(&[u8]) -> _,
        ),
        ("paseto/PASERK/k4.lid.json", paseto::paserk_lid),
        ("paseto/PASERK/k4.public.json", paseto::paserk_public),
    ] {
        let doc = load(file);
        for t in doc["tests"].as_array().unwrap() {
            let name = s(t, "name");
            let key = hex(s(t, "key"));
            let got = f(&key);
            if t["expect-fail"].as_bool() == Some(true) {
                assert!(got.is_err(), "{name} must fail");
            } else {
                assert_eq!(got.unwrap(), s(t, "paserk"), "{name}");
            }
        }
    }
    // SigningKey kids use the same derivation.
    let doc = load("paseto/PASERK/k4.lid.json");
    for t in doc["tests"].as_array().unwrap() {
        if t["expect-fail"].as_bool() == Some(true) {
            continue;
        }
        let k = SigningKey::from_secret_bytes(KeyKind::PasetoV4Local, &hex(s(t, "key"))).unwrap();
        assert_eq!(k.kid(), s(t, "paserk"));
    }
    // 4-S key: kid is k4.pid of its public key, public_paserk its k4.public.
    let v4 = load("paseto/v4.json");
    let t = &v4["tests"].as_array().unwrap()[9];
    assert_eq!(s(t, "name"), "4-S-1");
    let k =
        SigningKey::from_secret_bytes(KeyKind::PasetoV4Public, &hex(s(t, "secret-key"))).unwrap();
    let pk = hex(s(t, "public-key"));
    assert_eq!(k.kid(), paseto::paserk_pid(&pk).unwrap());
    assert_eq!(
        k.public_paserk().unwrap(),
        paseto::paserk_public(&pk).unwrap()
    );
    assert_eq!(
        k.secret_bytes().as_slice(),
        hex(s(t, "secret-key")).as_slice()
    );
    // insert_paserk_public checks kid against the key (pid-2 / public-2 share a key).
    let mut set = KeySet::new();
    set.insert_paserk_public(
        "k4.pid.9ShR3xc8-qVJ_di0tc9nx0IDIqbatdeM2mqLFBJsKRHs",
        "k4.public.cHFyc3R1dnd4eXp7fH1-f4CBgoOEhYaHiImKi4yNjo8",
    )
    .unwrap();
    assert!(set.contains("k4.pid.9ShR3xc8-qVJ_di0tc9nx0IDIqbatdeM2mqLFBJsKRHs"));
    assert!(matches!(
        set.insert_paserk_public(
            "k4.pid.S_XQmeEwHbbvRmiyfXfHYpLGjXGzjTRSDoT1YtTakWFE",
            "k4.public.cHFyc3R1dnd4eXp7fH1-f4CBgoOEhYaHiImKi4yNjo8",
        ),
        Err(TokenError::Key(_))
    ));
    assert_eq!(set.len(), 1);
}

#[test]
fn rfc8037_ed25519_jws() {
    let doc = load("jose/rfc8037_ed25519_jws.json");
    let thumbprint = s(&doc, "A.3_thumbprint_sha256");

    // Our kid derivation (RFC 7638) matches the RFC's thumbprint.
    let d = common::b64u_dec(s(&doc["A.1_private_jwk"], "d"));
    let x = common::b64u_dec(s(&doc["A.1_private_jwk"], "x"));
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_and_public_key(&d, &x).unwrap();
    let pkcs8 = pair.to_pkcs8().unwrap();
    let key = SigningKey::from_secret_bytes(KeyKind::Jwt(JwtAlg::EdDSA), pkcs8.as_ref()).unwrap();
    assert_eq!(key.kid(), thumbprint);
    assert_eq!(key.public_jwk().unwrap()["x"], doc["A.2_public_jwk"]["x"]);

    // The public JWK (plus a kid) through from_jwks, then the JWS path.
    let mut jwk = doc["A.2_public_jwk"].clone();
    jwk["kid"] = Value::from(thumbprint);
    let jwks = serde_json::to_vec(&serde_json::json!({ "keys": [jwk] })).unwrap();
    let set = KeySet::from_jwks(&jwks).unwrap();
    assert_eq!(set.len(), 1);

    let compact = s(&doc["A.4_jws"], "compact");
    let payload = verify_jws_signature(compact, &set).unwrap();
    assert_eq!(payload, s(&doc["A.4_jws"], "payload_ascii").as_bytes());

    let mut valid = 0;
    for case in doc["cases"].as_array().unwrap() {
        let r = verify_jws_signature(s(case, "token"), &set);
        if case["expect_valid"].as_bool() == Some(true) {
            valid += 1;
            assert!(r.is_ok(), "{}", s(case, "name"));
        } else {
            assert!(r.is_err(), "{} must fail", s(case, "name"));
        }
    }
    assert_eq!(valid, 1);
    assert_eq!(
        verify_jws_signature(
            "eyJhbGciOiJub25lIn0.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.",
            &set
        ),
        Err(TokenError::AlgorithmMismatch)
    );
    // An empty key set knows no key.
    assert_eq!(
        verify_jws_signature(compact, &KeySet::new()),
        Err(TokenError::UnknownKey)
    );
    let _ = b64u(b"");
}
