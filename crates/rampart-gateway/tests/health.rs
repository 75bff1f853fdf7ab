//! Active health checks: the gateway served over plain HTTP in front of two switchable
//! upstreams; traffic follows their health, readiness too, and the checker stops with its
//! handle.

mod support;

use support::{NO_AUTH, serve};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rampart_gateway::{AuditSink, Gateway, GatewayConfig};
use tokio::net::TcpListener;

/// An upstream answering its name, or 503 on every path (health included) while `failing`.
struct Upstream {
    addr: SocketAddr,
    failing: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
    probes: Arc<AtomicUsize>,
}

async fn upstream(name: &'static str) -> Upstream {
    let failing = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicUsize::new(0));
    let probes = Arc::new(AtomicUsize::new(0));
    let (f, h, p) = (failing.clone(), hits.clone(), probes.clone());
    let app = axum::Router::new().fallback(move |uri: http::Uri| {
        let (f, h, p) = (f.clone(), h.clone(), p.clone());
        async move {
            if uri.path() == "/healthz" {
                p.fetch_add(1, Ordering::SeqCst);
            } else {
                h.fetch_add(1, Ordering::SeqCst);
            }
            if f.load(Ordering::SeqCst) {
                (http::StatusCode::SERVICE_UNAVAILABLE, "failing")
            } else {
                (http::StatusCode::OK, name)
            }
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Upstream {
        addr,
        failing,
        hits,
        probes,
    }
}

fn config(a: SocketAddr, b: SocketAddr) -> GatewayConfig {
    toml::from_str(&format!(
        r#"
[[routes]]
id = "svc"
match = {{ path_prefix = "/svc" }}
upstreams = ["http://{a}", "http://{b}"]
auth = ["public"]
health_check = {{ path = "/healthz", interval = 1, timeout = 1, unhealthy_after = 2, healthy_after = 2 }}
"#
    ))
    .expect("config")
}

/// Sends `n` requests; returns the bodies (status 200) or "status N".
async fn send(
    client: &Client<HttpConnector, Empty<Bytes>>,
    gw: SocketAddr,
    n: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let resp = client
            .get(format!("http://{gw}/svc/x").parse().expect("uri"))
            .await
            .expect("gateway answers");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        out.push(if status == 200 {
            String::from_utf8_lossy(&body).into_owned()
        } else {
            format!("status {status}")
        });
    }
    out
}

async fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn traffic_follows_health_and_checks_stop_with_their_handle() {
    let (a, b) = (upstream("a").await, upstream("b").await);
    let cfg = config(a.addr, b.addr);
    let gateway = Gateway::new(&cfg, Arc::new(NO_AUTH), AuditSink::discard()).expect("gateway");
    assert_eq!(gateway.unready_routes(), ["svc"], "nothing probed yet");
    let checks = gateway.start_health_checks();
    assert_eq!(checks.routes(), 1);
    let gw = serve(gateway.clone()).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();

    // The first probe decides at once.
    wait_until("first probes", 3, || gateway.unready_routes().is_empty()).await;
    let both = send(&client, gw, 10).await;
    assert_eq!(both.iter().filter(|s| *s == "a").count(), 5, "{both:?}");
    assert_eq!(both.iter().filter(|s| *s == "b").count(), 5, "{both:?}");

    // a fails everything: after two failed probes it gets no traffic, and no client request
    // fails.
    a.failing.store(true, Ordering::SeqCst);
    let failed_probes = a.probes.load(Ordering::SeqCst);
    wait_until("two failed probes of a", 5, || {
        a.probes.load(Ordering::SeqCst) >= failed_probes + 2
    })
    .await;
    // The second failed probe's result is recorded right after the upstream answered it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let hits_a = a.hits.load(Ordering::SeqCst);
    let only_b = send(&client, gw, 20).await;
    assert!(only_b.iter().all(|s| s == "b"), "{only_b:?}");
    assert_eq!(a.hits.load(Ordering::SeqCst), hits_a, "a got no request");
    assert!(gateway.unready_routes().is_empty(), "b is up: still ready");

    // A new pipeline (a reload) takes the health over: a stays down without a probe.
    let reloaded = Gateway::new(&cfg, Arc::new(NO_AUTH), AuditSink::discard()).expect("gateway");
    reloaded.inherit_upstream_health(&gateway);
    let gw2 = serve(reloaded.clone()).await;
    let only_b = send(&client, gw2, 6).await;
    assert!(only_b.iter().all(|s| s == "b"), "{only_b:?}");

    // a recovers: back after two good probes.
    a.failing.store(false, Ordering::SeqCst);
    let probes = a.probes.load(Ordering::SeqCst);
    wait_until("two good probes of a", 5, || {
        a.probes.load(Ordering::SeqCst) >= probes + 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let back = send(&client, gw, 10).await;
    assert_eq!(back.iter().filter(|s| *s == "a").count(), 5, "{back:?}");

    // Both fail: not ready (and requests are still tried rather than refused).
    a.failing.store(true, Ordering::SeqCst);
    b.failing.store(true, Ordering::SeqCst);
    wait_until("both down", 5, || gateway.unready_routes() == ["svc"]).await;

    // Dropping the handle stops the probes.
    drop(checks);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (pa, pb) = (
        a.probes.load(Ordering::SeqCst),
        b.probes.load(Ordering::SeqCst),
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        a.probes.load(Ordering::SeqCst),
        pa,
        "no probe after the handle is dropped"
    );
    assert_eq!(b.probes.load(Ordering::SeqCst), pb);
}
