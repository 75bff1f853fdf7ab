//! Request body bound: a `Content-Length` over the limit is rejected at once with 413; other
//! bodies are wrapped so that reading past the limit fails (the proxy turns that into 413).

use std::task::{Context, Poll};

use http::{Request, StatusCode, header};
use http_body::Body as _;
use http_body_util::{BodyExt, Limited};
use tower::{Layer, Service};

use crate::context::{BoxBody, ReqBody};
use crate::error::error_response;
use crate::future::OrInner;

/// The 413 response.
pub fn too_large() -> http::Response<BoxBody> {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body exceeds the limit",
        "body_too_large",
    )
}

/// See the module docs.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimitLayer {
    max: u64,
}

impl BodyLimitLayer {
    /// A limit of `max` bytes.
    pub fn new(max: u64) -> Self {
        Self { max }
    }
}

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BodyLimit {
            inner,
            max: self.max,
        }
    }
}

/// See [`BodyLimitLayer`].
#[derive(Debug, Clone)]
pub struct BodyLimit<S> {
    inner: S,
    max: u64,
}

impl<S> Service<Request<ReqBody>> for BodyLimit<S>
where
    S: Service<
            Request<ReqBody>,
            Response = http::Response<BoxBody>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<BoxBody>;
    type Error = std::convert::Infallible;
    type Future = OrInner<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let mut lengths = req.headers().get_all(header::CONTENT_LENGTH).iter();
        let declared = match (lengths.next(), lengths.next()) {
            (None, _) => None,
            (Some(v), None) => match v.to_str().ok().and_then(|s| s.parse::<u64>().ok()) {
                Some(n) => Some(n),
                None => Some(u64::MAX),
            },
            (Some(_), Some(_)) => Some(u64::MAX),
        };
        if declared.is_some_and(|n| n > self.max) {
            let resp = too_large();
            return OrInner::answer(resp);
        }
        // A request without a body (most GETs) keeps it: nothing to bound, no allocation.
        if req.body().is_end_stream() {
            return OrInner::inner(self.inner.call(req));
        }
        let max = usize::try_from(self.max).unwrap_or(usize::MAX);
        let req = req.map(|b| Limited::new(b, max).boxed_unsync());
        OrInner::inner(self.inner.call(req))
    }
}
