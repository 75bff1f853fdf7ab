//! Grant handlers, one file per grant type.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;
pub mod user_tokens;
