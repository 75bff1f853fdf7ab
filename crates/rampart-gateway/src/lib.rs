//! The Rampart API gateway: the request pipeline as tower layers, one concern per module.
//!
//! Data flows one way, outermost first:
//!
//! 1. [`request_id`]: fresh `X-Request-Id`, `traceparent` kept if valid or generated;
//! 2. [`metrics`] and [`audit`]: observe the final response;
//! 3. [`response_headers`]: strip `Server`/`X-Powered-By`, add `nosniff`, HSTS on TLS;
//! 4. [`connection`]: requires [`ConnectionInfo`], derives the client IP;
//! 5. [`header_limit`]: 431 over `max_headers`/`max_header_bytes`; [`path`]: 400 for any
//!    unclean request target;
//! 6. [`route`]: 404/405, attaches the route;
//! 7. [`body_limit`]: 413 for a `Content-Length` over the limit, bounds streamed bodies;
//! 8. [`ratelimit`] keyed by `ip`;
//! 9. [`authn`]: bearer token, API key or verified client certificate → principal (401/503,
//!    fail closed);
//! 10. [`ratelimit`] keyed by `client_id`/`sub`/`api_key`;
//! 11. [`authz`]: required scopes (403);
//! 12. [`policy`]: the Cedar policies of `[gateway.policy]`, if any (403);
//! 13. [`identity`]: strip inbound identity and hop-by-hop headers, then add ours;
//! 14. [`proxy`]: the upstream call (502/504).
//!
//! Authentication is delegated to a [`rampart_guard::Authenticator`]; the check is bounded by
//! `limits.upstream_timeout` (a timeout is treated as issuer unavailable: 503). A token the
//! authenticator can decide without waiting (one verified before) is decided inline.
//!
//! The layers return the named futures of [`future`] rather than boxed ones: the pipeline's
//! future is one nested value, and only work that waits (authentication of a new token, a
//! shared rate limiter, the upstream call) is boxed.
//!
//! To change the configuration while serving, serve through a [`GatewayHandle`] (see
//! [`reload`]) and replace its pipeline with one built from the new configuration.
//!
//! Around the pipeline: [`health`] probes the upstreams of routes with a `health_check` (tasks
//! started by [`Gateway::start_health_checks`]); [`readiness`] is what `/readyz` answers;
//! [`idle`] gives the listener its idle and header-read timers per connection;
//! [`redis_limiter`] shares rate limits between replicas through Redis (`redis_url`);
//! [`redirect`] is what the plain-HTTP redirect listener answers.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod authn;
pub mod authz;
pub mod body_limit;
pub mod config;
pub mod connection;
pub mod context;
pub mod error;
pub mod future;
pub mod header_limit;
mod header_value;
pub mod health;
pub mod identity;
pub mod idle;
mod log_limit;
pub mod metrics;
pub mod path;
pub mod policy;
pub mod proxy;
pub mod ratelimit;
pub mod readiness;
pub mod redirect;
pub mod redis_limiter;
pub mod reload;
pub mod request_id;
pub mod response_headers;
pub mod route;
pub(crate) mod upstream_conn;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderName;
use http_body_util::BodyExt;
use rampart_guard::Authenticator;
use tower::{Service, ServiceBuilder};

pub use audit::{AuditRecord, AuditSink};
pub use config::{ConfigError, GatewayConfig};
pub use context::{ApiKeyFingerprint, BoxBody, ConnectionInfo};
pub use metrics::{admin_router, admin_router_with_readiness, install_recorder};
pub use ratelimit::{LocalRateLimiter, RateCheck, RateDecision, RateLimiter};
pub use readiness::{Readiness, ReadinessProbe};
pub use redis_limiter::RedisRateLimiter;
pub use reload::{GatewayHandle, ReloadingService};

use crate::connection::TrustedProxies;

/// The gateway: a validated configuration compiled into a pipeline.
#[derive(Clone)]
pub struct Gateway {
    routes: route::RouteTable,
    trusted: TrustedProxies,
    strip: Vec<HeaderName>,
    api_key_header: HeaderName,
    limiter: Arc<dyn RateLimiter>,
    policies: Option<Arc<rampart_policy::Policies>>,
    authenticator: Arc<dyn Authenticator>,
    audit: audit::AuditLayer,
    proxy: proxy::Proxy,
    max_body_bytes: u64,
    max_headers: usize,
    max_header_bytes: usize,
    auth_timeout: Duration,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Validates `config` and builds the gateway with the in-process [`LocalRateLimiter`], or,
    /// when `redis_url` is set, the [`RedisRateLimiter`] shared by the replicas.
    pub fn new(
        config: &GatewayConfig,
        authenticator: Arc<dyn Authenticator>,
        audit: AuditSink,
    ) -> Result<Gateway, ConfigError> {
        config.validate()?;
        let limits = config
            .routes
            .iter()
            .filter_map(|r| r.rate_limit.as_ref().map(|rl| (r.id.as_str(), rl)));
        let limiter: Arc<dyn RateLimiter> = match &config.redis_url {
            Some(url) => Arc::new(RedisRateLimiter::with_tls(
                url,
                config.redis_tls.as_ref(),
                Duration::from_millis(config.redis_timeout_ms),
                limits,
            )?),
            None => Arc::new(LocalRateLimiter::new(limits)),
        };
        Self::with_rate_limiter(config, authenticator, audit, limiter)
    }

