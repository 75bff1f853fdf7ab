//! The OpenID Connect authorization code flow driven by relying parties nobody on this
//! project wrote, against the real binary: the `openidconnect` crate (`interop/oidc-rp`,
//! public first-party client, PKCE) and Authlib (`tests/interop/authlib_code_flow.py`,
//! confidential third-party client with consent, refresh rotation and logout). Users and
//! clients are made with the CLI, as an operator would. These tests fail, never skip, when
//! the clients are missing: run them through `scripts/test` (or set `RAMPART_INTEROP_PYTHON`
//! and `RAMPART_OIDC_RP`).

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{BIN, Server};
use serde_json::Value;

/// Not on the shipped list of common passwords, long enough for the policy.
const PASSWORD: &str = "violet kettle harbour 7319 drum";

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

fn oidc_rp() -> PathBuf {
    let path = std::env::var_os("RAMPART_OIDC_RP")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("interop/oidc-rp/target/debug/oidc-rp"));
    assert!(
        path.exists(),
        "openidconnect relying party not built at {}: run scripts/test",
        path.display()
    );
    path
}

/// Runs `cmd` with `stdin` written to its standard input; returns its output.
fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// `rampart <args> --data-dir DIR` with `stdin` piped in (the harness's `cli` has no stdin).
fn cli_with_stdin(server: &Server, args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--data-dir")
        .arg(&server.data_dir)
        .env_remove("RAMPART_MASTER_KEY");
    run_with_stdin(cmd, stdin)
}

fn json_of(out: &Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what} failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Creates a user with the CLI (password piped on stdin); returns the user id, checked
/// against `user show --json`.
fn create_user(server: &Server, username: &str, email: &str, name: &str) -> String {
    let out = cli_with_stdin(
        server,
        &[
            "user",
            "create",
            "--username",
            username,
            "--email",
            email,
            "--name",
            name,
            "--role",
            "reviewer",
            "--group",
            "navy",
            "--password-stdin",
            "--json",
        ],
        &format!("{PASSWORD}\n"),
    );
    let created = json_of(&out, "user create");
    let user_id = created["user_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no user_id in {created}"))
        .to_owned();
    let shown = user_show(server, username);
    assert_eq!(shown["user_id"], user_id.as_str(), "{shown}");
    assert_eq!(shown["email"], email, "{shown}");
    user_id
}

fn user_show(server: &Server, user: &str) -> Value {
    json_of(&server.cli(&["user", "show", user, "--json"]), "user show")
}

