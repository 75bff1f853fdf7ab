//! HTTP endpoints, one file per endpoint family.

pub mod account;
pub mod admin;
pub mod admin_users;
pub mod authorize;
pub mod consent;
pub mod discovery;
pub mod introspect;
pub mod login;
pub mod logout;
pub mod revoke;
pub mod token;
pub mod userinfo;
pub mod webauthn;

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::AuthServer;
use crate::client_auth::authenticate;
use crate::clients::RegisteredClient;
use crate::error::OAuthError;
use crate::form::Form;

/// The start of every client-authenticated endpoint: parse the form strictly, then
/// authenticate the client for the endpoint at `path`.
pub(crate) async fn client_request(
    server: &AuthServer,
    headers: &HeaderMap,
    body: &[u8],
    path: &str,
) -> Result<(Form, Arc<RegisteredClient>), OAuthError> {
    let form = Form::parse(headers, body)?;
    let endpoint = server.config.endpoint(path);
    let client = authenticate(server, headers, &form, &endpoint).await?.0;
    Ok((form, client))
}

/// JSON with `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub(crate) fn no_store_json(value: impl serde::Serialize) -> Response {
    let mut response = axum::Json(value).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
