//! `POST /token` (RFC 6749 §3.2): authenticates the client and dispatches on `grant_type`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;

use crate::error::{ErrorCode, OAuthError};
use crate::grant::client_credentials;
use crate::{AuthServer, unix_now};

/// The token endpoint handler.
pub async fn token(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let (form, client) = super::client_request(&server, &headers, &body, "/token").await?;
    let grant_type = form.require("grant_type")?;
    match grant_type {
        "client_credentials" => {
            let response = client_credentials::issue(&server, &client, &form, unix_now())?;
            Ok(super::no_store_json(response))
        }
        _ => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "supported grant types: client_credentials",
        )),
    }
}
