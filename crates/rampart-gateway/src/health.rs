//! Active health checks: one background task per route with a `health_check`, probing every
//! upstream of the route with a plain HTTP `GET` (through a pooled client of its own) every
//! `interval`; 2xx within `timeout` is a success. Results move the upstream's state in the
//! proxy (see [`crate::proxy`]): down after `unhealthy_after` consecutive failures, up after
//! `healthy_after` consecutive successes, the first probe deciding at once.
//!
//! Each probe sets the gauge `rampart_gateway_upstream_healthy{route,upstream}` (1 up, 0 down);
//! transitions are logged (`warn` down, `info` up).
//!
//! The tasks belong to a [`HealthChecks`] handle: dropping it stops them (at once, even in the
//! middle of a probe), and they also stop by themselves once the pipeline they probe for is
//! gone. On a reload the new pipeline gets new tasks (and the health state of the old one, see
//! [`crate::proxy::Proxy::inherit_health`]); dropping the old handle stops the old tasks.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use http::header::{HeaderValue, USER_AGENT};
use http::uri::PathAndQuery;
use http::{Request, Version};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::HealthCheckConfig;
use crate::proxy::{Health, Pool, Proxy};
use crate::upstream_conn::UpstreamConnections;

/// Most of a probe's response body that is read (the rest is discarded with the connection).
const MAX_PROBE_BODY: usize = 64 * 1024;

/// The health-check tasks of one pipeline; dropping the handle stops them.
#[derive(Debug)]
pub struct HealthChecks {
    _stop: watch::Sender<()>,
    routes: usize,
}

impl HealthChecks {
    /// How many routes are being checked.
    pub fn routes(&self) -> usize {
        self.routes
    }
}

/// Starts one task per route of `proxy` that has a health check. Needs a Tokio runtime.
pub(crate) fn start(proxy: &Proxy) -> HealthChecks {
    let (stop, _) = watch::channel(());
    let mut routes = 0;
    for (id, pool) in proxy.pools().iter() {
        let Some((hc, path)) = &pool.health_check else {
            continue;
        };
        routes += 1;
        let task = Checker {
            route: Arc::clone(id),
            hc: hc.clone(),
            path: path.clone(),
            proxy: proxy.clone_weak(),
        };
        let mut stopped = stop.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                // `Err` once the handle is dropped.
                _ = stopped.changed() => {}
                () = task.run() => {}
            }
        });
    }
    HealthChecks {
        _stop: stop,
        routes,
    }
}

/// What a checker needs from the proxy, without keeping the pipeline alive.
pub(crate) struct WeakProxy {
    pub(crate) pools: Weak<HashMap<Arc<str>, Pool>>,
}

struct Checker {
    route: Arc<str>,
    hc: HealthCheckConfig,
    path: PathAndQuery,
    proxy: WeakProxy,
}

impl Checker {
    async fn run(self) {
        let mut ticks = tokio::time::interval(Duration::from_secs(self.hc.interval));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let timeout = Duration::from_secs(self.hc.timeout);
        let this = Arc::new(self);
        loop {
            ticks.tick().await;
            let Some(pools) = this.proxy.pools.upgrade() else {
                return;
            };
            let Some(pool) = pools.get(&this.route) else {
                return;
            };
            let mut probes = JoinSet::new();
            for (i, up) in pool.upstreams.iter().enumerate() {
                let Some(uri) = up.uri(Some(&this.path)) else {
                    continue;
                };
                let connections = Arc::clone(&up.connections);
                probes.spawn(async move { (i, probe(&connections, uri, timeout).await) });
            }
            // Only the results are awaited with the pools held; the probes hold no state.
            drop(pools);
            let mut results = Vec::with_capacity(probes.len());
            while let Some(joined) = probes.join_next().await {
                if let Ok(result) = joined {
                    results.push(result);
                }
            }
            let Some(pools) = this.proxy.pools.upgrade() else {
                return;
            };
            let Some(pool) = pools.get(&this.route) else {
                return;
            };
            for (i, ok) in results {
                let Some(up) = pool.upstreams.get(i) else {
                    continue;
                };
                match up.record_probe(ok, &this.hc) {
                    Some(Health::Down) => tracing::warn!(
                        route = %this.route, upstream = %up.label,
                        "upstream failed its health check: marked down"
                    ),
                    Some(Health::Up) => tracing::info!(
                        route = %this.route, upstream = %up.label,
                        "upstream passed its health check: marked up"
                    ),
                    _ => {}
                }
                let value = if up.health() == Health::Up { 1.0 } else { 0.0 };
                metrics::gauge!("rampart_gateway_upstream_healthy",
                    "route" => this.route.to_string(), "upstream" => up.label.to_string())
                .set(value);
            }
        }
    }
}

/// One probe: `GET uri`, 2xx within `timeout` (head and body) is healthy.
async fn probe(connections: &Arc<UpstreamConnections>, uri: http::Uri, timeout: Duration) -> bool {
    let body = http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync();
    let Ok(req) = Request::get(uri)
        .version(Version::HTTP_11)
        .header(
            USER_AGENT,
            HeaderValue::from_static("rampart-gateway-health-check"),
        )
        .body(body)
    else {
        return false;
    };
    let attempt = async {
        let resp = connections.send(req).await.ok()?;
        let ok = resp.status().is_success();
        // Read (a bounded part of) the body so the connection can go back to the pool.
        let mut body = resp.into_body();
        let mut read = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.ok()?;
            if let Some(data) = frame.data_ref() {
                read += data.len();
                if read > MAX_PROBE_BODY {
                    break;
                }
            }
            if body.is_end_stream() {
                break;
            }
        }
        Some(ok)
    };
    matches!(tokio::time::timeout(timeout, attempt).await, Ok(Some(true)))
}
