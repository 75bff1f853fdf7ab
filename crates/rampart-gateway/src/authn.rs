//! Authentication, by the credential kinds the route lists:
//!
//! - `jwt`/`paseto`/`introspection`: `Authorization: Bearer <token>` checked by the
//!   [`Authenticator`] for the route's audience and those token kinds;
//! - `api_key`: the key in the configured header (default `X-API-Key`), an opaque credential
//!   checked by the [`Authenticator`] through introspection only; the principal's method is
//!   [`AuthMethod::ApiKey`];
//! - `mtls`: the identity of the client certificate the listener verified
//!   ([`ConnectionInfo::client_cert`]); the principal has that identity as subject and
//!   client id, no scopes, the route's audience, issuer `mtls`.
//!
//! One credential is used per request, by precedence: a present `Authorization` header when
//! the route accepts a token kind, else a present API key header when it accepts `api_key`,
//! else the client certificate when it accepts `mtls`. A credential that fails is never
//! replaced by a weaker one. Every failure denies (fail closed): missing → 401, bad → 401
//! `invalid_token`, issuer unavailable (or the check timing out) → 503. Nothing is forwarded
//! on failure. Public routes skip this layer.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Request, StatusCode, header};
use rampart_guard::{Accepted, AuthError, AuthMethod, Authenticator, Principal};
use tower::{Layer, Service};

use crate::context::{ApiKeyFingerprint, BoxBody, ConnectionInfo, PrincipalFacts};
use crate::error::{error_response, internal};
use crate::future::{Decide, InsertExtension};
use crate::route::Route;

/// Longest bearer token accepted, bytes.
pub const MAX_TOKEN_BYTES: usize = 8192;

/// Longest API key accepted, bytes.
pub const MAX_API_KEY_BYTES: usize = 256;

/// The default API key header.
pub const DEFAULT_API_KEY_HEADER: &str = "x-api-key";

/// Issuer of principals authenticated by a client certificate.
pub const MTLS_ISSUER: &str = "mtls";

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
    let value = value.as_bytes();
    let space = value
        .iter()
        .position(|&b| b == b' ')
        .ok_or(AuthError::Malformed)?;
    let (scheme, token) = (&value[..space], &value[space + 1..]);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(AuthError::Malformed);
    }
    let token = &token[token.iter().take_while(|&&b| b == b' ').count()..];
    let body = &token[..token.len() - token.iter().rev().take_while(|&&b| b == b'=').count()];
    // b64token (RFC 6750 section 2.1): ASCII only, so the check also proves UTF-8.
    if token.is_empty()
        || token.len() > MAX_TOKEN_BYTES
        || body.is_empty()
        || !rampart_guard::all_bytes(body, |b| {
            b.is_ascii_alphanumeric()
                | (b == b'-')
                | (b == b'.')
                | (b == b'_')
                | (b == b'~')
                | (b == b'+')
                | (b == b'/')
        })
    {
        return Err(AuthError::Malformed);
    }
    std::str::from_utf8(token).map_err(|_| AuthError::Malformed)
}

/// Extracts the API key from the header `name`: exactly one, 1 to [`MAX_API_KEY_BYTES`]
/// visible ASCII characters.
pub fn api_key<'h>(headers: &'h http::HeaderMap, name: &HeaderName) -> Result<&'h str, AuthError> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(AuthError::Missing)?;
    if values.next().is_some() {
        return Err(AuthError::Malformed);
    }
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_API_KEY_BYTES
        || !rampart_guard::all_bytes(bytes, |b| b.is_ascii_graphic())
    {
        return Err(AuthError::Malformed);
    }
    std::str::from_utf8(bytes).map_err(|_| AuthError::Malformed)
}

