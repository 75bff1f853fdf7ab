//! Warnings that every request of a flood could repeat (Redis down, a policy failing to
//! evaluate): logged at most once per interval; the metrics count every occurrence.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::proxy::now_ms;

/// When a warning was last logged, shared by the threads that may log it.
#[derive(Debug, Default)]
pub(crate) struct LogLimit {
    /// [`now_ms`] + 1 at the last warning; 0 = never.
    last: AtomicU64,
}

impl LogLimit {
    /// Nothing logged yet.
    pub(crate) const fn new() -> Self {
        Self {
            last: AtomicU64::new(0),
        }
    }

    /// Whether a warning may be logged now: the first time, then at most once per `every`.
    /// A `true` claims the slot, so of threads racing only one gets it.
    pub(crate) fn ready(&self, every: Duration) -> bool {
        let now = now_ms();
        let last = self.last.load(Ordering::Relaxed);
        let every = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
        (last == 0 || now.saturating_add(1) >= last.saturating_add(every))
            && self
                .last
                .compare_exchange(
                    last,
                    now.saturating_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_interval() {
        let limit = LogLimit::new();
        assert!(limit.ready(Duration::from_secs(3600)));
        assert!(!limit.ready(Duration::from_secs(3600)));
        assert!(limit.ready(Duration::ZERO), "the interval has passed");
    }
}
