//! A rate limiter shared by gateway replicas: GCRA in Redis, one atomic Lua script per
//! decision (`gateway.redis_url`).
//!
//! - **One round trip**, only for routes with a `rate_limit` (`EVALSHA`; the script is loaded
//!   once per Redis server). Routes without a limit never touch Redis.
//! - **Same semantics as [`LocalRateLimiter`]**: per route and key, `burst` requests at once,
//!   then `per_second`; `block_after` consecutive rejections block the key for `block_for`.
//!   The script takes the time from Redis (`TIME`), so replicas with skewed clocks agree.
//! - **Keys**: `rampart:rl:{route}:{key}` (route ids have no `:`; the key is the client
//!   address, `client:…`, `sub:…` or `key:{fingerprint}`, never a credential), one hash each
//!   (`tat`, `rej`, `blk`), expiring when the bucket is full again (or the block ends) plus one
//!   second, so idle keys cost nothing. Separate gateway deployments sharing one Redis should
//!   use separate databases (`redis://host:6379/2`).
//!
//! # When Redis does not answer: fail open to the local limiter
//!
//! A decision that fails (connection refused or lost, an error, no answer within
//! `redis_timeout_ms`) is made by an in-process [`LocalRateLimiter`] with the same settings
//! instead, for that request; Redis is then left alone for [`RETRY_AFTER`] (those requests
//! go straight to the local limiter, without waiting) before it is tried again. Every such
//! request is counted in `rampart_gateway_ratelimit_redis_fallback_total{route,cause}`
//! (`cause`: `error`, `timeout` or `skipped`), and a warning is logged at most every
//! [`LOG_EVERY`] (and an info line when Redis answers again).
//!
//! Why not fail closed (429 for everyone): rate limiting protects capacity, it is not an
//! access control; authentication and authorization still run on every request and fail
//! closed on their own. Turning a Redis outage into a full outage of every rate-limited route
//! would make Redis a single point of failure of the whole API. Why not fail open without any
//! limit: a flood during the outage would go unchecked. With the local fallback each replica
//! still enforces the limit on its own, so the effective limit is at most the number of
//! replicas times the configured one while Redis is away.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::{ClientTlsFiles, ConfigError, RateLimitConfig};
use crate::log_limit::LogLimit;
use crate::proxy::now_ms;
use crate::ratelimit::{LocalRateLimiter, RateCheck, RateDecision, RateLimiter};

/// After a failed decision, how long requests skip Redis and use the local limiter.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// At most one warning about Redis per this interval.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Prefix of every key the limiter writes.
pub const KEY_PREFIX: &str = "rampart:rl:";

/// GCRA with blocking; times in microseconds from Redis's clock.
///
/// `KEYS[1]`: the key's hash. `ARGV`: emission interval, burst, block_after, block_for.
/// Returns `{allowed (1/0), microseconds (reset when allowed, retry-after when denied),
/// blocked (1/0), remaining}`.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local block_after = tonumber(ARGV[3])
local block_for = tonumber(ARGV[4])
local s = redis.call('HMGET', KEYS[1], 'tat', 'rej', 'blk')
local tat = tonumber(s[1]) or now
local rej = tonumber(s[2]) or 0
local blk = tonumber(s[3]) or 0
if blk > now then
  return {0, blk - now, 1, 0}
end
if blk > 0 then
  rej = 0
end
local tolerance = interval * burst
if tat < now then
  tat = now
end
local new_tat = tat + interval
local ahead = new_tat - now
if ahead <= tolerance then
  redis.call('HSET', KEYS[1], 'tat', new_tat, 'rej', 0, 'blk', 0)
  redis.call('PEXPIRE', KEYS[1], math.ceil(ahead / 1000) + 1000)
  return {1, ahead, 0, math.floor((tolerance - ahead) / interval)}
end
rej = rej + 1
if block_after > 0 and rej >= block_after then
  redis.call('HSET', KEYS[1], 'tat', tat, 'rej', rej, 'blk', now + block_for)
  redis.call('PEXPIRE', KEYS[1], math.ceil(block_for / 1000) + 1000)
  return {0, block_for, 1, 0}
