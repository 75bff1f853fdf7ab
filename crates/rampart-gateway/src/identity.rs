//! Identity propagation. On every route, public ones included, the inbound identity headers are
//! removed FIRST (the built-in list, every `x-rampart-*` header, and `strip_headers`), together
//! with hop-by-hop headers; only then are the gateway's own headers added:
//! `X-Rampart-Subject`, `X-Rampart-Client-Id`, `X-Rampart-Scopes`, `X-Rampart-Issuer`,
//! `X-Rampart-Auth`, `X-Forwarded-For` and `X-Forwarded-Proto`. `Authorization` is removed
//! unless the route sets `forward_token`; the API key header (`api_key_header`) is always
//! removed (the gateway adds it to the strip list).

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, header};
use rampart_guard::Principal;
use tower::{Layer, Service};

use crate::connection::{TrustedProxies, canonical};
use crate::context::{BoxBody, ConnectionInfo};
use crate::error::internal;
use crate::future::OrInner;
use crate::header_value::address_value;
use crate::route::Route;

/// Identity headers always removed from inbound requests.
pub const DEFAULT_STRIP: [&str; 8] = [
    "x-user",
    "x-user-id",
    "x-forwarded-user",
    "x-remote-user",
    "x-auth-request-user",
    "x-auth-request-email",
    "x-client-id",
    "x-scopes",
];

/// Prefix of the gateway's own headers; inbound ones are always removed.
pub const RAMPART_PREFIX: &str = "x-rampart-";

/// Hop-by-hop headers (RFC 9110 §7.6.1), plus `Proxy-*` by prefix.
pub const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_RAMPART_SUBJECT: HeaderName = HeaderName::from_static("x-rampart-subject");
const X_RAMPART_CLIENT_ID: HeaderName = HeaderName::from_static("x-rampart-client-id");
const X_RAMPART_SCOPES: HeaderName = HeaderName::from_static("x-rampart-scopes");
const X_RAMPART_ISSUER: HeaderName = HeaderName::from_static("x-rampart-issuer");
const X_RAMPART_AUTH: HeaderName = HeaderName::from_static("x-rampart-auth");
const X_RAMPART_ROLES: HeaderName = HeaderName::from_static("x-rampart-roles");
const X_RAMPART_GROUPS: HeaderName = HeaderName::from_static("x-rampart-groups");

/// [`HOP_BY_HOP`] as header names, parsed once. A `static`, not a `const`: a `const` array
/// was built and dropped again at every use, once per header of every request.
static HOP_BY_HOP_NAMES: [HeaderName; 6] = [
    header::CONNECTION,
    KEEP_ALIVE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including those named in `Connection` and any `Proxy-*`.
pub fn remove_hop_by_hop(h: &mut HeaderMap) {
    remove_hop_by_hop_and(h, |_| false);
}

/// Removes hop-by-hop headers (as [`remove_hop_by_hop`]) and those `also` matches.
///
/// Each header present is looked at once, rather than each name of the lists looked up: a
/// request has a handful of headers, the lists are longer, and every lookup hashes a name.
pub(crate) fn remove_hop_by_hop_and(h: &mut HeaderMap, also: impl Fn(&HeaderName) -> bool) {
    // The names are gathered first (the map cannot change while its keys are read): on the
    // stack for the usual one or two (Authorization, Connection), in a vector beyond that.
    const ON_STACK: usize = 4;
    let mut first: [Option<HeaderName>; ON_STACK] = Default::default();
    let mut more = Vec::new();
    {
        // Names listed in `Connection` are compared as text, without building header names
        // (`keep-alive`, the usual one, is no standard name: building it allocated). The
        // tokens are split once, onto the stack for the usual few.
        let mut tokens = [""; ON_STACK];
        let mut more_tokens = Vec::new();
        let mut count = 0;
        for token in h
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            match tokens.get_mut(count) {
                Some(slot) => *slot = token,
                None => more_tokens.push(token),
            }
            count += 1;
        }
        let listed = |n: &HeaderName| {
            tokens[..count.min(ON_STACK)]
                .iter()
                .chain(&more_tokens)
                .any(|t| t.eq_ignore_ascii_case(n.as_str()))
        };
        let unwanted = |n: &HeaderName| {
            HOP_BY_HOP_NAMES.contains(n) || n.as_str().starts_with("proxy-") || also(n) || listed(n)
        };
        for (i, name) in h.keys().filter(|n| unwanted(n)).enumerate() {
            match first.get_mut(i) {
                Some(slot) => *slot = Some(name.clone()),
                None => more.push(name.clone()),
            }
        }
    }
    for name in first.into_iter().flatten().chain(more) {
        h.remove(name);
    }
}

