//! Rate limiting: GCRA per route and key, with optional blocking after consecutive rejections.
//!
//! The layer runs twice in the pipeline: in [`Phase::BeforeAuth`] for routes keyed by `ip`
//! (so unauthenticated floods are cut before the authenticator is asked), and in
//! [`Phase::AfterAuth`] for routes keyed by `client_id`, `sub` or `api_key`. Denials are 429
//! with `Retry-After` and `RateLimit-Limit`/`RateLimit-Remaining`/`RateLimit-Reset`.
//!
//! The limiter sits behind [`RateLimiter`]: [`LocalRateLimiter`] decides in memory (per
//! replica), [`crate::redis_limiter::RedisRateLimiter`] across replicas through Redis. A
//! limiter answers [`RateCheck::Ready`] when it decides on the spot (no allocation, no await)
//! or [`RateCheck::Pending`] when it must ask a store; the layer awaits only then.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, Request, StatusCode};
use rampart_guard::Principal;
use tower::{Layer, Service};

use crate::config::RateLimitConfig;
use crate::context::{ApiKeyFingerprint, BoxBody, ClientIp};
use crate::error::{error_response, internal};
use crate::future::{Decide, OnResponse};
use crate::header_value::number_value;
use crate::route::Route;

/// Most keys tracked per route by [`LocalRateLimiter`]; when full after purging idle keys, new
/// keys are denied (fail closed).
pub const MAX_KEYS_PER_ROUTE: usize = 100_000;

/// What the limiter decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// The route has no limit.
    Unlimited,
    /// Allowed.
    Allow {
        /// Burst size.
        limit: u32,
        /// Requests left in the burst.
        remaining: u32,
        /// Until the burst is full again.
        reset: Duration,
    },
    /// Rejected.
    Deny {
        /// Burst size.
        limit: u32,
        /// When to retry.
        retry_after: Duration,
        /// Whether the key is blocked (after `block_after` consecutive rejections).
        blocked: bool,
    },
}

/// A decision, made on the spot or to be awaited.
pub enum RateCheck {
    /// Decided.
    Ready(RateDecision),
    /// Being decided (e.g. by Redis); the future never fails (a limiter that cannot reach its
    /// store decides some other way).
    Pending(Pin<Box<dyn Future<Output = RateDecision> + Send>>),
}

impl std::fmt::Debug for RateCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RateCheck::Ready(d) => f.debug_tuple("Ready").field(d).finish(),
            RateCheck::Pending(_) => f.write_str("Pending"),
        }
    }
}

/// A rate limiter.
pub trait RateLimiter: Send + Sync {
    /// Counts one request for `key` on the route `route` and decides.
    fn check(&self, route: &Arc<str>, key: String) -> RateCheck;
}

#[derive(Debug, Clone, Copy)]
struct KeyState {
    tat: Instant,
    rejections: u32,
    blocked_until: Option<Instant>,
}

#[derive(Debug)]
struct RouteLimiter {
    interval: Duration,
    burst: u32,
    block_after: u32,
    block_for: Duration,
    keys: Mutex<HashMap<String, KeyState>>,
}

/// An in-process GCRA limiter (per instance; not shared between gateway replicas).
#[derive(Debug, Default)]
pub struct LocalRateLimiter {
    routes: HashMap<String, RouteLimiter>,
}

impl LocalRateLimiter {
    /// A limiter for the given `(route id, config)` pairs.
    pub fn new<'a>(routes: impl IntoIterator<Item = (&'a str, &'a RateLimitConfig)>) -> Self {
        let routes = routes
            .into_iter()
            .map(|(id, c)| {
                let per_second = if c.per_second.is_finite() && c.per_second > 0.0 {
                    c.per_second
                } else {
                    1.0
                };
                (
                    id.to_owned(),
                    RouteLimiter {
                        interval: Duration::from_secs_f64(1.0 / per_second),
                        burst: c.burst.max(1),
                        block_after: c.block_after,
                        block_for: Duration::from_secs(c.block_for),
                        keys: Mutex::new(HashMap::new()),
                    },
                )
            })
            .collect();
        Self { routes }
    }

    /// Counts one request for `key` on `route` at `now` and decides.
    pub fn check_at(&self, route: &str, key: String, now: Instant) -> RateDecision {
        let Some(rl) = self.routes.get(route) else {
            return RateDecision::Unlimited;
        };
        let deny = |retry_after, blocked| RateDecision::Deny {
            limit: rl.burst,
            retry_after,
            blocked,
        };
        let Ok(mut keys) = rl.keys.lock() else {
            return deny(Duration::from_secs(1), false);
        };
        if !keys.contains_key(&key) && keys.len() >= MAX_KEYS_PER_ROUTE {
            keys.retain(|_, s| s.tat > now || s.blocked_until.is_some_and(|b| b > now));
            if keys.len() >= MAX_KEYS_PER_ROUTE {
                return deny(Duration::from_secs(1), false);
            }
        }
        let state = keys.entry(key).or_insert(KeyState {
            tat: now,
            rejections: 0,
            blocked_until: None,
        });
        if let Some(until) = state.blocked_until {
            if until > now {
                return deny(until - now, true);
            }
            state.blocked_until = None;
            state.rejections = 0;
        }
        let tolerance = rl.interval * rl.burst;
        let tat = state.tat.max(now);
        let new_tat = tat + rl.interval;
        let ahead = new_tat - now;
        if ahead <= tolerance {
            state.tat = new_tat;
            state.rejections = 0;
            let spare = tolerance - ahead;
            let remaining = (spare.as_nanos() / rl.interval.as_nanos().max(1)) as u32;
            RateDecision::Allow {
                limit: rl.burst,
                remaining,
                reset: ahead,
            }
        } else {
            state.rejections = state.rejections.saturating_add(1);
            if rl.block_after > 0 && state.rejections >= rl.block_after {
                state.blocked_until = Some(now + rl.block_for);
                return deny(rl.block_for, true);
            }
            deny(ahead - tolerance, false)
        }
    }
}

