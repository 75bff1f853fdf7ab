//! The Redis GCRA script against a real `redis-server` (Debian package `redis-server`,
//! installed by `.ci/run`): shared buckets, blocking, key expiry, and the local fallback when
//! Redis does not answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_gateway::config::RateLimitConfig;
use rampart_gateway::{RateCheck, RateDecision, RateLimiter, RedisRateLimiter};
use rampart_testkit::RedisServer;

/// A server on TLS only, with a certificate for 127.0.0.1 from `ca`, asking clients for a
/// certificate from `ca`. Writes `ca.pem` into `dir` for the client side.
fn start_tls(ca: &rampart_pki::DevCa, dir: &std::path::Path) -> RedisServer {
    use rampart_pki::ExposeSecret;
    let leaf = ca
        .issue_server_cert(
            &[],
            &["127.0.0.1".parse().unwrap()],
            Duration::from_secs(86_400),
        )
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert_pem()).unwrap();
    RedisServer::start_tls_with(&leaf.cert_pem, leaf.key_pem.expose_secret(), ca.cert_pem())
}

fn limit(per_second: f64, burst: u32, block_after: u32, block_for: u64) -> RateLimitConfig {
    RateLimitConfig {
        key: "ip".into(),
        per_second,
        burst,
        block_after,
        block_for,
    }
}

async fn decide(limiter: &RedisRateLimiter, route: &Arc<str>, key: &str) -> RateDecision {
    match limiter.check(route, key.to_owned()) {
        RateCheck::Ready(d) => panic!("expected a Redis round trip, got {d:?}"),
        RateCheck::Pending(f) => f.await,
    }
}

#[tokio::test]
async fn shared_buckets_blocking_and_expiry() {
    let redis = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let cfg = limit(1.0, 2, 2, 2);
    let routes = [("r", &cfg)];
    // Two replicas.
    let one = RedisRateLimiter::new(&url, Duration::from_secs(1), routes).unwrap();
    let two = RedisRateLimiter::new(&url, Duration::from_secs(1), routes).unwrap();
    let r: Arc<str> = Arc::from("r");

    assert!(matches!(
        decide(&one, &r, "k").await,
        RateDecision::Allow {
            limit: 2,
            remaining: 1,
            ..
        }
    ));
    assert!(matches!(
        decide(&two, &r, "k").await,
        RateDecision::Allow { remaining: 0, .. }
    ));
    // Another key is independent; a route without a limit never asks Redis.
    assert!(matches!(
        decide(&two, &r, "other").await,
        RateDecision::Allow { .. }
    ));
    assert!(matches!(
        two.check(&Arc::from("free"), "k".into()),
        RateCheck::Ready(RateDecision::Unlimited)
    ));
    // Over the burst: denied, then blocked (block_after = 2) for block_for = 2 s.
    match decide(&one, &r, "k").await {
        RateDecision::Deny {
            blocked: false,
            retry_after,
            ..
        } => assert!(retry_after <= Duration::from_secs(1), "{retry_after:?}"),
        d => panic!("{d:?}"),
    }
    assert!(matches!(
        decide(&two, &r, "k").await,
        RateDecision::Deny { blocked: true, .. }
    ));
    let pttl: i64 = redis
        .command("PTTL rampart:rl:r:k")
        .unwrap()
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!(
        (2000..=3000).contains(&pttl),
        "expires with the block: {pttl}"
    );
    // Still blocked after the bucket refilled (1 s), free after the block (2 s).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(matches!(
        decide(&one, &r, "k").await,
        RateDecision::Deny { blocked: true, .. }
    ));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(matches!(
        decide(&one, &r, "k").await,
        RateDecision::Allow { .. }
    ));
    // Only the limiter's namespaced keys; "other" (one request, 2.2 s ago) has expired with
    // its refilled bucket (1 s + 1 s of margin).
    let keys = redis.command("KEYS *").unwrap();
    assert_eq!(keys, "*1\r\n$14\r\nrampart:rl:r:k\r\n");
}

