//! The gateway end to end: the real binary (`rampart gateway`) in front of real upstream
//! services on loopback, with real tokens from a real authorization server.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use axum::http::HeaderMap;
use common::{BIN, Server, status_json};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const AUD: &str = "api://orders";

/// An echo service: answers every request with its method, path and headers, and counts hits.
struct Upstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

async fn upstream() -> Upstream {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move |method: axum::http::Method, uri: axum::http::Uri, headers: HeaderMap| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            let headers: serde_json::Map<String, Value> = headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or(""))))
                .collect();
            (
                [("server", "leaky/1.0"), ("x-powered-by", "php/5")],
                axum::Json(json!({"method": method.as_str(), "path": uri.to_string(), "headers": headers})),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Upstream { addr, hits }
}

/// A running `rampart gateway` process and what it printed.
struct GatewayProcess {
    child: Child,
    url: String,
    admin: String,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_gateway(idp: &Server, config: &str, gw_secret: &str) -> GatewayProcess {
    let path = idp.data_dir.join(format!("gateway-{}.toml", rand_suffix()));
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(BIN)
        .args(["gateway", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(&idp.data_dir)
        .env("GW_SECRET", gw_secret)
        .env("RAMPART_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn rampart gateway");
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line.clone());
            let _ = tx.send(line);
        }
    });
    let (mut url, mut admin) = (None, None);
    while url.is_none() || admin.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("gateway did not start (see stderr)");
        if let Some(rest) = line.strip_prefix("gateway: ") {
            url = Some(rest.trim().to_owned());
        }
        if let Some(rest) = line.strip_prefix("gateway admin: ") {
            admin = Some(rest.trim().to_owned());
        }
    }
    GatewayProcess {
        child,
        url: url.unwrap(),
        admin: admin.unwrap(),
        stdout: lines,
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

struct Fixture {
    idp: Server,
    gw: GatewayProcess,
    up1: Upstream,
    up2: Upstream,
    jwt: (String, String),
}

async fn fixture() -> Fixture {
    let idp = Server::start();
    let up1 = upstream().await;
    let up2 = upstream().await;
    let (gw_id, gw_secret) =
        idp.create_client(&["--name", "gateway", "--audience", "urn:rampart:gateway"]);
    let jwt = idp.create_client(&[
        "--name",
        "orders-client",
        "--scope",
        "orders:read",
        "--audience",
        AUD,
        "--ttl",
        "300",
    ]);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let config = format!(
        r#"
[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
token_leeway = 0
introspection_cache_ttl = 1
negative_cache_ttl = 1

[gateway.limits]
header_read_timeout = 2
max_body_bytes = 4096
upstream_timeout = 5

[[gateway.issuers]]
issuer = "{issuer}"
introspection_uri = "{issuer}/introspect"
client_id = "{gw_id}"
client_secret_env = "GW_SECRET"
ca_file = "{ca}"

[[gateway.routes]]
id = "orders"
match = {{ path_prefix = "/orders", methods = ["GET", "POST"] }}
upstreams = ["http://{u1}", "http://{u2}"]
auth = ["jwt", "paseto", "introspection"]
audience = "{AUD}"
require_scopes = ["orders:read"]

[[gateway.routes]]
id = "admin"
match = {{ path_prefix = "/admin" }}
upstreams = ["http://{u1}"]
auth = ["jwt"]
audience = "{AUD}"
require_scopes = ["orders:admin"]

[[gateway.routes]]
id = "limited"
match = {{ path_prefix = "/limited" }}
upstreams = ["http://{u1}"]
auth = ["jwt"]
audience = "{AUD}"
rate_limit = {{ key = "client_id", per_second = 1, burst = 3 }}

[[gateway.routes]]
id = "keys"
match = {{ path_prefix = "/keys" }}
upstreams = ["http://{u1}"]
auth = ["api_key"]
audience = "{AUD}"
require_scopes = ["orders:read"]

[[gateway.routes]]
id = "flaky"
match = {{ path_prefix = "/flaky" }}
upstreams = ["http://{dead}", "http://{u2}"]
auth = ["public"]
"#,
        issuer = idp.issuer,
        ca = idp.ca_path().display(),
        u1 = up1.addr,
        u2 = up2.addr,
    );
    let gw = start_gateway(&idp, &config, gw_secret.as_deref().unwrap());
    let jwt = (jwt.0, jwt.1.unwrap());
    Fixture {
        idp,
        gw,
        up1,
        up2,
        jwt,
    }
}

impl Fixture {
    fn hits(&self) -> usize {
        self.up1.hits.load(Ordering::SeqCst) + self.up2.hits.load(Ordering::SeqCst)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.idp.http.get(format!("{}{}", self.gw.url, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request through the gateway")
    }
}

#[tokio::test]
async fn authenticated_calls_and_identity_propagation() {
    let f = fixture().await;
    let token = f.idp.access_token(&f.jwt.0, &f.jwt.1).await;
    let resp = f
        .idp
        .http
        .get(format!("{}/orders/42?access_token=leak", f.gw.url))
        .bearer_auth(&token)
        .header("X-User", "admin")
        .header("X-Rampart-Subject", "someone-else")
        .header("X-Forwarded-For", "1.2.3.4")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().get("server").is_none(),
        "upstream Server header removed"
    );
    assert!(resp.headers().get("x-powered-by").is_none());
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert!(
        resp.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let (_, echo) = status_json(resp).await;
    let h = &echo["headers"];
    assert_eq!(echo["path"], "/orders/42?access_token=leak");
    assert_eq!(
        h["x-rampart-subject"],
        f.jwt.0.as_str(),
        "verified identity forwarded"
    );
    assert_eq!(h["x-rampart-client-id"], f.jwt.0.as_str());
    assert!(h.get("x-user").is_none(), "spoofed identity header removed");
    assert!(
        h.get("authorization").is_none(),
        "token not forwarded by default"
    );
    assert_eq!(
        h["x-forwarded-for"], "127.0.0.1",
        "untrusted X-Forwarded-For replaced"
    );

    // PASETO v4.public locally, v4.local by introspection.
    for format in ["paseto-public", "paseto-local"] {
        let (id, secret) = f.idp.create_client(&[
            "--name",
            format,
            "--scope",
            "orders:read",
            "--audience",
            AUD,
            "--token-format",
            format,
        ]);
        let t = f.idp.access_token(&id, &secret.unwrap()).await;
        let resp = f.get("/orders", Some(&t)).await;
        assert_eq!(resp.status(), 200, "{format}");
    }

    // The audit log has the request, with the token query parameter masked.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = f.gw.stdout.lock().unwrap().clone();
    let audit: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let record = audit
        .iter()
        .find(|r| r["route"] == "orders")
        .expect("audit record for the route");
    assert_eq!(record["decision"], "allow");
    assert_eq!(record["client_id"], f.jwt.0.as_str());
    let all = lines.join("\n");
    assert!(!all.contains("leak"), "masked query parameter");
    assert!(!all.contains(&token), "no token in the audit log");
}

#[tokio::test]
async fn denials_fail_closed() {
    let f = fixture().await;
    let before = f.hits();
    // Missing token.
    let resp = f.get("/orders", None).await;
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    // Forged: a valid token with its payload altered.
    let token = f.idp.access_token(&f.jwt.0, &f.jwt.1).await;
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    parts[1] = parts[1].chars().rev().collect();
    let resp = f.get("/orders", Some(&parts.join("."))).await;
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // Wrong audience.
    let (id, secret) = f.idp.create_client(&[
        "--name",
        "billing",
        "--scope",
        "orders:read",
        "--audience",
        "api://billing",
    ]);
    let other_aud = f.idp.access_token(&id, &secret.unwrap()).await;
    assert_eq!(f.get("/orders", Some(&other_aud)).await.status(), 401);
    // Wrong issuer: a token from another authorization server.
    let other_idp = Server::start();
    let (id, secret) =
        other_idp.create_client(&["--name", "x", "--scope", "orders:read", "--audience", AUD]);
    let foreign = other_idp.access_token(&id, &secret.unwrap()).await;
    assert_eq!(f.get("/orders", Some(&foreign)).await.status(), 401);
    // Insufficient scope.
    let resp = f.get("/admin", Some(&token)).await;
    assert_eq!(resp.status(), 403);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    // Expired (token_leeway = 0).
    let (id, secret) = f.idp.create_client(&[
        "--name",
        "short",
        "--scope",
        "orders:read",
        "--audience",
        AUD,
        "--ttl",
        "1",
    ]);
    let short = f.idp.access_token(&id, &secret.unwrap()).await;
    assert_eq!(f.get("/orders", Some(&short)).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(f.get("/orders", Some(&short)).await.status(), 401);
    // Revoked, seen through introspection once the 1 s cache has passed.
    let (id, secret) = f.idp.create_client(&[
        "--name",
        "local",
        "--scope",
        "orders:read",
        "--audience",
        AUD,
        "--token-format",
        "paseto-local",
    ]);
    let secret = secret.unwrap();
    let local = f.idp.access_token(&id, &secret).await;
    assert_eq!(f.get("/orders", Some(&local)).await.status(), 200);
    let resp = f
        .idp
        .http
        .post(f.idp.url("/revoke"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", local.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(f.get("/orders", Some(&local)).await.status(), 401);
    // Allowed calls above reached the upstream; none of the denied ones did.
    assert_eq!(
        f.hits() - before,
        2,
        "only the two allowed calls reached an upstream"
    );
}

#[tokio::test]
async fn path_tricks_never_reach_a_route() {
    let f = fixture().await;
    let token = f.idp.access_token(&f.jwt.0, &f.jwt.1).await;
    let before = f.hits();
    for path in [
        "/orders/../admin",
        "/orders/%2e%2e/admin",
        "/orders%2fadmin",
        "/orders/%2E%2E/admin",
        "/orders/./x",
        "//orders",
    ] {
        // Sent raw: HTTP clients normalise dot segments themselves.
        let addr = f.gw.url.trim_start_matches("https://");
        let status = raw_tls_status(&f.idp.ca_path(), addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")).await;
        assert_eq!(status, 400, "{path}");
    }
    assert_eq!(f.get("/ordersx", Some(&token)).await.status(), 404);
    // Too many headers, and one oversized header, are refused before routing.
    let mut req = f
        .idp
        .http
        .get(format!("{}/orders", f.gw.url))
        .bearer_auth(&token);
    for i in 0..150 {
        req = req.header(format!("x-filler-{i}"), "v");
    }
    let status = req.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
    assert!(status == 431 || status == 0, "too many headers: {status}");
    let huge = "a".repeat(20 * 1024);
    let status = f
        .idp
        .http
        .get(format!("{}/orders", f.gw.url))
        .bearer_auth(&token)
        .header("x-huge", huge)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert!(status == 431 || status == 0, "oversized header: {status}");
    assert_eq!(f.hits(), before, "no trick reached an upstream");
}

#[tokio::test]
async fn rate_limits_bodies_and_upstream_failures() {
    let f = fixture().await;
    let token = f.idp.access_token(&f.jwt.0, &f.jwt.1).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let resp = f.get("/limited", Some(&token)).await;
        if resp.status() == 429 {
            assert!(resp.headers().get("retry-after").is_some());
        }
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");

    let big = vec![b'x'; 8192];
    let resp = f
        .idp
        .http
        .post(format!("{}/orders", f.gw.url))
        .bearer_auth(&token)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    // One upstream of the route is down: a 502 at most, then the other serves.
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(f.get("/flaky", None).await.status().as_u16());
    }
    assert!(codes.iter().all(|c| *c == 200 || *c == 502), "{codes:?}");
    assert!(
        codes.iter().filter(|c| **c == 502).count() <= 1,
        "dead upstream ejected: {codes:?}"
    );
    assert_eq!(codes.last(), Some(&200));

    // Metrics and health on the admin listener.
    let admin = reqwest::Client::new();
    let metrics = admin
        .get(format!("{}/metrics", f.gw.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("rampart_gateway"), "{metrics}");
    assert_eq!(
        admin
            .get(format!("{}/healthz", f.gw.admin))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let f = fixture().await;
    let addr = f.gw.url.trim_start_matches("https://").to_owned();
    let mut tls = tls_connect(&f.idp.ca_path(), &addr).await;
    tls.write_all(b"GET /orders HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Never finish the headers: header_read_timeout is 2 s.
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "connection still open after 10 s");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "closed too early"
    );
}

async fn tls_connect(
    ca: &std::path::Path,
    addr: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let pem = std::fs::read_to_string(ca).unwrap();
    let config = rampart_pki::client_config(&pem).unwrap();
    let connector = tokio_rustls::TlsConnector::from(config);
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

async fn raw_tls_status(ca: &std::path::Path, addr: &str, request: &str) -> u16 {
    let mut tls = tls_connect(ca, addr).await;
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn api_keys_through_introspection() {
    let f = fixture().await;
    let out = f.idp.cli(&[
        "api-key",
        "create",
        "--json",
        "--name",
        "batch",
        "--owner",
        "svc-batch",
        "--scope",
        "orders:read",
        "--audience",
        AUD,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["api_key"].as_str().unwrap().to_owned();
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    common::wait_for_poll().await;

    let call = |path: &str| {
        f.idp
            .http
            .get(format!("{}{}", f.gw.url, path))
            .header("X-API-Key", &key)
            .send()
    };
    let resp = call("/keys/1").await.unwrap();
    assert_eq!(resp.status(), 200);
    let (_, echo) = status_json(resp).await;
    assert_eq!(echo["headers"]["x-rampart-subject"], "svc-batch");
    assert_eq!(echo["headers"]["x-rampart-auth"], "api_key");
    assert!(
        echo["headers"].get("x-api-key").is_none(),
        "the key is never forwarded"
    );
    // An API key is not a bearer token, and a route without api_key ignores the header.
    assert_eq!(f.get("/orders", Some(&key)).await.status(), 401);
    assert_eq!(call("/orders").await.unwrap().status(), 401);
    // An access token is not an API key.
    let token = f.idp.access_token(&f.jwt.0, &f.jwt.1).await;
    let resp = f
        .idp
        .http
        .get(format!("{}/keys/1", f.gw.url))
        .header("X-API-Key", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Revoked: refused once the gateway's 1 s introspection cache has passed.
    let out = f.idp.cli(&["api-key", "revoke", &key_id]);
    assert!(
        out.status.success(),
        "api-key revoke: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(call("/keys/1").await.unwrap().status(), 401);
    let lines = f.gw.stdout.lock().unwrap().join("\n");
    assert!(!lines.contains(&key), "the key never reaches the audit log");
}