impl LocalRateLimiter {
    /// Counts one request for `key` on `route` now and decides.
    pub fn decide(&self, route: &str, key: String) -> RateDecision {
        self.check_at(route, key, Instant::now())
    }
}

impl RateLimiter for LocalRateLimiter {
    fn check(&self, route: &Arc<str>, key: String) -> RateCheck {
        RateCheck::Ready(self.decide(route, key))
    }
}

/// Where in the pipeline the layer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before authentication: only routes keyed by `ip`.
    BeforeAuth,
    /// After authentication: routes keyed by `client_id`, `sub`, `api_key`.
    AfterAuth,
}

fn secs_ceil(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

fn set_num(h: &mut HeaderMap, name: HeaderName, v: u64) {
    h.insert(name, number_value(v));
}

/// The rate-limit layer (see the module docs).
#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: Arc<dyn RateLimiter>,
    phase: Phase,
}

impl RateLimitLayer {
    /// A layer for `phase` over `limiter`.
    pub fn new(limiter: Arc<dyn RateLimiter>, phase: Phase) -> Self {
        Self { limiter, phase }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            limiter: Arc::clone(&self.limiter),
            phase: self.phase,
        }
    }
}

/// See [`RateLimitLayer`].
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    limiter: Arc<dyn RateLimiter>,
    phase: Phase,
}

/// The limiter key for `kind` from the request, if this phase handles it. `Err` = the material
/// is missing (pipeline invariant broken: fail closed).
fn key_for<B>(req: &Request<B>, kind: &str, phase: Phase) -> Result<Option<String>, ()> {
    match (kind, phase) {
        ("ip", Phase::BeforeAuth) => req
            .extensions()
            .get::<ClientIp>()
            .map(|ClientIp(ip): &ClientIp| Some(ip_key(*ip)))
            .ok_or(()),
        ("ip", Phase::AfterAuth) | (_, Phase::BeforeAuth) => Ok(None),
        (kind, Phase::AfterAuth) => {
            let p = req.extensions().get::<Arc<Principal>>().ok_or(())?;
            let fingerprint = req.extensions().get::<ApiKeyFingerprint>();
            let (prefix, id) = match (kind, fingerprint) {
                ("sub", _) => ("sub:", p.subject.as_str()),
                // The key's fingerprint, never the key. Requests of the route authenticated
                // otherwise (token, certificate) are keyed by client below.
                ("api_key", Some(ApiKeyFingerprint(f))) => ("key:", f.as_str()),
                _ => match &p.client_id {
                    Some(c) => ("client:", c.as_str()),
                    None => ("sub:", p.subject.as_str()),
                },
            };
            let mut key = String::with_capacity(prefix.len() + id.len());
            key.push_str(prefix);
            key.push_str(id);
            Ok(Some(key))
        }
    }
}

fn ip_key(ip: IpAddr) -> String {
    ip.to_string()
}

impl<S, B> Service<Request<B>> for RateLimit<S>
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
    type Future = Decide<S::Future, RateHeaders>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(route) = req.extensions().get::<Arc<Route>>().cloned() else {
            let resp = internal("no_route_context");
            return Decide::answer(resp);
        };
        let Some(cfg) = &route.rate_limit else {
            return Decide::inner(self.inner.call(req));
        };
        let key = match key_for(&req, &cfg.key, self.phase) {
            Ok(Some(k)) => k,
            Ok(None) => return Decide::inner(self.inner.call(req)),
            Err(()) => {
                let resp = internal("no_rate_limit_key");
                return Decide::answer(resp);
            }
        };
        match self.limiter.check(&route.id, key) {
            RateCheck::Ready(decision) => apply(decision, &route.id, req, &mut self.inner),
            RateCheck::Pending(decision) => {
                // The clone-and-swap of tower: `self.inner` was made ready for this call.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Decide::waiting(Box::pin(async move {
                    let decision = decision.await;
                    apply(decision, &route.id, req, &mut inner).await
                }))
            }
        }
    }
}

