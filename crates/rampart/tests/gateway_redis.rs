//! The Redis-backed rate limiter end to end: a real `redis-server` (Debian package
//! `redis-server`, installed by `.ci/run`), TWO `rampart gateway` processes sharing it, and
//! Redis killed (and restarted) under them.

mod gateway_support;

use std::time::Instant;

use gateway_support::{GatewayProcess, Upstream, wait_until};
use rampart_testkit::RedisServer;

const BURST: usize = 10;

fn config(up: &Upstream, redis_url: &str) -> String {
    format!(
        r#"
[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
redis_url = "{redis_url}"
redis_timeout_ms = 200

[[gateway.routes]]
id = "svc"
match = {{ path_prefix = "/svc" }}
upstreams = ["http://{up}"]
auth = ["public"]
rate_limit = {{ key = "ip", per_second = 1, burst = {BURST} }}

[[gateway.routes]]
id = "free"
match = {{ path_prefix = "/free" }}
upstreams = ["http://{up}"]
auth = ["public"]
"#,
        up = up.addr,
    )
}

/// Sends `n` requests alternating between the gateways; returns the statuses.
async fn alternate(gateways: &[&GatewayProcess], n: usize, path: &str) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..n {
        statuses.push(gateways[i % gateways.len()].get(path).await.0);
    }
    statuses
}

fn allowed(statuses: &[u16]) -> usize {
    statuses.iter().filter(|s| **s == 200).count()
}

async fn fallbacks(gw: &GatewayProcess) -> f64 {
    let (_, text) = gw.admin_get("/metrics").await;
    text.lines()
        .filter(|l| l.starts_with("rampart_gateway_ratelimit_redis_fallback_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn two_gateways_share_one_limit_and_fall_back_to_local_when_redis_dies() {
    let mut redis = RedisServer::start();
    let up = Upstream::start("up").await;
    let mut g1 = GatewayProcess::start(&config(&up, &redis.url()));
    let mut g2 = GatewayProcess::start(&config(&up, &redis.url()));

    // Burst 10 at 1/s, shared: 30 requests over both gateways in well under a second get
    // about 10 through in total, not 20.
    let started = Instant::now();
    let statuses = alternate(&[&g1, &g2], 30, "/svc/x").await;
    let refill = started.elapsed().as_secs() as usize;
    let ok = allowed(&statuses);
    assert!(
        (BURST..=BURST + 1 + refill).contains(&ok),
        "{ok} allowed of 30 across two gateways in {:?}: {statuses:?}",
        started.elapsed()
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert!(statuses[..BURST].iter().all(|s| *s == 200), "{statuses:?}");
    let resp = g2
        .http
        .get(format!("{}/svc/x", g2.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(
        resp.headers()["ratelimit-limit"],
        BURST.to_string().as_str()
    );

    // One namespaced key, expiring.
    let keys = redis.command("KEYS rampart:rl:*").unwrap();
    assert!(keys.starts_with("*1\r\n"), "{keys}");
    assert!(keys.contains("rampart:rl:svc:127.0.0.1"), "{keys}");
    let ttl: i64 = redis
        .command("PTTL rampart:rl:svc:127.0.0.1")
        .unwrap()
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!(ttl > 0 && ttl <= (BURST as i64 + 2) * 1000, "PTTL {ttl}");

    // One round trip per request on the limited route, none on the route without a limit.
    let before = redis.evalsha_calls();
    for _ in 0..5 {
        g1.get("/free/x").await;
    }
    assert_eq!(
        redis.evalsha_calls(),
        before,
        "no Redis call without a limit"
    );
    for _ in 0..5 {
        g1.get("/svc/x").await;
    }
    assert_eq!(redis.evalsha_calls(), before + 5, "one EVALSHA per request");
    assert_eq!(fallbacks(&g1).await, 0.0);

    // Redis dies: both gateways keep answering, each limiting on its own (a fresh local
    // bucket each: burst 10 per gateway), counted and logged once.
    redis.kill();
    for gw in [&g1, &g2] {
        let statuses = alternate(&[gw], 25, "/svc/x").await;
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 429),
            "answers without Redis: {statuses:?}"
        );
        let ok = allowed(&statuses);
        assert!(
            (BURST..=BURST + 3).contains(&ok),
            "local fallback still limits: {ok} of 25: {statuses:?}"
        );
        assert_eq!(gw.get("/free/x").await.0, 200);
    }
    for gw in [&mut g1, &mut g2] {
        assert!(fallbacks(gw).await >= 25.0, "fallbacks counted");
        assert_eq!(
            gw.stderr()
                .matches("Redis rate limiter unavailable")
                .count(),
            1,
            "logged once: {}",
            gw.stderr()
        );
        gw.assert_running();
    }

    // Redis comes back (empty): the limit is shared again within a few seconds.
    let redis = RedisServer::start_on(redis.port);
    for gw in [&g1, &g2] {
        wait_until("Redis used again", 10, || async {
            gw.get("/svc/x").await;
            gw.stderr().contains("Redis rate limiter answering again")
        })
        .await;
    }
    let _ = redis.command("FLUSHALL");
    let started = Instant::now();
    let statuses = alternate(&[&g1, &g2], 30, "/svc/x").await;
    let refill = started.elapsed().as_secs() as usize;
    let ok = allowed(&statuses);
    assert!(
        (BURST..=BURST + 1 + refill).contains(&ok),
        "shared again: {ok} of 30: {statuses:?}"
    );
}
