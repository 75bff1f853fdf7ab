#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;

const S: Duration = Duration::from_secs(1);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn wait(secs: u64) -> ThrottleDecision {
    ThrottleDecision::Wait {
        retry_after: Duration::from_secs(secs),
    }
}

#[test]
fn defaults() {
    let c = ThrottleConfig::default();
    assert_eq!(c.free_failures, 3);
    assert_eq!(c.base_delay, S);
    assert_eq!(c.max_delay, 60 * S);
    assert_eq!(c.lockout_after, 10);
    assert_eq!(c.lockout_for, 900 * S);
    assert_eq!(c.ip_free_failures, 20);
    assert_eq!(c.ip_lockout_after, 100);
    assert_eq!(c.forget_after, 900 * S);
    assert_eq!(c.max_entries, 100_000);
}

#[test]
fn send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LoginThrottle>();
}

#[test]
fn growing_delays_then_lockout() {
    let t = LoginThrottle::new(ThrottleConfig::default());
    let a = ip("192.0.2.1");
    let mut now = Instant::now();
    assert_eq!(t.check("alice", a, now), ThrottleDecision::Allow);

    // Three free failures.
    for _ in 0..2 {
        assert_eq!(t.record_failure("alice", a, now), ThrottleDecision::Allow);
        assert_eq!(t.check("alice", a, now), ThrottleDecision::Allow);
    }
    // The third one starts the delays: 1 s, then 2, 4, 8, 16, 32, 60 (capped).
    let expected = [1, 2, 4, 8, 16, 32, 60];
    for (i, &secs) in expected.iter().enumerate() {
        let d = t.record_failure("alice", a, now);
        assert_eq!(d, wait(secs), "failure {}", i + 3);
        assert_eq!(t.check("alice", a, now), wait(secs));
        // Half-way still waiting, with the remaining time.
        let half = now + Duration::from_millis(secs * 500);
        assert_eq!(
            t.check("alice", a, half),
            ThrottleDecision::Wait {
                retry_after: Duration::from_millis(secs * 500)
            }
        );
        now += Duration::from_secs(secs);
        assert_eq!(t.check("alice", a, now), ThrottleDecision::Allow);
    }
    // Failure number 10 locks the account for 15 minutes.
    let d = t.record_failure("alice", a, now);
    assert_eq!(
        d,
        ThrottleDecision::Locked {
            retry_after: 900 * S
        }
    );
    assert_eq!(
        t.check("alice", a, now + 100 * S),
        ThrottleDecision::Locked {
            retry_after: 800 * S
        }
    );
    // Failures while locked do not extend the lock.
    t.record_failure("alice", a, now + 100 * S);
    assert_eq!(
        t.check("alice", a, now + 899 * S),
        ThrottleDecision::Locked { retry_after: S }
    );
    // Other accounts are not affected (the address has 11 failures of 20).
    assert_eq!(t.check("bob", a, now), ThrottleDecision::Allow);

    // After the lock, a fresh start.
    now += 900 * S;
    assert_eq!(t.check("alice", a, now), ThrottleDecision::Allow);
    assert_eq!(t.record_failure("alice", a, now), ThrottleDecision::Allow);
}

#[test]
fn failures_are_forgotten() {
    let t = LoginThrottle::new(ThrottleConfig::default());
    let a = ip("192.0.2.1");
    let now = Instant::now();
    for _ in 0..5 {
        t.record_failure("carol", a, now);
    }
    assert_eq!(t.check("carol", a, now), wait(4));
    let later = now + 15 * 60 * S;
    assert_eq!(t.check("carol", a, later), ThrottleDecision::Allow);
    // The count restarted: the next failure is the first.
    assert_eq!(t.record_failure("carol", a, later), ThrottleDecision::Allow);
    assert_eq!(t.record_failure("carol", a, later), ThrottleDecision::Allow);
    assert_eq!(t.record_failure("carol", a, later), wait(1));
}

#[test]
fn success_resets_the_account() {
    let t = LoginThrottle::new(ThrottleConfig::default());
    let a = ip("192.0.2.1");
    let now = Instant::now();
    for _ in 0..4 {
        t.record_failure("dave", a, now);
    }
    assert_eq!(t.check("dave", a, now), wait(2));
    t.record_success("dave", a);
    assert_eq!(t.check("dave", a, now), ThrottleDecision::Allow);
    assert_eq!(t.record_failure("dave", a, now), ThrottleDecision::Allow);
    // The address keeps its count (5 failures so far).
    assert_eq!(t.ips.lock().get(&ip_key(a)).unwrap().failures, 5);
}

