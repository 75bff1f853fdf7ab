//! Authorization: the route's `require_scopes` must all be granted to the principal, else 403
//! `insufficient_scope`. A non-public route without a principal denies (fail closed).

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, StatusCode, header};
use rampart_guard::Principal;
use tower::{Layer, Service};

use crate::context::BoxBody;
use crate::error::{error_response, internal};
use crate::future::OrInner;
use crate::route::Route;

/// The authorization layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthzLayer;

impl<S> Layer<S> for AuthzLayer {
    type Service = Authz<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authz { inner }
    }
}

/// See [`AuthzLayer`].
#[derive(Debug, Clone)]
pub struct Authz<S> {
    inner: S,
}

/// The 403 response for missing scopes.
pub fn insufficient_scope(required: &[String]) -> http::Response<BoxBody> {
    let mut resp = error_response(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        "the access token lacks a required scope",
        "insufficient_scope",
    );
    let scope = required.join(" ");
    let challenge = format!(
        "Bearer realm=\"rampart\", error=\"insufficient_scope\", scope=\"{}\"",
        scope.replace(['"', '\\'], "")
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

impl<S, B> Service<Request<B>> for Authz<S>
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
        let Some(route) = req.extensions().get::<Arc<Route>>() else {
            let resp = internal("no_route_context");
            return OrInner::answer(resp);
        };
        if !route.public {
            let granted = req
                .extensions()
                .get::<Arc<Principal>>()
                .map(|p| p.has_scopes(&route.require_scopes));
            match granted {
                Some(true) => {}
                Some(false) => {
                    metrics::counter!("rampart_gateway_auth_failures_total",
                        "reason" => "insufficient_scope")
                    .increment(1);
                    let resp = insufficient_scope(&route.require_scopes);
                    return OrInner::answer(resp);
                }
                None => {
                    let resp = internal("no_principal");
                    return OrInner::answer(resp);
                }
            }
        }
        OrInner::inner(self.inner.call(req))
    }
}