#[tokio::test]
async fn a_silent_redis_falls_back_to_the_local_limiter_after_the_timeout() {
    // Accepts connections, never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let cfg = limit(1.0, 3, 0, 60);
    let limiter = RedisRateLimiter::new(
        &format!("redis://{addr}"),
        Duration::from_millis(150),
        [("r", &cfg)],
    )
    .unwrap();
    let r: Arc<str> = Arc::from("r");
    let started = Instant::now();
    let first = decide(&limiter, &r, "k").await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_millis(1000),
        "{took:?}"
    );
    assert!(matches!(
        first,
        RateDecision::Allow {
            limit: 3,
            remaining: 2,
            ..
        }
    ));
    // Redis is then skipped for a while: decided locally at once, and still limited.
    let mut decisions = Vec::new();
    for _ in 0..3 {
        match limiter.check(&r, "k".into()) {
            RateCheck::Ready(d) => decisions.push(d),
            RateCheck::Pending(_) => panic!("Redis should be skipped right after a failure"),
        }
    }
    assert!(matches!(
        decisions[1],
        RateDecision::Allow { remaining: 0, .. }
    ));
    assert!(
        matches!(decisions[2], RateDecision::Deny { .. }),
        "{decisions:?}"
    );
}

#[tokio::test]
async fn rediss_with_a_pinned_ca_and_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = rampart_pki::DevCa::generate("redis CA").unwrap();
    let redis = start_tls(&ca, dir.path());
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let client = ca
        .issue_client_cert(&["gateway".into()], Duration::from_secs(86_400))
        .unwrap();
    let (cert, key) = (dir.path().join("gw.pem"), dir.path().join("gw.key"));
    std::fs::write(&cert, &client.chain_pem).unwrap();
    std::fs::write(
        &key,
        rampart_pki::ExposeSecret::expose_secret(&client.key_pem),
    )
    .unwrap();
    let files = rampart_gateway::config::ClientTlsFiles {
        ca_file: dir.path().join("ca.pem"),
        cert_file: Some(cert.clone()),
        key_file: Some(key.clone()),
    };
    let cfg = limit(1.0, 2, 0, 60);
    let r: Arc<str> = Arc::from("r");
    // Two replicas over TLS share the bucket: only Redis can tell the second one.
    let one = RedisRateLimiter::with_tls(&url, Some(&files), Duration::from_secs(2), [("r", &cfg)])
        .unwrap();
    let two = RedisRateLimiter::with_tls(&url, Some(&files), Duration::from_secs(2), [("r", &cfg)])
        .unwrap();
    assert!(matches!(
        decide(&one, &r, "k").await,
        RateDecision::Allow { remaining: 1, .. }
    ));
    assert!(matches!(
        decide(&two, &r, "k").await,
        RateDecision::Allow { remaining: 0, .. }
    ));

    // A Redis certificate from another CA: refused, so the limiter falls back to its local
    // bucket (fresh: remaining 1) and then skips Redis for a while.
    let rogue = rampart_pki::DevCa::generate("rogue").unwrap();
    let rogue_ca = dir.path().join("rogue.pem");
    std::fs::write(&rogue_ca, rogue.cert_pem()).unwrap();
    let wrong_ca = rampart_gateway::config::ClientTlsFiles {
        ca_file: rogue_ca,
        cert_file: Some(cert),
        key_file: Some(key),
    };
    assert_falls_back_to_local(&url, &wrong_ca, &cfg).await;

    // Without the client certificate Redis (tls-auth-clients yes) refuses: local fallback too.
    let no_cert = rampart_gateway::config::ClientTlsFiles {
        ca_file: dir.path().join("ca.pem"),
        cert_file: None,
        key_file: None,
    };
    assert_falls_back_to_local(&url, &no_cert, &cfg).await;
}

/// A limiter on `url` with `files` decides locally: its first decision is a fresh local
/// bucket (the shared one in Redis is used up), and Redis is skipped right after.
async fn assert_falls_back_to_local(
    url: &str,
    files: &rampart_gateway::config::ClientTlsFiles,
    cfg: &RateLimitConfig,
) {
    let r: Arc<str> = Arc::from("r");
    let limiter =
        RedisRateLimiter::with_tls(url, Some(files), Duration::from_secs(2), [("r", cfg)]).unwrap();
    assert!(matches!(
        decide(&limiter, &r, "k").await,
        RateDecision::Allow { remaining: 1, .. }
    ));
    assert!(matches!(limiter.check(&r, "k".into()), RateCheck::Ready(_)));
}
