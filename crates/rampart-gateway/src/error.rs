//! Uniform JSON error responses. Bodies never carry internals.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use crate::context::{BoxBody, Outcome};

/// A body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> BoxBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A JSON error response `{"error": .., "error_description": ..}` carrying an [`Outcome`]
/// (deny, `reason`) extension.
pub fn error_response(
    status: StatusCode,
    error: &str,
    description: &str,
    reason: &'static str,
) -> Response<BoxBody> {
    let body = serde_json::json!({ "error": error, "error_description": description });
    let mut resp = Response::new(full(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.extensions_mut().insert(Outcome::deny(reason));
    resp
}

/// 500 with a generic body (a pipeline invariant was broken: fail closed).
pub fn internal(reason: &'static str) -> Response<BoxBody> {
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "the request could not be processed",
        reason,
    )
}
