//! Authentication: `Authorization: Bearer <token>` checked by the [`Authenticator`] for the
//! route's audience and token kinds. Every failure denies (fail closed): missing → 401,
//! bad → 401 `invalid_token`, issuer unavailable (or the check timing out) → 503. Nothing is
//! forwarded on failure. Public routes skip this layer.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Request, StatusCode, header};
use rampart_guard::{AuthError, Authenticator, Principal};
use tower::{Layer, Service};

use crate::context::{BoxBody, BoxFuture, PrincipalFacts};
use crate::error::{error_response, internal};
use crate::route::Route;

/// Longest bearer token accepted, bytes.
pub const MAX_TOKEN_BYTES: usize = 8192;

/// `WWW-Authenticate` for a missing token.
pub const CHALLENGE: &str = "Bearer realm=\"rampart\"";
/// `WWW-Authenticate` for a bad token.
pub const CHALLENGE_INVALID: &str = "Bearer realm=\"rampart\", error=\"invalid_token\"";

/// Extracts the bearer token: exactly one `Authorization` header, scheme `Bearer`
/// (case-insensitive), a bounded token68 value.
pub fn bearer_token(headers: &http::HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthError::Missing)?;
    if values.next().is_some() {
        return Err(AuthError::Malformed);
    }
    let value = value.to_str().map_err(|_| AuthError::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed);
    }
    let token = token.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    if token.is_empty()
        || token.len() > MAX_TOKEN_BYTES
        || body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
    {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

/// The response for an authentication failure.
pub fn auth_error_response(e: &AuthError) -> http::Response<BoxBody> {
    let (status, challenge, error, desc) = match e {
        AuthError::Missing => (
            StatusCode::UNAUTHORIZED,
            Some(CHALLENGE),
            "unauthorized",
            "a bearer token is required",
        ),
        AuthError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "temporarily_unavailable",
            "the token could not be checked; try again later",
        ),
        _ => (
            StatusCode::UNAUTHORIZED,
            Some(CHALLENGE_INVALID),
            "invalid_token",
            "the access token is not valid",
        ),
    };
    let mut resp = error_response(status, error, desc, e.reason());
    if let Some(c) = challenge {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
    }
    resp
}

/// The authentication layer.
#[derive(Clone)]
pub struct AuthnLayer {
    authenticator: Arc<dyn Authenticator>,
    timeout: Duration,
}

impl AuthnLayer {
    /// A layer asking `authenticator`, giving up (503) after `timeout`.
    pub fn new(authenticator: Arc<dyn Authenticator>, timeout: Duration) -> Self {
        Self {
            authenticator,
            timeout,
        }
    }
}

impl<S> Layer<S> for AuthnLayer {
    type Service = Authn<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authn {
            inner,
            authenticator: Arc::clone(&self.authenticator),
            timeout: self.timeout,
        }
    }
}

/// See [`AuthnLayer`].
#[derive(Clone)]
pub struct Authn<S> {
    inner: S,
    authenticator: Arc<dyn Authenticator>,
    timeout: Duration,
}

fn deny(e: AuthError) -> BoxFuture {
    metrics::counter!("rampart_gateway_auth_failures_total", "reason" => e.reason()).increment(1);
    let resp = auth_error_response(&e);
    Box::pin(async move { Ok(resp) })
}

impl<S, B> Service<Request<B>> for Authn<S>
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
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let Some(route) = req.extensions().get::<Arc<Route>>().cloned() else {
            let resp = internal("no_route_context");
            return Box::pin(async move { Ok(resp) });
        };
        // Never trust a principal that did not come from this layer.
        req.extensions_mut().remove::<Arc<Principal>>();
        if route.public {
            return Box::pin(self.inner.call(req));
        }
        let token = match bearer_token(req.headers()) {
            Ok(t) => t.to_owned(),
            Err(e) => return deny(e),
        };
        let accepted = route.accepted;
        if !(accepted.jwt || accepted.paseto || accepted.introspection) {
            // Only `api_key`/`mtls` listed: not available yet.
            return deny(AuthError::NotAccepted);
        }
        let authenticator = Arc::clone(&self.authenticator);
        let timeout = self.timeout;
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let result = tokio::time::timeout(
                timeout,
                authenticator.authenticate(&token, &route.audience, accepted),
            )
            .await
            .unwrap_or(Err(AuthError::Unavailable));
            drop(token);
            let principal = match result {
                Ok(p) => Arc::new(p),
                Err(e) => return deny(e).await,
            };
            let facts = PrincipalFacts {
                subject: principal.subject.clone(),
                client_id: principal.client_id.clone(),
            };
            req.extensions_mut().insert(principal);
            let mut resp = inner.call(req).await?;
            resp.extensions_mut().insert(facts);
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn h(values: &[&str]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for v in values {
            m.append(header::AUTHORIZATION, v.parse().expect("value"));
        }
        m
    }

    #[test]
    fn parses_bearer() {
        assert_eq!(
            bearer_token(&h(&["Bearer abc.def-_~+/=="])),
            Ok("abc.def-_~+/==")
        );
        assert_eq!(bearer_token(&h(&["bEaReR xyz"])), Ok("xyz"));
        assert_eq!(bearer_token(&h(&[])), Err(AuthError::Missing));
        for bad in [
            "Basic abc",
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a,b",
            "Bearer ===",
            "Bearerabc",
        ] {
            assert_eq!(bearer_token(&h(&[bad])), Err(AuthError::Malformed), "{bad}");
        }
        assert_eq!(
            bearer_token(&h(&["Bearer a", "Bearer b"])),
            Err(AuthError::Malformed)
        );
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(bearer_token(&h(&[&long])), Err(AuthError::Malformed));
    }

    #[test]
    fn error_mapping() {
        let r = auth_error_response(&AuthError::Unavailable);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let r = auth_error_response(&AuthError::Expired);
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], CHALLENGE_INVALID);
        let r = auth_error_response(&AuthError::Missing);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], CHALLENGE);
    }
}
