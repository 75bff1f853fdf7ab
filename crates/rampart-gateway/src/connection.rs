//! Connection facts: requires the listener's [`ConnectionInfo`] (fail closed without it) and
//! derives the [`ClientIp`] from the peer and `X-Forwarded-For` from trusted proxies only.

use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use ipnet::IpNet;
use tower::{Layer, Service};

use crate::context::{BoxBody, ClientIp, ConnectionInfo};
use crate::error::internal;
use crate::future::OrInner;

const X_FORWARDED_FOR: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");

/// The set of trusted proxy networks.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

impl TrustedProxies {
    /// From parsed networks.
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(Arc::new(nets))
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client address: the peer, unless the peer is trusted, in which case the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy (at most 32 entries are read).
    pub fn client_ip(&self, peer: IpAddr, xff: &[&str]) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        let entries = xff
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for entry in entries.iter().rev().take(32) {
            match entry.parse::<IpAddr>() {
                Ok(ip) => {
                    client = canonical(ip);
                    if !self.contains(client) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }
}

/// Maps IPv4-mapped IPv6 addresses to IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct ConnectionLayer {
    trusted: TrustedProxies,
}

impl ConnectionLayer {
    /// A layer trusting `X-Forwarded-For` from `trusted`.
    pub fn new(trusted: TrustedProxies) -> Self {
        Self { trusted }
    }
}

impl<S> Layer<S> for ConnectionLayer {
    type Service = Connection<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Connection {
            inner,
            trusted: self.trusted.clone(),
        }
    }
}

/// See [`ConnectionLayer`].
#[derive(Debug, Clone)]
pub struct Connection<S> {
    inner: S,
    trusted: TrustedProxies,
}

impl<S, B> Service<Request<B>> for Connection<S>
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
        let Some(peer) = req
            .extensions()
            .get::<ConnectionInfo>()
            .map(|c| c.peer.ip())
        else {
            tracing::error!("ConnectionInfo extension missing: the listener must insert it");
            let resp = internal("no_connection_info");
            return OrInner::answer(resp);
        };
        let xff: Vec<&str> = req
            .headers()
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let ip = self.trusted.client_ip(peer, &xff);
        req.extensions_mut().insert(ClientIp(ip));
        OrInner::inner(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TrustedProxies {
        TrustedProxies::new(vec!["10.0.0.0/8".parse().expect("net")])
    }

    #[test]
    fn untrusted_peer_ignores_xff() {
        let peer: IpAddr = "203.0.113.9".parse().expect("ip");
        assert_eq!(tp().client_ip(peer, &["1.2.3.4"]), peer);
    }

    #[test]
    fn trusted_peer_uses_rightmost_untrusted() {
        let peer: IpAddr = "10.0.0.1".parse().expect("ip");
        assert_eq!(
            tp().client_ip(peer, &["6.6.6.6, 1.2.3.4, 10.0.0.2"]),
            "1.2.3.4".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(tp().client_ip(peer, &[]), peer);
        assert_eq!(tp().client_ip(peer, &["junk"]), peer);
    }
}
