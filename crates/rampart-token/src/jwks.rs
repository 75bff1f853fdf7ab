//! JWKS / PASERK publication documents and parsing of public JWKs.

use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value, json};

use crate::b64;
use crate::keys::{JwtAlg, RSA_MAX_MODULUS_BYTES, SigningKey};
use crate::verify::{MAX_KID_LEN, VerifyKey};

/// Largest accepted JWKS document, in bytes.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Largest accepted number of keys in a JWKS document.
pub const MAX_JWKS_KEYS: usize = 64;

/// `{"keys":[...]}` with the public JWK of every JWT key (PASETO keys are
/// ignored).
pub fn jwks_document<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> Value {
    let keys: Vec<Value> = keys
        .into_iter()
        .filter_map(SigningKey::public_jwk)
        .collect();
    json!({ "keys": keys })
}

/// `{"keys":[{"kid":"k4.pid...","paserk":"k4.public..."}]}` for every
/// `v4.public` key (other keys are ignored).
pub fn paserk_document<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> Value {
    let keys: Vec<Value> = keys
        .into_iter()
        .filter_map(|k| {
            k.public_paserk()
                .map(|p| json!({ "kid": k.kid(), "paserk": p }))
        })
        .collect();
    json!({ "keys": keys })
}

fn str_field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    obj.get(name).and_then(Value::as_str)
}

fn b64_field(obj: &Map<String, Value>, name: &str, max: usize) -> Option<Vec<u8>> {
    let s = str_field(obj, name)?;
    if s.len() > max.div_ceil(3) * 4 {
        return None;
    }
    b64::decode(s).ok()
}

/// Converts one public JWK into a pinned verification key; `None` means
/// "skip this key".
pub(crate) fn jwk_to_verify_key(jwk: &Value) -> Option<(String, VerifyKey)> {
    let obj = jwk.as_object()?;
    if let Some(u) = obj.get("use")
        && u.as_str()? != "sig"
    {
        return None;
    }
    if let Some(ops) = obj.get("key_ops") {
        let ops = ops.as_array()?;
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return None;
        }
    }
    // A published key set must not carry private material.
    if obj.contains_key("d") {
        return None;
    }
    let kid = str_field(obj, "kid")?;
    if kid.is_empty() || kid.len() > MAX_KID_LEN {
        return None;
    }
    let inferred = match (str_field(obj, "kty")?, str_field(obj, "crv")) {
        ("OKP", Some("Ed25519")) => JwtAlg::EdDSA,
        ("EC", Some("P-256")) => JwtAlg::ES256,
        ("RSA", _) => JwtAlg::RS256,
        _ => return None,
    };
    if let Some(alg) = obj.get("alg")
        && JwtAlg::parse(alg.as_str()?)? != inferred
    {
        return None;
    }
    let key = match inferred {
        JwtAlg::EdDSA => {
            let x = b64_field(obj, "x", 32)?;
            if x.len() != 32 {
                return None;
            }
            DecodingKey::from_ed_der(&x)
        }
        JwtAlg::ES256 => {
            let x = b64_field(obj, "x", 32)?;
            let y = b64_field(obj, "y", 32)?;
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            DecodingKey::from_ec_der(&point)
        }
        JwtAlg::RS256 => {
            let n = b64_field(obj, "n", RSA_MAX_MODULUS_BYTES + 1)?;
            let e = b64_field(obj, "e", 8)?;
            let n = strip_zeros(&n);
            let e = strip_zeros(&e);
            if e.is_empty() || rsa_bits(n) < 2048 || n.len() > RSA_MAX_MODULUS_BYTES {
                return None;
            }
            DecodingKey::from_rsa_raw_components(n, e)
        }
    };
    Some((kid.to_owned(), VerifyKey::jwt(inferred, key)))
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[start..]
}

fn rsa_bits(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(first) => (n.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}