    /// Like [`Gateway::new`] with another [`RateLimiter`] (e.g. a shared one).
    pub fn with_rate_limiter(
        config: &GatewayConfig,
        authenticator: Arc<dyn Authenticator>,
        audit: AuditSink,
        limiter: Arc<dyn RateLimiter>,
    ) -> Result<Gateway, ConfigError> {
        config.validate()?;
        let trusted = TrustedProxies::new(
            config
                .trusted_proxies
                .iter()
                .filter_map(|p| config::parse_net(p))
                .collect(),
        );
        let api_key_header = HeaderName::from_bytes(config.api_key_header.as_bytes())
            .map_err(|_| ConfigError::new("gateway.api_key_header", "not a valid header name"))?;
        // The API key is a credential: never forwarded upstream, on any route.
        let strip = config
            .strip_headers
            .iter()
            .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
            .chain(std::iter::once(api_key_header.clone()))
            .collect();
        for r in &config.routes {
            if !r.require_scopes.is_empty() && r.auth.iter().all(|a| a == "mtls") {
                tracing::warn!(
                    route = %r.id,
                    "the route accepts only mtls but requires scopes: client certificates carry \
                     no scopes, so every request is denied (403)"
                );
            }
        }
        let policies = config
            .policy
            .as_ref()
            .map(|p| policy::load(p).map(Arc::new))
            .transpose()?;
        let timeout = Duration::from_secs(config.limits.upstream_timeout);
        let proxy = proxy::Proxy::new(&config.routes, timeout, config.upstream_tls.as_ref())?;
        Ok(Gateway {
            routes: route::RouteTable::new(
                config
                    .routes
                    .iter()
                    .map(route::Route::from_config)
                    .collect(),
            ),
            trusted,
            strip,
            api_key_header,
            limiter,
            policies,
            authenticator,
            audit: audit::AuditLayer::with_masked(audit, &config.audit),
            proxy,
            max_body_bytes: config.limits.max_body_bytes,
            max_headers: config.limits.max_headers,
            max_header_bytes: config.limits.max_header_bytes,
            auth_timeout: timeout,
        })
    }

    /// Starts the active health checks of the routes that have a `health_check` (one task per
    /// route); they run until the returned handle is dropped. Needs a Tokio runtime. Without
    /// this call, only passive health (ejection after a connection failure) applies.
    pub fn start_health_checks(&self) -> health::HealthChecks {
        health::start(&self.proxy)
    }

    /// Takes over the upstream health state of `previous` (the gateway this one replaces on a
    /// reload), so that known-down upstreams stay down and known-up ones stay up.
    pub fn inherit_upstream_health(&self, previous: &Gateway) {
        self.proxy.inherit_health(&previous.proxy);
    }

    /// Ids of the routes with a `health_check` none of whose upstreams is up (sorted): the
    /// gateway is not ready while there is one (see [`readiness`]).
    pub fn unready_routes(&self) -> Vec<String> {
        self.proxy.unready_routes()
    }

    /// The pipeline as one service. Responses have body type [`BoxBody`]
    /// (`UnsyncBoxBody<Bytes, Box<dyn Error + Send + Sync>>`); the service never fails.
    /// Every request must carry a [`ConnectionInfo`] extension (the listener inserts it).
    pub fn service<B>(
        &self,
    ) -> impl Service<
        http::Request<B>,
        Response = http::Response<BoxBody>,
        Error = Infallible,
        Future: Send + 'static,
    >
    + Clone
    + Send
    + 'static
    + use<B>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        ServiceBuilder::new()
            .map_request(|req: http::Request<B>| req.map(|b| b.map_err(Into::into).boxed_unsync()))
            .layer(request_id::RequestIdLayer)
            .layer(metrics::MetricsLayer)
            .layer(self.audit.clone())
            .layer(response_headers::ResponseHeadersLayer)
            .layer(connection::ConnectionLayer::new(self.trusted.clone()))
            .layer(header_limit::HeaderLimitLayer::new(
                self.max_headers,
                self.max_header_bytes,
            ))
            .layer(path::PathHygieneLayer)
            .layer(route::RouteLayer::new(self.routes.clone()))
            .layer(body_limit::BodyLimitLayer::new(self.max_body_bytes))
            .layer(ratelimit::RateLimitLayer::new(
                Arc::clone(&self.limiter),
                ratelimit::Phase::BeforeAuth,
            ))
            .layer(
                authn::AuthnLayer::new(Arc::clone(&self.authenticator), self.auth_timeout)
                    .api_key_header(self.api_key_header.clone()),
            )
            .layer(ratelimit::RateLimitLayer::new(
                Arc::clone(&self.limiter),
                ratelimit::Phase::AfterAuth,
            ))
            .layer(authz::AuthzLayer)
            .layer(policy::PolicyLayer::new(self.policies.clone()))
            .layer(identity::IdentityLayer::new(
                &self.strip,
                self.trusted.clone(),
            ))
            .service(self.proxy.clone())
    }
}
