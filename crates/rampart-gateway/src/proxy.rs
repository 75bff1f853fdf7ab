//! The upstream call: hyper-util's pooled legacy client, HTTP/1.1 to `http://` upstreams,
//! round robin over the route's upstreams with passive health (an upstream whose connection
//! fails is ejected for [`EJECT_FOR`]; when all are ejected they are tried anyway).
//!
//! Failures never leak internals: connection and protocol errors → 502, no response head within
//! `upstream_timeout` → 504, a body over the limit → 413. Idempotent requests (GET, HEAD,
//! OPTIONS, PUT, DELETE) without a body are retried once on another upstream, and only after a
//! connection error (requests with a body are not retried: the body is streamed, not buffered).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, StatusCode, Uri, Version};
use http_body::Body;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::Service;

use crate::body_limit::too_large;
use crate::config::ConfigError;
use crate::context::{BoxBody, BoxError, BoxFuture, Outcome, ReqBody};
use crate::error::{error_response, internal};
use crate::route::Route;

/// How long an upstream whose connection failed is skipped.
pub const EJECT_FOR: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Upstream {
    scheme: Scheme,
    authority: Authority,
    base_path: String,
    label: String,
    ejected_until: Mutex<Option<Instant>>,
}

impl Upstream {
    fn parse(key: &str, url: &str) -> Result<Self, ConfigError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| ConfigError::new(key, "not a valid URL"))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(ConfigError::new(
                key,
                "only http:// upstreams are supported for now",
            ));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| ConfigError::new(key, "URL must have a host"))?;
        Ok(Self {
            scheme: Scheme::HTTP,
            label: format!("http://{authority}"),
            authority,
            base_path: uri.path().trim_end_matches('/').to_owned(),
            ejected_until: Mutex::new(None),
        })
    }

    fn healthy(&self, now: Instant) -> bool {
        self.ejected_until
            .lock()
            .map(|g| g.is_none_or(|t| t <= now))
            .unwrap_or(true)
    }

    fn eject(&self, now: Instant) {
        if let Ok(mut g) = self.ejected_until.lock() {
            *g = Some(now + EJECT_FOR);
        }
    }

    fn uri(&self, pq: Option<&PathAndQuery>) -> Option<Uri> {
        let pq = pq.map_or("/", PathAndQuery::as_str);
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{pq}", self.base_path))
            .build()
            .ok()
    }
}

#[derive(Debug)]
struct Pool {
    upstreams: Vec<Upstream>,
    next: AtomicUsize,
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
        let now = Instant::now();
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
}

/// The proxy service (the innermost service of the pipeline).
#[derive(Clone)]
pub struct Proxy {
    client: Client<HttpConnector, ReqBody>,
    pools: Arc<HashMap<Arc<str>, Pool>>,
    timeout: Duration,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("pools", &self.pools).finish()
    }
}

impl Proxy {
    /// A proxy for `(route id, upstream URLs)` with `timeout` for each response head.
    pub fn new<'a>(
        routes: impl IntoIterator<Item = (&'a str, &'a [String])>,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let mut pools = HashMap::new();
        for (id, urls) in routes {
            let upstreams = urls
                .iter()
                .enumerate()
                .map(|(i, u)| Upstream::parse(&format!("gateway.routes[{id}].upstreams[{i}]"), u))
                .collect::<Result<Vec<_>, _>>()?;
            pools.insert(
                Arc::from(id),
                Pool {
                    upstreams,
                    next: AtomicUsize::new(0),
                },
            );
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build(connector);
        Ok(Self {
            client,
            pools: Arc::new(pools),
            timeout,
        })
    }
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
        o.upstream = Some(upstream.to_owned());
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
            if let Some(h) = builder.headers_mut() {
                *h = parts.headers.clone();
            }
            let b = body.take().unwrap_or_else(|| {
                http_body_util::Empty::new()
                    .map_err(|never| match never {})
                    .boxed_unsync()
            });
            let Ok(up_req) = builder.body(b) else {
                return failure(&route.id, "request", &upstream.label);
            };
            let result = tokio::time::timeout_at(deadline, self.client.request(up_req)).await;
            match result {
                Err(_) => return failure(&route.id, "timeout", &upstream.label),
                Ok(Ok(resp)) => {
                    let mut resp =
                        resp.map(|b| b.map_err(|e| -> BoxError { Box::new(e) }).boxed_unsync());
                    resp.extensions_mut().insert(Outcome {
                        allowed: true,
                        reason: "allowed",
                        upstream: Some(upstream.label.clone()),
                    });
                    return resp;
                }
                Ok(Err(e)) => {
                    if is_length_limit(&e) {
                        return failure(&route.id, "body_too_large", &upstream.label);
                    }
                    if e.is_connect() {
                        upstream.eject(Instant::now());
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