/// The fingerprint of an API key: the first 128 bits of its SHA-256, hex. Safe to use as a
/// rate-limit key or in logs; the key cannot be recovered from it.
pub fn api_key_fingerprint(key: &str) -> String {
    use std::fmt::Write as _;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    digest.as_ref()[..16]
        .iter()
        .fold(String::with_capacity(32), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The principal of a verified client certificate identity, for a route of `audience`.
pub fn mtls_principal(identity: &str, audience: &str) -> Principal {
    Principal {
        roles: Vec::new(),
        groups: Vec::new(),
        subject: identity.to_owned(),
        client_id: Some(identity.to_owned()),
        scopes: Vec::new(),
        audiences: vec![audience.to_owned()],
        issuer: MTLS_ISSUER.to_owned(),
        // Bounded by the certificate's validity, checked at the handshake.
        expires_at: i64::MAX,
        token_id: None,
        method: AuthMethod::Mtls,
    }
}

/// The credential chosen for a request.
enum Credential {
    Token(String),
    ApiKey(String),
    Certificate(String),
}

impl Credential {
    /// The token, the key or the certificate identity.
    fn secret(&self) -> &str {
        match self {
            Credential::Token(s) | Credential::ApiKey(s) | Credential::Certificate(s) => s,
        }
    }
}

/// Picks the credential (see the module docs for the precedence).
fn credential(
    headers: &http::HeaderMap,
    conn: Option<&ConnectionInfo>,
    route: &Route,
    api_key_header: &HeaderName,
) -> Result<Credential, AuthError> {
    let a = route.accepted;
    let accepts_token = a.jwt || a.paseto || a.introspection;
    if accepts_token && headers.contains_key(header::AUTHORIZATION) {
        return bearer_token(headers).map(|t| Credential::Token(t.to_owned()));
    }
    if route.api_key && headers.contains_key(api_key_header) {
        return api_key(headers, api_key_header).map(|k| Credential::ApiKey(k.to_owned()));
    }
    if route.mtls
        && let Some(identity) = conn.and_then(|c| c.client_cert.as_deref())
    {
        return Ok(Credential::Certificate(identity.to_owned()));
    }
    if accepts_token || route.api_key || route.mtls {
        Err(AuthError::Missing)
    } else {
        Err(AuthError::NotAccepted)
    }
}

/// The response for an authentication failure.
pub fn auth_error_response(e: &AuthError) -> http::Response<BoxBody> {
    let (status, challenge, error, desc) = match e {
        AuthError::Missing => (
            StatusCode::UNAUTHORIZED,
            Some(CHALLENGE),
            "unauthorized",
            "credentials are required",
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
    api_key_header: HeaderName,
}

impl AuthnLayer {
    /// A layer asking `authenticator`, giving up (503) after `timeout`; API keys are read
    /// from [`DEFAULT_API_KEY_HEADER`].
    pub fn new(authenticator: Arc<dyn Authenticator>, timeout: Duration) -> Self {
        Self {
            authenticator,
            timeout,
            api_key_header: HeaderName::from_static(DEFAULT_API_KEY_HEADER),
        }
    }

    /// Reads API keys from the header `name` instead.
    pub fn api_key_header(mut self, name: HeaderName) -> Self {
        self.api_key_header = name;
        self
    }
}

impl<S> Layer<S> for AuthnLayer {
    type Service = Authn<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authn {
            inner,
            authenticator: Arc::clone(&self.authenticator),
            timeout: self.timeout,
            api_key_header: self.api_key_header.clone(),
        }
    }
}

/// See [`AuthnLayer`].
#[derive(Clone)]
pub struct Authn<S> {
    inner: S,
    authenticator: Arc<dyn Authenticator>,
    timeout: Duration,
    api_key_header: HeaderName,
}

/// Credential kinds for a key in the API-key header. An API key is an opaque credential:
/// introspection only, so a JWT or PASETO token in the key header is not accepted as a key.
const API_KEY_ONLY: Accepted = Accepted {
    jwt: false,
    paseto: false,
    introspection: false,
    api_key: true,
};

/// The future of the authentication layer: a denial, the inner service's future (public
/// routes; credentials decided without waiting), or a boxed wait for the authenticator.
pub type AuthnFuture<F> = Decide<F, InsertExtension<PrincipalFacts>>;

fn deny<F>(e: AuthError) -> AuthnFuture<F> {
    metrics::counter!("rampart_gateway_auth_failures_total", "reason" => e.reason()).increment(1);
    Decide::answer(auth_error_response(&e))
}

/// Passes the request on as `principal`, authenticated by `cred` (consumed: the credential
/// is not kept while the upstream answers).
fn admit<S, B>(
    mut req: Request<B>,
    cred: Credential,
    mut principal: Arc<Principal>,
    inner: &mut S,
) -> AuthnFuture<S::Future>
where
    S: Service<Request<B>, Response = http::Response<BoxBody>, Error = std::convert::Infallible>,
{
    if let Credential::ApiKey(key) = cred {
        if principal.method != AuthMethod::ApiKey {
            Arc::make_mut(&mut principal).method = AuthMethod::ApiKey;
        }
        req.extensions_mut()
            .insert(ApiKeyFingerprint(api_key_fingerprint(&key)));
    }
    let facts = PrincipalFacts(Arc::clone(&principal));
    req.extensions_mut().insert(principal);
    Decide::then(inner.call(req), InsertExtension(Some(facts)))
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
    type Future = AuthnFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let Some(route) = req.extensions().get::<Arc<Route>>().cloned() else {
            return Decide::answer(internal("no_route_context"));
        };
        // Never trust a principal that did not come from this layer.
        req.extensions_mut().remove::<Arc<Principal>>();
        req.extensions_mut().remove::<ApiKeyFingerprint>();
        if route.public {
            return Decide::inner(self.inner.call(req));
        }
        let cred = match credential(
            req.headers(),
            req.extensions().get::<ConnectionInfo>(),
            &route,
            &self.api_key_header,
        ) {
            Ok(c) => c,
            Err(e) => return deny(e),
        };
        let accepted = match &cred {
            Credential::Certificate(identity) => {
                let principal = Arc::new(mtls_principal(identity, &route.audience));
                return admit(req, cred, principal, &mut self.inner);
            }
            Credential::Token(_) => route.accepted,
            Credential::ApiKey(_) => API_KEY_ONLY,
        };
        // Most requests carry a token verified before: no wait, no timer, no allocation.
        if let Some(result) =
            self.authenticator
                .authenticate_now(cred.secret(), &route.audience, accepted)
        {
            return match result {
                Ok(principal) => admit(req, cred, principal, &mut self.inner),
                Err(e) => deny(e),
            };
        }
        let authenticator = Arc::clone(&self.authenticator);
        let timeout = self.timeout;
        // The clone-and-swap of tower: `self.inner` was made ready for this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Decide::waiting(Box::pin(async move {
            let result = tokio::time::timeout(
                timeout,
                authenticator.authenticate(cred.secret(), &route.audience, accepted),
            )
            .await
            .unwrap_or(Err(AuthError::Unavailable));
            match result {
                Ok(principal) => admit(req, cred, principal, &mut inner).await,
                Err(e) => deny::<S::Future>(e).await,
            }
        }))
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
            "Bearer \tabc",
            "Bearer abc=d",
        ] {
            assert_eq!(bearer_token(&h(&[bad])), Err(AuthError::Malformed), "{bad}");
        }
        assert_eq!(bearer_token(&h(&["Bearer   a="])), Ok("a="));
        // Bytes outside ASCII, in a block of its own and inside a long token.
        let mut headers = HeaderMap::new();
        for value in [
            &b"Bearer ab\xc3\xa9"[..],
            &[b"Bearer ".as_slice(), &[b'a'; 130], b"\xff"].concat(),
        ] {
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_bytes(value).expect("value"),
            );
            assert_eq!(bearer_token(&headers), Err(AuthError::Malformed));
        }
        assert_eq!(
            bearer_token(&h(&["Bearer a", "Bearer b"])),
            Err(AuthError::Malformed)
        );
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(bearer_token(&h(&[&long])), Err(AuthError::Malformed));
    }

    #[test]
    fn parses_api_key() {
        let name = HeaderName::from_static(DEFAULT_API_KEY_HEADER);
        let with = |values: &[&[u8]]| {
            let mut m = HeaderMap::new();
            for v in values {
                m.append(&name, HeaderValue::from_bytes(v).expect("value"));
            }
            m
        };
        assert_eq!(
            api_key(&with(&[b"rk_abc-._~+/="]), &name),
            Ok("rk_abc-._~+/=")
        );
        assert_eq!(api_key(&with(&[]), &name), Err(AuthError::Missing));
        let long = "k".repeat(MAX_API_KEY_BYTES + 1);
        let max = "k".repeat(MAX_API_KEY_BYTES);
        assert_eq!(api_key(&with(&[max.as_bytes()]), &name), Ok(max.as_str()));
        for bad in [
            b"".as_slice(),
            b"rk a",
            b"rk\ta",
            b"rk_\xc3\xa9",
            long.as_bytes(),
        ] {
            assert_eq!(
                api_key(&with(&[bad]), &name),
                Err(AuthError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            api_key(&with(&[b"rk_a", b"rk_b"]), &name),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn fingerprint_is_a_hash_prefix() {
        let f = api_key_fingerprint("rk_secret");
        assert_eq!(f.len(), 32);
        assert!(f.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!f.contains("secret"));
        assert_eq!(f, api_key_fingerprint("rk_secret"));
        assert_ne!(f, api_key_fingerprint("rk_secret2"));
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223...
        assert_eq!(
            api_key_fingerprint("abc"),
            "ba7816bf8f01cfea414140de5dae2223"
        );
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
