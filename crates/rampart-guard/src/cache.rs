//! Bounded, expiring caches keyed by the SHA-256 of a token.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;

/// A cache key: SHA-256 of the token, so tokens are never kept in memory by the caches.
pub(crate) type TokenKey = [u8; 32];

/// SHA-256 of `token`.
pub(crate) fn token_key(token: &str) -> TokenKey {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Current time in unix milliseconds.
pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Locks a mutex, recovering the data if a holder panicked (the data are plain caches).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A map from token hashes to values that expire at a unix time in milliseconds. Holds at most
/// `max` entries: when full, expired entries are evicted first, and if none is, the whole
/// cache is cleared (cheap, bounded, and only costs re-verification). Values should be cheap
/// to clone (a hit is cloned under the lock): the verified-token cache holds `Arc`s.
pub(crate) struct ExpiringCache<V> {
    entries: Mutex<HashMap<TokenKey, (V, i64)>>,
    max: usize,
}

impl<V: Clone> ExpiringCache<V> {
    /// An empty cache holding at most `max` entries (`0` disables caching).
    pub(crate) fn new(max: usize) -> Self {
        ExpiringCache {
            entries: Mutex::new(HashMap::new()),
            max,
        }
    }

    /// The value for `key` if present and not expired at `now_ms`; expired entries are removed.
    pub(crate) fn get(&self, key: &TokenKey, now_ms: i64) -> Option<V> {
        let mut map = lock(&self.entries);
        match map.get(key) {
            Some((v, exp)) if now_ms < *exp => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores `value` until `expires_ms` (nothing is stored if that is not after `now_ms`).
    pub(crate) fn insert(&self, key: TokenKey, value: V, expires_ms: i64, now_ms: i64) {
        if self.max == 0 || expires_ms <= now_ms {
            return;
        }
        let mut map = lock(&self.entries);
        if map.len() >= self.max && !map.contains_key(&key) {
            map.retain(|_, (_, exp)| now_ms < *exp);
            if map.len() >= self.max {
                map.clear();
            }
        }
        map.insert(key, (value, expires_ms));
    }

    /// Number of entries (expired ones included until evicted).
    pub(crate) fn len(&self) -> usize {
        lock(&self.entries).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_and_bounds() {
        let c = ExpiringCache::new(2);
        let (a, b, d) = (token_key("a"), token_key("b"), token_key("d"));
        assert_ne!(a, b);
        c.insert(a, 1, 100, 0);
        assert_eq!(c.get(&a, 50), Some(1));
        assert_eq!(c.get(&a, 100), None);
        assert_eq!(c.len(), 0);
        c.insert(a, 1, 100, 0);
        c.insert(b, 2, 200, 0);
        // Full: the expired `a` is evicted first, `b` stays.
        c.insert(d, 3, 300, 150);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&b, 150), Some(2));
        // Full with nothing expired: cleared, then the new entry is stored.
        c.insert(a, 4, 400, 160);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(&a, 160), Some(4));
        // Already expired values are not stored.
        c.insert(b, 5, 10, 20);
        assert_eq!(c.get(&b, 5), None);
    }

    #[test]
    fn disabled_cache() {
        let c = ExpiringCache::new(0);
        c.insert(token_key("a"), 1, 100, 0);
        assert_eq!(c.get(&token_key("a"), 0), None);
    }
}
