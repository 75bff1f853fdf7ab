//! `POST /token` (RFC 6749 §3.2): authenticates the client and dispatches on `grant_type`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::client_auth::authenticate;
use crate::error::{ErrorCode, OAuthError};
use crate::form::Form;
use crate::grant::client_credentials;
use crate::{AuthServer, unix_now};

/// The token endpoint handler.
pub async fn token(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&server, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn handle(
    server: &AuthServer,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, OAuthError> {
    let form = Form::parse(headers, body)?;
    let grant_type = form.require("grant_type")?;
    let endpoint = server.config.token_endpoint();
    let client = authenticate(server, headers, &form, &endpoint).await?.0;
    match grant_type {
        "client_credentials" => {
            let response = client_credentials::issue(server, &client, &form, unix_now())?;
            Ok(super::no_store_json(response))
        }
        _ => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "supported grant types: client_credentials",
        )),
    }
}
