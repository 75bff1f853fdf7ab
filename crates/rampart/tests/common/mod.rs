//! Test harness: runs the real `rampart` binary on an ephemeral loopback port over HTTPS.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_rampart");

/// A running server.
pub struct Server {
    child: Child,
    pub issuer: String,
    /// `https://ADDRESS` the server listens on (the issuer, unless one is configured).
    pub base: String,
    pub data_dir: PathBuf,
    pub admin_secret: Option<String>,
    pub http: reqwest::Client,
    _tmp: Option<tempfile::TempDir>,
    env: Vec<(String, String)>,
}

impl Server {
    /// Starts a server on a new data directory.
    pub fn start() -> Server {
        Self::start_with_env(&[])
    }

    /// Starts a server on a new data directory with extra environment variables.
    pub fn start_with_env(env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let mut server = Self::spawn(
            &dir,
            "127.0.0.1:0",
            env.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        );
        server._tmp = Some(tmp);
        server
    }

    fn spawn(dir: &Path, listen: &str, env: Vec<(String, String)>) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", listen, "--data-dir"])
            .arg(dir)
            .env_remove("RAMPART_MASTER_KEY")
            .env(
                "RAMPART_LOG",
                std::env::var("TEST_RAMPART_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn rampart serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keeps draining after the harness stops listening, so the server never writes
            // into a closed pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut issuer = None;
        let mut base = None;
        let mut admin_secret = None;
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("server did not start (see stderr)"));
            if let Some(rest) = line.strip_prefix("issuer: ") {
                issuer = Some(rest.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("listening: ") {
                base = Some(rest.trim().to_owned());
            }
            if let Some(rest) = line.trim().strip_prefix("client_secret: ") {
                admin_secret = Some(rest.trim().to_owned());
            }
            if line.starts_with("Create a client:") {
                break;
            }
        }
        let ca = std::fs::read(dir.join("tls/ca.pem")).expect("dev CA written");
        let http = https_client(&ca);
        Server {
            child,
            issuer: issuer.expect("issuer line"),
            base: base.expect("listening line"),
            data_dir: dir.to_owned(),
            admin_secret,
            http,
            _tmp: None,
            env,
        }
    }

    /// Kills the server with SIGKILL (no clean shutdown) and starts it again on the same
    /// data directory and address, so the issuer stays the same.
    pub fn kill9_and_restart(mut self) -> Server {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
        let tmp = self._tmp.take();
        let listen = self.base.trim_start_matches("https://").to_owned();
        let mut server = Self::spawn(&self.data_dir, &listen, self.env.clone());
        assert_eq!(server.issuer, self.issuer, "same issuer after restart");
        server._tmp = tmp;
        server
    }

    /// Stops the server and hands over its temporary directory, so the data outlives it.
    pub fn stop(mut self) -> (PathBuf, tempfile::TempDir) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let tmp = self._tmp.take().expect("server owns its directory");
        (self.data_dir.clone(), tmp)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn ca_path(&self) -> PathBuf {
        self.data_dir.join("tls/ca.pem")
    }

    /// Runs `rampart <args> --data-dir DIR` with the server's extra environment (so it
    /// opens the same database with the same master key).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env_remove("RAMPART_MASTER_KEY")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run rampart")
    }

    /// `rampart client create ... --json`; returns (client_id, client_secret).
    pub fn create_client(&self, args: &[&str]) -> (String, Option<String>) {
        let mut full = vec!["client", "create", "--json"];
        full.extend_from_slice(args);
        let out = self.cli(&full);
        assert!(
            out.status.success(),
            "client create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("json output");
        (
            v["client_id"].as_str().expect("client_id").to_owned(),
            v["client_secret"].as_str().map(str::to_owned),
        )
    }

    /// A client_credentials request with client_secret_basic; returns (status, body).
    pub async fn token_basic(
        &self,
        id: &str,
        secret: &str,
        params: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(params);
        let resp = self
            .http
            .post(self.url("/token"))
            .basic_auth(id, Some(secret))
            .form(&form)
            .send()
            .await
            .expect("token request");
        status_json(resp).await
    }

    /// A token for a client, or panic.
    pub async fn access_token(&self, id: &str, secret: &str) -> String {
        let (status, body) = self.token_basic(id, secret, &[]).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Introspects `token` as client (id, secret).
    pub async fn introspect(&self, id: &str, secret: &str, token: &str) -> Value {
        let resp = self
            .http
            .post(self.url("/introspect"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .expect("introspect");
        let (status, body) = status_json(resp).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A token for the admin API.
    pub async fn admin_token(&self) -> String {
        let secret = self
            .admin_secret
            .clone()
            .expect("admin secret printed on first start");
        self.access_token("rampart-admin", &secret).await
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let resp = self.http.get(self.url(path)).send().await.expect("GET");
        let (status, body) = status_json(resp).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTPS client that trusts only the dev CA.
pub fn https_client(ca_pem: &[u8]) -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(ca_pem).expect("CA pem");
    reqwest::Client::builder()
        .tls_certs_only([cert])
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("https client")
}

pub async fn status_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Decodes the JSON of a JWT's header or payload segment.
pub fn jwt_part(token: &str, index: usize) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(index).expect("segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

/// Waits long enough for the server to notice a change made by the CLI (poll interval
/// 500 ms).
pub async fn wait_for_poll() {
    tokio::time::sleep(Duration::from_millis(1200)).await;
}
