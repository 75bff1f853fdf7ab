//! HTTP endpoints, one file per endpoint family.

pub mod admin;
pub mod discovery;
pub mod introspect;
pub mod revoke;
pub mod token;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// JSON with `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub(crate) fn no_store_json(value: impl serde::Serialize) -> Response {
    let mut response = axum::Json(value).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
