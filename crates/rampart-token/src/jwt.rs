//! JWS compact serialization: signing with the key's own algorithm, and
//! strict, bounded header parsing and signature verification.
//!
//! The header is parsed here (not by `jsonwebtoken`) so that it can never
//! choose the algorithm: the algorithm is pinned by the key found through
//! `kid`, and the header's `alg` must merely agree with it. Signature
//! verification is delegated to `jsonwebtoken::crypto::verify`, restricted to
//! the pinned algorithm.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use crate::keys::{JwtAlg, Material, SigningKey};
use crate::verify::{KeySet, VerifyKey};
use crate::{TokenError, b64};

/// Largest accepted encoded JWT header, in bytes.
const MAX_HEADER_B64: usize = 2048;

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d)?;
    Ok(true)
}

/// The JOSE header fields Rampart looks at. Unknown fields are ignored
/// (never used); duplicates of known fields are rejected by serde.
#[derive(Deserialize)]
pub(crate) struct JwtHeader {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<String>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
    #[serde(default, deserialize_with = "present")]
    b64: bool,
}

impl JwtHeader {
    /// The `typ` header, if any.
    pub(crate) fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }
}

/// A JWS split into its parts, with a decoded header. Nothing is trusted yet.
pub(crate) struct UnverifiedJwt<'a> {
    pub(crate) header: JwtHeader,
    signing_input: &'a str,
    payload_b64: &'a str,
    signature_b64: &'a str,
}

/// Splits and decodes a compact JWS. Rejects `crit` (and the RFC 7797 `b64`
/// parameter) outright.
pub(crate) fn parse(token: &str) -> Result<UnverifiedJwt<'_>, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    if !b64::is_b64url(h) || !b64::is_b64url(p) || h.len() > MAX_HEADER_B64 {
        return Err(TokenError::Malformed);
    }
    let header_bytes = b64::decode(h)?;
    let header: JwtHeader =
        serde_json::from_slice(&header_bytes).map_err(|_| TokenError::Malformed)?;
    if header.crit {
        return Err(TokenError::CriticalHeader);
    }
    if header.b64 {
        return Err(TokenError::Malformed);
    }
    Ok(UnverifiedJwt {
        header,
        // h.len() + 1 + p.len() <= token.len(): both parts and the dot are
        // a prefix of the token.
        signing_input: token
            .get(..h.len() + 1 + p.len())
            .ok_or(TokenError::Malformed)?,
        payload_b64: p,
        signature_b64: s,
    })
}

/// How to find the key when the header has no `kid`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum KidPolicy {
    /// A missing `kid` is an error.
    Required,
    /// A missing `kid` is accepted when the set holds exactly one key.
    SingleKeyFallback,
}

impl UnverifiedJwt<'_> {
    /// Finds the key, checks that the header's `alg` equals the key's pinned
    /// algorithm, verifies the signature and returns the kid and payload.
    pub(crate) fn verify(
        &self,
        keys: &KeySet,
        policy: KidPolicy,
    ) -> Result<(String, Vec<u8>), TokenError> {
        let (kid, key) = match self.header.kid.as_deref() {
            Some(kid) => (kid, keys.get(kid).ok_or(TokenError::UnknownKey)?),
            None if policy == KidPolicy::SingleKeyFallback => {
                keys.single().ok_or(TokenError::UnknownKey)?
            }
            None => return Err(TokenError::UnknownKey),
        };
        let VerifyKey::Jwt { alg, key: decoding } = key else {
            return Err(TokenError::AlgorithmMismatch);
        };
        let header_alg = self.header.alg.as_deref().ok_or(TokenError::Malformed)?;
        if header_alg != alg.as_str() {
            return Err(TokenError::AlgorithmMismatch);
        }
        if !self.signature_b64.is_empty() && !b64::is_b64url(self.signature_b64) {
            return Err(TokenError::BadSignature);
        }
        match jsonwebtoken::crypto::verify(
            self.signature_b64,
            self.signing_input.as_bytes(),
            decoding,
            alg.jsonwebtoken(),
        ) {
            Ok(true) => {}
            _ => return Err(TokenError::BadSignature),
        }
        let payload = b64::decode(self.payload_b64)?;
        Ok((kid.to_owned(), payload))
    }
}

/// Builds and signs a compact JWS with the key's own algorithm.
pub(crate) fn sign(key: &SigningKey, header: &[u8], payload: &[u8]) -> Result<String, TokenError> {
    let mut out = b64::encode(header);
    out.push('.');
    out.push_str(&b64::encode(payload));
    let failed = || TokenError::key("signing failed");
    let signature = match key.material() {
        Material::Ed25519 { pair, .. } => pair.sign(out.as_bytes()).as_ref().to_vec(),
        Material::Es256 { pair, .. } => pair
            .sign(&SystemRandom::new(), out.as_bytes())
            .map_err(|_| failed())?
            .as_ref()
            .to_vec(),
        Material::Rs256 { pair, .. } => {
            let mut sig = vec![0u8; pair.public_modulus_len()];
            pair.sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                out.as_bytes(),
                &mut sig,
            )
            .map_err(|_| failed())?;
            sig
        }
        Material::PasetoPublic { .. } | Material::PasetoLocal { .. } => {
            return Err(TokenError::AlgorithmMismatch);
        }
    };
    out.push('.');
    out.push_str(&b64::encode(signature));
    Ok(out)
}

/// The algorithm of a JWT signing key, if it is one.
pub(crate) fn key_alg(key: &SigningKey) -> Option<JwtAlg> {
    match key.kind() {
        crate::KeyKind::Jwt(alg) => Some(alg),
        _ => None,
    }
}
