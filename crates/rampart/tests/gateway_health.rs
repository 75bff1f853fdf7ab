//! Active health checks and readiness end to end: the real binary (`rampart gateway`) in front
//! of real upstreams that start and stop failing, a fake issuer whose keys become available
//! late, the config file changed under the running process.

mod gateway_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gateway_support::{GatewayProcess, Upstream, wait_until};
use serde_json::Value;

/// The gateway configuration: one public route over `a` and `b`, checked on `health_path`.
fn config(a: &Upstream, b: &Upstream, health_path: &str, extra: &str) -> String {
    format!(
        r#"
[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
{extra}
[[gateway.routes]]
id = "svc"
match = {{ path_prefix = "/svc" }}
upstreams = ["http://{a}", "http://{b}"]
auth = ["public"]
health_check = {{ path = "{health_path}", interval = 1, timeout = 1, unhealthy_after = 2, healthy_after = 2 }}
"#,
        a = a.addr,
        b = b.addr,
    )
}

/// Sends `n` requests; returns who answered (or "status N").
async fn send(gw: &GatewayProcess, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let (status, body) = gw.get("/svc/x").await;
        out.push(if status == 200 {
            body
        } else {
            format!("status {status}")
        });
    }
    out
}

fn count(answers: &[String], who: &str) -> usize {
    answers.iter().filter(|s| *s == who).count()
}

async fn gauge(gw: &GatewayProcess, up: &Upstream) -> Option<f64> {
    gw.metric(&format!(
        "rampart_gateway_upstream_healthy{{route=\"svc\",upstream=\"http://{}\"}}",
        up.addr
    ))
    .await
}

#[tokio::test]
async fn failing_upstream_is_taken_out_and_brought_back_without_failed_requests() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let mut gw = GatewayProcess::start(&config(&a, &b, "/healthz", ""));
    wait_until("both upstreams probed", 5, || async {
        a.probes("/healthz") >= 1 && b.probes("/healthz") >= 1
    })
    .await;
    let both = send(&gw, 10).await;
    assert_eq!((count(&both, "a"), count(&both, "b")), (5, 5), "{both:?}");
    wait_until("gauges up", 3, || async {
        gauge(&gw, &a).await == Some(1.0) && gauge(&gw, &b).await == Some(1.0)
    })
    .await;

    // Client traffic runs all along; a starts failing everything (its health path included).
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (http, url, stop) = (gw.http.clone(), gw.url.clone(), stop.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let sent = Instant::now();
                let resp = http.get(format!("{url}/svc/t")).send().await.unwrap();
                let status = resp.status().as_u16();
                answers.push((sent, status, resp.text().await.unwrap_or_default()));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.fail(true);
    let failed_at = Instant::now();
    let probes = a.probes("/healthz");
    // interval 1 s × unhealthy_after 2: marked down within about 2 s.
    wait_until("a marked down", 5, || async {
        gauge(&gw, &a).await == Some(0.0)
    })
    .await;
    assert!(a.probes("/healthz") >= probes + 2);
    let marked_down = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    let answers = traffic.await.unwrap();
    // Requests sent once the gateway reported a down.
    let after: Vec<_> = answers
        .iter()
        .filter(|(sent, ..)| *sent > marked_down)
        .collect();
    assert!(after.len() >= 20, "traffic kept flowing: {}", after.len());
    assert!(
        after
            .iter()
            .all(|(_, status, who)| *status == 200 && who == "b"),
        "after a was marked down, every request succeeded on b: {after:?}"
    );
    let failed: Vec<_> = answers.iter().filter(|(_, s, _)| *s != 200).collect();
    assert!(
        failed
            .iter()
            .all(|(sent, ..)| *sent + Duration::from_millis(100) >= failed_at
                && *sent <= marked_down),
        "failures only while a was failing and not yet marked down: {failed:?}"
    );
    let hits = a.hits();
    assert_eq!(count(&send(&gw, 10).await, "b"), 10);
    assert_eq!(a.hits(), hits, "a gets no request while down");
    assert!(gw.stderr().contains("marked down"), "{}", gw.stderr());

    // a recovers: back after two good probes.
    a.fail(false);
    wait_until("a marked up", 5, || async {
        gauge(&gw, &a).await == Some(1.0)
    })
    .await;
    let back = send(&gw, 10).await;
    assert_eq!((count(&back, "a"), count(&back, "b")), (5, 5), "{back:?}");
    gw.assert_running();
}