/// Runs an interop client with the password on stdin; returns its one-line JSON summary.
fn run_client(cmd: Command, what: &str) -> Value {
    let out = run_with_stdin(cmd, &format!("{PASSWORD}\n"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{what} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    let summary: Value = serde_json::from_str(last).unwrap_or_else(|e| {
        panic!("{what}: no JSON summary ({e})\nstdout:\n{stdout}\nstderr:\n{stderr}")
    });
    assert_eq!(summary["ok"], true, "{summary}");
    eprintln!("{what}: {summary}");
    summary
}

fn rotate_id_token_key_to(server: &Server, alg: &str) {
    // Two rotations: the first makes an `alg` key `next`, the second makes it `active`.
    for _ in 0..2 {
        let out = server.cli(&["key", "rotate", "--family", "id-token", "--alg", alg]);
        assert!(
            out.status.success(),
            "key rotate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The server reloads keys (and clients) on its 500 ms poll.
    std::thread::sleep(Duration::from_millis(1200));
}

#[test]
fn openidconnect_crate_runs_the_code_flow_with_pkce_for_a_public_client() {
    let rp = oidc_rp();
    let server = Server::start();
    let user_id = create_user(&server, "ada", "ada@example.com", "Ada Lovelace");
    let redirect = "https://spa.example/callback";
    let (client_id, secret) = server.create_client(&[
        "--name",
        "Interop SPA",
        "--public",
        "--first-party",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--redirect-uri",
        redirect,
    ]);
    assert_eq!(secret, None, "a public client has no secret");
    std::thread::sleep(Duration::from_millis(1200));

    // RS256 (the default ID-token key), then ES256 and EdDSA: the crate verifies each ID
    // token and its at_hash (SHA-256, and SHA-512 for Ed25519).
    for alg in ["RS256", "ES256", "EdDSA"] {
        if alg != "RS256" {
            rotate_id_token_key_to(&server, alg);
        }
        let mut cmd = Command::new(&rp);
        cmd.args([
            "code-flow",
            &server.issuer,
            server.ca_path().to_str().unwrap(),
            &client_id,
            redirect,
            "ada",
        ])
        .env_remove("OIDC_RP_PASSWORD");
        let summary = run_client(cmd, &format!("oidc-rp code-flow ({alg})"));
        assert_eq!(summary["sub"], user_id.as_str(), "{summary}");
        assert_eq!(summary["email"], "ada@example.com", "{summary}");
        assert_eq!(summary["userinfo_email"], "ada@example.com", "{summary}");
        assert_eq!(summary["amr"], serde_json::json!(["pwd"]), "{summary}");
        assert_eq!(summary["alg"], alg, "{summary}");
        assert_eq!(summary["at_hash"], "verified", "{summary}");
        assert_eq!(summary["refresh_rotated"], true, "{summary}");
        let rejected = summary["forgeries_rejected"].as_array().unwrap();
        assert!(rejected.len() >= 6, "{summary}");
        // First party: sign-in page, then straight back to the client (no consent page).
        let trail: Vec<&str> = summary["browser"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            trail,
            ["303 /authorize", "200 /login", "303 /login"],
            "{summary}"
        );
    }
}

#[test]
fn authlib_runs_the_code_flow_with_consent_refresh_and_logout() {
    let python = python();
    let server = Server::start();
    let user_id = create_user(&server, "grace", "grace@example.com", "Grace Hopper");
    let redirect = "https://partner.example/oidc/callback";
    let (client_id, secret) = server.create_client(&[
        "--name",
        "Partner App",
        "--auth-method",
        "client_secret_basic",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--redirect-uri",
        redirect,
    ]);
    let secret = secret.expect("a confidential client has a secret");
    std::thread::sleep(Duration::from_millis(1200));

    let mut cmd = Command::new(python);
    cmd.arg(workspace_root().join("tests/interop/authlib_code_flow.py"))
        .args([
            &server.issuer,
            server.ca_path().to_str().unwrap(),
            &client_id,
            redirect,
            "grace",
        ])
        .env("RP_CLIENT_SECRET", &secret);
    let summary = run_client(cmd, "authlib_code_flow.py");
    assert_eq!(summary["sub"], user_id.as_str(), "{summary}");
    assert_eq!(summary["email"], "grace@example.com", "{summary}");
    assert_eq!(summary["amr"], serde_json::json!(["pwd"]), "{summary}");
    assert_eq!(summary["alg"], "RS256", "{summary}");
    assert_eq!(summary["consent"], true, "{summary}");
    assert_eq!(summary["logout"], true, "{summary}");
    // The access token, verified by Authlib, carries the user's roles and groups.
    assert_eq!(
        summary["access_roles"],
        serde_json::json!(["reviewer"]),
        "{summary}"
    );
    assert_eq!(
        summary["access_groups"],
        serde_json::json!(["navy"]),
        "{summary}"
    );
    // Third party: sign-in page, then the consent page, then back to the client.
    let trail: Vec<&str> = summary["browser"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        trail,
        [
            "303 /authorize",
            "200 /login",
            "303 /login",
            "200 /consent",
            "303 /consent"
        ],
        "{summary}"
    );
    // The one session ended with the logout.
    assert_eq!(user_show(&server, "grace")["sessions"], 0);
}
