//! mTLS at the gateway end to end: the real binary (`rampart gateway`) with
//! `client_ca_file`, serving the dev CA's certificate of a real authorization server's data
//! directory, in front of a real echo upstream; clients with and without certificates.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use axum::http::HeaderMap;
use common::{BIN, Server, status_json};
use rampart_pki::{DevCa, ExposeSecret, IssuedCert};
use serde_json::{Value, json};

const AUD: &str = "api://orders";
const WORKER: &str = "spiffe://demo/orders-worker";
const DAY: Duration = Duration::from_secs(86400);

/// An echo service: answers every request with its headers, and counts hits.
async fn upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            let headers: serde_json::Map<String, Value> = headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or(""))))
                .collect();
            axum::Json(json!({ "headers": headers }))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, hits)
}

/// A running `rampart gateway`, killed on drop.
struct GatewayProcess {
    child: Child,
    url: String,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_gateway(idp: &Server, config: &str) -> GatewayProcess {
    let path = idp.data_dir.join("gateway-mtls.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(BIN)
        .args(["gateway", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(&idp.data_dir)
        .env("RAMPART_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn rampart gateway");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("gateway did not start (see stderr)");
        if let Some(rest) = line.strip_prefix("gateway: ") {
            break rest.trim().to_owned();
        }
    };
    // Keep draining (audit lines) so the gateway never blocks on a full pipe.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    GatewayProcess { child, url }
}

/// An HTTPS client trusting the dev CA, presenting `cert` if given.
fn client(ca_pem: &[u8], cert: Option<&IssuedCert>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem).unwrap()])
        .timeout(Duration::from_secs(20));
    if let Some(c) = cert {
        let pem = format!("{}{}", c.key_pem.expose_secret(), c.chain_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn mtls_routes_authenticate_verified_client_certificates() {
    let idp = Server::start();
    let (up, hits) = upstream().await;
    let (jwt_id, jwt_secret) = idp.create_client(&[
        "--name",
        "orders-client",
        "--scope",
        "orders:read",
        "--audience",
        AUD,
    ]);

    let client_ca = DevCa::generate("test client CA").unwrap();
    let ca_file = idp.data_dir.join("client-ca.pem");
    std::fs::write(&ca_file, client_ca.cert_pem()).unwrap();
    let worker = client_ca
        .issue_client_cert(&[WORKER.to_owned()], DAY)
        .unwrap();
    let dns_worker = client_ca
        .issue_client_cert(&["batch.workers.local".to_owned()], DAY)
        .unwrap();
    let stranger = DevCa::generate("another CA")
        .unwrap()
        .issue_client_cert(&["spiffe://demo/evil".to_owned()], DAY)
        .unwrap();

    let config = format!(
        r#"
[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
client_ca_file = "{ca_file}"

[[gateway.issuers]]
issuer = "{issuer}"
ca_file = "{idp_ca}"

[[gateway.routes]]
id = "workers"
match = {{ path_prefix = "/workers" }}
upstreams = ["http://{up}"]
auth = ["mtls"]
audience = "api://workers"

[[gateway.routes]]
id = "orders"
match = {{ path_prefix = "/orders" }}
upstreams = ["http://{up}"]
auth = ["jwt"]
audience = "{AUD}"
require_scopes = ["orders:read"]
"#,
        ca_file = ca_file.display(),
        issuer = idp.issuer,
        idp_ca = idp.ca_path().display(),
    );
    let gw = start_gateway(&idp, &config);
    let server_ca = std::fs::read(idp.ca_path()).unwrap();
    let url = |path: &str| format!("{}{path}", gw.url);

    // A verified certificate: its URI SAN is the caller.
    let resp = client(&server_ca, Some(&worker))
        .get(url("/workers/jobs"))
        .header("X-Rampart-Subject", "someone-else")
        .send()
        .await
        .unwrap();
    let (status, echo) = status_json(resp).await;
    assert_eq!(status, 200, "{echo}");
    let h = &echo["headers"];
    assert_eq!(h["x-rampart-subject"], WORKER);
    assert_eq!(h["x-rampart-client-id"], WORKER);
    assert_eq!(h["x-rampart-auth"], "mtls");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // A DNS-only certificate: its DNS name.
    let resp = client(&server_ca, Some(&dns_worker))
        .get(url("/workers/jobs"))
        .send()
        .await
        .unwrap();
    let (status, echo) = status_json(resp).await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["headers"]["x-rampart-subject"], "batch.workers.local");

    // No certificate: the handshake succeeds (the certificate is optional), the route says 401.
    let plain = client(&server_ca, None);
    let resp = plain.get(url("/workers/jobs")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));

    // A certificate of another CA: refused at the handshake (or, at worst, 401).
    match client(&server_ca, Some(&stranger))
        .get(url("/workers/jobs"))
        .send()
        .await
    {
        Err(_) => {}
        Ok(resp) => assert_eq!(resp.status(), 401),
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2, "nothing else forwarded");

    // A JWT route works as before without a client certificate...
    let token = idp
        .access_token(&jwt_id, jwt_secret.as_deref().unwrap())
        .await;
    let resp = plain
        .get(url("/orders/1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, echo) = status_json(resp).await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["headers"]["x-rampart-auth"], "jwt");
    // ...and with one, and a certificate alone is no credential there.
    let with_cert = client(&server_ca, Some(&worker));
    let resp = with_cert
        .get(url("/orders/1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = with_cert.get(url("/orders/1")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}