#[tokio::test]
async fn reload_replaces_the_health_check_tasks() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let mut gw = GatewayProcess::start(&config(&a, &b, "/healthz", ""));
    wait_until("probed", 5, || async { a.probes("/healthz") >= 1 }).await;
    // a down before the reload...
    a.fail(true);
    wait_until("a marked down", 5, || async {
        gauge(&gw, &a).await == Some(0.0)
    })
    .await;

    gw.rewrite_config(&config(&a, &b, "/healthz2", ""));
    assert!(
        gw.wait_stderr("gateway configuration reloaded", 5).await,
        "{}",
        gw.stderr()
    );
    // ...stays down right after it (state carried over), no request reaches it.
    let hits = a.hits();
    let answers = send(&gw, 6).await;
    assert_eq!(count(&answers, "b"), 6, "{answers:?}");
    assert_eq!(a.hits(), hits);

    // The old task stopped: the old path gets no more probes; the new one does, once a second.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let old = (a.probes("/healthz"), b.probes("/healthz"));
    let new = b.probes("/healthz2");
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!((a.probes("/healthz"), b.probes("/healthz")), old);
    let probed = b.probes("/healthz2") - new;
    assert!(
        (2..=4).contains(&probed),
        "one task probing once a second, not two: {probed}"
    );
    gw.assert_running();
}

/// A fake issuer on plain HTTP (allowed on loopback): `/jwks.json` answers 503 until
/// `serving`, then a real JWKS (an Ed25519 key); `/paserk.json` is 404.
async fn fake_issuer(serving: Arc<AtomicBool>) -> std::net::SocketAddr {
    let jwks = serde_json::json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "k1",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    }]});
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (serving, jwks) = (serving.clone(), jwks.clone());
            async move {
                if serving.load(Ordering::SeqCst) {
                    (axum::http::StatusCode::OK, axum::Json(jwks))
                } else {
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(Value::Null),
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

async fn readyz(gw: &GatewayProcess) -> (u16, Value) {
    let (status, body) = gw.admin_get("/readyz").await;
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[tokio::test]
async fn readyz_waits_for_issuer_keys_and_a_healthy_upstream() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    a.fail(true);
    b.fail(true);
    let serving = Arc::new(AtomicBool::new(false));
    let issuer = fake_issuer(serving.clone()).await;
    let issuers = format!("\n[[gateway.issuers]]\nissuer = \"http://{issuer}\"\n",);
    let mut gw = GatewayProcess::start(&config(&a, &b, "/healthz", "").replace(
        "\n[[gateway.routes]]",
        &format!("{issuers}\n[[gateway.routes]]"),
    ));
    let (status, body) = readyz(&gw).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(
        body["issuers_without_keys"],
        serde_json::json!([format!("http://{issuer}")])
    );
    let reason = body["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("http://{issuer}")), "{reason}");
    // Liveness is not readiness.
    assert_eq!(gw.admin_get("/healthz").await.0, 200);

    // Both upstreams failing: the route is named too.
    wait_until("both probed", 5, || async {
        a.probes("/healthz") >= 1 && b.probes("/healthz") >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = readyz(&gw).await;
    assert_eq!(status, 503);
    assert_eq!(
        body["routes_without_healthy_upstream"],
        serde_json::json!(["svc"])
    );
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("no healthy upstream for route svc")
    );

    // One upstream recovers: only the issuer is missing.
    b.fail(false);
    wait_until("route ready", 5, || async {
        readyz(&gw).await.1["routes_without_healthy_upstream"] == serde_json::json!([])
    })
    .await;
    assert_eq!(readyz(&gw).await.0, 503);

    // The issuer's keys become available: fetched again without any token arriving (retried
    // every 2 s, at most every 10 s per issuer), then ready.
    serving.store(true, Ordering::SeqCst);
    wait_until("ready", 20, || async { readyz(&gw).await.0 == 200 }).await;
    assert_eq!(readyz(&gw).await.1, serde_json::json!({"ready": true}));

    // A reload with the same issuer keeps its keys: still ready right after it.
    b.fail(true);
    a.fail(false);
    wait_until("a up, b down", 6, || async {
        gauge(&gw, &a).await == Some(1.0) && gauge(&gw, &b).await == Some(0.0)
    })
    .await;
    serving.store(false, Ordering::SeqCst);
    gw.rewrite_config(&config(&a, &b, "/healthz2", "").replace(
        "\n[[gateway.routes]]",
        &format!("{issuers}\n[[gateway.routes]]"),
    ));
    assert!(gw.wait_stderr("gateway configuration reloaded", 5).await);
    assert_eq!(readyz(&gw).await, (200, serde_json::json!({"ready": true})));

    // Every upstream down: not ready again.
    a.fail(true);
    wait_until("not ready", 6, || async { readyz(&gw).await.0 == 503 }).await;
    assert_eq!(
        readyz(&gw).await.1["routes_without_healthy_upstream"],
        serde_json::json!(["svc"])
    );
    gw.assert_running();
}
