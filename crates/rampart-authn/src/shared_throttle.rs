//! Login throttling shared by every server of a deployment through Redis
//! (`[login] redis_url`), on top of the in-process [`LoginThrottle`].
//!
//! Without Redis each server counts failures on its own, so N replicas behind a load
//! balancer give an attacker N times the budget. With it:
//!
//! - **The same rules as [`LoginThrottle`]**, per account and per client address: free
//!   failures, then doubling delays, then a lockout; forgotten after `forget_after`. One Lua
//!   script updates and judges both keys atomically in one round trip, with Redis's clock
//!   (`TIME`), so replicas with skewed clocks agree.
//! - **Keys**: `rampart:login:a:{hmac}` for accounts (a keyed hash of the account name under
//!   a key derived from the master key: Redis never sees user names) and
//!   `rampart:login:ip:{address}` (IPv6 by /64), one hash each (`f` failures, `last`,
//!   `locked`, milliseconds), expiring when they stop mattering.
//! - **The local throttle keeps counting too**, and the stricter of the two decisions wins.
//!
//! # When Redis does not answer
//!
//! A call that fails (refused, lost, an error, no answer within the timeout) is decided by
//! the local throttle alone, and Redis is left alone for [`RETRY_AFTER`]; a warning is
//! logged at most every [`LOG_EVERY`]. Throttling then works per replica, as without
//! Redis: sign-in stays available (a Redis outage must not lock everyone out), and each
//! replica still enforces the limits on what it sees.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rampart_crypto::SecretHasher;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::throttle::{LoginThrottle, ThrottleConfig, ThrottleDecision, account_key, ip_key};

/// After a failed call, how long Redis is skipped.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// At most one warning about Redis per this interval.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Prefix of every key the throttle writes.
pub const KEY_PREFIX: &str = "rampart:login:";

/// Judges (and with `ARGV[1] == "fail"` first counts a failure for) an account key and an
/// address key. Per key, `ARGV` holds free failures, lockout threshold, base delay, maximum
/// delay, lockout length and forget-after (milliseconds): `ARGV[2..7]` for `KEYS[1]`,
/// `ARGV[8..13]` for `KEYS[2]`. Returns `{kind, retry_ms}` per key, kind 0 allow, 1 wait,
/// 2 locked.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local record = ARGV[1] == 'fail'
local function judge(key, base_arg)
  local free = tonumber(ARGV[base_arg])
  local lockout_after = tonumber(ARGV[base_arg + 1])
  local base = tonumber(ARGV[base_arg + 2])
  local max_delay = tonumber(ARGV[base_arg + 3])
  local lockout_for = tonumber(ARGV[base_arg + 4])
  local forget = tonumber(ARGV[base_arg + 5])
  local s = redis.call('HMGET', key, 'f', 'last', 'locked')
  local f = tonumber(s[1]) or 0
  local last = tonumber(s[2]) or now
  local locked = tonumber(s[3]) or -1
  if f > 0 then
    if locked >= 0 then
      if now - locked >= lockout_for then f = 0; locked = -1 end
    elseif now - last >= forget then
      f = 0
    end
  end
  if record then
    -- A failure while locked neither counts nor extends the lock.
    if locked < 0 then
      f = f + 1
      last = now
      if f >= lockout_after then locked = now end
    end
    redis.call('HSET', key, 'f', f, 'last', last, 'locked', locked)
    if locked >= 0 then
      redis.call('PEXPIRE', key, lockout_for - (now - locked) + 1000)
    else
      redis.call('PEXPIRE', key, forget + 1000)
    end
  end
  if f == 0 then return {0, 0} end
  if locked >= 0 then return {2, lockout_for - (now - locked)} end
  if f < free then return {0, 0} end
  local delay = max_delay
  if f - free < 40 then delay = math.min(base * (2 ^ (f - free)), max_delay) end
  local elapsed = now - last
  if elapsed >= delay then return {0, 0} end
  return {1, delay - elapsed}
end
local a = judge(KEYS[1], 2)
local i = judge(KEYS[2], 8)
return {a[1], a[2], i[1], i[2]}
";

