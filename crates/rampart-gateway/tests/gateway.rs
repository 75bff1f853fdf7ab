//! End-to-end tests: the gateway served over plain HTTP on 127.0.0.1:0 in front of real echo
//! upstreams, with a fake authenticator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rampart_gateway::{AuditSink, ConnectionInfo, Gateway, GatewayConfig};
use rampart_guard::{Accepted, AuthError, Authenticator};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tower::ServiceExt;

mod support;

use support::{TokenTable, echo_server, principal, serve};

/// `good` is alice through `app-1` with `orders:read` (and, as a user, roles and groups);
/// `noscope` the same without scopes, roles or groups; `down` an unreachable authority.
fn fake_auth() -> Arc<dyn Authenticator> {
    Arc::new(TokenTable(
        |token: &str, audience: &str, accepted: Accepted| {
            assert!(accepted.jwt, "route accepts jwt");
            let mut alice = principal("alice", Some("app-1"), &[], audience);
            match token {
                "good" => {
                    alice.scopes = vec!["orders:read".into()];
                    alice.roles = vec!["orders-admin".into()];
                    alice.groups = vec!["eng".into(), "ops".into()];
                    Ok(alice)
                }
                "noscope" => Ok(alice),
                "down" => Err(AuthError::Unavailable),
                _ => Err(AuthError::Invalid),
            }
        },
    ))
}

/// A port nothing listens on.
async fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr")
}

struct Env {
    gw: SocketAddr,
    hits: Arc<AtomicUsize>,
    live_hits: Arc<AtomicUsize>,
    audit: mpsc::Receiver<rampart_gateway::AuditRecord>,
    client: Client<HttpConnector, Full<Bytes>>,
}

async fn env() -> Env {
    let (up, hits) = echo_server().await;
    let (live, live_hits) = echo_server().await;
    let dead = dead_addr().await;
    let toml = format!(
        r#"
listen = "127.0.0.1:9443"
admin_listen = "127.0.0.1:9901"
strip_headers = ["X-Tenant"]
[limits]
max_body_bytes = 1024
upstream_timeout = 1
[[issuers]]
issuer = "https://issuer.test"
[[routes]]
id = "orders"
match = {{ path_prefix = "/orders", methods = ["GET", "POST"] }}
upstreams = ["http://{up}"]
auth = ["jwt", "paseto"]
audience = "api://orders"
require_scopes = ["orders:read"]
[[routes]]
id = "public"
match = {{ path_prefix = "/public" }}
upstreams = ["http://{up}"]
auth = ["public"]
[[routes]]
id = "limited"
match = {{ path_prefix = "/limited" }}
upstreams = ["http://{up}"]
auth = ["public"]
rate_limit = {{ key = "ip", per_second = 0.2, burst = 2 }}
[[routes]]
id = "client-limited"
match = {{ path_prefix = "/client-limited" }}
upstreams = ["http://{up}"]
auth = ["jwt"]
audience = "api://orders"
rate_limit = {{ key = "client_id", per_second = 0.2, burst = 1 }}
[[routes]]
id = "flaky"
match = {{ path_prefix = "/flaky" }}
upstreams = ["http://{dead}", "http://{live}"]
auth = ["public"]
[[routes]]
id = "flaky-get"
match = {{ path_prefix = "/flaky-get" }}
upstreams = ["http://{dead}", "http://{live}"]
auth = ["public"]
[[routes]]
id = "slow"
match = {{ path_prefix = "/slow" }}
upstreams = ["http://{up}"]
auth = ["public"]
[[routes]]
id = "keys-only"
match = {{ path_prefix = "/keys" }}
upstreams = ["http://{up}"]
auth = ["api_key", "mtls"]
audience = "api://keys"
"#
    );
    let config: GatewayConfig = toml::from_str(&toml).expect("config");
    let (sink, audit) = AuditSink::channel(1024);
    let gateway = Gateway::new(&config, fake_auth(), sink).expect("gateway");
    let gw = serve(gateway).await;
    let client = Client::builder(TokioExecutor::new()).build_http();
    Env {
        gw,
        hits,
        live_hits,
        audit,
        client,
    }
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("json body")
    }
    fn echoed(&self, name: &str) -> Option<Vec<String>> {
        self.json()["headers"][name].as_array().map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or("").to_owned())
                .collect()
        })
    }
}

