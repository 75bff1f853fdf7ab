//! Interop with clients nobody on this project wrote: PyJWT, Authlib and pyseto (Python,
//! installed by `scripts/test` into `.venv`), and the `openidconnect` crate (built by
//! `scripts/test` from `interop/oidc-rp`). These tests fail, never skip, when the clients are
//! missing: run them through `scripts/test`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Server;

const AUD: &str = "https://api.example.com/orders";

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let path = std::env::var_os("RAMPART_INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    assert!(
        path.exists(),
        "interop Python not found at {}: run scripts/test",
        path.display()
    );
    path
}

fn run(mut cmd: Command) -> String {
    let out = cmd.output().expect("run interop client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "interop client failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn script(name: &str) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(workspace_root().join("tests/interop").join(name));
    cmd
}

#[test]
fn pyjwt_verifies_jwt_access_tokens_from_the_jwks() {
    let server = Server::start();
    for alg in [None, Some("ES256"), Some("RS256")] {
        if let Some(alg) = alg {
            for _ in 0..2 {
                assert!(
                    server
                        .cli(&["key", "rotate", "--family", "jwt", "--alg", alg])
                        .status
                        .success()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(1200));
        }
        let (id, secret) =
            server.create_client(&["--name", "py", "--scope", "orders:read", "--audience", AUD]);
        let mut cmd = script("pyjwt_verify.py");
        cmd.args([
            &server.issuer,
            server.ca_path().to_str().unwrap(),
            &id,
            &secret.unwrap(),
            AUD,
        ]);
        let out = run(cmd);
        assert!(
            out.contains(&format!("alg={}", alg.unwrap_or("EdDSA"))),
            "{out}"
        );
    }
}

#[test]
fn authlib_gets_tokens_with_every_auth_method() {
    let server = Server::start();
    let mut cmd = script("authlib_client.py");
    cmd.args([
        &server.issuer,
        server.ca_path().to_str().unwrap(),
        common::BIN,
        server.data_dir.to_str().unwrap(),
    ]);
    let out = run(cmd);
    assert!(out.contains("OK authlib"), "{out}");
}

#[test]
fn pyseto_verifies_v4_public_tokens_from_paserk() {
    let server = Server::start();
    let (pub_id, pub_secret) = server.create_client(&[
        "--name",
        "p",
        "--audience",
        AUD,
        "--token-format",
        "paseto-public",
    ]);
    let (local_id, local_secret) = server.create_client(&[
        "--name",
        "l",
        "--audience",
        AUD,
        "--token-format",
        "paseto-local",
    ]);
    let mut cmd = script("pyseto_verify.py");
    cmd.args([
        &server.issuer,
        server.ca_path().to_str().unwrap(),
        &pub_id,
        &pub_secret.unwrap(),
        &local_id,
        &local_secret.unwrap(),
    ]);
    let out = run(cmd);
    assert!(out.contains("OK pyseto"), "{out}");
}

#[test]
fn openidconnect_crate_accepts_discovery_jwks_and_tokens() {
    let rp = std::env::var_os("RAMPART_OIDC_RP")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("interop/oidc-rp/target/debug/oidc-rp"));
    assert!(
        rp.exists(),
        "openidconnect relying party not built at {}: run scripts/test",
        rp.display()
    );
    let server = Server::start();
    let (id, secret) =
        server.create_client(&["--name", "rp", "--scope", "orders:read", "--audience", AUD]);
    let mut cmd = Command::new(rp);
    cmd.args([
        &server.issuer,
        server.ca_path().to_str().unwrap(),
        &id,
        &secret.unwrap(),
        "orders:read",
    ]);
    let out = run(cmd);
    assert!(out.contains("OK token verified by openidconnect"), "{out}");
}
