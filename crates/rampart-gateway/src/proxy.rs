//! The upstream call: pooled HTTP/1.1 connections ([`crate::upstream_conn`]) to `http://` upstreams and,
//! with `[gateway.upstream_tls]`, to `https://` ones (rustls: TLS 1.2/1.3, certificates verified
//! against that CA bundle only, an optional client certificate for mutual TLS), round robin
//! over the route's upstreams, skipping upstreams that are unhealthy:
//!
//! - passive health: an upstream whose connection fails is ejected for [`EJECT_FOR`];
//! - active health (a route's `health_check`, probed by [`crate::health`]): an upstream marked
//!   down gets no traffic until it is marked up again.
//!
//! When every upstream of a route is unhealthy they are tried anyway (a guess beats a certain
//! 502). The health state is a few atomics per upstream: choosing an upstream takes no lock and
//! allocates nothing.
//!
//! Failures never leak internals: connection and protocol errors → 502, no response head within
//! `upstream_timeout` → 504, a body over the limit → 413. Idempotent requests (GET, HEAD,
//! OPTIONS, PUT, DELETE) without a body are retried once on another upstream, and only after a
//! connection error (requests with a body are not retried: the body is streamed, not buffered).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, StatusCode, Uri, Version};
use http_body::Body;
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::Service;

use crate::body_limit::too_large;
use crate::config::{ClientTlsFiles, ConfigError, HealthCheckConfig, RouteConfig};
use crate::context::{BoxBody, BoxError, BoxFuture, Outcome, ReqBody};
use crate::error::{error_response, internal};
use crate::route::Route;
use crate::upstream_conn::{SendError, UpstreamConnections};

/// How long an upstream whose connection failed is skipped.
pub const EJECT_FOR: Duration = Duration::from_secs(10);

/// Milliseconds since a process-wide epoch: the clock of the atomic health state (so state can
/// be copied from one pipeline to the next).
pub(crate) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Active health of an upstream, as stored in [`Upstream::health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Health {
    /// Not probed yet (or the route has no health check): takes traffic.
    Unknown = 0,
    /// The last probes succeeded.
    Up = 1,
    /// Marked down by the probes: no traffic while another upstream is usable.
    Down = 2,
}

impl Health {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Health::Up,
            2 => Health::Down,
            _ => Health::Unknown,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Upstream {
    scheme: Scheme,
    authority: Authority,
    base_path: String,
    /// `http://host:port`, for logs, audit records and metrics.
    pub(crate) label: Arc<str>,
    /// Passive ejection: skipped until this time ([`now_ms`]); 0 = not ejected.
    ejected_until: AtomicU64,
    /// Active health ([`Health`] as `u8`).
    health: AtomicU8,
    /// Consecutive successful probes (written by the route's health checker only).
    successes: AtomicU32,
    /// Consecutive failed probes (written by the route's health checker only).
    failures: AtomicU32,
    /// Pooled connections, shared by the traffic and the health checks.
    pub(crate) connections: Arc<UpstreamConnections>,
}

