//! Login throttling in memory, bounded, per account and per client address.
//!
//! Each dimension counts consecutive failures. After `free_failures` of
//! them, the next attempt is allowed only `base_delay × 2^(n − free)` after
//! the last failure (capped at `max_delay`); at `lockout_after` failures the
//! key is locked for `lockout_for`. Client addresses use the `ip_*`
//! thresholds, with IPv6 addresses grouped by /64 (one subscriber usually
//! holds a whole /64) and IPv4-mapped IPv6 addresses treated as IPv4.
//! Failures older than `forget_after` are forgotten.
//!
//! Accounts are arbitrary strings: pass the normalized username whether or
//! not the account exists, so the throttle does not reveal which exist.
//!
//! A success clears the account's failures but not the address's: otherwise
//! an attacker spraying passwords from one address could reset its counter
//! by signing in to an account of their own now and then.
//!
//! Memory is bounded: each map holds at most `max_entries`; when full,
//! expired entries are dropped first, then the oldest tenth.
//!
//! This is per process; [`crate::shared_throttle`] shares the counters between servers
//! through Redis.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Accounts longer than this (in bytes) are truncated for the key.
const MAX_ACCOUNT_KEY_BYTES: usize = 256;

/// Settings of [`LoginThrottle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Consecutive failures per account without delay (default 3).
    pub free_failures: u32,
    /// Delay after the first failure beyond the free ones (default 1 s); it
    /// doubles with each further failure.
    pub base_delay: Duration,
    /// Cap of the delay (default 60 s).
    pub max_delay: Duration,
    /// Failures per account that lock it (default 10).
    pub lockout_after: u32,
    /// Length of a lockout, for accounts and addresses (default 15 min).
    pub lockout_for: Duration,
    /// Consecutive failures per client address without delay (default 20).
    pub ip_free_failures: u32,
    /// Failures per client address that lock it (default 100).
    pub ip_lockout_after: u32,
    /// Failures are forgotten this long after the last one (default 15 min).
    pub forget_after: Duration,
    /// Most entries kept per dimension (default 100 000).
    pub max_entries: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            free_failures: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            lockout_after: 10,
            lockout_for: Duration::from_secs(15 * 60),
            ip_free_failures: 20,
            ip_lockout_after: 100,
            forget_after: Duration::from_secs(15 * 60),
            max_entries: 100_000,
        }
    }
}

/// What to do with a login attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThrottleDecision {
    /// Go ahead and check the credentials.
    Allow,
    /// Too many recent failures: refuse without checking, retry later
    /// (answer 429 with `Retry-After`).
    Wait {
        /// Time until the next attempt is allowed.
        retry_after: Duration,
    },
    /// Locked out: refuse without checking.
    Locked {
        /// Time until the lock ends.
        retry_after: Duration,
    },
}

impl ThrottleDecision {
    /// Whether the attempt may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, ThrottleDecision::Allow)
    }

    /// The more restrictive of two decisions: `Locked` over `Wait` over
    /// `Allow`, and the longer `retry_after`.
    pub(crate) fn combine(self, other: ThrottleDecision) -> ThrottleDecision {
        use ThrottleDecision::{Allow, Locked, Wait};
        match (self, other) {
            (Allow, d) | (d, Allow) => d,
            (Wait { retry_after: a }, Wait { retry_after: b }) => Wait {
                retry_after: a.max(b),
            },
            (Locked { retry_after: a }, Wait { retry_after: b })
            | (Wait { retry_after: b }, Locked { retry_after: a })
            | (Locked { retry_after: a }, Locked { retry_after: b }) => Locked {
                retry_after: a.max(b),
            },
        }
    }
}

/// Thresholds of one dimension.
#[derive(Clone, Copy, Debug)]
struct Limits {
    free: u32,
    lockout_after: u32,
    base_delay: Duration,
    max_delay: Duration,
    lockout_for: Duration,
    forget_after: Duration,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_at: Option<Instant>,
}

impl Entry {
    /// Whether this entry no longer has any effect at `now`.
    fn expired(&self, now: Instant, l: &Limits) -> bool {
        match self.locked_at {
            Some(at) => now.saturating_duration_since(at) >= l.lockout_for,
            None => now.saturating_duration_since(self.last_failure) >= l.forget_after,
        }
    }

    fn decision(&self, now: Instant, l: &Limits) -> ThrottleDecision {
        if self.expired(now, l) {
            return ThrottleDecision::Allow;
        }
        if let Some(at) = self.locked_at {
            return ThrottleDecision::Locked {
                retry_after: l
                    .lockout_for
                    .saturating_sub(now.saturating_duration_since(at)),
            };
        }
        if self.failures < l.free {
            return ThrottleDecision::Allow;
        }
        let delay = l.delay(self.failures);
        let elapsed = now.saturating_duration_since(self.last_failure);
        if elapsed >= delay {
            ThrottleDecision::Allow
        } else {
            ThrottleDecision::Wait {
                retry_after: delay - elapsed,
            }
        }
    }
}

impl Limits {
    /// `base_delay × 2^(failures − free)`, capped at `max_delay`.
    fn delay(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(self.free);
        match 1u32.checked_shl(exponent) {
            Some(factor) => self.base_delay.saturating_mul(factor).min(self.max_delay),
            None => self.max_delay,
        }
    }
}

