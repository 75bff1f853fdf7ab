//! Shared helpers for the integration tests.
#![allow(dead_code)]

use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rampart_token::{AccessClaims, AudienceCheck, Validation};

pub const NOW: i64 = 1_795_618_800; // 2026-11-25T15:00:00Z
pub const ISS: &str = "https://auth.example.test";

/// A 1024-bit RSA private key (PKCS#8 DER, base64), generated with openssl.
pub const RSA1024_PKCS8_B64: &str = "MIICXAIBAAKBgQDs4qPJVBEWstxta2f7V0OVvs27wF2Kh8L/xil1hmilaJ4vQmXxcL+fdFO+qOd1ei0y9fxP5bSBHcWnoOIV6Nm65BLfYcAKoNeIul8GBgITs2/ezLRKbccMYv16woHZ5jCH61bfL9PFtevMUIpQHPv8Liw+DNIUoFz39iPppGx5VwIDAQABAoGBAL46ntbtqK92wScpip4/jKmzSRnOOBAoSAMIioCziFPUuLsw8ha6uVd+nkXM89rWW3fCLHWo/JR3aSPdQdHgZP9xyUitGbSiDhOjpajI9Cu3rGNiTtXROX4Di+oeAcX/R6P1oafDKAz4htfqIBiNXzAOTQwqAwpQWTIgB/5VfdEpAkEA/Divjti1bsmOJ+xN+aK5mxs3MIq15vBIBzYTqwpcY830ZlDcMQ+8OmHovyHCKS5ATVPJ3SbIU+UMGgF+NUBSFQJBAPBvIyQSQtCSYoWtlDhhI4JimafuzNR5vMAq28o83w52WSR/2Wbo9zlqQm91+fwc76ubHlAKJivBA5EtC9cDdLsCQHxNx6AEB675INlmKavNWeIqkJGY2ztc0nLTYPAb5BrAByJh2ZNIaQDw/g8sqQ84nzI9CDC5C2Plb4hlkfjWoV0CQDxT5oFag6FJ2aapExPCa+J/UwasCIEXuqCNIHDyLRW35E4gNjB4K/AgFWNaOstjh0+LsGNs6H76AyceImZk25kCQClBn63ndsz0vT3LzFvTmnMJken1hndW/wg0DUG50vaoSEJBINn+78uzr7WHXN2u9iKt6N2XylxrsO2jatbUZ7I=";

pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

pub fn b64u(b: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

pub fn b64u_dec(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).expect("b64url")
}

pub fn b64std(b: impl AsRef<[u8]>) -> String {
    STANDARD.encode(b)
}

pub fn claims() -> AccessClaims {
    AccessClaims {
        iss: ISS.into(),
        sub: "user-42".into(),
        aud: vec!["https://api.example.test".into()],
        exp: NOW + 300,
        iat: NOW - 10,
        nbf: NOW - 10,
        jti: "jti-0001".into(),
        client_id: "client-a".into(),
        scope: Some("read write".into()),
        roles: Vec::new(),
        groups: Vec::new(),
    }
}

pub fn validation() -> Validation {
    Validation {
        issuer: ISS.into(),
        audience: AudienceCheck::OneOf(vec!["https://api.example.test".into()]),
        leeway_secs: 0,
        now: Some(NOW),
    }
}

/// Builds a compact JWS signed with Ed25519 (PKCS#8) over arbitrary JSON.
pub fn ed25519_jws(
    pkcs8: &[u8],
    header: &serde_json::Value,
    payload: &serde_json::Value,
) -> String {
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).expect("pkcs8");
    let input = format!(
        "{}.{}",
        b64u(serde_json::to_vec(header).unwrap()),
        b64u(serde_json::to_vec(payload).unwrap())
    );
    let sig = pair.sign(input.as_bytes());
    format!("{input}.{}", b64u(sig.as_ref()))
}

/// Builds a compact JWS with an HS256 MAC under `secret`.
pub fn hs256_jws(secret: &[u8], header: &serde_json::Value, payload: &serde_json::Value) -> String {
    let input = format!(
        "{}.{}",
        b64u(serde_json::to_vec(header).unwrap()),
        b64u(serde_json::to_vec(payload).unwrap())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64u(tag.as_ref()))
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let b = b64std(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
