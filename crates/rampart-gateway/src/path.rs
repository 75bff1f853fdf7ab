//! Path hygiene: rejects request targets that could make a route check disagree with what the
//! upstream sees (`/orders/../admin`, `/orders/%2e%2e/admin`, `/orders%2fadmin`, `//x`, ...).

use std::task::{Context, Poll};

use http::{Request, StatusCode, Version};
use tower::{Layer, Service};

use crate::context::BoxBody;
use crate::error::error_response;
use crate::future::OrInner;

/// Longest request target accepted, bytes.
pub const MAX_TARGET_BYTES: usize = 8192;

/// Why a target was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not origin-form (absolute, authority or asterisk form over HTTP/1).
    #[error("request target is not origin-form")]
    NotOriginForm,
    /// Over [`MAX_TARGET_BYTES`].
    #[error("request target too long")]
    TooLong,
    /// Control characters, NUL or backslash.
    #[error("request target contains forbidden characters")]
    ForbiddenChar,
    /// Encoded `/`, `\`, `.` or control character.
    #[error("request target contains a forbidden encoding")]
    ForbiddenEncoding,
    /// Empty, `.` or `..` segment.
    #[error("request target contains a forbidden segment")]
    ForbiddenSegment,
}

/// Checks an origin-form target (`/path?query`).
pub fn check_target(target: &str) -> Result<(), PathError> {
    if target.len() > MAX_TARGET_BYTES {
        return Err(PathError::TooLong);
    }
    if !target.starts_with('/') {
        return Err(PathError::NotOriginForm);
    }
    if target
        .bytes()
        .any(|b| b < 0x20 || b == 0x7f || b == b'\\' || b >= 0x80)
    {
        return Err(PathError::ForbiddenChar);
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    // Hex digits of either case: `from_str_radix` reads both, so no lowercase copy.
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or(PathError::ForbiddenEncoding)?;
            let s = std::str::from_utf8(hex).map_err(|_| PathError::ForbiddenEncoding)?;
            let v = u8::from_str_radix(s, 16).map_err(|_| PathError::ForbiddenEncoding)?;
            if v == b'/' || v == b'\\' || v == b'.' || v == b'%' || v < 0x20 || v == 0x7f {
                return Err(PathError::ForbiddenEncoding);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    if path == "/" {
        return Ok(());
    }
    for seg in path[1..].split('/') {
        // `..;x` is `..` to some servers (path parameters).
        let bare = seg.split_once(';').map_or(seg, |(s, _)| s);
        if bare.is_empty() || bare == "." || bare == ".." {
            // A single trailing slash (`/orders/`) is allowed; other empty segments are not.
            if seg.is_empty() && path.ends_with('/') && !path.ends_with("//") {
                continue;
            }
            return Err(PathError::ForbiddenSegment);
        }
    }
    Ok(())
}

/// Checks a request's target, taking the HTTP version into account (HTTP/2 and HTTP/3 requests
/// always carry scheme and authority).
pub fn check_request<B>(req: &Request<B>) -> Result<(), PathError> {
    let uri = req.uri();
    let h1 = matches!(
        req.version(),
        Version::HTTP_09 | Version::HTTP_10 | Version::HTTP_11
    );
    if h1 && (uri.scheme().is_some() || uri.authority().is_some()) {
        return Err(PathError::NotOriginForm);
    }
    let target = uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .ok_or(PathError::NotOriginForm)?;
    check_target(target)
}

/// Rejects unclean request targets with 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct PathHygieneLayer;

impl<S> Layer<S> for PathHygieneLayer {
    type Service = PathHygiene<S>;
    fn layer(&self, inner: S) -> Self::Service {
        PathHygiene { inner }
    }
}

/// See [`PathHygieneLayer`].
#[derive(Debug, Clone)]
pub struct PathHygiene<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for PathHygiene<S>
where
    S: Service<Request<B>, Response = http::Response<BoxBody>, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<BoxBody>;
    type Error = std::convert::Infallible;
    type Future = OrInner<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if let Err(e) = check_request(&req) {
            tracing::debug!(error = %e, "rejected request target");
            let resp = error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the request target is not acceptable",
                "bad_path",
            );
            return OrInner::answer(resp);
        }
        OrInner::inner(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_targets_pass() {
        for t in [
            "/",
            "/orders",
            "/orders/1",
            "/orders/",
            "/a?x=%2F..//",
            "/a%20b",
            "/a.b/.c",
        ] {
            assert_eq!(check_target(t), Ok(()), "{t}");
        }
    }

    #[test]
    fn traversal_and_encodings_fail() {
        for t in [
            "/orders/../admin",
            "/orders/./admin",
            "/orders/..",
            "/orders/%2e%2e/admin",
            "/orders/%2E%2E/admin",
            "/orders/.%2e/admin",
            "/orders%2fadmin",
            "/orders%2Fadmin",
            "/orders%5cadmin",
            "/orders%5Cadmin",
            "//orders",
            "/orders//x",
            "/orders\\admin",
            "/orders/..;/admin",
            "/a%00",
            "/a%",
            "/a%zz",
            "/a%252e",
            "orders",
            "*",
        ] {
            assert!(check_target(t).is_err(), "{t}");
        }
        assert_eq!(
            check_target(&format!("/{}", "a".repeat(9000))),
            Err(PathError::TooLong)
        );
    }

    #[test]
    fn absolute_form_rejected_for_http1() {
        let req = Request::builder()
            .uri("http://example.com/orders")
            .body(())
            .expect("request");
        assert_eq!(check_request(&req), Err(PathError::NotOriginForm));
        let req = Request::builder()
            .version(Version::HTTP_2)
            .uri("https://example.com/orders")
            .body(())
            .expect("request");
        assert_eq!(check_request(&req), Ok(()));
    }
}