/// One dimension: a bounded map of keys to failure counts.
#[derive(Debug)]
struct Table<K> {
    map: Mutex<HashMap<K, Entry>>,
    limits: Limits,
    max_entries: usize,
}

impl<K: Eq + Hash + Clone> Table<K> {
    fn new(limits: Limits, max_entries: usize) -> Self {
        Table {
            map: Mutex::new(HashMap::new()),
            limits,
            max_entries: max_entries.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Entry>> {
        // The map stays consistent even if a holder panicked.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self, key: &K, now: Instant) -> ThrottleDecision {
        let map = self.lock();
        map.get(key)
            .map_or(ThrottleDecision::Allow, |e| e.decision(now, &self.limits))
    }

    fn record_failure(&self, key: &K, now: Instant) -> ThrottleDecision {
        let l = &self.limits;
        let mut map = self.lock();
        if let Some(entry) = map.get_mut(key) {
            if entry.expired(now, l) {
                *entry = Entry {
                    failures: 0,
                    last_failure: now,
                    locked_at: None,
                };
            }
            // A failure recorded while locked (the caller should not have
            // checked the password) neither counts nor extends the lock.
            if entry.locked_at.is_none() {
                entry.failures = entry.failures.saturating_add(1);
                entry.last_failure = now;
                if entry.failures >= l.lockout_after {
                    entry.locked_at = Some(now);
                }
            }
            return entry.decision(now, l);
        }
        if map.len() >= self.max_entries {
            self.evict(&mut map, now);
        }
        let entry = Entry {
            failures: 1,
            last_failure: now,
            locked_at: (l.lockout_after <= 1).then_some(now),
        };
        map.insert(key.clone(), entry);
        entry.decision(now, l)
    }

    fn clear(&self, key: &K) {
        self.lock().remove(key);
    }

    /// Drops expired entries; if that is not enough, the oldest tenth (by
    /// last failure), so the next inserts do not scan the map again.
    fn evict(&self, map: &mut HashMap<K, Entry>, now: Instant) {
        let l = self.limits;
        map.retain(|_, e| !e.expired(now, &l));
        if map.len() < self.max_entries {
            return;
        }
        let excess = map.len() + 1 - self.max_entries;
        let batch = (self.max_entries / 10).max(excess).min(map.len());
        let mut ages: Vec<(Instant, K)> = map
            .iter()
            .map(|(k, e)| (e.last_failure, k.clone()))
            .collect();
        if batch < ages.len() {
            ages.select_nth_unstable_by_key(batch, |(t, _)| *t);
        }
        for (_, k) in ages.into_iter().take(batch) {
            map.remove(&k);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The throttle key of a client address: IPv4 as is (also when mapped into
/// IPv6), IPv6 reduced to its /64 prefix.
pub(crate) fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(
                v6.to_bits() & !0xffff_ffff_ffff_ffff_u128,
            )),
        },
    }
}

pub(crate) fn account_key(account: &str) -> String {
    if account.len() <= MAX_ACCOUNT_KEY_BYTES {
        return account.to_owned();
    }
    let mut end = MAX_ACCOUNT_KEY_BYTES;
    while !account.is_char_boundary(end) {
        end -= 1;
    }
    account[..end].to_owned()
}

/// Login throttle per account and per client address. `Send + Sync`; share
/// it behind an `Arc`.
///
/// Use: `check` before verifying credentials (refuse unless `Allow`),
/// then `record_failure` or `record_success`.
#[derive(Debug)]
pub struct LoginThrottle {
    accounts: Table<String>,
    ips: Table<IpAddr>,
}

impl LoginThrottle {
    /// Creates an empty throttle.
    pub fn new(config: ThrottleConfig) -> Self {
        let account_limits = Limits {
            free: config.free_failures,
            lockout_after: config.lockout_after,
            base_delay: config.base_delay,
            max_delay: config.max_delay,
            lockout_for: config.lockout_for,
            forget_after: config.forget_after,
        };
        let ip_limits = Limits {
            free: config.ip_free_failures,
            lockout_after: config.ip_lockout_after,
            ..account_limits
        };
        LoginThrottle {
            accounts: Table::new(account_limits, config.max_entries),
            ips: Table::new(ip_limits, config.max_entries),
        }
    }

    /// Whether an attempt for `account` from `ip` may be checked now.
    pub fn check(&self, account: &str, ip: IpAddr, now: Instant) -> ThrottleDecision {
        let by_account = self.accounts.check(&account_key(account), now);
        let by_ip = self.ips.check(&ip_key(ip), now);
        by_account.combine(by_ip)
    }

    /// Records a failed attempt; returns the state after it (`Locked` when
    /// this failure locked the account or address).
    pub fn record_failure(&self, account: &str, ip: IpAddr, now: Instant) -> ThrottleDecision {
        let by_account = self.accounts.record_failure(&account_key(account), now);
        let by_ip = self.ips.record_failure(&ip_key(ip), now);
        by_account.combine(by_ip)
    }

    /// Records a successful sign-in: clears the account's failures (the
    /// address's count is kept, see the module documentation).
    pub fn record_success(&self, account: &str, ip: IpAddr) {
        let _ = ip;
        self.accounts.clear(&account_key(account));
    }
}

#[cfg(test)]
mod tests;
