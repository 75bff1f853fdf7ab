//! Token issuing / verification benchmarks, with raw aws-lc-rs Ed25519 as a
//! baseline.

use std::hint::black_box;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use criterion::{Criterion, criterion_group, criterion_main};
use rampart_token::{
    AccessClaims, AudienceCheck, JwtAlg, KeyKind, KeySet, SigningKey, Validation, issue, verify,
};

const NOW: i64 = 1_795_618_800;

fn claims() -> AccessClaims {
    AccessClaims {
        roles: Vec::new(),
        groups: Vec::new(),
        iss: "https://auth.example.test".into(),
        sub: "user-42".into(),
        aud: vec!["https://api.example.test".into()],
        exp: NOW + 300,
        iat: NOW,
        nbf: NOW,
        jti: "0123456789abcdef".into(),
        client_id: "client-a".into(),
        scope: Some("read write".into()),
    }
}

fn validation() -> Validation {
    Validation {
        issuer: "https://auth.example.test".into(),
        audience: AudienceCheck::OneOf(vec!["https://api.example.test".into()]),
        leeway_secs: 0,
        now: Some(NOW),
    }
}

fn raw_ed25519(c: &mut Criterion) {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let doc = Ed25519KeyPair::generate_pkcs8(&rng).expect("keygen");
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).expect("pkcs8");
    let msg = serde_json::to_vec(&claims()).expect("json");
    let sig = pair.sign(&msg);
    let pk = UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref().to_vec());
    c.bench_function("raw_ed25519/sign", |b| {
        b.iter(|| pair.sign(black_box(&msg)))
    });
    c.bench_function("raw_ed25519/verify", |b| {
        b.iter(|| pk.verify(black_box(&msg), black_box(sig.as_ref())).is_ok())
    });
}

fn token_benches(c: &mut Criterion) {
    let cases = [
        ("jwt_eddsa", KeyKind::Jwt(JwtAlg::EdDSA), true),
        ("jwt_es256", KeyKind::Jwt(JwtAlg::ES256), false),
        ("paseto_v4_public", KeyKind::PasetoV4Public, true),
        ("paseto_v4_local", KeyKind::PasetoV4Local, true),
    ];
    let claims = claims();
    let validation = validation();
    for (name, kind, bench_issue) in cases {
        let key = SigningKey::generate(kind).expect("keygen");
        let mut set = KeySet::new();
        set.insert(&key);
        let token = issue(&key, &claims).expect("issue");
        assert!(verify(&token, &set, &validation).is_ok());
        if bench_issue {
            c.bench_function(&format!("{name}/issue"), |b| {
                b.iter(|| issue(black_box(&key), black_box(&claims)))
            });
        }
        c.bench_function(&format!("{name}/verify"), |b| {
            b.iter(|| verify(black_box(&token), black_box(&set), black_box(&validation)))
        });
    }
}

criterion_group!(benches, raw_ed25519, token_benches);
criterion_main!(benches);