/// Acts on a decision: calls `inner` (adding the RateLimit headers) or answers 429.
fn apply<S, B>(
    decision: RateDecision,
    route: &str,
    req: Request<B>,
    inner: &mut S,
) -> Decide<S::Future, RateHeaders>
where
    S: Service<Request<B>, Response = http::Response<BoxBody>, Error = std::convert::Infallible>,
    S::Future: Send + 'static,
{
    match decision {
        RateDecision::Unlimited => Decide::inner(inner.call(req)),
        RateDecision::Allow {
            limit,
            remaining,
            reset,
        } => {
            let headers = RateHeaders {
                limit,
                remaining,
                reset,
            };
            Decide::then(inner.call(req), headers)
        }
        RateDecision::Deny {
            limit,
            retry_after,
            blocked,
        } => {
            metrics::counter!("rampart_gateway_rate_limited_total",
                "route" => route.to_owned(), "blocked" => blocked.to_string())
            .increment(1);
            let mut resp = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests",
                if blocked {
                    "rate_blocked"
                } else {
                    "rate_limited"
                },
            );
            let secs = secs_ceil(retry_after).max(1);
            let h = resp.headers_mut();
            set_num(h, http::header::RETRY_AFTER, secs);
            set_num(h, RATELIMIT_LIMIT, limit.into());
            set_num(h, RATELIMIT_REMAINING, 0);
            set_num(h, RATELIMIT_RESET, secs);
            Decide::answer(resp)
        }
    }
}

/// The RateLimit headers of an allowed request.
#[derive(Debug)]
pub struct RateHeaders {
    limit: u32,
    remaining: u32,
    reset: Duration,
}

impl OnResponse for RateHeaders {
    fn on_response(self, response: &mut http::Response<BoxBody>) {
        let h = response.headers_mut();
        set_num(h, RATELIMIT_LIMIT, self.limit.into());
        set_num(h, RATELIMIT_REMAINING, self.remaining.into());
        set_num(h, RATELIMIT_RESET, secs_ceil(self.reset));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(per_second: f64, burst: u32, block_after: u32) -> RateLimitConfig {
        RateLimitConfig {
            key: "ip".into(),
            per_second,
            burst,
            block_after,
            block_for: 60,
        }
    }

    #[test]
    fn burst_then_deny_then_refill() {
        let c = cfg(10.0, 3, 0);
        let l = LocalRateLimiter::new([("r", &c)]);
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(
                matches!(l.check_at("r", "k".into(), t0), RateDecision::Allow { remaining, .. } if remaining == 2 - i),
                "request {i}"
            );
        }
        assert!(matches!(
            l.check_at("r", "k".into(), t0),
            RateDecision::Deny { blocked: false, .. }
        ));
        // Another key is independent.
        assert!(matches!(
            l.check_at("r", "other".into(), t0),
            RateDecision::Allow { .. }
        ));
        // After one interval, one more is allowed.
        let t1 = t0 + Duration::from_millis(100);
        assert!(matches!(
            l.check_at("r", "k".into(), t1),
            RateDecision::Allow { .. }
        ));
        assert!(matches!(
            l.check_at("r", "k".into(), t1),
            RateDecision::Deny { .. }
        ));
        assert_eq!(l.check_at("none", "k".into(), t1), RateDecision::Unlimited);
    }

    #[test]
    fn blocks_after_consecutive_rejections() {
        let c = cfg(1.0, 1, 2);
        let l = LocalRateLimiter::new([("r", &c)]);
        let t0 = Instant::now();
        assert!(matches!(
            l.check_at("r", "k".into(), t0),
            RateDecision::Allow { .. }
        ));
        assert!(matches!(
            l.check_at("r", "k".into(), t0),
            RateDecision::Deny { blocked: false, .. }
        ));
        assert!(matches!(
            l.check_at("r", "k".into(), t0),
            RateDecision::Deny { blocked: true, .. }
        ));
        // Still blocked long after the bucket refilled.
        let t1 = t0 + Duration::from_secs(30);
        assert!(matches!(
            l.check_at("r", "k".into(), t1),
            RateDecision::Deny { blocked: true, .. }
        ));
        let t2 = t0 + Duration::from_secs(61);
        assert!(matches!(
            l.check_at("r", "k".into(), t2),
            RateDecision::Allow { .. }
        ));
    }
}
