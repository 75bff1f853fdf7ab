//! The Redis-backed login throttle with a real `redis-server` (rampart-testkit starts one;
//! `.ci/run` installs the Debian package): two throttles on one Redis stand for two servers
//! of one deployment.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rampart_authn::{
    RedisTlsFiles, SharedLoginThrottle, SharedThrottleConfig, ThrottleConfig, ThrottleDecision,
};
use rampart_crypto::MasterKey;
use rampart_testkit::RedisServer;

fn config() -> ThrottleConfig {
    ThrottleConfig {
        free_failures: 5,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
        lockout_after: 4,
        lockout_for: Duration::from_secs(60),
        ip_free_failures: 1_000,
        ip_lockout_after: 1_000,
        ..ThrottleConfig::default()
    }
}

fn hasher() -> rampart_crypto::SecretHasher {
    MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        .expect("key")
        .keyed_hasher("rampart/login-throttle/v1")
}

fn server(redis_url: &str, config: ThrottleConfig) -> SharedLoginThrottle {
    server_with_tls(redis_url, config, None)
}

fn server_with_tls(
    redis_url: &str,
    config: ThrottleConfig,
    tls: Option<RedisTlsFiles>,
) -> SharedLoginThrottle {
    SharedLoginThrottle::with_redis(
        config,
        &SharedThrottleConfig {
            url: redis_url.to_owned(),
            timeout: Duration::from_millis(500),
            tls,
        },
        hasher(),
    )
    .expect("throttle")
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

fn is_locked(d: ThrottleDecision) -> bool {
    matches!(d, ThrottleDecision::Locked { .. })
}

#[tokio::test]
async fn failures_at_one_server_count_at_the_other() {
    let redis = RedisServer::start();
    let a = server(&redis.url(), config());
    let b = server(&redis.url(), config());
    assert!(a.is_shared());
    // Two failures at each server: each saw fewer than the lockout threshold (4) itself.
    for (i, s) in [&a, &b, &a].into_iter().enumerate() {
        let d = s.record_failure("alice", ip(i as u8)).await;
        assert!(d.is_allowed(), "failure {i}: {d:?}");
    }
    let fourth = b.record_failure("alice", ip(9)).await;
    assert!(is_locked(fourth), "{fourth:?}");
    // Locked at A too, from any address, though A counted only two failures.
    assert!(is_locked(a.check("alice", ip(200)).await));
    // Other accounts are not affected.
    assert!(a.check("bob", ip(200)).await.is_allowed());

    // The same with two servers that do not share: nobody is locked.
    let c = SharedLoginThrottle::local(config());
    let d = SharedLoginThrottle::local(config());
    for (i, s) in [&c, &d, &c, &d].into_iter().enumerate() {
        let _ = s.record_failure("carol", ip(i as u8)).await;
    }
    assert!(c.check("carol", ip(1)).await.is_allowed());
}

#[tokio::test]
async fn a_success_clears_the_account_for_every_server() {
    let redis = RedisServer::start();
    let a = server(&redis.url(), config());
    let b = server(&redis.url(), config());
    for i in 0..3 {
        assert!(a.record_failure("dave", ip(i)).await.is_allowed());
    }
    a.record_success("dave", ip(0)).await;
    // Without the clear in Redis, the first of these would be the fourth failure.
    for i in 0..3 {
        let d = b.record_failure("dave", ip(i)).await;
        assert!(d.is_allowed(), "failure {i} after the success: {d:?}");
    }
    assert!(is_locked(b.record_failure("dave", ip(7)).await));
}

#[tokio::test]
async fn address_failures_are_shared_across_accounts_and_servers() {
    let redis = RedisServer::start();
    let config = ThrottleConfig {
        ip_free_failures: 100,
        ip_lockout_after: 6,
        ..config()
    };
    let a = server(&redis.url(), config.clone());
    let b = server(&redis.url(), config);
    let sprayer = IpAddr::from([203, 0, 113, 7]);
    for i in 0..5 {
        let s = if i % 2 == 0 { &a } else { &b };
        let d = s.record_failure(&format!("user{i}"), sprayer).await;
        assert!(d.is_allowed(), "failure {i}: {d:?}");
    }
    assert!(is_locked(b.record_failure("user5", sprayer).await));
    assert!(is_locked(a.check("someone-else", sprayer).await));
    assert!(a.check("someone-else", ip(1)).await.is_allowed());
}

#[tokio::test]
async fn redis_never_sees_account_names() {
    let redis = RedisServer::start();
    let a = server(&redis.url(), config());
    let _ = a
        .record_failure("erin@example.com", IpAddr::from([192, 0, 2, 1]))
        .await;
    let keys = redis.command("KEYS rampart:login:*").expect("KEYS");
    assert!(keys.contains("rampart:login:a:"), "{keys}");
    assert!(keys.contains("rampart:login:ip:192.0.2.1"), "{keys}");
    assert!(!keys.contains("erin"), "{keys}");
}

#[tokio::test]
async fn a_lockout_ends_after_lockout_for() {
    let redis = RedisServer::start();
    let short = ThrottleConfig {
        lockout_after: 2,
        lockout_for: Duration::from_millis(300),
        ..config()
    };
    let a = server(&redis.url(), short);
    let _ = a.record_failure("frank", ip(1)).await;
    assert!(is_locked(a.record_failure("frank", ip(1)).await));
    tokio::time::sleep(Duration::from_millis(450)).await;
    let d = a.check("frank", ip(1)).await;
    assert!(d.is_allowed(), "{d:?}");
}

#[tokio::test]
async fn without_redis_each_server_throttles_on_its_own_without_waiting() {
    // Nothing listens on this port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let a = server(&url, config());
    let b = server(&url, config());
    let started = Instant::now();
    let mut last = ThrottleDecision::Allow;
    for i in 0..4 {
        last = a.record_failure("grace", ip(i)).await;
    }
    assert!(is_locked(last), "the local counters still lock: {last:?}");
    assert!(b.check("grace", ip(1)).await.is_allowed(), "not shared");
    // One refused connection, then Redis is skipped: far below a timeout per call.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn only_redis_urls_are_accepted() {
    let err = SharedLoginThrottle::with_redis(
        config(),
        &SharedThrottleConfig {
            url: "http://user:secret@127.0.0.1:6379".into(),
            timeout: Duration::from_millis(100),
            tls: None,
        },
        hasher(),
    )
    .expect_err("not redis");
    assert!(err.to_string().contains("login.redis_url"), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
}

#[tokio::test]
async fn rediss_with_a_pinned_ca_and_a_client_certificate() {
    use rampart_pki::{DevCa, ExposeSecret};
    let day = Duration::from_secs(86_400);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = DevCa::generate("redis CA").expect("ca");
    let leaf = ca
        .issue_server_cert(&[], &["127.0.0.1".parse().expect("ip")], day)
        .expect("server cert");
    let redis =
        RedisServer::start_tls_with(&leaf.cert_pem, leaf.key_pem.expose_secret(), ca.cert_pem());
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let write = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).expect("write");
        path
    };
    let client = ca
        .issue_client_cert(&["auth-server".into()], day)
        .expect("client cert");
    let client_files = (
        write("client.pem", &client.chain_pem),
        write("client.key", client.key_pem.expose_secret()),
    );
    let tls = RedisTlsFiles {
        ca_file: write("ca.pem", ca.cert_pem()),
        client: Some(client_files.clone()),
    };
    // Two servers over TLS share the counters: only Redis can tell the second one.
    let a = server_with_tls(&url, config(), Some(tls.clone()));
    let b = server_with_tls(&url, config(), Some(tls.clone()));
    for (i, s) in [&a, &b, &a].into_iter().enumerate() {
        assert!(s.record_failure("alice", ip(i as u8)).await.is_allowed());
    }
    assert!(is_locked(b.record_failure("alice", ip(9)).await));
    assert!(is_locked(a.check("alice", ip(200)).await));

    // A Redis whose certificate is from another CA is not trusted, and without the client
    // certificate Redis refuses the connection: either way the server's own counters decide
    // (it never saw alice fail).
    let rogue = DevCa::generate("rogue").expect("rogue ca");
    for files in [
        RedisTlsFiles {
            ca_file: write("rogue.pem", rogue.cert_pem()),
            client: Some(client_files.clone()),
        },
        RedisTlsFiles {
            client: None,
            ..tls.clone()
        },
    ] {
        let c = server_with_tls(&url, config(), Some(files.clone()));
        assert!(c.check("alice", ip(200)).await.is_allowed(), "{files:?}");
    }

    // TLS files with a plain redis:// URL, or an unreadable CA file: refused at start.
    let plain = SharedLoginThrottle::with_redis(
        config(),
        &SharedThrottleConfig {
            url: format!("redis://127.0.0.1:{}", redis.port),
            timeout: Duration::from_millis(100),
            tls: Some(tls.clone()),
        },
        hasher(),
    );
    assert!(plain.is_err_and(|e| e.to_string().contains("rediss://")));
    let missing = SharedLoginThrottle::with_redis(
        config(),
        &SharedThrottleConfig {
            url,
            timeout: Duration::from_millis(100),
            tls: Some(RedisTlsFiles {
                ca_file: dir.path().join("absent.pem"),
                client: None,
            }),
        },
        hasher(),
    );
    assert!(missing.is_err_and(|e| e.to_string().contains("absent.pem")));
}
