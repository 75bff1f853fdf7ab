//! Metrics (the `metrics` facade, rendered by `metrics-exporter-prometheus` without its own
//! listener) and the admin router serving them.
//!
//! Series: `rampart_gateway_requests_total{route,status,decision}`,
//! `rampart_gateway_request_duration_seconds{route}` (histogram),
//! `rampart_gateway_auth_failures_total{reason}`,
//! `rampart_gateway_rate_limited_total{route,blocked}`,
//! `rampart_gateway_upstream_failures_total{route,kind}`,
//! `rampart_gateway_audit_dropped_total`,
//! `rampart_gateway_upstream_healthy{route,upstream}` (gauge, routes with a health check),
//! `rampart_gateway_ratelimit_redis_fallback_total{route,cause}`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::routing::get;
use http::Request;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower::{Layer, Service};

use crate::context::{BoxBody, Outcome, RouteId};
use crate::future::{OnResponse, Then};
use crate::readiness::{Readiness, ReadinessProbe};

/// Why the metrics recorder could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("metrics recorder: {0}")]
pub struct MetricsError(String);

/// Installs the global Prometheus recorder (once per process) and returns its handle.
pub fn install_recorder() -> Result<PrometheusHandle, MetricsError> {
    PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| MetricsError(e.to_string()))
}

/// The admin router: `/metrics` (Prometheus text), `/healthz` and `/readyz` (always ready:
/// see [`admin_router_with_readiness`] for one that checks something).
pub fn admin_router(handle: PrometheusHandle) -> Router {
    admin_router_with_readiness(handle, Arc::new(Readiness::default))
}

/// The admin router with `/readyz` answering from `readiness` (see [`crate::readiness`]);
/// `/healthz` is liveness only (always 200 while the process serves).
pub fn admin_router_with_readiness(handle: PrometheusHandle, readiness: ReadinessProbe) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let h = handle.clone();
                async move {
                    (
                        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        h.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let probe = Arc::clone(&readiness);
                async move { probe().response() }
            }),
        )
}

/// Counts requests and records latency.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsLayer;

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Metrics { inner }
    }
}

/// The status code as a label value; the codes the gateway itself answers with, and the
/// usual upstream ones, without an allocation.
fn status_label(status: http::StatusCode) -> metrics::SharedString {
    const COMMON: [&str; 23] = [
        "200", "201", "202", "204", "206", "301", "302", "304", "307", "308", "400", "401", "403",
        "404", "405", "408", "413", "429", "431", "500", "502", "503", "504",
    ];
    let code = status.as_str();
    match COMMON.iter().find(|c| **c == code) {
        Some(c) => metrics::SharedString::const_str(c),
        None => metrics::SharedString::from_owned(code.to_owned()),
    }
}

/// Most (route, status, decision) handles a thread keeps; past that the registry is asked.
const MAX_CACHED_HANDLES: usize = 1024;

/// The series one request updates.
#[derive(Clone)]
struct RequestHandles {
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

/// What a request's series are known by: route id, status code, allowed.
type SeriesKey = (Option<Arc<str>>, u16, bool);

thread_local! {
    /// Handles by (route, status, allowed), so that a request does not build label sets and
    /// look them up in the registry (hashing and comparing every label) for each series.
    /// Keyed by the route's id, not its `Arc`, so a reload with the same ids finds them again.
    static HANDLES: RefCell<HashMap<SeriesKey, RequestHandles>> =
        RefCell::new(HashMap::new());
}

/// The handles of `rampart_gateway_requests_total{route,status,decision}` and
/// `rampart_gateway_request_duration_seconds{route}` for one request's labels.
fn request_handles(
    route: Option<&Arc<str>>,
    status: http::StatusCode,
    allowed: bool,
) -> RequestHandles {
    let key: SeriesKey = (route.cloned(), status.as_u16(), allowed);
    if let Some(handles) = HANDLES.with_borrow(|h| h.get(&key).cloned()) {
        return handles;
    }
    // Labels without allocations: the route id shared, the status code static.
    let route = route.map_or(metrics::SharedString::const_str("none"), |r| {
        metrics::SharedString::from_shared(Arc::clone(r))
    });
    let handles = RequestHandles {
        requests: metrics::counter!("rampart_gateway_requests_total",
            "route" => route.clone(),
            "status" => status_label(status),
            "decision" => if allowed { "allow" } else { "deny" }),
        duration: metrics::histogram!("rampart_gateway_request_duration_seconds", "route" => route),
    };
    HANDLES.with_borrow_mut(|h| {
        if h.len() < MAX_CACHED_HANDLES {
            h.insert(key, handles.clone());
        }
    });
    handles
}

/// See [`MetricsLayer`].
#[derive(Debug, Clone)]
pub struct Metrics<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Metrics<S>
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
    type Future = Then<S::Future, Observe>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        Then::new(
            self.inner.call(req),
            Observe {
                started: Instant::now(),
            },
        )
    }
}

/// Counts the response and records its latency.
#[derive(Debug)]
pub struct Observe {
    started: Instant,
}

impl OnResponse for Observe {
    fn on_response(self, response: &mut http::Response<BoxBody>) {
        let allowed = response
            .extensions()
            .get::<Outcome>()
            .is_some_and(|o| o.allowed);
        let route = response.extensions().get::<RouteId>().map(|r| &r.0);
        let handles = request_handles(route, response.status(), allowed);
        handles.requests.increment(1);
        handles
            .duration
            .record(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_labels_are_the_codes() {
        for code in [200, 204, 401, 418, 429, 504, 599] {
            let status = http::StatusCode::from_u16(code).expect("status");
            assert_eq!(status_label(status).as_ref(), code.to_string());
        }
    }
}
