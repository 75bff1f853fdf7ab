//! A `redis-server` of a test's own (Debian package `redis-server`; `.ci/run` installs it).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` of the test's own, on a free loopback port, persisting nothing.
pub struct RedisServer {
    child: Child,
    /// Its loopback port.
    pub port: u16,
    _dir: tempfile::TempDir,
    _files: Option<tempfile::TempDir>,
}

fn redis_server_binary() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("redis-server"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "redis-server not found in PATH: these tests need a real Redis. Install the Debian \
             package (apt-get install -y redis-server); .ci/run installs it."
        )
    })
}

impl RedisServer {
    /// Starts one on a free port.
    pub fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    /// Starts one on `port` (e.g. again after [`RedisServer::kill`]).
    pub fn start_on(port: u16) -> RedisServer {
        Self::start_with(port, &[])
    }

    /// Starts one on a free port serving TLS only, with `tls_args` (`--tls-port {port}`,
    /// `--tls-cert-file ...`; `{port}` becomes the chosen port, which is then [`Self::port`]).
    /// It is not pinged (the ping speaks plain RESP): the caller checks it.
    pub fn start_tls(tls_args: &[String]) -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_with(port, tls_args)
    }

    /// Starts one serving TLS only on a free port with the certificate `cert_pem`/`key_pem`
    /// (for 127.0.0.1), asking every client for a certificate that chains to `ca_pem`
    /// (Redis' default `tls-auth-clients yes`). [`Self::port`] is the TLS port.
    pub fn start_tls_with(cert_pem: &str, key_pem: &str, ca_pem: &str) -> RedisServer {
        let files = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: &str| {
            let path = files.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path.to_str().unwrap().to_owned()
        };
        let args = [
            "--tls-port".to_owned(),
            "{port}".to_owned(),
            "--tls-cert-file".to_owned(),
            write("redis.pem", cert_pem),
            "--tls-key-file".to_owned(),
            write("redis.key", key_pem),
            "--tls-ca-cert-file".to_owned(),
            write("ca.pem", ca_pem),
            "--tls-auth-clients".to_owned(),
            "yes".to_owned(),
        ];
        let mut server = Self::start_tls(&args);
        // The server has read its files; they go with it.
        server._files = Some(files);
        server
    }

    fn start_with(port: u16, tls_args: &[String]) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let plain_port = if tls_args.is_empty() {
            port.to_string()
        } else {
            "0".to_owned()
        };
        let child = Command::new(redis_server_binary())
            .args(["--port", &plain_port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .args(
                tls_args
                    .iter()
                    .map(|a| a.replace("{port}", &port.to_string())),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn redis-server");
        let server = RedisServer {
            child,
            port,
            _dir: dir,
            _files: None,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        if tls_args.is_empty() {
            while server.command("PING").as_deref() != Some("+PONG\r\n") {
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
        } else {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        server
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends one inline command; returns the raw reply (None when Redis is unreachable).
    pub fn command(&self, cmd: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
        s.write_all(format!("{cmd}\r\n").as_bytes()).ok()?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    reply.extend_from_slice(&buf[..n]);
                    if reply.ends_with(b"\r\n") && complete(&reply) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        Some(String::from_utf8_lossy(&reply).into_owned())
    }

    /// `cmdstat_evalsha` calls so far.
    pub fn evalsha_calls(&self) -> u64 {
        let info = self.command("INFO commandstats").unwrap_or_default();
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Stops it at once (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a RESP reply is complete (good enough for the replies used here).
fn complete(reply: &[u8]) -> bool {
    let text = String::from_utf8_lossy(reply);
    match text.as_bytes().first() {
        Some(b'$') => {
            let Some((len, rest)) = text[1..].split_once("\r\n") else {
                return false;
            };
            let len: i64 = len.parse().unwrap_or(0);
            len < 0 || rest.len() >= len as usize + 2
        }
        Some(b'*') => {
            let Some((count, rest)) = text[1..].split_once("\r\n") else {
                return false;
            };
            let count: usize = count.parse().unwrap_or(0);
            rest.matches("\r\n").count() >= count * 2
        }
        _ => true,
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
