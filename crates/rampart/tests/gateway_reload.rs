//! Gateway configuration reload end to end: the real binary (`rampart gateway`) in front of a
//! real upstream, real tokens from a real authorization server; the config file and the
//! certificate files are changed under the running process.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{BIN, Server};
use rampart_pki::ExposeSecret as _;

const AUD: &str = "api://orders";

/// An echo service answering 200 with the request path.
async fn upstream() -> SocketAddr {
    let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move { uri.to_string() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// A running `rampart gateway` with its stderr captured.
struct GatewayProcess {
    child: Child,
    url: String,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GatewayProcess {
    fn start(config: &Path, data_dir: &Path) -> GatewayProcess {
        let mut child = Command::new(BIN)
            .args(["gateway", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("RAMPART_MASTER_KEY")
            .env("RAMPART_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rampart gateway");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                eprintln!("[gateway] {line}");
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keeps draining (audit records) so the gateway never blocks on stdout.
            for line in BufReader::new(out).lines() {
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
        let addr = url.trim_start_matches("https://").parse().unwrap();
        GatewayProcess {
            child,
            url,
            addr,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn assert_running(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the gateway exited; stderr:\n{}",
            self.stderr()
        );
    }

    fn sighup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(status.success());
    }

    /// Waits (at most `secs`) until stderr contains `needle`.
    async fn wait_stderr(&self, needle: &str, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.stderr().contains(needle)
    }
}

/// The gateway configuration: one JWT route requiring `scope`.
fn config(idp: &Server, up: SocketAddr, scope: &str, tls: Option<(&Path, &Path)>) -> String {
    let tls = match tls {
        Some((cert, key)) => format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        ),
        None => String::new(),
    };
    format!(
        r#"
[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
token_leeway = 0
{tls}
[[gateway.issuers]]
issuer = "{issuer}"
ca_file = "{ca}"

[[gateway.routes]]
id = "orders"
match = {{ path_prefix = "/orders" }}
upstreams = ["http://{up}"]
auth = ["jwt"]
audience = "{AUD}"
require_scopes = ["{scope}"]
"#,
        issuer = idp.issuer,
        ca = idp.ca_path().display(),
    )
}

/// Replaces `path` atomically (write a sibling, rename it over).
fn replace_file(path: &Path, contents: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Fixture {
    idp: Server,
    up: SocketAddr,
    config_path: PathBuf,
    client_id: String,
    token: String,
}

async fn fixture() -> Fixture {
    let idp = Server::start();
    let up = upstream().await;
    let (id, secret) = idp.create_client(&[
        "--name",
        "b-client",
        "--scope",
        "b",
        "--audience",
        AUD,
        "--ttl",
        "600",
    ]);
    let token = idp.access_token(&id, &secret.unwrap()).await;
    let config_path = idp.data_dir.join("gateway.toml");
    Fixture {
        idp,
        up,
        config_path,
        client_id: id,
        token,
    }
}

impl Fixture {
    fn write_config(&self, scope: &str) {
        replace_file(
            &self.config_path,
            config(&self.idp, self.up, scope, None).as_bytes(),
        );
    }

    async fn status(&self, gw: &GatewayProcess) -> u16 {
        self.idp
            .http
            .get(format!("{}/orders/1", gw.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request through the gateway")
            .status()
            .as_u16()
    }

    /// Polls until the status is `want` (at most `secs`); returns the last status.
    async fn wait_status(&self, gw: &GatewayProcess, want: u16, secs: u64) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let status = self.status(gw).await;
            if status == want || Instant::now() >= deadline {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One explicit HTTP/1.1 keep-alive connection to the gateway.
struct Connection {
    sender: hyper::client::conn::http1::SendRequest<String>,
}

impl Connection {
    async fn open(addr: SocketAddr, ca_pem: &str) -> Connection {
        let tls = rampart_pki::client_config_with_alpn(ca_pem, &[b"http/1.1"]).unwrap();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        Connection { sender }
    }

    /// Sends one request on this connection and reads the whole response; returns the status.
    async fn get(&mut self, path: &str, token: &str) -> u16 {
        assert!(!self.sender.is_closed(), "the connection was closed");
        self.sender.ready().await.expect("connection still usable");
        let request = axum::http::Request::get(path)
            .header("host", "127.0.0.1")
            .header("authorization", format!("Bearer {token}"))
            .body(String::new())
            .unwrap();
        let response = self
            .sender
            .send_request(request)
            .await
            .expect("request on the kept-alive connection");
        let status = response.status().as_u16();
        let mut body = response.into_body();
        while let Some(frame) = std::future::poll_fn(|cx| {
            http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx)
        })
        .await
        {
            frame.expect("response body");
        }
        status
    }
}

#[tokio::test]
async fn config_file_change_applies_without_dropping_connections() {
    let f = fixture().await;
    f.write_config("a");
    let mut gw = GatewayProcess::start(&f.config_path, &f.idp.data_dir);
    assert_eq!(
        f.status(&gw).await,
        403,
        "token with scope b, route requires a"
    );
    let ca = std::fs::read_to_string(f.idp.ca_path()).unwrap();
    let mut kept = Connection::open(gw.addr, &ca).await;
    assert_eq!(kept.get("/orders/kept", &f.token).await, 403);

    f.write_config("b");
    let status = f.wait_status(&gw, 200, 3).await;
    assert_eq!(status, 200, "the new config applies within 3 s");
    // The connection opened before the reload is still open and uses the new config.
    assert_eq!(kept.get("/orders/kept", &f.token).await, 200);
    assert_eq!(kept.get("/orders/kept", &f.token).await, 200);
    assert!(gw.wait_stderr("gateway configuration reloaded", 2).await);
    gw.assert_running();

    // And back: requirement a again, denied again.
    f.write_config("a");
    assert_eq!(f.wait_status(&gw, 403, 3).await, 403);
    assert_eq!(kept.get("/orders/kept", &f.token).await, 403);
    gw.assert_running();
}

#[tokio::test]
async fn sighup_applies_a_change_the_poller_cannot_see() {
    let f = fixture().await;
    f.write_config("a");
    let mut gw = GatewayProcess::start(&f.config_path, &f.idp.data_dir);
    assert_eq!(f.status(&gw).await, 403);

    // Rewrite in place (same inode, same length) and restore the modification time: the file
    // watch sees nothing, so only the signal can apply it.
    let before = std::fs::metadata(&f.config_path).unwrap();
    let new = config(&f.idp, f.up, "b", None);
    assert_eq!(new.len() as u64, before.len());
    std::fs::write(&f.config_path, &new).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&f.config_path)
        .unwrap()
        .set_modified(before.modified().unwrap())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        f.status(&gw).await,
        403,
        "no reload without a visible change"
    );

    gw.sighup();
    assert_eq!(f.wait_status(&gw, 200, 3).await, 200, "SIGHUP reloads");
    assert!(gw.stderr().contains("SIGHUP"), "{}", gw.stderr());
    gw.assert_running();
}

#[tokio::test]
async fn invalid_config_is_rejected_and_the_old_one_keeps_serving() {
    let f = fixture().await;
    f.write_config("b");
    let mut gw = GatewayProcess::start(&f.config_path, &f.idp.data_dir);
    assert_eq!(f.status(&gw).await, 200);
    let client = f.idp.http.clone();

    // A route without audience (and requiring scope a, which would deny if applied).
    let without_audience = config(&f.idp, f.up, "a", None)
        .lines()
        .filter(|l| !l.starts_with("audience"))
        .collect::<Vec<_>>()
        .join("\n");
    replace_file(&f.config_path, without_audience.as_bytes());
    assert!(
        gw.wait_stderr("gateway.routes[orders].audience", 4).await,
        "error naming the key; stderr:\n{}",
        gw.stderr()
    );
    assert!(
        gw.stderr()
            .contains("previous configuration stays in effect")
    );
    for _ in 0..3 {
        let resp = client
            .get(format!("{}/orders/1", gw.url))
            .bearer_auth(&f.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "old config still serving");
    }
    gw.assert_running();

    // TOML garbage, then SIGHUP on it: still rejected.
    replace_file(&f.config_path, b"[gateway\nlisten = ");
    assert!(
        gw.wait_stderr("invalid configuration", 4).await,
        "{}",
        gw.stderr()
    );
    gw.sighup();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(f.status(&gw).await, 200, "old config still serving");
    gw.assert_running();

    // A valid config afterwards is applied.
    f.write_config("a");
    assert_eq!(f.wait_status(&gw, 403, 3).await, 403);
    gw.assert_running();
}

/// `rampart policy …` with `args`: (exit code, stdout, stderr).
fn policy_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("policy")
        .args(args)
        .env_remove("RAMPART_CONFIG")
        .output()
        .expect("run rampart policy");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn cedar_policies_decide_reload_with_their_file_and_explain_from_the_cli() {
    let f = fixture().await;
    let policy_path = f.idp.data_dir.join("policies.cedar");
    let reads_for_client = format!(
        "@id(\"orders-reader\")\npermit(principal == Rampart::Client::\"{}\", \
         action in Rampart::Action::\"read\", resource == Rampart::Route::\"orders\");\n",
        f.client_id
    );
    replace_file(&policy_path, reads_for_client.as_bytes());
    let with_policy = format!(
        "{}\n[gateway.policy]\nfile = \"{}\"\n",
        config(&f.idp, f.up, "b", None),
        policy_path.display()
    );
    replace_file(&f.config_path, with_policy.as_bytes());
    let mut gw = GatewayProcess::start(&f.config_path, &f.idp.data_dir);

    // A real token of the permitted client: GET is a read, POST is not permitted.
    assert_eq!(f.status(&gw).await, 200);
    let post = f
        .idp
        .http
        .post(format!("{}/orders/1", gw.url))
        .bearer_auth(&f.token)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 403);
    let body: serde_json::Value = post.json().await.unwrap();
    assert_eq!(body["error"], "access_denied");

    // The policy file changes under the running gateway: a forbid applies without restart.
    let forbidden =
        format!("{reads_for_client}@id(\"maintenance\")\nforbid(principal, action, resource);\n");
    replace_file(&policy_path, forbidden.as_bytes());
    assert_eq!(f.wait_status(&gw, 403, 4).await, 403, "forbid applied");
    assert!(gw.wait_stderr("policy file changed", 2).await);

    // A policy that does not match the schema is rejected; the previous policies stay.
    replace_file(
        &policy_path,
        b"permit(principal, action, resource)\n  when { principal.scope.contains(\"x\") };\n",
    );
    assert!(
        gw.wait_stderr("gateway.policy.file", 4).await,
        "error naming the key; stderr:\n{}",
        gw.stderr()
    );
    assert!(gw.stderr().contains("line 2"), "{}", gw.stderr());
    assert_eq!(f.status(&gw).await, 403, "the forbid still applies");

    // Fixed: permitted again.
    replace_file(&policy_path, reads_for_client.as_bytes());
    assert_eq!(f.wait_status(&gw, 200, 4).await, 200);
    gw.assert_running();

    // The CLI reads the same file through the configuration.
    let config = f.config_path.to_str().unwrap();
    let (code, out, err) = policy_cli(&["check", "--config", config]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 valid policy: orders-reader"), "{out}");
    let explain = |method: &'static str| {
        policy_cli(&[
            "explain",
            "--config",
            config,
            "--route",
            "orders",
            "--method",
            method,
            "--subject",
            &f.client_id,
            "--client-id",
            &f.client_id,
            "--json",
        ])
    };
    let (code, out, _) = explain("GET");
    assert_eq!(code, 0, "{out}");
    let decision: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(decision["decision"], "allow");
    assert_eq!(decision["policies"][0], "orders-reader");
    // The client's real token gives the caller (read, not verified, by the CLI).
    let (code, out, err) = policy_cli(&[
        "explain", "--config", config, "--route", "orders", "--token", &f.token, "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let decision: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(decision["policies"][0], "orders-reader");
    let (code, out, _) = explain("DELETE");
    assert_eq!(code, 2, "{out}");
    let decision: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(decision["reason"], "policy_no_permit");
    // An invalid file: exit 1 with the line.
    replace_file(
        &policy_path,
        b"permit(principal, action, resource)\n  when { context.x };",
    );
    let (code, _, err) = policy_cli(&["check", "--file", policy_path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("line 2"), "{err}");
    let (code, schema, _) = policy_cli(&["schema"]);
    assert_eq!(code, 0);
    assert!(schema.contains("entity Route"), "{schema}");
}

/// The DER of the first certificate of a PEM text.
fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let b64: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// The leaf certificate a new TLS connection to `addr` is shown.
async fn peer_certificate(addr: SocketAddr, ca_pem: &str) -> Vec<u8> {
    // A fresh client configuration each time: no session resumption.
    let tls = rampart_pki::client_config(ca_pem).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the gateway");
    stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("a certificate")[0]
        .to_vec()
}

#[tokio::test]
async fn certificate_files_are_reloaded() {
    let f = fixture().await;
    let ca = rampart_pki::DevCa::generate("reload test CA").unwrap();
    let issue = |name: &str| {
        ca.issue_server_cert(
            &[name.to_owned()],
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
            Duration::from_secs(3600),
        )
        .unwrap()
    };
    let first = issue("first.test");
    let second = issue("second.test");
    let cert_path = f.idp.data_dir.join("gw-cert.pem");
    let key_path = f.idp.data_dir.join("gw-key.pem");
    replace_file(&cert_path, first.chain_pem.as_bytes());
    replace_file(&key_path, first.key_pem.expose_secret().as_bytes());
    replace_file(
        &f.config_path,
        config(&f.idp, f.up, "b", Some((&cert_path, &key_path))).as_bytes(),
    );
    let mut gw = GatewayProcess::start(&f.config_path, &f.idp.data_dir);
    assert_eq!(
        peer_certificate(gw.addr, ca.cert_pem()).await,
        pem_der(&first.cert_pem)
    );
    // A keep-alive connection opened on the first certificate.
    let mut kept = Connection::open(gw.addr, ca.cert_pem()).await;
    assert_eq!(kept.get("/orders/1", &f.token).await, 200);

    replace_file(&key_path, second.key_pem.expose_secret().as_bytes());
    replace_file(&cert_path, second.chain_pem.as_bytes());
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut seen = peer_certificate(gw.addr, ca.cert_pem()).await;
    while seen != pem_der(&second.cert_pem) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = peer_certificate(gw.addr, ca.cert_pem()).await;
    }
    assert_eq!(
        seen,
        pem_der(&second.cert_pem),
        "new handshakes get the new certificate; stderr:\n{}",
        gw.stderr()
    );
    assert!(gw.stderr().contains("gateway TLS certificate reloaded"));
    assert_eq!(
        kept.get("/orders/1", &f.token).await,
        200,
        "connection kept"
    );

    // A garbage certificate is rejected: the second one stays.
    replace_file(&cert_path, b"-----BEGIN CERTIFICATE-----\ngarbage\n");
    assert!(
        gw.wait_stderr("gateway TLS certificate rejected", 4).await,
        "{}",
        gw.stderr()
    );
    assert!(gw.stderr().contains("gateway.tls_cert"));
    assert_eq!(
        peer_certificate(gw.addr, ca.cert_pem()).await,
        pem_der(&second.cert_pem)
    );
    let mut fresh = Connection::open(gw.addr, ca.cert_pem()).await;
    assert_eq!(fresh.get("/orders/1", &f.token).await, 200);
    gw.assert_running();
}
