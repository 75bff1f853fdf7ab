//! The Rampart guard: verifies access tokens for a gateway or a service (zero trust: every
//! service can check tokens itself). It fetches and caches the issuers' JWKS and PASERK sets,
//! verifies JWT and PASETO v4.public tokens locally with algorithms pinned by the keys, and
//! introspects opaque and v4.local tokens with a cache.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cache;
mod config;
mod guard;
mod http;
mod introspection;
mod jwks;
mod peek;
mod principal;

pub use config::{GuardConfig, GuardError, IssuerConfig, MAX_ISSUERS};
pub use guard::Guard;
pub use introspection::MAX_INTROSPECTION_BYTES;
pub use principal::{Accepted, AuthError, AuthMethod, Authenticator, Principal};

/// Whether every byte of `bytes` satisfies `accept`: the character-set check of tokens and
/// keys on every request.
///
/// Checks blocks of 64 bytes without an exit inside a block, a loop the compiler turns into
/// vector instructions, so a 600-byte token takes a few dozen steps instead of 600 branches.
pub fn all_bytes(bytes: &[u8], accept: impl Fn(u8) -> bool) -> bool {
    bytes
        .chunks(64)
        .all(|block| block.iter().fold(true, |ok, &b| ok & accept(b)))
}
