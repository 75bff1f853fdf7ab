//! OpenID Connect ID tokens: issuing, the `at_hash` claim and reading an
//! `id_token_hint`.
//!
//! ID tokens are always JWTs (OpenID Connect Core §2), signed with the JWT
//! key of the issuer; `typ` is `JWT`. The claims beyond the registered ones
//! (profile, e-mail, roles, groups) travel in [`IdTokenClaims::extra`].

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::keys::SigningKey;
use crate::verify::{KeySet, MAX_TOKEN_BYTES, verify_jws_signature};
use crate::{JwtAlg, TokenError, b64, jwt};

/// Claims of an ID token (OpenID Connect Core §2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user's stable id.
    pub sub: String,
    /// Audience: the client id.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued-at, seconds since the epoch.
    pub iat: i64,
    /// When the user authenticated, seconds since the epoch.
    pub auth_time: i64,
    /// The `nonce` of the authorization request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Authentication context class reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Authentication methods (RFC 8176).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// Authorized party: the client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// Access token hash (see [`token_hash`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// Session id (OpenID Connect Front-/Back-Channel Logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Further claims (profile, e-mail, roles, groups); must not repeat the
    /// registered ones above.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Names that [`IdTokenClaims::extra`] may not carry.
const REGISTERED: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "sid",
];

/// Signs an ID token with a JWT key (`typ: JWT`).
pub fn issue_id_token(key: &SigningKey, claims: &IdTokenClaims) -> Result<String, TokenError> {
    let alg = jwt::key_alg(key).ok_or(TokenError::AlgorithmMismatch)?;
    for (value, name) in [
        (&claims.iss, "iss"),
        (&claims.sub, "sub"),
        (&claims.aud, "aud"),
    ] {
        if value.is_empty() {
            return Err(TokenError::MissingClaim(name));
        }
    }
    if claims
        .extra
        .keys()
        .any(|k| REGISTERED.contains(&k.as_str()))
    {
        return Err(TokenError::Malformed);
    }
    let header = json!({ "alg": alg.as_str(), "typ": "JWT", "kid": key.kid() });
    let header = serde_json::to_vec(&header).map_err(|_| TokenError::Malformed)?;
    let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Malformed)?;
    let token = jwt::sign(key, &header, &payload)?;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    Ok(token)
}

/// The `at_hash` / `c_hash` of `value` for ID tokens signed with `key`: the
/// base64url left half of the hash that goes with the key's algorithm
/// (SHA-256 for ES256 and RS256, SHA-512 for EdDSA with Ed25519).
pub fn token_hash(key: &SigningKey, value: &str) -> Result<String, TokenError> {
    let alg = jwt::key_alg(key).ok_or(TokenError::AlgorithmMismatch)?;
    let algorithm = match alg {
        JwtAlg::EdDSA => &digest::SHA512,
        JwtAlg::ES256 | JwtAlg::RS256 => &digest::SHA256,
    };
    let hash = digest::digest(algorithm, value.as_bytes());
    let bytes = hash.as_ref();
    Ok(b64::encode(&bytes[..bytes.len() / 2]))
}

/// Reads an `id_token_hint` (RP-initiated logout): the signature must verify
/// with `keys` and `iss` must match; expiry is deliberately not checked, since
/// a hint is commonly an expired ID token.
pub fn read_id_token_hint(
    token: &str,
    keys: &KeySet,
    issuer: &str,
) -> Result<IdTokenClaims, TokenError> {
    let payload = verify_jws_signature(token, keys)?;
    let claims: IdTokenClaims =
        serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    if claims.iss != issuer {
        return Err(TokenError::WrongIssuer);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyKind;

    fn claims() -> IdTokenClaims {
        IdTokenClaims {
            iss: "https://issuer.example".into(),
            sub: "user-1".into(),
            aud: "client-1".into(),
            exp: 2_000_000_000,
            iat: 1_999_999_000,
            auth_time: 1_999_999_000,
            nonce: Some("n-0S6_WzA2Mj".into()),
            acr: Some("urn:rampart:acr:pwd".into()),
            amr: vec!["pwd".into()],
            azp: Some("client-1".into()),
            at_hash: None,
            sid: None,
            extra: serde_json::Map::new(),
        }
    }

    #[test]
    fn issued_id_token_reads_back_with_its_key_only() {
        for alg in [JwtAlg::EdDSA, JwtAlg::ES256] {
            let key = SigningKey::generate(KeyKind::Jwt(alg)).unwrap();
            let mut c = claims();
            c.extra.insert("email".into(), json!("a@example.com"));
            let token = issue_id_token(&key, &c).unwrap();
            let mut keys = KeySet::new();
            keys.insert(&key);
            let read = read_id_token_hint(&token, &keys, "https://issuer.example").unwrap();
            assert_eq!(read, c);
            assert!(read_id_token_hint(&token, &keys, "https://other.example").is_err());
            let other = SigningKey::generate(KeyKind::Jwt(alg)).unwrap();
            let mut wrong = KeySet::new();
            wrong.insert(&other);
            assert!(read_id_token_hint(&token, &wrong, "https://issuer.example").is_err());
        }
    }

    #[test]
    fn extra_claims_cannot_override_registered_ones() {
        let key = SigningKey::generate(KeyKind::Jwt(JwtAlg::EdDSA)).unwrap();
        let mut c = claims();
        c.extra.insert("sub".into(), json!("admin"));
        assert!(issue_id_token(&key, &c).is_err());
    }

    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        // The access token of OpenID Connect Core Appendix A.3; the expected
        // value computed independently with Python's hashlib (the at_hash
        // printed in the spec's example does not match its own token).
        let key = SigningKey::generate(KeyKind::Jwt(JwtAlg::RS256)).unwrap();
        assert_eq!(
            token_hash(&key, "jHkWEdUXMU1BwAsC4vtUsZwnNdgcgGiv").unwrap(),
            "RMhhXFybydP0cXvNZDWNAA"
        );
        let ed = SigningKey::generate(KeyKind::Jwt(JwtAlg::EdDSA)).unwrap();
        // SHA-512 left half: 32 bytes -> 43 base64url characters.
        assert_eq!(token_hash(&ed, "x").unwrap().len(), 43);
    }
}
