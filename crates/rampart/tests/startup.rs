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
