//! Correlation ids: a fresh `X-Request-Id` for every request (inbound ones are replaced), and
//! the W3C `traceparent` kept when valid or generated. The id is echoed on the response.

use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue, Request};
use tower::{Layer, Service};

use crate::context::{BoxBody, RequestIds};
use crate::future::{OnResponse, Then};

/// `X-Request-Id`.
pub const X_REQUEST_ID: &str = "x-request-id";
/// `traceparent`.
pub const TRACEPARENT: &str = "traceparent";

const X_REQUEST_ID_NAME: HeaderName = HeaderName::from_static(X_REQUEST_ID);
const TRACEPARENT_NAME: HeaderName = HeaderName::from_static(TRACEPARENT);

/// Appends the low `digits` (at most 32) hex digits of `n`, zero-padded (without `format!`
/// or a `char` at a time: this runs twice per request).
fn push_hex(out: &mut String, n: u128, digits: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = digits.min(32);
    let mut buf = [0u8; 32];
    for (i, b) in buf[..digits].iter_mut().enumerate() {
        *b = DIGITS[((n >> (4 * (digits - 1 - i))) & 0xf) as usize];
    }
    // Always ASCII.
    out.push_str(std::str::from_utf8(&buf[..digits]).unwrap_or_default());
}

/// A new random request id (32 hex digits).
pub fn new_request_id() -> String {
    let mut out = String::with_capacity(32);
    push_hex(&mut out, fastrand::u128(..), 32);
    out
}

/// Whether `v` is a valid version-00 `traceparent`.
pub fn valid_traceparent(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    let [version, trace, parent, flags] = parts.as_slice() else {
        return false;
    };
    let is_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    *version == "00"
        && is_hex(trace, 32)
        && is_hex(parent, 16)
        && is_hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0')
}

/// A new `traceparent` (not sampled).
pub fn new_traceparent() -> String {
    let trace = fastrand::u128(1..);
    let parent = fastrand::u64(1..);
    let mut out = String::with_capacity(55);
    out.push_str("00-");
    push_hex(&mut out, trace, 32);
    out.push('-');
    push_hex(&mut out, u128::from(parent), 16);
    out.push_str("-00");
    out
}

/// Assigns [`RequestIds`], sets them on the request, echoes `X-Request-Id` on the response.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestId<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestId { inner }
    }
}

/// See [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct RequestId<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for RequestId<S>
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
    type Future = Then<S::Future, EchoRequestId>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let request_id = new_request_id();
        let mut values = req.headers().get_all(&TRACEPARENT_NAME).iter();
        let traceparent = match (values.next(), values.next()) {
            (Some(v), None) => v
                .to_str()
                .ok()
                .filter(|s| valid_traceparent(s))
                .map(str::to_owned),
            _ => None,
        }
        .unwrap_or_else(new_traceparent);
        let id_value = HeaderValue::from_str(&request_id).ok();
        let headers = req.headers_mut();
        headers.remove(&X_REQUEST_ID_NAME);
        headers.remove(&TRACEPARENT_NAME);
        if let Some(v) = &id_value {
            headers.insert(X_REQUEST_ID_NAME, v.clone());
        }
        if let Ok(v) = HeaderValue::from_str(&traceparent) {
            headers.insert(TRACEPARENT_NAME, v);
        }
        req.extensions_mut().insert(RequestIds {
            request_id,
            traceparent,
        });
        Then::new(self.inner.call(req), EchoRequestId(id_value))
    }
}

/// Puts the request's `X-Request-Id` on the response.
#[derive(Debug)]
pub struct EchoRequestId(Option<HeaderValue>);

impl OnResponse for EchoRequestId {
    fn on_response(self, response: &mut http::Response<BoxBody>) {
        if let Some(v) = self.0 {
            response.headers_mut().insert(X_REQUEST_ID_NAME, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_validation() {
        assert!(valid_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent(
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent("garbage"));
        assert!(valid_traceparent(&new_traceparent()));
        assert_eq!(new_request_id().len(), 32);
        let hex = |n, digits| {
            let mut out = String::from("x");
            push_hex(&mut out, n, digits);
            out
        };
        assert_eq!(hex(0xab, 4), "x00ab");
        assert_eq!(hex(0x1234_5678_9abc_def0, 16), "x123456789abcdef0");
        assert_eq!(hex(u128::MAX, 32), format!("x{}", "f".repeat(32)));
    }
}