impl Upstream {
    /// Parses an upstream URL; `https://` only when `tls` (the gateway has an upstream TLS
    /// configuration); connections are opened with `connector`.
    fn parse(
        key: &str,
        url: &str,
        tls: bool,
        connector: &HttpsConnector<HttpConnector>,
    ) -> Result<Self, ConfigError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| ConfigError::new(key, "not a valid URL"))?;
        let scheme = match uri.scheme() {
            Some(s) if *s == Scheme::HTTP => Scheme::HTTP,
            Some(s) if *s == Scheme::HTTPS && tls => Scheme::HTTPS,
            Some(s) if *s == Scheme::HTTPS => {
                return Err(ConfigError::new(
                    key,
                    "https:// upstreams need [gateway.upstream_tls] with ca_file",
                ));
            }
            _ => return Err(ConfigError::new(key, "must be an http:// or https:// URL")),
        };
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| ConfigError::new(key, "URL must have a host"))?;
        let target = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|_| ConfigError::new(key, "not a valid URL"))?;
        let host = http::HeaderValue::from_str(authority.as_str())
            .map_err(|_| ConfigError::new(key, "not a valid host"))?;
        Ok(Self {
            connections: Arc::new(UpstreamConnections::new(target, host, connector.clone())),
            label: Arc::from(format!("{scheme}://{authority}")),
            scheme,
            authority,
            base_path: uri.path().trim_end_matches('/').to_owned(),
            ejected_until: AtomicU64::new(0),
            health: AtomicU8::new(Health::Unknown as u8),
            successes: AtomicU32::new(0),
            failures: AtomicU32::new(0),
        })
    }

    /// Whether the upstream takes traffic at `now` ([`now_ms`]): not marked down by the health
    /// check and not ejected.
    fn healthy(&self, now: u64) -> bool {
        self.health() != Health::Down && self.ejected_until.load(Ordering::Relaxed) <= now
    }

    fn eject(&self, now: u64) {
        let until = now.saturating_add(u64::try_from(EJECT_FOR.as_millis()).unwrap_or(u64::MAX));
        self.ejected_until.store(until, Ordering::Relaxed);
    }

    pub(crate) fn health(&self) -> Health {
        Health::from_u8(self.health.load(Ordering::Relaxed))
    }

    /// Records one probe result under `hc`'s thresholds; returns the new state when it changed.
    /// Called only by the route's health checker (one writer).
    pub(crate) fn record_probe(&self, ok: bool, hc: &HealthCheckConfig) -> Option<Health> {
        let (streak, other) = if ok {
            (&self.successes, &self.failures)
        } else {
            (&self.failures, &self.successes)
        };
        other.store(0, Ordering::Relaxed);
        let n = streak.load(Ordering::Relaxed).saturating_add(1);
        streak.store(n, Ordering::Relaxed);
        let current = self.health();
        let next = match (current, ok) {
            (Health::Unknown, true) => Health::Up,
            (Health::Unknown, false) => Health::Down,
            (Health::Down, true) if n >= hc.healthy_after => Health::Up,
            (Health::Up, false) if n >= hc.unhealthy_after => Health::Down,
            (state, _) => state,
        };
        if next == current {
            return None;
        }
        self.health.store(next as u8, Ordering::Relaxed);
        Some(next)
    }

    /// Takes over the state of the same upstream in a previous pipeline.
    fn inherit(&self, previous: &Upstream, with_active: bool) {
        self.ejected_until.store(
            previous.ejected_until.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        if with_active {
            for (mine, theirs) in [
                (&self.successes, &previous.successes),
                (&self.failures, &previous.failures),
            ] {
                mine.store(theirs.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            self.health
                .store(previous.health.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// The request target on this upstream, in origin form (`/base/path?query`).
    pub(crate) fn uri(&self, pq: Option<&PathAndQuery>) -> Option<Uri> {
        let path_and_query = match pq {
            // Without a base path the request's own (shared, already parsed) target is reused.
            Some(pq) if self.base_path.is_empty() => pq.clone(),
            _ => {
                let pq = pq.map_or("/", PathAndQuery::as_str);
                PathAndQuery::try_from(format!("{}{pq}", self.base_path)).ok()?
            }
        };
        Some(Uri::from(path_and_query))
    }
}

/// The upstreams of one route.
#[derive(Debug)]
pub(crate) struct Pool {
    pub(crate) upstreams: Vec<Upstream>,
    next: AtomicUsize,
    /// The route's active health check, with its probe path parsed.
    pub(crate) health_check: Option<(HealthCheckConfig, PathAndQuery)>,
}

impl Pool {
    /// The next healthy upstream in round-robin order, other than `exclude`; if none is
    /// healthy, the next one anyway.
    fn pick(&self, exclude: Option<usize>) -> Option<usize> {
        let n = self.upstreams.len();
        if n == 0 || (n == 1 && exclude.is_some()) {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = now_ms();
        let candidates = (0..n)
            .map(|i| (start + i) % n)
            .filter(|i| Some(*i) != exclude);
        let mut first = None;
        for i in candidates {
            first.get_or_insert(i);
            if self.upstreams[i].healthy(now) {
                return Some(i);
            }
        }
        first
    }

    /// Whether the route can be served: without a health check, always; with one, when at
    /// least one upstream passed its probes (is up).
    fn ready(&self) -> bool {
        self.health_check.is_none() || self.upstreams.iter().any(|u| u.health() == Health::Up)
    }
}

/// The connector of upstream connections: TCP with `TCP_NODELAY`, giving up after `timeout`,
/// and TLS with `tls` for `https://` upstreams.
fn upstream_connector(
    timeout: Duration,
    tls: Arc<rustls::ClientConfig>,
) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(Arc::unwrap_or_clone(tls))
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

/// The proxy service (the innermost service of the pipeline).
#[derive(Clone)]
pub struct Proxy {
    pools: Arc<HashMap<Arc<str>, Pool>>,
    timeout: Duration,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("pools", &self.pools).finish()
    }
}

impl Proxy {
    /// A proxy for the (validated) routes, with `timeout` for each response head; `tls`
    /// (read from its files now) for `https://` upstreams, which are refused without it.
    pub fn new<'a>(
        routes: impl IntoIterator<Item = &'a RouteConfig>,
        timeout: Duration,
        tls: Option<&ClientTlsFiles>,
    ) -> Result<Self, ConfigError> {
        let has_tls = tls.is_some();
        let connector = upstream_connector(timeout, upstream_tls_config(tls)?);
        let mut pools = HashMap::new();
        for route in routes {
            let id = &route.id;
            let upstreams = route
                .upstreams
                .iter()
                .enumerate()
                .map(|(i, u)| {
                    let key = format!("gateway.routes[{id}].upstreams[{i}]");
                    Upstream::parse(&key, u, has_tls, &connector)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let health_check = match &route.health_check {
                Some(hc) => {
                    let pq = hc.path.parse::<PathAndQuery>().map_err(|_| {
                        ConfigError::new(
                            format!("gateway.routes[{id}].health_check.path"),
                            "not a valid path",
                        )
                    })?;
                    Some((hc.clone(), pq))
                }
                None => None,
            };
            pools.insert(
                Arc::from(id.as_str()),
                Pool {
                    upstreams,
                    next: AtomicUsize::new(0),
                    health_check,
                },
            );
        }
        Ok(Self {
            pools: Arc::new(pools),
            timeout,
        })
    }

    /// Takes over the upstream health of `previous` (the pipeline this one replaces): for each
    /// upstream URL still in the same route, its passive ejection, and its active health when
    /// both pipelines check the route. So a reload neither sends traffic to an upstream known
    /// to be down nor holds back one known to be up.
    pub fn inherit_health(&self, previous: &Proxy) {
        for (id, pool) in self.pools.iter() {
            let Some(old) = previous.pools.get(id) else {
                continue;
            };
            let with_active = pool.health_check.is_some() && old.health_check.is_some();
            for up in &pool.upstreams {
                if let Some(prev) = old.upstreams.iter().find(|o| {
                    o.scheme == up.scheme
                        && o.authority == up.authority
                        && o.base_path == up.base_path
                }) {
                    up.inherit(prev, with_active);
                }
            }
        }
    }

    /// Ids of the routes with a health check none of whose upstreams is up, sorted.
    pub fn unready_routes(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .pools
            .iter()
            .filter(|(_, pool)| !pool.ready())
            .map(|(id, _)| id.to_string())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// A weak reference to the pools, for the health checker.
    pub(crate) fn clone_weak(&self) -> crate::health::WeakProxy {
        crate::health::WeakProxy {
            pools: Arc::downgrade(&self.pools),
        }
    }

    pub(crate) fn pools(&self) -> &Arc<HashMap<Arc<str>, Pool>> {
        &self.pools
    }
}

/// The rustls client configuration for upstreams: from `[gateway.upstream_tls]`, or, without
/// it, one that trusts no certificate (no `https://` upstream is accepted then anyway).
fn upstream_tls_config(
    tls: Option<&ClientTlsFiles>,
) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
    let Some(tls) = tls else {
        let config = rustls::ClientConfig::builder_with_provider(rampart_pki::crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::new("gateway.upstream_tls", e.to_string()))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        return Ok(Arc::new(config));
    };
    let pem = tls.read("gateway.upstream_tls")?;
    let config = match &pem.identity {
        Some((chain, key)) => rampart_pki::client_config_with_client_cert(&pem.ca, chain, key, &[])
            .map_err(|e| ConfigError::new("gateway.upstream_tls.cert_file", e.to_string()))?,
        None => rampart_pki::client_config_with_alpn(&pem.ca, &[])
            .map_err(|e| ConfigError::new("gateway.upstream_tls.ca_file", e.to_string()))?,
    };
    Ok(config)
}

fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

fn is_length_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

fn failure(route: &str, kind: &'static str, upstream: &str) -> http::Response<BoxBody> {
    metrics::counter!("rampart_gateway_upstream_failures_total",
        "route" => route.to_owned(), "kind" => kind)
    .increment(1);
    let mut resp = match kind {
        "timeout" => error_response(
            StatusCode::GATEWAY_TIMEOUT,
            "gateway_timeout",
            "the upstream did not answer in time",
            "upstream_timeout",
        ),
        "body_too_large" => too_large(),
        _ => error_response(
            StatusCode::BAD_GATEWAY,
            "bad_gateway",
            "the upstream is unavailable",
            "upstream_error",
        ),
    };
    // Access was granted; the failure is the upstream's.
    if let Some(o) = resp.extensions_mut().get_mut::<Outcome>() {
        o.allowed = kind != "body_too_large";
        o.upstream = Some(Arc::from(upstream));
    }
    resp
}

impl Service<Request<ReqBody>> for Proxy {
    type Response = http::Response<BoxBody>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.forward(req).await) })
    }
}

impl Proxy {
    async fn forward(self, req: Request<ReqBody>) -> http::Response<BoxBody> {
        let Some(route) = req.extensions().get::<Arc<Route>>().cloned() else {
            return internal("no_route_context");
        };
        let Some(pool) = self.pools.get(&route.id) else {
            return internal("no_upstream_pool");
        };
        let (mut parts, body) = req.into_parts();
        parts.extensions = http::Extensions::new();
        parts.version = Version::HTTP_11;
        let retryable = idempotent(&parts.method) && body.is_end_stream();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut body = Some(body);
        let mut exclude = None;
        loop {
            let Some(idx) = pool.pick(exclude) else {
                return failure(&route.id, "connect", "none");
            };
            let upstream = &pool.upstreams[idx];
            let Some(uri) = upstream.uri(parts.uri.path_and_query()) else {
                return failure(&route.id, "uri", &upstream.label);
            };
            let mut builder = Request::builder()
                .method(parts.method.clone())
                .uri(uri)
                .version(Version::HTTP_11);
            // The headers are copied only while another attempt may still need them.
            let last_attempt = !retryable || exclude.is_some() || pool.upstreams.len() < 2;
            if let Some(h) = builder.headers_mut() {
                *h = if last_attempt {
                    std::mem::take(&mut parts.headers)
                } else {
                    parts.headers.clone()
                };
            }
            let b = body.take().unwrap_or_else(|| {
                http_body_util::Empty::new()
                    .map_err(|never| match never {})
                    .boxed_unsync()
            });
            let Ok(up_req) = builder.body(b) else {
                return failure(&route.id, "request", &upstream.label);
            };
            let result = tokio::time::timeout_at(deadline, upstream.connections.send(up_req)).await;
            match result {
                Err(_) => return failure(&route.id, "timeout", &upstream.label),
                Ok(Ok(resp)) => {
                    let mut resp =
                        resp.map(|b| b.map_err(|e| -> BoxError { Box::new(e) }).boxed_unsync());
                    resp.extensions_mut().insert(Outcome {
                        allowed: true,
                        reason: "allowed",
                        upstream: Some(Arc::clone(&upstream.label)),
                    });
                    return resp;
                }
                Ok(Err(e)) => {
                    if is_length_limit(&e) {
                        return failure(&route.id, "body_too_large", &upstream.label);
                    }
                    if matches!(e, SendError::Connect(_)) {
                        upstream.eject(now_ms());
                        tracing::warn!(route = %route.id, upstream = %upstream.label,
                            "upstream connection failed; ejected");
                        if retryable && exclude.is_none() && pool.upstreams.len() > 1 {
                            exclude = Some(idx);
                            continue;
                        }
                        return failure(&route.id, "connect", &upstream.label);
                    }
                    tracing::warn!(route = %route.id, upstream = %upstream.label, error = %e,
                        "upstream request failed");
                    return failure(&route.id, "protocol", &upstream.label);
                }
            }
        }
    }
}
