//! Start-up behaviour of `rampart serve`: configuration errors name the key, the master key
//! can come from the environment, and a wrong master key stops the start.

mod common;

use std::process::{Command, Stdio};

use common::{BIN, Server};

fn serve_fails_with(env: &[(&str, &str)], dir: &std::path::Path) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("RAMPART_MASTER_KEY")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run serve");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve started although it must refuse to");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert!(!out.status.success(), "serve must refuse to start");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_configuration_names_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let err = serve_fails_with(&[("RAMPART_TOKENS_DEFAULT_TTL", "forever")], &dir);
    assert!(err.contains("default_ttl"), "{err}");
    let err = serve_fails_with(&[("RAMPART_TOKENS_JWT_ALG", "none")], &dir);
    assert!(err.contains("tokens.jwt_alg"), "{err}");
    let err = serve_fails_with(&[("RAMPART_SERVER_ISSUER", "http://plain.example")], &dir);
    assert!(err.contains("server.issuer"), "{err}");
    let config = tmp.path().join("bad.toml");
    std::fs::write(&config, "[limits]\nmax_body_bytes = 1\n").unwrap();
    let err = serve_fails_with(&[("RAMPART_CONFIG", config.to_str().unwrap())], &dir);
    assert!(err.contains("limits.max_body_bytes"), "{err}");
}

#[test]
fn master_key_from_the_environment_and_wrong_key_refused() {
    let key = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80";
    let server = Server::start_with_env(&[("RAMPART_MASTER_KEY", key)]);
    assert!(
        !server.data_dir.join("master.key").exists(),
        "no key file when the env var is set"
    );
    let (dir, _tmp) = server.stop();
    // The same data with another master key cannot be unsealed: a clear error, no start.
    let other = "AAAAEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80";
    let err = serve_fails_with(&[("RAMPART_MASTER_KEY", other)], &dir);
    assert!(err.contains("wrong master key"), "{err}");
    let err = serve_fails_with(&[("RAMPART_MASTER_KEY", "short")], &dir);
    assert!(err.contains("RAMPART_MASTER_KEY"), "{err}");
}

#[test]
fn insecure_master_key_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start();
    let (dir, _tmp) = server.stop();
    let key = dir.join("master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = serve_fails_with(&[], &dir);
    assert!(err.contains("master.key"), "{err}");
}

/// A `--listen` port for the demo whose own ports (it puts the gateway at +1000 and the admin
/// listener at +1458) are free now. All three stay below Linux's ephemeral range (32768 and
/// up), where the other tests' outgoing connections take ports at random: a base picked there
/// once collided with one (CI, "Address already in use" on the admin port).
fn demo_port_base() -> u16 {
    let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    let first = 10_000 + (std::process::id() % 20_000) as u16;
    (0..200u16)
        .map(|i| 10_000 + (first - 10_000 + i * 97) % 20_000)
        .find(|&base| free(base) && free(base + 1000) && free(base + 1458))
        .expect("a free port base for the demo")
}

#[tokio::test]
async fn demo_shows_allowed_401_403_policy_403_and_429() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let base = demo_port_base();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--demo",
            "--listen",
            &format!("127.0.0.1:{base}"),
            "--data-dir",
        ])
        .arg(tmp.path().join("d"))
        .env_remove("RAMPART_MASTER_KEY")
        .env("RAMPART_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut secret = None;
    loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("demo started");
        if let Some(rest) = line.split("demo-reader:").nth(1) {
            secret = rest.split_whitespace().next().map(str::to_owned);
        }
        if line.starts_with("gateway admin:") {
            break;
        }
    }
    let secret = secret.expect("demo printed the reader's credentials");
    let ca = std::fs::read(tmp.path().join("d/tls/ca.pem")).unwrap();
    let http = common::https_client(&ca);
    let (_, body) = common::status_json(
        http.post(format!("https://127.0.0.1:{base}/token"))
            .basic_auth("demo-reader", Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let token = body["access_token"].as_str().expect("token").to_owned();
    let gw = format!("https://127.0.0.1:{}", base + 1000);
    let get = |path: &str, auth: bool| {
        let mut req = http.get(format!("{gw}{path}"));
        if auth {
            req = req.bearer_auth(&token);
        }
        req.send()
    };
    let resp = get("/orders/42", true).await.unwrap();
    assert_eq!(resp.status(), 200);
    let (_, echo) = common::status_json(resp).await;
    assert_eq!(echo["headers"]["x-rampart-subject"], "demo-reader");
    assert_eq!(get("/orders/42", false).await.unwrap().status(), 401);
    assert_eq!(get("/admin", true).await.unwrap().status(), 403);
    // The demo's Cedar policy lets readers read, not write.
    let (status, refused) = common::status_json(
        http.post(format!("{gw}/orders/42"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(refused["error"], "access_denied");
    let mut saw_429 = false;
    for _ in 0..8 {
        if get("/orders", true).await.unwrap().status() == 429 {
            saw_429 = true;
        }
    }
    assert!(saw_429, "the demo route is rate limited");
    let _ = child.kill();
    let _ = child.wait();
}