end
redis.call('HSET', KEYS[1], 'tat', tat, 'rej', rej, 'blk', 0)
redis.call('PEXPIRE', KEYS[1], math.ceil((tat - now) / 1000) + 1000)
return {0, ahead - tolerance, 0, 0}
";

/// A route's limit in the script's units.
#[derive(Debug, Clone, Copy)]
struct Params {
    interval_us: u64,
    burst: u32,
    block_after: u32,
    block_for_us: u64,
}

impl Params {
    fn new(c: &RateLimitConfig) -> Self {
        let per_second = if c.per_second.is_finite() && c.per_second > 0.0 {
            c.per_second
        } else {
            1.0
        };
        Self {
            // Saturating float-to-int conversion; at least one microsecond.
            interval_us: ((1_000_000.0 / per_second).round() as u64).max(1),
            burst: c.burst.max(1),
            block_after: c.block_after,
            block_for_us: c.block_for.saturating_mul(1_000_000),
        }
    }
}

struct Inner {
    routes: HashMap<String, Params>,
    local: LocalRateLimiter,
    client: redis::Client,
    connection: tokio::sync::OnceCell<ConnectionManager>,
    script: redis::Script,
    timeout: Duration,
    /// Redis is skipped until then ([`now_ms`]).
    skip_until: AtomicU64,
    /// Warnings about Redis, at most every [`LOG_EVERY`].
    warnings: LogLimit,
    /// A fallback happened since Redis last answered.
    degraded: AtomicBool,
}

/// The Redis-backed [`RateLimiter`] (see the module docs). Cheap to share; connects lazily
/// (the gateway starts, and limits locally, while Redis is down).
#[derive(Clone)]
pub struct RedisRateLimiter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("routes", &self.inner.routes.keys().collect::<Vec<_>>())
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// The limiter's Redis key for `key` on `route`.
pub fn redis_key(route: &str, key: &str) -> String {
    let mut k = String::with_capacity(KEY_PREFIX.len() + route.len() + 1 + key.len());
    k.push_str(KEY_PREFIX);
    k.push_str(route);
    k.push(':');
    k.push_str(key);
    k
}

impl RedisRateLimiter {
    /// A limiter for the given `(route id, config)` pairs, using the Redis at `url`
    /// (`redis://`), waiting at most `timeout` per decision. Does not connect yet.
    pub fn new<'a>(
        url: &str,
        timeout: Duration,
        routes: impl IntoIterator<Item = (&'a str, &'a RateLimitConfig)> + Clone,
    ) -> Result<Self, ConfigError> {
        Self::with_tls(url, None, timeout, routes)
    }

    /// Like [`RedisRateLimiter::new`]; for a `rediss://` URL with `tls`, the server's
    /// certificate must chain to `tls.ca_file` (and no other CA), and the client certificate
    /// of `tls` (if any) is presented. The files are read now.
    pub fn with_tls<'a>(
        url: &str,
        tls: Option<&ClientTlsFiles>,
        timeout: Duration,
        routes: impl IntoIterator<Item = (&'a str, &'a RateLimitConfig)> + Clone,
    ) -> Result<Self, ConfigError> {
        let client = match tls {
            None => redis::Client::open(url),
            Some(files) => {
                let pem = files.read("gateway.redis_tls")?;
                let certificates = redis::TlsCertificates {
                    client_tls: pem.identity.map(|(cert, key)| redis::ClientTlsConfig {
                        client_cert: cert.into_bytes(),
                        client_key: key.into_bytes(),
                    }),
                    root_cert: Some(pem.ca.into_bytes()),
                };
                redis::Client::build_with_tls(url, certificates)
            }
        }
        .map_err(|e| ConfigError::new("gateway.redis_url", e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                routes: routes
                    .clone()
                    .into_iter()
                    .map(|(id, c)| (id.to_owned(), Params::new(c)))
                    .collect(),
                local: LocalRateLimiter::new(routes),
                client,
                connection: tokio::sync::OnceCell::new(),
                script: redis::Script::new(SCRIPT),
                timeout,
                skip_until: AtomicU64::new(0),
                warnings: LogLimit::new(),
                degraded: AtomicBool::new(false),
            }),
        })
    }
}