/// The headers to strip and how to compute `X-Forwarded-For`.
#[derive(Debug, Clone)]
pub struct IdentityLayer {
    strip: Arc<Vec<HeaderName>>,
    trusted: TrustedProxies,
}

impl IdentityLayer {
    /// Strips [`DEFAULT_STRIP`], `x-rampart-*` and `extra`; appends to `X-Forwarded-For` only
    /// for `trusted` peers.
    pub fn new(extra: &[HeaderName], trusted: TrustedProxies) -> Self {
        let mut strip: Vec<HeaderName> = DEFAULT_STRIP
            .iter()
            .map(|s| HeaderName::from_static(s))
            .collect();
        strip.extend(extra.iter().cloned());
        Self {
            strip: Arc::new(strip),
            trusted,
        }
    }

    /// Rewrites `h` for the upstream.
    pub fn rewrite(
        &self,
        h: &mut HeaderMap,
        principal: Option<&Principal>,
        forward_token: bool,
        conn: &ConnectionInfo,
    ) {
        remove_hop_by_hop_and(h, |n| {
            self.strip.contains(n)
                || n.as_str().starts_with(RAMPART_PREFIX)
                || (!forward_token && n == header::AUTHORIZATION)
        });
        let peer = canonical(conn.peer.ip());
        let existing: Vec<&str> = if self.trusted.contains(conn.peer.ip()) {
            h.get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect()
        } else {
            Vec::new()
        };
        let xff = if existing.is_empty() {
            address_value(peer)
        } else {
            HeaderValue::from_str(&format!("{}, {peer}", existing.join(", "))).ok()
        };
        // `insert` replaces every inbound value.
        match xff {
            Some(v) => {
                h.insert(X_FORWARDED_FOR, v);
            }
            None => {
                h.remove(&X_FORWARDED_FOR);
            }
        }
        h.insert(
            X_FORWARDED_PROTO,
            HeaderValue::from_static(if conn.tls { "https" } else { "http" }),
        );
        if let Some(p) = principal {
            let mut add = |name: HeaderName, value: &str| {
                // Values that are not valid header values are left out rather than guessed.
                if let Ok(v) = HeaderValue::from_str(value) {
                    h.insert(name, v);
                }
            };
            add(X_RAMPART_SUBJECT, &p.subject);
            if let Some(c) = &p.client_id {
                add(X_RAMPART_CLIENT_ID, c);
            }
            add(X_RAMPART_ISSUER, &p.issuer);
            // Only when the token has them (a user's); the inbound ones were removed above.
            if !p.roles.is_empty() {
                add(X_RAMPART_ROLES, &p.roles.join(" "));
            }
            if !p.groups.is_empty() {
                add(X_RAMPART_GROUPS, &p.groups.join(" "));
            }
            // The joined scopes become the value without another copy.
            if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(p.scopes.join(" "))) {
                h.insert(X_RAMPART_SCOPES, v);
            }
            h.insert(X_RAMPART_AUTH, HeaderValue::from_static(p.method.as_str()));
        }
    }
}

