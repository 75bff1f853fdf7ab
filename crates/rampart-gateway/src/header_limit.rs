//! Request head bounds, checked again inside the gateway (the listener should enforce them
//! first): more than `max_headers` header fields, or more than `max_header_bytes` of names and
//! values, is refused with 431.

use std::task::{Context, Poll};

use http::{Request, StatusCode};
use tower::{Layer, Service};

use crate::context::BoxBody;
use crate::error::error_response;
use crate::future::OrInner;

/// See the module docs.
#[derive(Debug, Clone, Copy)]
pub struct HeaderLimitLayer {
    max_headers: usize,
    max_bytes: usize,
}

impl HeaderLimitLayer {
    /// At most `max_headers` fields and `max_bytes` bytes of names and values.
    pub fn new(max_headers: usize, max_bytes: usize) -> Self {
        Self {
            max_headers,
            max_bytes,
        }
    }

    /// Whether `headers` is within the bounds.
    pub fn within(&self, headers: &http::HeaderMap) -> bool {
        headers.len() <= self.max_headers
            && headers
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len() + 4)
                .sum::<usize>()
                <= self.max_bytes
    }
}

impl<S> Layer<S> for HeaderLimitLayer {
    type Service = HeaderLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        HeaderLimit {
            inner,
            limits: *self,
        }
    }
}

/// See [`HeaderLimitLayer`].
#[derive(Debug, Clone)]
pub struct HeaderLimit<S> {
    inner: S,
    limits: HeaderLimitLayer,
}

impl<S, B> Service<Request<B>> for HeaderLimit<S>
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
        if !self.limits.within(req.headers()) {
            let resp = error_response(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request_header_fields_too_large",
                "the request has too many or too large header fields",
                "headers_too_large",
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
    fn bounds() {
        let l = HeaderLimitLayer::new(2, 40);
        let mut h = http::HeaderMap::new();
        h.append("a", "1".parse().expect("v"));
        h.append("a", "2".parse().expect("v"));
        assert!(l.within(&h));
        h.append("b", "3".parse().expect("v"));
        assert!(!l.within(&h));
        let mut h = http::HeaderMap::new();
        h.append("a", "x".repeat(50).parse().expect("v"));
        assert!(!l.within(&h));
    }
}
