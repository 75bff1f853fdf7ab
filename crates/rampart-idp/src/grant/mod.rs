//! Grant handlers, one file per grant type.

pub mod client_credentials;