/// Where the shared counters are.
#[derive(Clone)]
pub struct SharedThrottleConfig {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS (the server's
    /// certificate must chain to a CA of the system's trust store, or of `tls`).
    pub url: String,
    /// Longest wait for Redis per sign-in attempt.
    pub timeout: Duration,
    /// For a `rediss://` URL: the only CAs trusted, and a client certificate.
    pub tls: Option<RedisTlsFiles>,
}

/// TLS files for a `rediss://` Redis, read when the throttle is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisTlsFiles {
    /// PEM CA certificates the server's certificate must chain to (no other CA is trusted).
    pub ca_file: std::path::PathBuf,
    /// PEM certificate chain and private key presented to a Redis that asks for one
    /// (`tls-auth-clients yes`, Redis' default).
    pub client: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl std::fmt::Debug for SharedThrottleConfig {
    // The URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedThrottleConfig")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why a [`SharedThrottleConfig`] is not usable.
#[derive(Debug, thiserror::Error)]
#[error("login.redis_url: {0}")]
pub struct SharedThrottleError(String);

/// One dimension's limits, in the script's milliseconds.
#[derive(Clone, Copy, Debug)]
struct Limits([u64; 6]);

impl Limits {
    fn new(free: u32, lockout_after: u32, config: &ThrottleConfig) -> Self {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self([
            u64::from(free),
            u64::from(lockout_after),
            ms(config.base_delay),
            ms(config.max_delay),
            ms(config.lockout_for),
            ms(config.forget_after),
        ])
    }
}

struct Redis {
    client: redis::Client,
    connection: tokio::sync::OnceCell<ConnectionManager>,
    script: redis::Script,
    timeout: Duration,
    hasher: SecretHasher,
    account: Limits,
    ip: Limits,
    /// Redis is skipped until then (milliseconds since `epoch`).
    skip_until: AtomicU64,
    /// When a warning was last logged (milliseconds since `epoch` + 1; 0 = never).
    last_warning: AtomicU64,
    /// A fallback happened since Redis last answered.
    degraded: AtomicBool,
    epoch: Instant,
}

/// Login throttle per account and client address, shared through Redis when configured
/// (see the module documentation), else in-process only. `Send + Sync`; connects lazily.
pub struct SharedLoginThrottle {
    local: LoginThrottle,
    redis: Option<Redis>,
}

impl std::fmt::Debug for SharedLoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLoginThrottle")
            .field("shared", &self.redis.is_some())
            .finish_non_exhaustive()
    }
}

enum Mode {
    Check,
    Fail,
}

impl SharedLoginThrottle {
    /// An in-process throttle only.
    pub fn local(config: ThrottleConfig) -> Self {
        Self {
            local: LoginThrottle::new(config),
            redis: None,
        }
    }

    /// A throttle whose counters live in Redis at `shared.url` (and in this process);
    /// `hasher` keys the account names (use one derived from the master key, the same on
    /// every replica). Does not connect yet.
    pub fn with_redis(
        config: ThrottleConfig,
        shared: &SharedThrottleConfig,
        hasher: SecretHasher,
    ) -> Result<Self, SharedThrottleError> {
        if !(shared.url.starts_with("redis://") || shared.url.starts_with("rediss://")) {
            return Err(SharedThrottleError(
                "must be a redis:// or rediss:// URL".into(),
            ));
        }
        // The error is the crate's parse error; it does not repeat the URL.
        let client = match &shared.tls {
            None => redis::Client::open(shared.url.as_str()),
            Some(files) => {
                if !shared.url.starts_with("rediss://") {
                    return Err(SharedThrottleError(
                        "TLS files are set: the URL must be rediss://".into(),
                    ));
                }
                let read = |path: &std::path::Path| {
                    std::fs::read(path).map_err(|e| {
                        SharedThrottleError(format!("cannot read {}: {e}", path.display()))
                    })
                };
                let client_tls = match &files.client {
                    Some((cert, key)) => Some(redis::ClientTlsConfig {
                        client_cert: read(cert)?,
                        client_key: read(key)?,
                    }),
                    None => None,
                };
                let certificates = redis::TlsCertificates {
                    client_tls,
                    root_cert: Some(read(&files.ca_file)?),
                };
                redis::Client::build_with_tls(shared.url.as_str(), certificates)
            }
        }
        .map_err(|e| SharedThrottleError(e.to_string()))?;
        Ok(Self {
            redis: Some(Redis {
                client,
                connection: tokio::sync::OnceCell::new(),
                script: redis::Script::new(SCRIPT),
                timeout: shared.timeout,
                hasher,
                account: Limits::new(config.free_failures, config.lockout_after, &config),
                ip: Limits::new(config.ip_free_failures, config.ip_lockout_after, &config),
                skip_until: AtomicU64::new(0),
                last_warning: AtomicU64::new(0),
                degraded: AtomicBool::new(false),
                epoch: Instant::now(),
            }),
            local: LoginThrottle::new(config),
        })
    }

    /// Whether the counters are shared through Redis.
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Whether an attempt for `account` from `ip` may be checked now.
    pub async fn check(&self, account: &str, ip: IpAddr) -> ThrottleDecision {
        let local = self.local.check(account, ip, Instant::now());
        self.with_shared(local, account, ip, Mode::Check).await
    }