#[test]
fn ip_dimension() {
    let t = LoginThrottle::new(ThrottleConfig::default());
    let a = ip("198.51.100.7");
    let now = Instant::now();
    // Password spraying: one failure for each of many accounts.
    for i in 0..19 {
        assert_eq!(
            t.record_failure(&format!("user{i}"), a, now),
            ThrottleDecision::Allow
        );
    }
    assert_eq!(t.record_failure("user19", a, now), wait(1));
    assert_eq!(t.check("someone-else", a, now), wait(1));
    // Another address is free.
    assert_eq!(
        t.check("someone-else", ip("198.51.100.8"), now),
        ThrottleDecision::Allow
    );
    // 100 failures lock the address.
    let mut d = ThrottleDecision::Allow;
    for i in 20..100 {
        d = t.record_failure(&format!("user{i}"), a, now);
    }
    assert_eq!(
        d,
        ThrottleDecision::Locked {
            retry_after: 900 * S
        }
    );
    assert!(matches!(
        t.check("anyone", a, now + 60 * S),
        ThrottleDecision::Locked { .. }
    ));
}

#[test]
fn ipv6_by_prefix_and_mapped_ipv4() {
    assert_eq!(
        ip_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
        ip("2001:db8:1:2::")
    );
    assert_eq!(ip_key(ip("::ffff:192.0.2.9")), ip("192.0.2.9"));
    assert_eq!(ip_key(ip("192.0.2.9")), ip("192.0.2.9"));

    let config = ThrottleConfig {
        ip_free_failures: 2,
        ..ThrottleConfig::default()
    };
    let t = LoginThrottle::new(config);
    let now = Instant::now();
    t.record_failure("u1", ip("2001:db8:1:2::1"), now);
    t.record_failure("u2", ip("2001:db8:1:2:ffff::9"), now);
    // Same /64: throttled together.
    assert_eq!(t.check("u3", ip("2001:db8:1:2::77"), now), wait(1));
    // Another /64: free.
    assert_eq!(
        t.check("u3", ip("2001:db8:1:3::1"), now),
        ThrottleDecision::Allow
    );
}

#[test]
fn unknown_and_known_accounts_alike() {
    let t = LoginThrottle::new(ThrottleConfig::default());
    let a = ip("192.0.2.1");
    let b = ip("192.0.2.2");
    let now = Instant::now();
    let mut real = Vec::new();
    let mut fake = Vec::new();
    for _ in 0..6 {
        real.push(t.record_failure("exists", a, now));
        fake.push(t.record_failure("does-not-exist", b, now));
    }
    assert_eq!(real, fake);
}

#[test]
fn memory_bound() {
    let config = ThrottleConfig {
        max_entries: 100,
        ..ThrottleConfig::default()
    };
    let t = LoginThrottle::new(config);
    let start = Instant::now();
    for i in 0..1000u32 {
        let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        t.record_failure(
            &format!("acct{i}"),
            addr,
            start + Duration::from_millis(u64::from(i)),
        );
        assert!(t.accounts.len() <= 100);
        assert!(t.ips.len() <= 100);
    }
    // The newest entries are kept, the oldest evicted.
    let last = start + Duration::from_millis(999);
    assert!(t.accounts.lock().contains_key("acct999"));
    assert!(!t.accounts.lock().contains_key("acct0"));
    assert_eq!(t.accounts.lock()["acct999"].last_failure, last);
}

#[test]
fn eviction_prefers_expired_entries() {
    let config = ThrottleConfig {
        max_entries: 10,
        ..ThrottleConfig::default()
    };
    let t = LoginThrottle::new(config);
    let a = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let start = Instant::now();
    // One recent, heavily failed account.
    let recent = start + 20 * 60 * S;
    for _ in 0..5 {
        t.record_failure("victim", a, recent);
    }
    // Nine old entries, long expired at `recent`.
    for i in 0..9 {
        t.record_failure(&format!("old{i}"), a, start);
    }
    assert_eq!(t.accounts.len(), 10);
    t.record_failure("newcomer", a, recent);
    let map = t.accounts.lock();
    assert!(map.contains_key("victim"));
    assert!(map.contains_key("newcomer"));
    assert_eq!(map.len(), 2);
}

#[test]
fn long_accounts_are_bounded() {
    let t = LoginThrottle::new(ThrottleConfig::default());
    let a = ip("192.0.2.1");
    let now = Instant::now();
    let long = "é".repeat(10_000);
    t.record_failure(&long, a, now);
    let map = t.accounts.lock();
    assert!(map.keys().all(|k| k.len() <= MAX_ACCOUNT_KEY_BYTES));
}

#[test]
fn combine_prefers_the_stricter() {
    let l = ThrottleDecision::Locked { retry_after: S };
    let w = wait(30);
    assert_eq!(
        w.combine(l),
        ThrottleDecision::Locked {
            retry_after: 30 * S
        }
    );
    assert_eq!(ThrottleDecision::Allow.combine(w), w);
    assert_eq!(wait(2).combine(wait(5)), wait(5));
    assert!(ThrottleDecision::Allow.is_allowed());
    assert!(!w.is_allowed());
}

#[test]
fn instants_out_of_order_do_not_panic() {
    let t = LoginThrottle::new(ThrottleConfig::default());
    let a = ip("192.0.2.1");
    let now = Instant::now() + 3600 * S;
    for _ in 0..5 {
        t.record_failure("eve", a, now);
    }
    let earlier = now - 10 * S;
    assert_eq!(t.check("eve", a, earlier), wait(4));
    t.record_failure("eve", a, earlier);
}
