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
