//! Rampart tokens: issuing and strict verification of access tokens as JWT
//! (RFC 9068; EdDSA, ES256, RS256) and PASETO v4 (`v4.public`, `v4.local`),
//! key sets, JWKS / PASERK documents and RFC 7523 client assertions.
//!
//! Pure computation, no I/O. Security rules: the key (found by `kid`) pins
//! the algorithm and the token format, the token header never chooses it;
//! `alg: none`, HMAC algorithms and any `crit` header are rejected; every
//! input is bounded ([`MAX_TOKEN_BYTES`]); secrets are never printed.
//! Cryptography comes from `aws-lc-rs`, `jsonwebtoken` and `pasetors`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod b64;
mod claims;
mod error;
mod id_token;
mod issue;
mod jwks;
mod jwt;
mod keys;
pub mod paseto;
mod verify;

pub use claims::{AccessClaims, AssertionClaims, MAX_LABELS};
pub use error::TokenError;
pub use id_token::{IdTokenClaims, issue_id_token, read_id_token_hint, token_hash};
pub use issue::issue;
pub use jwks::{MAX_JWKS_BYTES, MAX_JWKS_KEYS, jwks_document, paserk_document};
pub use keys::{JwtAlg, KeyKind, SigningKey, TokenFormat};
pub use verify::{
    AudienceCheck, KeySet, MAX_TOKEN_BYTES, Validation, VerifiedClaims, peek_format, verify,
    verify_client_assertion, verify_jws_signature,
};