impl Env {
    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.gw));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("request");
        let resp = self.client.request(req).await.expect("response");
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers, "").await
    }
}

/// Sends raw bytes and returns the status code and the whole response text.
async fn raw(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

const GOOD: (&str, &str) = ("authorization", "Bearer good");

#[tokio::test]
async fn allowed_call_reaches_upstream_with_identity_and_spoofing_removed() {
    let e = env().await;
    let r = e
        .get(
            "/orders/1?x=1",
            &[
                GOOD,
                ("x-user", "mallory"),
                ("x-rampart-subject", "mallory"),
                ("x-rampart-scopes", "admin"),
                ("x-rampart-roles", "superuser"),
                ("x-rampart-groups", "root"),
                ("x-forwarded-for", "6.6.6.6"),
                ("x-tenant", "evil"),
                ("x-request-id", "spoofed-id"),
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["path"], "/orders/1?x=1");
    assert_eq!(r.echoed("x-rampart-subject"), Some(vec!["alice".into()]));
    assert_eq!(r.echoed("x-rampart-client-id"), Some(vec!["app-1".into()]));
    assert_eq!(
        r.echoed("x-rampart-scopes"),
        Some(vec!["orders:read".into()])
    );
    assert_eq!(
        r.echoed("x-rampart-issuer"),
        Some(vec!["https://issuer.test".into()])
    );
    assert_eq!(r.echoed("x-rampart-auth"), Some(vec!["jwt".into()]));
    assert_eq!(
        r.echoed("x-rampart-roles"),
        Some(vec!["orders-admin".into()])
    );
    assert_eq!(r.echoed("x-rampart-groups"), Some(vec!["eng ops".into()]));
    assert_eq!(r.echoed("x-user"), None);
    assert_eq!(r.echoed("x-tenant"), None);
    assert_eq!(r.echoed("x-forwarded-for"), Some(vec!["127.0.0.1".into()]));
    assert_eq!(r.echoed("x-forwarded-proto"), Some(vec!["http".into()]));
    assert_eq!(
        r.echoed("authorization"),
        None,
        "token not forwarded by default"
    );
    assert_eq!(
        r.echoed("traceparent"),
        Some(vec![
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()
        ])
    );
    let rid = r.headers["x-request-id"].to_str().expect("id").to_owned();
    assert_ne!(rid, "spoofed-id");
    assert_eq!(r.echoed("x-request-id"), Some(vec![rid]));
    // Response header policy.
    assert!(r.headers.get("server").is_none());
    assert!(r.headers.get("x-powered-by").is_none());
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(r.headers["referrer-policy"], "no-referrer");
    assert!(
        r.headers.get("strict-transport-security").is_none(),
        "plain HTTP"
    );
    assert_eq!(e.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn public_route_strips_spoofed_identity() {
    let e = env().await;
    let r = e
        .get(
            "/public/x",
            &[
                ("x-rampart-subject", "mallory"),
                ("x-rampart-roles", "admin"),
                ("x-user", "m"),
                ("authorization", "Bearer x"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.echoed("x-rampart-subject"), None);
    assert_eq!(r.echoed("x-rampart-roles"), None);
    assert_eq!(r.echoed("x-user"), None);
    assert_eq!(r.echoed("authorization"), None);
}

#[tokio::test]
async fn authentication_failures_deny_and_never_reach_upstream() {
    let e = env().await;
    let r = e.get("/orders/1", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"rampart\"");
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(r.json()["error"].is_string());

    let r = e.get("/orders/1", &[("authorization", "Bearer bad")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers["www-authenticate"],
        "Bearer realm=\"rampart\", error=\"invalid_token\""
    );
    assert_eq!(r.json()["error"], "invalid_token");

    let r = e
        .get("/orders/1", &[("authorization", "Basic Zm9vOmJhcg==")])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let r = e
        .get("/orders/1", &[("authorization", "Bearer noscope")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.headers["www-authenticate"],
        "Bearer realm=\"rampart\", error=\"insufficient_scope\", scope=\"orders:read\""
    );

    let r = e
        .get("/orders/1", &[("authorization", "Bearer down")])
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!r.body.to_lowercase().contains("issuer unavailable"));

    // A route accepting only api_key/mtls ignores bearer tokens.
    let r = e.get("/keys/1", &[GOOD]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    assert_eq!(e.hits.load(Ordering::SeqCst), 0, "nothing forwarded");
}

#[tokio::test]
async fn path_attacks_are_rejected_before_routing() {
    let e = env().await;
    for target in [
        "/orders/../admin",
        "/orders/%2e%2e/admin",
        "/orders/%2E%2E/admin",
        "/orders%2Fadmin",
        "/orders%2fadmin",
        "/orders%5Cadmin",
        "//orders",
        "/orders/./1",
        "/orders\\admin",
        "http://evil/orders",
    ] {
        let (status, text) = raw(
            e.gw,
            &format!("GET {target} HTTP/1.1\r\nHost: api.local\r\nAuthorization: Bearer good\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 400, "{target}: {text}");
    }
    let too_long = format!("/orders/{}", "a".repeat(9000));
    let (status, _) = raw(
        e.gw,
        &format!("GET {too_long} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(status == 400 || status == 414 || status == 431, "{status}");
    assert_eq!(e.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn routing_prefix_boundary_and_methods() {
    let e = env().await;
    let r = e.get("/ordersx", &[GOOD]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"], "not_found");
    let r = e.send("DELETE", "/orders/1", &[GOOD], "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers["allow"], "GET, POST");
    assert_eq!(e.hits.load(Ordering::SeqCst), 0);
    let r = e.get("/orders", &[GOOD]).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn rate_limit_by_ip_returns_429_after_burst() {
    let e = env().await;
    for i in 0..2 {
        let r = e.get("/limited/a", &[]).await;
        assert_eq!(r.status, StatusCode::OK, "request {i}");
        assert_eq!(r.headers["ratelimit-limit"], "2");
    }
    let r = e.get("/limited/a", &[]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers["retry-after"]
        .to_str()
        .expect("s")
        .parse()
        .expect("n");
    assert!((1..=5).contains(&retry), "{retry}");
    assert_eq!(r.headers["ratelimit-remaining"], "0");
    assert!(r.headers.contains_key("ratelimit-reset"));
    assert_eq!(e.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn rate_limit_by_client_after_authentication() {
    let e = env().await;
    // Unauthenticated requests are refused by authentication, not counted against the client.
    for _ in 0..3 {
        assert_eq!(
            e.get("/client-limited", &[]).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        e.get("/client-limited", &[GOOD]).await.status,
        StatusCode::OK
    );
    let r = e.get("/client-limited", &[GOOD]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let e = env().await;
    let big = "x".repeat(2000);
    let r = e.send("POST", "/orders/1", &[GOOD], &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(e.hits.load(Ordering::SeqCst), 0);
    // A lying/absent Content-Length: chunked body over the limit.
    let chunk = "x".repeat(1500);
    let req = format!(
        "POST /public/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let (status, text) = raw(e.gw, &req).await;
    assert_eq!(status, 413, "{text}");
    // Within the limit passes.
    let r = e.send("POST", "/orders/1", &[GOOD], "small").await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn dead_upstream_is_ejected_while_the_other_serves() {
    let e = env().await;
    // POST is not retried: the first call goes to the dead upstream (502), which is then
    // ejected; the following ones all go to the live one.
    let r = e.send("POST", "/flaky/1", &[], "").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.json()["error"], "bad_gateway");
    assert!(!r.body.contains("127.0.0.1"), "no internals: {}", r.body);
    for _ in 0..4 {
        let r = e.send("POST", "/flaky/1", &[], "").await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(e.live_hits.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn idempotent_requests_retry_on_another_upstream() {
    let e = env().await;
    for _ in 0..4 {
        let r = e.get("/flaky-get/1", &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    assert_eq!(e.live_hits.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn slow_upstream_times_out_with_504() {
    let e = env().await;
    let started = std::time::Instant::now();
    let r = e.get("/slow/1", &[]).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.json()["error"], "gateway_timeout");
    assert!(started.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn audit_record_masks_secrets() {
    let mut e = env().await;
    let r = e
        .get(
            "/orders/1?access_token=s3cr3t&x=1&API_KEY=k3y",
            &[GOOD, ("cookie", "session=c00kie")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let rec = tokio::time::timeout(Duration::from_secs(2), e.audit.recv())
        .await
        .expect("in time")
        .expect("record");
    let line = serde_json::to_string(&rec).expect("json");
    assert!(line.contains("access_token=***"), "{line}");
    assert!(line.contains("API_KEY=***"), "{line}");
    for secret in ["s3cr3t", "k3y", "c00kie", "Bearer", "good"] {
        assert!(!line.contains(secret), "{secret} leaked: {line}");
    }
    let v: Value = serde_json::from_str(&line).expect("json");
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["route"], "orders");
    assert_eq!(v["principal"], "alice");
    assert_eq!(v["client_id"], "app-1");
    assert_eq!(v["status"], 200);
    assert_eq!(
        v["request_id"],
        r.headers["x-request-id"].to_str().expect("id")
    );
    assert!(
        v["upstream"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:"))
    );

    let r = e
        .get("/orders/1", &[("authorization", "Bearer nope")])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let rec = e.audit.recv().await.expect("record");
    assert_eq!(rec.decision, "deny");
    assert_eq!(rec.reason, "invalid");
    assert_eq!(rec.status, 401);
}

#[tokio::test]
async fn audit_sink_writes_json_lines() {
    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let sink = AuditSink::spawn(Box::new(buf.clone()), 16);
    let (up, _) = echo_server().await;
    let config: GatewayConfig = toml::from_str(&format!(
        r#"
listen = "127.0.0.1:1"
admin_listen = "127.0.0.1:2"
[audit]
mask_query_params = ["Session"]
[[routes]]
id = "p"
match = {{ path_prefix = "/" }}
upstreams = ["http://{up}"]
auth = ["public"]
"#
    ))
    .expect("config");
    let gw = Gateway::new(&config, fake_auth(), sink).expect("gateway");
    let req = Request::builder()
        .uri("/x?password=hunter2&session=s3cret&keep=1")
        .extension(ConnectionInfo::new(
            "127.0.0.1:1".parse().expect("addr"),
            true,
        ))
        .body(Full::new(Bytes::new()))
        .expect("req");
    let resp = gw.service().oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let mut text = String::new();
    for _ in 0..50 {
        text = String::from_utf8_lossy(&buf.0.lock().expect("lock")).into_owned();
        if text.ends_with('\n') {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: Value = serde_json::from_str(text.trim()).expect("json line");
    // Built-in and configured parameters (case-insensitive) masked, the others kept.
    assert_eq!(v["path"], "/x?password=***&session=***&keep=1");
    assert!(
        !text.contains("hunter2") && !text.contains("s3cret"),
        "{text}"
    );
}

#[tokio::test]
async fn missing_connection_info_fails_closed() {
    let (up, hits) = echo_server().await;
    let config: GatewayConfig = toml::from_str(&format!(
        r#"
listen = "127.0.0.1:1"
admin_listen = "127.0.0.1:2"
[[routes]]
id = "p"
match = {{ path_prefix = "/" }}
upstreams = ["http://{up}"]
auth = ["public"]
"#
    ))
    .expect("config");
    let gw = Gateway::new(&config, fake_auth(), AuditSink::discard()).expect("gateway");
    let req = Request::builder()
        .uri("/x")
        .body(Full::new(Bytes::new()))
        .expect("req");
    let resp = gw.service().oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}
