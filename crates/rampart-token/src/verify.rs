//! Key sets and strict verification of access tokens and client assertions.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use jsonwebtoken::DecodingKey;
use pasetors::keys::{AsymmetricPublicKey, SymmetricKey};
use pasetors::version4::V4;
use serde::Deserialize;

use crate::claims::{AccessClaims, AssertionClaims};
use crate::jwt::{self, KidPolicy};
use crate::keys::{JwtAlg, KeyKind, SigningKey, TokenFormat};
use crate::{TokenError, b64, jwks, paseto};

/// Tokens larger than this (in bytes) are rejected before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8192;
/// Largest accepted PASETO footer (encoded), in bytes.
const MAX_FOOTER_B64: usize = 512;
/// Largest accepted key id, in bytes.
pub(crate) const MAX_KID_LEN: usize = 256;
/// Largest accepted `jti` of a client assertion, in bytes.
const MAX_JTI_LEN: usize = 256;
/// Clock leeway applied to client assertions, in seconds.
const ASSERTION_LEEWAY_SECS: i64 = 30;

/// A verification key, pinned to one algorithm / token format.
#[derive(Clone)]
pub(crate) enum VerifyKey {
    /// JWT public key pinned to `alg`.
    Jwt { alg: JwtAlg, key: Arc<DecodingKey> },
    /// PASETO v4.public key.
    PasetoPublic(AsymmetricPublicKey<V4>),
    /// PASETO v4.local symmetric key (server-side only).
    PasetoLocal(Arc<SymmetricKey<V4>>),
}

impl VerifyKey {
    pub(crate) fn jwt(alg: JwtAlg, key: DecodingKey) -> Self {
        VerifyKey::Jwt {
            alg,
            key: Arc::new(key),
        }
    }

    fn kind(&self) -> KeyKind {
        match self {
            VerifyKey::Jwt { alg, .. } => KeyKind::Jwt(*alg),
            VerifyKey::PasetoPublic(_) => KeyKind::PasetoV4Public,
            VerifyKey::PasetoLocal(_) => KeyKind::PasetoV4Local,
        }
    }
}

/// A set of verification keys indexed by key id. Each key pins its own
/// algorithm / token format; the token never chooses it.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, VerifyKey>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.keys.iter().map(|(k, v)| (k, v.kind())))
            .finish()
    }
}

impl KeySet {
    /// An empty key set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the verification half of a signing key under its kid: the public
    /// key pinned to its algorithm for JWT keys, the public key for
    /// `PasetoV4Public`, the symmetric key itself for `PasetoV4Local`
    /// (server-side only). Replaces any key with the same kid.
    pub fn insert(&mut self, key: &SigningKey) {
        self.keys
            .insert(key.kid().to_owned(), key.verification_key());
    }

    /// Builds a key set from a JWKS document (public keys only).
    ///
    /// The algorithm is pinned from `alg` when present, otherwise inferred
    /// (OKP Ed25519 => EdDSA, EC P-256 => ES256, RSA => RS256). Keys whose
    /// `use` is not `sig`, without `kid`, symmetric (`oct`), with an
    /// unsupported or inconsistent algorithm, or RSA keys under 2048 bits
    /// are skipped. Documents over 64 KiB or with more than 64 keys are
    /// rejected with `TooLarge`; a kid used by two usable keys is `Malformed`.
    pub fn from_jwks(jwks_json: &[u8]) -> Result<KeySet, TokenError> {
        if jwks_json.len() > jwks::MAX_JWKS_BYTES {
            return Err(TokenError::TooLarge);
        }
        #[derive(Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        let doc: Doc = serde_json::from_slice(jwks_json).map_err(|_| TokenError::Malformed)?;
        if doc.keys.len() > jwks::MAX_JWKS_KEYS {
            return Err(TokenError::TooLarge);
        }
        let mut set = KeySet::new();
        for jwk in &doc.keys {
            if let Some((kid, key)) = jwks::jwk_to_verify_key(jwk)
                && set.keys.insert(kid, key).is_some()
            {
                return Err(TokenError::Malformed);
            }
        }
        Ok(set)
    }