impl<S> Layer<S> for IdentityLayer {
    type Service = Identity<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Identity {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`IdentityLayer`].
#[derive(Debug, Clone)]
pub struct Identity<S> {
    inner: S,
    layer: IdentityLayer,
}

impl<S, B> Service<Request<B>> for Identity<S>
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

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // Taken out so that the extensions can be read while the headers change.
        let mut headers = std::mem::take(req.headers_mut());
        let ext = req.extensions();
        let (Some(route), Some(conn)) = (ext.get::<Arc<Route>>(), ext.get::<ConnectionInfo>())
        else {
            return OrInner::answer(internal("no_route_context"));
        };
        let principal = ext.get::<Arc<Principal>>().map(|p| &**p);
        if !route.public && principal.is_none() {
            return OrInner::answer(internal("no_principal"));
        }
        self.layer
            .rewrite(&mut headers, principal, route.forward_token, conn);
        *req.headers_mut() = headers;
        OrInner::inner(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_guard::AuthMethod;

    fn principal() -> Principal {
        Principal {
            roles: Vec::new(),
            groups: Vec::new(),
            subject: "alice".into(),
            client_id: Some("app".into()),
            scopes: vec!["a".into(), "b".into()],
            audiences: vec![],
            issuer: "https://iss".into(),
            expires_at: 0,
            token_id: None,
            method: AuthMethod::Jwt,
        }
    }

    fn conn(peer: &str) -> ConnectionInfo {
        ConnectionInfo::new(peer.parse().expect("addr"), true)
    }

    fn spoofed() -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-user", "mallory"),
            ("x-rampart-subject", "mallory"),
            ("x-rampart-other", "1"),
            ("x-tenant", "evil"),
            ("x-forwarded-for", "6.6.6.6"),
            ("authorization", "Bearer t"),
            ("connection", "x-secret"),
            ("x-secret", "1"),
            ("proxy-authorization", "x"),
            ("te", "trailers"),
            ("accept", "json"),
        ] {
            h.append(k, v.parse().expect("value"));
        }
        h
    }

    #[test]
    fn every_name_listed_in_connection_is_removed_whatever_its_case() {
        let mut h = HeaderMap::new();
        h.append("connection", "Keep-Alive, X-A,x-b".parse().expect("value"));
        h.append("connection", " X-C , x-d,,x-e".parse().expect("value"));
        for name in ["keep-alive", "x-a", "x-b", "x-c", "x-d", "x-e", "x-kept"] {
            h.insert(HeaderName::from_static(name), "1".parse().expect("value"));
        }
        remove_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-kept"]);
    }

    #[test]
    fn forwarded_for_of_each_address_family() {
        let l = IdentityLayer::new(&[], TrustedProxies::default());
        for (peer, expected) in [
            ("1.2.3.4:5", "1.2.3.4"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[::ffff:10.0.0.1]:80", "10.0.0.1"),
            (
                "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:1",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
            ),
        ] {
            let mut h = spoofed();
            l.rewrite(&mut h, None, false, &conn(peer));
            assert_eq!(h["x-forwarded-for"], expected, "{peer}");
        }
    }

    #[test]
    fn strips_then_adds() {
        let l = IdentityLayer::new(
            &[HeaderName::from_static("x-tenant")],
            TrustedProxies::default(),
        );
        let mut h = spoofed();
        l.rewrite(&mut h, Some(&principal()), false, &conn("1.2.3.4:5"));
        for gone in [
            "x-user",
            "x-rampart-other",
            "x-tenant",
            "authorization",
            "connection",
            "x-secret",
            "proxy-authorization",
            "te",
        ] {
            assert!(h.get(gone).is_none(), "{gone}");
        }
        assert_eq!(h["x-rampart-subject"], "alice");
        assert_eq!(h["x-rampart-client-id"], "app");
        assert_eq!(h["x-rampart-scopes"], "a b");
        assert_eq!(h["x-rampart-auth"], "jwt");
        assert_eq!(h["x-forwarded-for"], "1.2.3.4");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["accept"], "json");
    }

    #[test]
    fn public_route_strips_and_adds_nothing() {
        let l = IdentityLayer::new(&[], TrustedProxies::default());
        let mut h = spoofed();
        l.rewrite(&mut h, None, true, &conn("1.2.3.4:5"));
        assert!(h.get("x-rampart-subject").is_none());
        assert!(h.get("x-user").is_none());
        assert_eq!(h["authorization"], "Bearer t");
    }

    #[test]
    fn trusted_proxy_appends() {
        let l = IdentityLayer::new(
            &[],
            TrustedProxies::new(vec!["10.0.0.0/8".parse().expect("net")]),
        );
        let mut h = spoofed();
        l.rewrite(&mut h, None, false, &conn("10.1.2.3:5"));
        assert_eq!(h["x-forwarded-for"], "6.6.6.6, 10.1.2.3");
        // A value the proxy declared hop-by-hop is not passed on.
        let mut h = spoofed();
        h.insert("connection", "x-forwarded-for".parse().expect("value"));
        l.rewrite(&mut h, None, false, &conn("10.1.2.3:5"));
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
    }
}