impl Inner {
    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let manager = self
            .connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(10))
                    .set_max_delay(Duration::from_millis(100));
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await?;
        Ok(manager.clone())
    }

    async fn decide_in_redis(&self, key: &str, p: Params) -> redis::RedisResult<RateDecision> {
        let mut connection = self.connection().await?;
        let (allowed, micros, blocked, remaining): (i64, i64, i64, i64) = self
            .script
            .key(key)
            .arg(p.interval_us)
            .arg(p.burst)
            .arg(p.block_after)
            .arg(p.block_for_us)
            .invoke_async(&mut connection)
            .await?;
        let micros = Duration::from_micros(u64::try_from(micros).unwrap_or(0));
        Ok(if allowed == 1 {
            RateDecision::Allow {
                limit: p.burst,
                remaining: u32::try_from(remaining).unwrap_or(0),
                reset: micros,
            }
        } else {
            RateDecision::Deny {
                limit: p.burst,
                retry_after: micros,
                blocked: blocked == 1,
            }
        })
    }

    /// Decides locally after Redis failed (or while it is skipped).
    fn fallback(&self, route: &str, key: String, cause: &'static str) -> RateDecision {
        metrics::counter!("rampart_gateway_ratelimit_redis_fallback_total",
            "route" => route.to_owned(), "cause" => cause)
        .increment(1);
        self.degraded.store(true, Ordering::Relaxed);
        self.local.decide(route, key)
    }

    /// Records a failure: skip Redis for a while, warn at most every [`LOG_EVERY`].
    fn failed(&self, error: &dyn std::fmt::Display) {
        let now = now_ms();
        self.skip_until.store(
            now.saturating_add(u64::try_from(RETRY_AFTER.as_millis()).unwrap_or(u64::MAX)),
            Ordering::Relaxed,
        );
        if self.warnings.ready(LOG_EVERY) {
            tracing::warn!(
                error = %error,
                "Redis rate limiter unavailable: each replica limits on its own until Redis \
                 answers again (counted in rampart_gateway_ratelimit_redis_fallback_total)"
            );
        }
    }

    fn answered(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!("Redis rate limiter answering again: limits are shared again");
        }
    }
}

impl RateLimiter for RedisRateLimiter {
    fn check(&self, route: &Arc<str>, key: String) -> RateCheck {
        let Some(params) = self.inner.routes.get(&**route).copied() else {
            return RateCheck::Ready(RateDecision::Unlimited);
        };
        if self.inner.skip_until.load(Ordering::Relaxed) > now_ms() {
            return RateCheck::Ready(self.inner.fallback(route, key, "skipped"));
        }
        let inner = Arc::clone(&self.inner);
        let route = Arc::clone(route);
        RateCheck::Pending(Box::pin(async move {
            let redis_key = redis_key(&route, &key);
            match tokio::time::timeout(inner.timeout, inner.decide_in_redis(&redis_key, params))
                .await
            {
                Ok(Ok(decision)) => {
                    inner.answered();
                    decision
                }
                Ok(Err(e)) => {
                    inner.failed(&e);
                    inner.fallback(&route, key, "error")
                }
                Err(_) => {
                    inner.failed(&"no answer within redis_timeout_ms");
                    inner.fallback(&route, key, "timeout")
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_and_keys() {
        let c = RateLimitConfig {
            key: "ip".into(),
            per_second: 4.0,
            burst: 0,
            block_after: 3,
            block_for: 2,
        };
        let p = Params::new(&c);
        assert_eq!(p.interval_us, 250_000);
        assert_eq!(p.burst, 1);
        assert_eq!(p.block_for_us, 2_000_000);
        assert_eq!(
            redis_key("orders", "127.0.0.1"),
            "rampart:rl:orders:127.0.0.1"
        );
    }
}