    /// Adds a PASETO v4.public key given as a `k4.public.` PASERK. `kid` must
    /// be the PASERK `k4.pid.` of that key.
    pub fn insert_paserk_public(&mut self, kid: &str, paserk: &str) -> Result<(), TokenError> {
        let pk = paseto::parse_public_paserk(paserk)?;
        if paseto::public_key_id(&pk) != kid {
            return Err(TokenError::key("kid does not match the PASERK key"));
        }
        self.keys
            .insert(kid.to_owned(), VerifyKey::PasetoPublic(pk));
        Ok(())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// True if a key with this kid is present.
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The key kind pinned for `kid`, if present.
    pub fn kind_of(&self, kid: &str) -> Option<KeyKind> {
        self.keys.get(kid).map(VerifyKey::kind)
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&VerifyKey> {
        if kid.len() > MAX_KID_LEN {
            return None;
        }
        self.keys.get(kid)
    }

    /// The only key of the set, if it holds exactly one.
    pub(crate) fn single(&self) -> Option<(&str, &VerifyKey)> {
        if self.keys.len() != 1 {
            return None;
        }
        self.keys.iter().next().map(|(k, v)| (k.as_str(), v))
    }
}

/// Which audiences a verifier accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudienceCheck {
    /// Accept any audience. Only for the issuing server's own introspection.
    Any,
    /// At least one of the token's audiences must be in this list.
    OneOf(Vec<String>),
}

/// Claim validation parameters for [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validation {
    /// Required `iss` (exact match).
    pub issuer: String,
    /// Accepted audiences.
    pub audience: AudienceCheck,
    /// Clock leeway for `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
    /// Current time in unix seconds; `None` means the system clock.
    pub now: Option<i64>,
}

/// Claims of a token that passed every check. Only [`verify`] builds it.
#[derive(Clone, Debug)]
pub struct VerifiedClaims {
    claims: AccessClaims,
    format: TokenFormat,
    kid: String,
}

impl VerifiedClaims {
    /// The verified claims.
    pub fn claims(&self) -> &AccessClaims {
        &self.claims
    }

    /// The format of the verified token.
    pub fn format(&self) -> TokenFormat {
        self.format
    }

    /// The id of the key that verified the token.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Consumes the value, returning the claims.
    pub fn into_claims(self) -> AccessClaims {
        self.claims
    }
}

fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What a token looks like, from its shape only.
enum Shape {
    Jwt,
    PasetoV4Public,
    PasetoV4Local,
    OtherPaseto,
    Unknown,
}

fn shape(token: &str) -> Shape {
    if token.starts_with(paseto::V4_PUBLIC_PREFIX) {
        return Shape::PasetoV4Public;
    }
    if token.starts_with(paseto::V4_LOCAL_PREFIX) {
        return Shape::PasetoV4Local;
    }
    let first = token.split('.').next().unwrap_or("");
    let versioned = |p: char| {
        first.len() >= 2 && first.starts_with(p) && first[1..].bytes().all(|b| b.is_ascii_digit())
    };
    if versioned('v') || versioned('k') {
        return Shape::OtherPaseto;
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None)
            if b64::is_b64url(h) && b64::is_b64url(p) && (s.is_empty() || b64::is_b64url(s)) =>
        {
            Shape::Jwt
        }
        _ => Shape::Unknown,
    }
}

/// Guesses the format of a token from its shape: `v4.public.` / `v4.local.`
/// prefixes, or three dot-separated base64url parts for a JWT. Nothing is
/// verified.
pub fn peek_format(token: &str) -> Option<TokenFormat> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    match shape(token) {
        Shape::Jwt => Some(TokenFormat::Jwt),
        Shape::PasetoV4Public => Some(TokenFormat::PasetoV4Public),
        Shape::PasetoV4Local => Some(TokenFormat::PasetoV4Local),
        Shape::OtherPaseto | Shape::Unknown => None,
    }
}

