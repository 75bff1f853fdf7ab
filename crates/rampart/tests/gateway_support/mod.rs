//! Shared by the gateway test files that run `rampart gateway` alone (no authorization
//! server): a gateway process on its own data directory (its dev CA issues the listener's
//! certificate), and switchable upstreams.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_rampart");

/// A running `rampart gateway`.
pub struct GatewayProcess {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT` of the HTTPS listener.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT` of the admin listener.
    pub admin: String,
    /// The config file (rewrite it to reload).
    pub config_path: PathBuf,
    /// The dev CA that issued the listener's certificate.
    pub ca_path: PathBuf,
    /// An HTTPS client trusting `ca_path`.
    pub http: reqwest::Client,
    stderr: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GatewayProcess {
    /// Starts `rampart gateway` with `config` (a complete file with a `[gateway]` section) in
    /// a fresh data directory.
    pub fn start(config: &str) -> GatewayProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("gateway.toml");
        std::fs::write(&config_path, config).expect("write config");
        let data_dir = dir.path().join("data");
        let mut child = Command::new(BIN)
            .args(["gateway", "--config"])
            .arg(&config_path)
            .arg("--data-dir")
            .arg(&data_dir)
            .env_remove("RAMPART_MASTER_KEY")
            .env(
                "RAMPART_LOG",
                std::env::var("TEST_RAMPART_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rampart gateway");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                eprintln!("[gateway] {line}");
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keeps draining (audit records) so the gateway never blocks on stdout.
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let (mut url, mut admin) = (None, None);
        while url.is_none() || admin.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("gateway did not start (see stderr)");
            if let Some(rest) = line.strip_prefix("gateway: ") {
                url = Some(rest.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("gateway admin: ") {
                admin = Some(rest.trim().to_owned());
            }
        }
        let url = url.unwrap();
        let ca_path = data_dir.join("tls/ca.pem");
        let ca = std::fs::read(&ca_path).expect("dev CA written");
        let cert = reqwest::Certificate::from_pem(&ca).expect("CA pem");
        let http = reqwest::Client::builder()
            .tls_certs_only([cert])
            .timeout(Duration::from_secs(20))
            .build()
            .expect("https client");
        GatewayProcess {
            child,
            addr: url.trim_start_matches("https://").parse().unwrap(),
            url,
            admin: admin.unwrap(),
            config_path,
            ca_path,
            http,
            stderr,
            _dir: dir,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn assert_running(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the gateway exited; stderr:\n{}",
            self.stderr()
        );
    }

    /// Waits (at most `secs`) until stderr contains `needle`.
    pub async fn wait_stderr(&self, needle: &str, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.stderr().contains(needle)
    }

    /// Replaces the config file atomically (the gateway reloads it within about a second).
    pub fn rewrite_config(&self, config: &str) {
        let tmp = self.config_path.with_extension("tmp");
        std::fs::write(&tmp, config).unwrap();
        std::fs::rename(&tmp, &self.config_path).unwrap();
    }

    /// GET `path` through the gateway: (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("request through the gateway");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    /// GET `path` on the admin listener: (status, body).
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let resp = reqwest::get(format!("{}{path}", self.admin))
            .await
            .expect("admin request");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    /// The value of the Prometheus sample whose line starts with `series` (name and labels).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let (_, text) = self.admin_get("/metrics").await;
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

/// An upstream answering `name` with 200, or 503 on every path (its health path included)
/// while `failing`; counts requests and health probes (`GET /healthz*`) apart.
pub struct Upstream {
    pub addr: SocketAddr,
    pub name: &'static str,
    pub failing: Arc<AtomicBool>,
    pub hits: Arc<AtomicUsize>,
    /// Probes per path (`/healthz`, `/healthz2`, ...).
    pub probes: Arc<Mutex<std::collections::HashMap<String, usize>>>,
}

impl Upstream {
    pub async fn start(name: &'static str) -> Upstream {
        let failing = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let probes = Arc::new(Mutex::new(std::collections::HashMap::new()));
        let (f, h, p) = (failing.clone(), hits.clone(), probes.clone());
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let (f, h, p) = (f.clone(), h.clone(), p.clone());
            async move {
                if uri.path().starts_with("/healthz") {
                    *p.lock().unwrap().entry(uri.path().to_owned()).or_default() += 1;
                } else {
                    h.fetch_add(1, Ordering::SeqCst);
                }
                if f.load(Ordering::SeqCst) {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "failing")
                } else {
                    (axum::http::StatusCode::OK, name)
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream {
            addr,
            name,
            failing,
            hits,
            probes,
        }
    }

    pub fn probes(&self, path: &str) -> usize {
        self.probes.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

/// Polls `cond` every 50 ms for at most `secs`; panics naming `what` on timeout.
pub async fn wait_until<F, Fut>(what: &str, secs: u64, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Path of a file in a directory (for configs that name files).
pub fn display(path: &Path) -> String {
    path.display().to_string()
}

/// A TLS connection to the gateway's listener, offering `alpn`, trusting its dev CA.
pub async fn connect(
    gw: &GatewayProcess,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let ca = std::fs::read_to_string(&gw.ca_path).unwrap();
    let tls = rampart_pki::client_config_with_alpn(&ca, alpn).unwrap();
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(gw.addr.ip().into());
    tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// Reads one HTTP/1.1 response (head and Content-Length body); returns the status.
pub async fn read_response(
    tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> u16 {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::io::AsyncReadExt::read(tls, &mut byte)
            .await
            .expect("read response head");
        assert_eq!(n, 1, "connection closed before a response");
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .expect("content-length");
    let mut body = vec![0u8; length];
    tokio::io::AsyncReadExt::read_exact(tls, &mut body)
        .await
        .expect("body");
    head.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// An upstream on loopback answering every request with `ok`.
pub async fn ok_upstream() -> SocketAddr {
    let app = axum::Router::new().fallback(|| async { "ok" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}
