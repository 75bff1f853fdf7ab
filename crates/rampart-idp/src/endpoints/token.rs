//! `POST /token` (RFC 6749 §3.2): authenticates the client and dispatches on `grant_type`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;

use crate::error::{ErrorCode, OAuthError};
use crate::grant::{authorization_code, client_credentials, refresh_token};
use crate::{AuthServer, unix_now};

/// The token endpoint handler.
pub async fn token(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let (form, client) = super::client_request(&server, &headers, &body, "/token").await?;
    let grant_type = form.require("grant_type")?;
    let now = unix_now();
    match grant_type {
        "authorization_code" => Ok(super::no_store_json(
            authorization_code::exchange(&server, &client, &form, now).await?,
        )),
        "refresh_token" => Ok(super::no_store_json(
            refresh_token::refresh(&server, &client, &form, now).await?,
        )),
        "client_credentials" => {
            if !client
                .record
                .grant_types
                .iter()
                .any(|g| g == "client_credentials")
            {
                return Err(OAuthError::new(
                    ErrorCode::UnauthorizedClient,
                    "the client may not use the client_credentials grant",
                ));
            }
            let response = client_credentials::issue(&server, &client, &form, now)?;
            Ok(super::no_store_json(response))
        }
        _ => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "supported grant types: authorization_code, refresh_token, client_credentials",
        )),
    }
}