fn is_access_token_typ(typ: &str) -> bool {
    typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
}

/// Verifies an access token (JWT RFC 9068 or PASETO v4) and validates its
/// claims.
///
/// The size is checked first; PASETO versions or purposes other than
/// `v4.public` / `v4.local` are `UnsupportedFormat`. JWT: `crit` is
/// rejected, `typ` must be `at+jwt` (or `application/at+jwt`), `kid` must
/// name a key of the set and the header `alg` must equal the key's pinned
/// algorithm. PASETO: the footer must be `{"kid":...}` naming a key of the
/// right purpose. Then `exp` (required), `nbf`, `iat` (with leeway), `iss`
/// and `aud` are checked.
pub fn verify(
    token: &str,
    keys: &KeySet,
    validation: &Validation,
) -> Result<VerifiedClaims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let (claims, format, kid) = match shape(token) {
        Shape::Jwt => {
            let jwt = jwt::parse(token)?;
            match jwt.header.typ() {
                Some(t) if is_access_token_typ(t) => {}
                _ => return Err(TokenError::WrongType),
            }
            let (kid, payload) = jwt.verify(keys, KidPolicy::Required)?;
            (
                AccessClaims::from_jwt_payload(&payload)?,
                TokenFormat::Jwt,
                kid,
            )
        }
        Shape::PasetoV4Public => {
            let (kid, footer) = paseto_footer_kid(token)?;
            let pk = match keys.get(&kid) {
                None => return Err(TokenError::UnknownKey),
                Some(VerifyKey::PasetoPublic(pk)) => pk,
                Some(_) => return Err(TokenError::AlgorithmMismatch),
            };
            let payload = paseto::verify_public(pk, token, &footer, b"")?;
            (
                AccessClaims::from_paseto_payload(&payload)?,
                TokenFormat::PasetoV4Public,
                kid,
            )
        }
        Shape::PasetoV4Local => {
            let (kid, footer) = paseto_footer_kid(token)?;
            let key = match keys.get(&kid) {
                None => return Err(TokenError::UnknownKey),
                Some(VerifyKey::PasetoLocal(k)) => k,
                Some(_) => return Err(TokenError::AlgorithmMismatch),
            };
            let payload = paseto::decrypt_local(key, token, &footer, b"")?;
            (
                AccessClaims::from_paseto_payload(&payload)?,
                TokenFormat::PasetoV4Local,
                kid,
            )
        }
        Shape::OtherPaseto => return Err(TokenError::UnsupportedFormat),
        Shape::Unknown => return Err(TokenError::Malformed),
    };
    check_access_claims(&claims, validation)?;
    Ok(VerifiedClaims {
        claims,
        format,
        kid,
    })
}

/// Extracts the kid from a PASETO footer, which must be exactly the JSON
/// object `{"kid": "..."}`. Returns the kid and the raw footer bytes.
fn paseto_footer_kid(token: &str) -> Result<(String, Vec<u8>), TokenError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Footer {
        kid: String,
    }
    let mut parts = token.split('.');
    let footer_b64 = match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some(_), Some(_), Some(_), Some(f), None) if !f.is_empty() => f,
        (Some(_), Some(_), Some(_), None | Some(_), None) => return Err(TokenError::UnknownKey),
        _ => return Err(TokenError::Malformed),
    };
    if footer_b64.len() > MAX_FOOTER_B64 {
        return Err(TokenError::Malformed);
    }
    let footer = b64::decode(footer_b64)?;
    let parsed: Footer = serde_json::from_slice(&footer).map_err(|_| TokenError::Malformed)?;
    if parsed.kid.is_empty() || parsed.kid.len() > MAX_KID_LEN {
        return Err(TokenError::UnknownKey);
    }
    Ok((parsed.kid, footer))
}