    /// Records a failed attempt; returns the state after it (`Locked` when this failure
    /// locked the account or address).
    pub async fn record_failure(&self, account: &str, ip: IpAddr) -> ThrottleDecision {
        let local = self.local.record_failure(account, ip, Instant::now());
        self.with_shared(local, account, ip, Mode::Fail).await
    }

    /// Records a successful sign-in: clears the account's failures, here and in Redis (the
    /// address's count is kept, see [`LoginThrottle::record_success`]).
    pub async fn record_success(&self, account: &str, ip: IpAddr) {
        self.local.record_success(account, ip);
        let Some(redis) = &self.redis else { return };
        if redis.skipped() {
            return;
        }
        let key = redis.account_key(account);
        let cleared = async {
            let mut connection = redis.connection().await?;
            redis::cmd("DEL")
                .arg(&key)
                .query_async::<()>(&mut connection)
                .await
        };
        match tokio::time::timeout(redis.timeout, cleared).await {
            Ok(Ok(())) => redis.answered(),
            Ok(Err(e)) => redis.failed(&e),
            Err(_) => redis.failed(&"no answer within the timeout"),
        }
    }

    async fn with_shared(
        &self,
        local: ThrottleDecision,
        account: &str,
        ip: IpAddr,
        mode: Mode,
    ) -> ThrottleDecision {
        let Some(redis) = &self.redis else {
            return local;
        };
        if redis.skipped() {
            return local;
        }
        match tokio::time::timeout(redis.timeout, redis.judge(account, ip, mode)).await {
            Ok(Ok(shared)) => {
                redis.answered();
                local.combine(shared)
            }
            Ok(Err(e)) => {
                redis.failed(&e);
                local
            }
            Err(_) => {
                redis.failed(&"no answer within the timeout");
                local
            }
        }
    }
}

impl Redis {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn skipped(&self) -> bool {
        self.skip_until.load(Ordering::Relaxed) > self.now_ms()
    }

    fn account_key(&self, account: &str) -> String {
        let mac = self.hasher.hash(account_key(account).as_bytes());
        let mut key = String::with_capacity(KEY_PREFIX.len() + 2 + 64);
        key.push_str(KEY_PREFIX);
        key.push_str("a:");
        for byte in mac {
            key.push(char::from(HEX[usize::from(byte >> 4)]));
            key.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        key
    }

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

    async fn judge(
        &self,
        account: &str,
        ip: IpAddr,
        mode: Mode,
    ) -> redis::RedisResult<ThrottleDecision> {
        let mut connection = self.connection().await?;
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(self.account_key(account))
            .key(format!("{KEY_PREFIX}ip:{}", ip_key(ip)))
            .arg(match mode {
                Mode::Check => "check",
                Mode::Fail => "fail",
            });
        for value in self.account.0.iter().chain(self.ip.0.iter()) {
            invocation.arg(*value);
        }
        let (a_kind, a_ms, i_kind, i_ms): (i64, i64, i64, i64) =
            invocation.invoke_async(&mut connection).await?;
        Ok(decision(a_kind, a_ms).combine(decision(i_kind, i_ms)))
    }

    /// Skips Redis for a while; warns at most every [`LOG_EVERY`].
    fn failed(&self, error: &dyn std::fmt::Display) {
        let now = self.now_ms();
        let pause = u64::try_from(RETRY_AFTER.as_millis()).unwrap_or(u64::MAX);
        self.skip_until
            .store(now.saturating_add(pause), Ordering::Relaxed);
        self.degraded.store(true, Ordering::Relaxed);
        let last = self.last_warning.load(Ordering::Relaxed);
        let every = u64::try_from(LOG_EVERY.as_millis()).unwrap_or(u64::MAX);
        if (last == 0 || now.saturating_add(1) >= last.saturating_add(every))
            && self
                .last_warning
                .compare_exchange(
                    last,
                    now.saturating_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            tracing::warn!(
                error = %error,
                "Redis login throttle unavailable: each server throttles sign-ins on its own \
                 until Redis answers again"
            );
        }
    }

    fn answered(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!(
                "Redis login throttle answering again: failures are counted across servers again"
            );
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn decision(kind: i64, ms: i64) -> ThrottleDecision {
    let retry_after = Duration::from_millis(u64::try_from(ms).unwrap_or(0).max(1));
    match kind {
        1 => ThrottleDecision::Wait { retry_after },
        2 => ThrottleDecision::Locked { retry_after },
        _ => ThrottleDecision::Allow,
    }
}
