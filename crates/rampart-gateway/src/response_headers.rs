//! Response header hygiene: removes `Server`, `X-Powered-By` and hop-by-hop headers from every
//! response, adds `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, and
//! `Strict-Transport-Security` when the connection is TLS.

use std::task::{Context, Poll};

use http::{HeaderValue, Request, header};
use tower::{Layer, Service};

use crate::context::{BoxBody, ConnectionInfo};
use crate::future::{OnResponse, Then};
use crate::identity::remove_hop_by_hop_and;

const X_POWERED_BY: http::HeaderName = http::HeaderName::from_static("x-powered-by");

/// The HSTS value.
pub const HSTS: &str = "max-age=31536000";

/// Applies the response header policy to `resp`.
pub fn apply(resp: &mut http::Response<BoxBody>, tls: bool) {
    let h = resp.headers_mut();
    remove_hop_by_hop_and(h, |n| n == header::SERVER || n == X_POWERED_BY);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
}

/// See the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseHeadersLayer;

impl<S> Layer<S> for ResponseHeadersLayer {
    type Service = ResponseHeaders<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ResponseHeaders { inner }
    }
}

/// See [`ResponseHeadersLayer`].
#[derive(Debug, Clone)]
pub struct ResponseHeaders<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for ResponseHeaders<S>
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
    type Future = Then<S::Future, Harden>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let tls = req
            .extensions()
            .get::<ConnectionInfo>()
            .is_some_and(|c| c.tls);
        Then::new(self.inner.call(req), Harden { tls })
    }
}

/// Applies the response header policy (see [`apply`]).
#[derive(Debug)]
pub struct Harden {
    tls: bool,
}

impl OnResponse for Harden {
    fn on_response(self, response: &mut http::Response<BoxBody>) {
        apply(response, self.tls);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::full;

    #[test]
    fn policy() {
        let mut r = http::Response::new(full("x"));
        r.headers_mut()
            .insert("server", HeaderValue::from_static("nginx"));
        r.headers_mut()
            .insert("x-powered-by", HeaderValue::from_static("php"));
        apply(&mut r, true);
        assert!(r.headers().get("server").is_none());
        assert!(r.headers().get("x-powered-by").is_none());
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_eq!(r.headers()["strict-transport-security"], HSTS);
        let mut r = http::Response::new(full("x"));
        apply(&mut r, false);
        assert!(r.headers().get("strict-transport-security").is_none());
    }
}
