//! Types that travel between the layers as request or response extensions.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;

/// The body type every response of the gateway has.
pub type BoxBody =
    http_body_util::combinators::UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;
/// The body type requests have inside the pipeline (after the entry conversion).
pub type ReqBody = BoxBody;
/// A boxed error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The future every pipeline service returns.
pub type BoxFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<http::Response<BoxBody>, std::convert::Infallible>>
            + Send,
    >,
>;

/// The connection a request came on. The listener (the binary) MUST insert it into every
/// request's extensions; without it the gateway answers 500 (fail closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The identity of the client certificate the TLS handshake VERIFIED (first URI SAN, else
    /// first DNS SAN, else subject CN; see `rampart_pki::client_identity`), if any. Only a
    /// listener that verifies client certificates may set it: routes accepting `mtls` trust
    /// it as the caller's identity.
    pub client_cert: Option<String>,
}

impl ConnectionInfo {
    /// A connection from `peer` without a client certificate.
    pub fn new(peer: SocketAddr, tls: bool) -> Self {
        Self {
            peer,
            tls,
            client_cert: None,
        }
    }

    /// The same connection with the verified client certificate identity `identity`.
    pub fn with_client_cert(mut self, identity: impl Into<String>) -> Self {
        self.client_cert = Some(identity.into());
        self
    }
}

/// A fingerprint of the API key the request was authenticated with (request extension, set by
/// the authentication layer): a SHA-256 hex prefix, never the key itself. Used as the
/// `api_key` rate-limit key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyFingerprint(pub String);

/// The request's correlation ids (request extension, set by the request-id layer and taken by
/// the audit layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestIds {
    /// The generated `X-Request-Id`.
    pub request_id: String,
    /// The W3C `traceparent` (kept if valid, else generated).
    pub traceparent: String,
}

/// The client address after applying the trusted-proxy rules (request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The matched route's id (response extension, for audit and metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteId(pub Arc<str>);

/// Who was authenticated (response extension, for audit): the principal the request was
/// authenticated as, shared with the request's extension and the token cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalFacts(pub Arc<rampart_guard::Principal>);

/// Whether access was granted (response extension, for audit and metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `true` when every check passed and the request was sent upstream.
    pub allowed: bool,
    /// A short stable label (e.g. `invalid`, `insufficient_scope`, `upstream_timeout`).
    pub reason: &'static str,
    /// The upstream tried last, if any.
    pub upstream: Option<Arc<str>>,
}

impl Outcome {
    /// A denial for `reason`.
    pub fn deny(reason: &'static str) -> Self {
        Self {
            allowed: false,
            reason,
            upstream: None,
        }
    }
}