fn check_access_claims(claims: &AccessClaims, v: &Validation) -> Result<(), TokenError> {
    let now = v.now.unwrap_or_else(system_now);
    let leeway = i64::try_from(v.leeway_secs).unwrap_or(i64::MAX);
    if now >= claims.exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if claims.nbf > now.saturating_add(leeway) || claims.iat > now.saturating_add(leeway) {
        return Err(TokenError::NotYetValid);
    }
    if claims.iss != v.issuer {
        return Err(TokenError::WrongIssuer);
    }
    match &v.audience {
        AudienceCheck::Any => {}
        AudienceCheck::OneOf(accepted) => {
            if !claims.aud.iter().any(|a| accepted.contains(a)) {
                return Err(TokenError::WrongAudience);
            }
        }
    }
    Ok(())
}

/// Verifies only the signature of a compact JWS (any `typ`, no claim
/// validation) and returns its payload.
///
/// Same header rules as [`verify`] (`crit` rejected, algorithm pinned by the
/// key), except that `typ` is ignored and a missing `kid` is accepted when
/// the key set holds exactly one key. **Low level**: callers must validate
/// the payload themselves; use [`verify`] for access tokens.
pub fn verify_jws_signature(token: &str, keys: &KeySet) -> Result<Vec<u8>, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    match shape(token) {
        Shape::Jwt => {}
        Shape::PasetoV4Public | Shape::PasetoV4Local | Shape::OtherPaseto => {
            return Err(TokenError::UnsupportedFormat);
        }
        Shape::Unknown => return Err(TokenError::Malformed),
    }
    let jwt = jwt::parse(token)?;
    jwt.verify(keys, KidPolicy::SingleKeyFallback)
        .map(|(_, payload)| payload)
}

/// Verifies a client authentication assertion (RFC 7523 `private_key_jwt`).
///
/// Requires `iss == sub == client_id`, an `aud` intersecting
/// `accepted_audiences`, `exp` in the future but at most
/// `now + max_lifetime_secs` (30 s leeway on every time check), `nbf`/`iat`
/// not in the future, and a non-empty `jti` of at most 256 bytes. Header
/// rules are those of [`verify`] except that `typ` is not required (an
/// access-token `typ` of `at+jwt` is rejected); without `kid`, a key set
/// holding exactly one key is used.
pub fn verify_client_assertion(
    token: &str,
    client_keys: &KeySet,
    client_id: &str,
    accepted_audiences: &[String],
    max_lifetime_secs: i64,
    now: Option<i64>,
) -> Result<AssertionClaims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    match shape(token) {
        Shape::Jwt => {}
        Shape::PasetoV4Public | Shape::PasetoV4Local | Shape::OtherPaseto => {
            return Err(TokenError::UnsupportedFormat);
        }
        Shape::Unknown => return Err(TokenError::Malformed),
    }
    let jwt = jwt::parse(token)?;
    if jwt.header.typ().is_some_and(is_access_token_typ) {
        return Err(TokenError::WrongType);
    }
    let (_, payload) = jwt.verify(client_keys, KidPolicy::SingleKeyFallback)?;
    let claims = AssertionClaims::from_payload(&payload)?;
    if claims.iss != client_id || claims.sub != client_id {
        return Err(TokenError::WrongIssuer);
    }
    if claims.jti.len() > MAX_JTI_LEN {
        return Err(TokenError::Malformed);
    }
    if !claims.aud.iter().any(|a| accepted_audiences.contains(a)) {
        return Err(TokenError::WrongAudience);
    }
    let now = now.unwrap_or_else(system_now);
    let lw = ASSERTION_LEEWAY_SECS;
    if now >= claims.exp.saturating_add(lw) {
        return Err(TokenError::Expired);
    }
    if claims.exp
        > now
            .saturating_add(max_lifetime_secs.max(0))
            .saturating_add(lw)
    {
        return Err(TokenError::LifetimeTooLong);
    }
    let future = |t: Option<i64>| t.is_some_and(|t| t > now.saturating_add(lw));
    if future(claims.nbf) || future(claims.iat) {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}
