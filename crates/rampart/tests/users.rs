//! Users and the clients of the code flow, against the real binary: `rampart user ...` with
//! the password on standard input only, the admin API for users, personal data encrypted at
//! rest, a CLI-created user signing in through a CLI-created public client, and the new
//! `client create` flags.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{BIN, Server, status_json};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple 9";
const NEW_PASSWORD: &str = "violet tractor moonlight 27";
const EMAIL: &str = "alice.liddell@example.org";
const NAME: &str = "Alice Pleasance Liddell";
const PHONE: &str = "+44 1865 276150";
const REDIRECT: &str = "https://app.example/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Runs `rampart <args> --data-dir DIR` with `stdin` as standard input (closed when `None`).
fn run(server: &Server, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(&server.data_dir)
        .env_remove("RAMPART_MASTER_KEY")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rampart");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        // The command may have exited already (a usage error): a broken pipe is fine.
        let _ = pipe.write_all(input.as_bytes());
    }
    child.wait_with_output().expect("rampart output")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must succeed and print JSON.
fn ok_json(server: &Server, args: &[&str], stdin: Option<&str>) -> Value {
    let out = run(server, args, stdin);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&out)))
}

/// Runs a command that must fail; returns its error message.
fn fails(server: &Server, args: &[&str], stdin: Option<&str>) -> String {
    let out = run(server, args, stdin);
    assert!(
        !out.status.success(),
        "{args:?} succeeded: {}",
        stdout(&out)
    );
    let message = stderr(&out);
    assert!(!message.is_empty(), "{args:?}: no error message");
    message
}

fn create_alice(server: &Server) -> Value {
    ok_json(
        server,
        &[
            "user",
            "create",
            "--json",
            "--username",
            "Alice",
            "--email",
            "Alice.Liddell@Example.org",
            "--name",
            NAME,
            "--phone",
            PHONE,
            "--role",
            "admin",
            "--role",
            "auditor",
            "--group",
            "eng",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    )
}

/// The bytes of the database and its WAL.
fn database_bytes(server: &Server) -> Vec<u8> {
    let mut db = Vec::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&server.data_dir).expect("data dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("rampart.db") {
            files += 1;
            db.extend(std::fs::read(&path).expect("read db"));
        }
    }
    assert!(files >= 1, "no rampart.db in {}", server.data_dir.display());
    db
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes();
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn cli_manages_users_with_the_password_on_stdin_only() {
    let server = Server::start();

    // The password is never an argument.
    let message = fails(
        &server,
        &[
            "user",
            "create",
            "--username",
            "bob",
            "--email",
            "bob@example.org",
            "--password",
            PASSWORD,
        ],
        None,
    );
    assert!(message.contains("unexpected argument"), "{message}");
    let message = fails(
        &server,
        &[
            "user",
            "create",
            "--username",
            "bob",
            "--email",
            "bob@example.org",
            &format!("--password-stdin={PASSWORD}"),
        ],
        None,
    );
    assert!(!message.contains("created"), "{message}");
    let message = fails(
        &server,
        &[
            "user",
            "create",
            "--username",
            "bob",
            "--email",
            "bob@example.org",
            PASSWORD,
        ],
        Some(PASSWORD),
    );
    assert!(message.contains("--password-stdin"), "{message}");
    let help = run(&server, &["user", "create", "--help"], None);
    let help = stdout(&help);
    assert!(help.contains("--password-stdin"), "{help}");
    assert!(!help.contains("--password "), "{help}");
    assert!(!help.contains("--password <"), "{help}");

    // Empty standard input, weak, short and personal passwords are refused with a message.
    let bob = [
        "user",
        "create",
        "--username",
        "bob",
        "--email",
        "bob@example.org",
        "--password-stdin",
    ];
    let message = fails(&server, &bob, None);
    assert!(message.contains("standard input is empty"), "{message}");
    let message = fails(&server, &bob, Some("\n"));
    assert!(message.contains("standard input is empty"), "{message}");
    let message = fails(&server, &bob, Some("password1234\n"));
    assert!(
        message.contains("password:") && message.contains("too common"),
        "{message}"
    );
    assert!(!message.contains("password1234"), "echoed: {message}");
    let message = fails(&server, &bob, Some("Xk7#qv2!\n"));
    assert!(
        message.contains("password:") && message.contains("at least 12"),
        "{message}"
    );
    let message = fails(
        &server,
        &[
            "user",
            "create",
            "--username",
            "robert",
            "--email",
            "bob@example.org",
            "--password-stdin",
        ],
        Some("my name is Robert, 2024\n"),
    );
    assert!(message.contains("username"), "{message}");
    let message = fails(
        &server,
        &[
            "user",
            "create",
            "--username",
            "bob",
            "--email",
            "not-an-address",
            "--password-stdin",
        ],
        Some(PASSWORD),
    );
    assert!(message.contains("email:"), "{message}");
    let message = fails(
        &server,
        &[
            "user",
            "create",
            "--username",
            "bob",
            "--email",
            "bob@example.org",
            "--role",
            "bad role",
            "--password-stdin",
        ],
        Some(PASSWORD),
    );
    assert!(message.contains("role:"), "{message}");

    // Created; the trailing CR LF is not part of the password.
    let alice = create_alice(&server);
    let user_id = alice["user_id"].as_str().expect("user_id").to_owned();
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["email"], EMAIL);
    assert!(alice.get("password_hash").is_none(), "{alice}");

    // A duplicate username or e-mail is refused.
    let message = fails(
        &server,
        &[
            "user",
            "create",
            "--username",
            "alice",
            "--email",
            "other@example.org",
            "--password-stdin",
        ],
        Some(PASSWORD),
    );
    assert!(message.contains("already exists"), "{message}");
    let message = fails(
        &server,
        &[
            "user",
            "create",
            "--username",
            "alice2",
            "--email",
            "ALICE.liddell@example.org",
            "--password-stdin",
        ],
        Some(PASSWORD),
    );
    assert!(message.contains("already exists"), "{message}");

    // Listed and shown (by id, username and e-mail), with the e-mail decrypted.
    let list = ok_json(&server, &["user", "list", "--json"], None);
    assert_eq!(list.as_array().expect("array").len(), 1, "{list}");
    assert_eq!(list[0]["user_id"], user_id.as_str());
    for who in [user_id.as_str(), "alice", "Alice.Liddell@example.org"] {
        let shown = ok_json(&server, &["user", "show", who, "--json"], None);
        assert_eq!(shown["user_id"], user_id.as_str(), "{who}");
        assert_eq!(shown["username"], "alice");
        assert_eq!(shown["email"], EMAIL);
        assert_eq!(shown["name"], NAME);
        assert_eq!(shown["phone"], PHONE);
        assert_eq!(shown["roles"], json!(["admin", "auditor"]));
        assert_eq!(shown["groups"], json!(["eng"]));
        assert_eq!(shown["disabled"], false);
        assert!(shown["created_at"].as_i64().expect("created_at") > 0);
        assert_eq!(
            shown["mfa"],
            json!({"totp_confirmed": false, "totp_pending": false, "recovery_codes_left": 0, "passkeys": 0})
        );
        assert_eq!(shown["sessions"], 0);
        let text = stdout(&run(&server, &["user", "show", who], None));
        for field in [
            "username:",
            "email:",
            "roles:",
            "groups:",
            "disabled:",
            "created:",
        ] {
            assert!(text.contains(field), "{field} missing: {text}");
        }
        assert!(text.contains(EMAIL), "{text}");
        assert!(
            text.contains("totp:") && text.contains("sessions:"),
            "{text}"
        );
    }
    for view in [&list[0], &alice] {
        let keys: Vec<&String> = view.as_object().expect("object").keys().collect();
        for k in keys {
            assert!(
                !k.contains("hash") && !k.contains("sealed") && !k.contains("index"),
                "{k} in a view"
            );
        }
    }
    let message = fails(&server, &["user", "show", "nobody"], None);
    assert!(message.contains("no such user"), "{message}");

    // Personal data and the password are not in the database files in plaintext.
    let db = database_bytes(&server);
    assert!(contains(&db, &user_id), "sanity: the user id is stored");
    for secret in [EMAIL, "Alice.Liddell", NAME, PHONE, PASSWORD] {
        assert!(!contains(&db, secret), "{secret} stored in plaintext");
    }

    // Disable and enable.
    let out = run(&server, &["user", "disable", "alice"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = ok_json(&server, &["user", "show", "alice", "--json"], None);
    assert_eq!(shown["disabled"], true);
    let out = run(&server, &["user", "enable", EMAIL], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = ok_json(&server, &["user", "show", "alice", "--json"], None);
    assert_eq!(shown["disabled"], false);

    // Set password: the policy applies, standard input only.
    let message = fails(
        &server,
        &["user", "set-password", "alice", "--password-stdin"],
        Some("password1234\n"),
    );
    assert!(message.contains("too common"), "{message}");
    let message = fails(
        &server,
        &["user", "set-password", "alice"],
        Some(NEW_PASSWORD),
    );
    assert!(message.contains("--password-stdin"), "{message}");
    let done = ok_json(
        &server,
        &[
            "user",
            "set-password",
            "alice",
            "--password-stdin",
            "--json",
        ],
        Some(&format!("{NEW_PASSWORD}\r\n")),
    );
    assert_eq!(done["password_set"], user_id.as_str());

    // MFA reset and sessions work on a user without either.
    let out = run(&server, &["user", "reset-mfa", "alice"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let sessions = ok_json(&server, &["user", "sessions", "alice", "--json"], None);
    assert_eq!(sessions, json!([]));
    let message = fails(
        &server,
        &["user", "revoke-session", "no-such-session"],
        None,
    );
    assert!(message.contains("no such session"), "{message}");

    // Delete.
    let out = run(&server, &["user", "delete", "alice"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let message = fails(&server, &["user", "show", "alice"], None);
    assert!(message.contains("no such user"), "{message}");
    let message = fails(&server, &["user", "delete", "alice"], None);
    assert!(message.contains("no such user"), "{message}");
    assert_eq!(
        ok_json(&server, &["user", "list", "--json"], None),
        json!([])
    );
}

async fn admin(
    server: &Server,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = server
        .http
        .request(method, server.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("admin request");
    let headers = resp.headers().clone();
    let (status, body) = status_json(resp).await;
    (status, body, headers)
}

#[tokio::test]
async fn admin_api_manages_users() {
    use reqwest::Method;
    let server = Server::start();
    let token = server.admin_token().await;

    // Without a token: 401.
    let resp = server
        .http
        .get(server.url("/admin/v1/users"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status().as_u16(), 401);

    let new = json!({
        "username": "alice",
        "email": "Alice.Liddell@Example.org",
        "name": NAME,
        "roles": ["admin"],
        "groups": ["eng"],
        "password": PASSWORD,
    });
    let (status, created, headers) = admin(
        &server,
        &token,
        Method::POST,
        "/admin/v1/users",
        Some(new.clone()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(headers["cache-control"], "no-store");
    let user_id = created["user_id"].as_str().expect("user_id").to_owned();
    assert_eq!(created["email"], EMAIL);
    assert!(created.get("password").is_none() && created.get("password_hash").is_none());

    // Conflict, weak and short passwords, bad fields: problems naming the cause.
    let (status, problem, headers) =
        admin(&server, &token, Method::POST, "/admin/v1/users", Some(new)).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(headers["content-type"], "application/problem+json");
    let weak = json!({"username": "bob", "email": "bob@example.org", "password": "password1234"});
    let (status, problem, _) =
        admin(&server, &token, Method::POST, "/admin/v1/users", Some(weak)).await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("too common"),
        "{problem}"
    );
    let short = json!({"username": "bob", "email": "bob@example.org", "password": "Xk7#qv2!"});
    let (status, problem, _) = admin(
        &server,
        &token,
        Method::POST,
        "/admin/v1/users",
        Some(short),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("at least 12"),
        "{problem}"
    );
    let bad = json!({"username": "bob", "email": "nope", "password": PASSWORD});
    let (status, problem, _) =
        admin(&server, &token, Method::POST, "/admin/v1/users", Some(bad)).await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .starts_with("email:"),
        "{problem}"
    );
    let unknown =
        json!({"username": "bob", "email": "bob@example.org", "password": PASSWORD, "admin": true});
    let (status, _, _) = admin(
        &server,
        &token,
        Method::POST,
        "/admin/v1/users",
        Some(unknown),
    )
    .await;
    assert_eq!(status, 400);

    // The CLI sees what the API created, and the reverse.
    let shown = ok_json(&server, &["user", "show", "alice", "--json"], None);
    assert_eq!(shown["user_id"], user_id.as_str());
    let out = run(
        &server,
        &[
            "user",
            "create",
            "--username",
            "carol",
            "--email",
            "carol@example.org",
            "--password-stdin",
        ],
        Some(PASSWORD),
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let (status, list, _) = admin(&server, &token, Method::GET, "/admin/v1/users", None).await;
    assert_eq!(status, 200, "{list}");
    let mut names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|u| u["username"].as_str().expect("username"))
        .collect();
    // Oldest first, then by id: both were created within the same second.
    names.sort_unstable();
    assert_eq!(names, ["alice", "carol"]);
    for u in list.as_array().expect("array") {
        for k in u.as_object().expect("object").keys() {
            assert!(
                !k.contains("hash") && !k.contains("sealed") && !k.contains("index"),
                "{k}"
            );
        }
    }

    for who in [user_id.as_str(), "alice", "alice.liddell@example.org"] {
        let (status, user, _) = admin(
            &server,
            &token,
            Method::GET,
            &format!("/admin/v1/users/{who}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{user}");
        assert_eq!(user["user_id"], user_id.as_str());
        assert_eq!(user["email"], EMAIL);
        assert_eq!(user["mfa"]["totp_confirmed"], false);
        assert_eq!(user["sessions"], 0);
    }
    let (status, problem, _) =
        admin(&server, &token, Method::GET, "/admin/v1/users/nobody", None).await;
    assert_eq!(status, 404, "{problem}");

    let (status, user, _) = admin(
        &server,
        &token,
        Method::POST,
        "/admin/v1/users/alice/disable",
        None,
    )
    .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["disabled"], true);
    let shown = ok_json(&server, &["user", "show", "alice", "--json"], None);
    assert_eq!(shown["disabled"], true);
    let (status, user, _) = admin(
        &server,
        &token,
        Method::POST,
        "/admin/v1/users/alice/enable",
        None,
    )
    .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["disabled"], false);

    let (status, problem, _) = admin(
        &server,
        &token,
        Method::POST,
        "/admin/v1/users/alice/password",
        Some(json!({"password": "password1234"})),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .starts_with("password:"),
        "{problem}"
    );
    let (status, body, _) = admin(
        &server,
        &token,
        Method::POST,
        "/admin/v1/users/alice/password",
        Some(json!({"password": NEW_PASSWORD})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body, _) = admin(
        &server,
        &token,
        Method::POST,
        "/admin/v1/users/alice/reset-mfa",
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, sessions, _) = admin(
        &server,
        &token,
        Method::GET,
        "/admin/v1/users/alice/sessions",
        None,
    )
    .await;
    assert_eq!(status, 200, "{sessions}");
    assert_eq!(sessions, json!([]));
    let (status, problem, _) = admin(
        &server,
        &token,
        Method::DELETE,
        "/admin/v1/sessions/no-such-session",
        None,
    )
    .await;
    assert_eq!(status, 404, "{problem}");

    let (status, body, _) = admin(
        &server,
        &token,
        Method::DELETE,
        "/admin/v1/users/alice",
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _, _) = admin(&server, &token, Method::GET, "/admin/v1/users/alice", None).await;
    assert_eq!(status, 404);
    let (status, _, _) = admin(
        &server,
        &token,
        Method::DELETE,
        "/admin/v1/users/alice",
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Nothing personal in plaintext, whichever way the user came in.
    let db = database_bytes(&server);
    assert!(!contains(&db, "carol@example.org"));
    assert!(!contains(&db, PASSWORD));
}

#[tokio::test]
async fn client_create_flow_flags() {
    let server = Server::start();

    let (id, secret) = server.create_client(&[
        "--name",
        "spa",
        "--public",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--redirect-uri",
        REDIRECT,
        "--redirect-uri",
        "http://127.0.0.1:8080/cb",
        "--first-party",
        "--require-par",
    ]);
    assert_eq!(secret, None, "a public client has no secret");
    let shown = ok_json(&server, &["client", "show", &id, "--json"], None);
    assert_eq!(shown["token_endpoint_auth_method"], "none");
    assert_eq!(shown["auth_method"], "none");
    assert!(shown.get("client_secret").is_none());
    assert_eq!(
        shown["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        shown["redirect_uris"],
        json!([REDIRECT, "http://127.0.0.1:8080/cb"])
    );
    assert_eq!(shown["first_party"], true);
    assert_eq!(shown["require_mfa"], false);
    assert_eq!(shown["require_par"], true);
    let text = stdout(&run(&server, &["client", "show", &id], None));
    assert!(
        text.contains("grant_types:") && text.contains(REDIRECT),
        "{text}"
    );
    let list = ok_json(&server, &["client", "list", "--json"], None);
    let listed = list
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["client_id"] == id.as_str())
        .expect("listed");
    assert_eq!(listed["grant_types"], shown["grant_types"]);
    // A public client has no secret to rotate.
    let message = fails(&server, &["client", "rotate-secret", &id], None);
    assert!(message.contains("public client"), "{message}");

    // The default is still a confidential client_credentials client, and needs an audience.
    let message = fails(&server, &["client", "create", "--name", "svc"], None);
    assert!(message.contains("audience"), "{message}");
    let (svc, secret) = server.create_client(&[
        "--name",
        "svc",
        "--audience",
        "https://api.example.com/orders",
    ]);
    assert!(secret.is_some());
    let shown = ok_json(&server, &["client", "show", &svc, "--json"], None);
    assert_eq!(shown["grant_types"], json!(["client_credentials"]));
    assert_eq!(shown["token_endpoint_auth_method"], "client_secret_basic");

    let refused = [
        (
            vec!["--grant-type", "refresh_token", "--redirect-uri", REDIRECT],
            "refresh_token needs authorization_code",
        ),
        (
            vec![
                "--grant-type",
                "authorization_code",
                "--redirect-uri",
                "http://evil.example/cb",
            ],
            "not loopback",
        ),
        (
            vec!["--grant-type", "authorization_code"],
            "at least one redirect URI",
        ),
        (
            vec![
                "--grant-type",
                "authorization_code",
                "--redirect-uri",
                "https://app.example/cb#frag",
            ],
            "fragment",
        ),
        (
            vec!["--public", "--audience", "https://api.example.com/orders"],
            "public client cannot use client_credentials",
        ),
        (
            vec![
                "--public",
                "--auth-method",
                "client_secret_post",
                "--grant-type",
                "authorization_code",
                "--redirect-uri",
                REDIRECT,
            ],
            "cannot be used with",
        ),
        (
            vec![
                "--grant-type",
                "password",
                "--audience",
                "https://api.example.com/orders",
            ],
            "invalid value",
        ),
    ];
    for (extra, expected) in refused {
        let mut args = vec!["client", "create", "--name", "bad"];
        args.extend_from_slice(&extra);
        let message = fails(&server, &args, None);
        assert!(message.contains(expected), "{extra:?}: {message}");
    }

    // The admin API takes and shows the same settings.
    let token = server.admin_token().await;
    let (status, created, _) = admin(
        &server,
        &token,
        reqwest::Method::POST,
        "/admin/v1/clients",
        Some(json!({
            "name": "native app",
            "public": true,
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": ["com.example.app:/cb"],
            "require_mfa": true,
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["client_secret"], Value::Null);
    assert_eq!(created["client"]["token_endpoint_auth_method"], "none");
    assert_eq!(created["client"]["require_mfa"], true);
    assert_eq!(
        created["client"]["redirect_uris"],
        json!(["com.example.app:/cb"])
    );
    let (status, problem, _) = admin(
        &server,
        &token,
        reqwest::Method::POST,
        "/admin/v1/clients",
        Some(json!({
            "name": "evil",
            "grant_types": ["authorization_code"],
            "redirect_uris": ["http://evil.example/cb"],
        })),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("redirect_uri"),
        "{problem}"
    );
    let (status, problem, _) = admin(
        &server,
        &token,
        reqwest::Method::POST,
        "/admin/v1/clients",
        Some(json!({
            "name": "confused",
            "public": true,
            "auth_method": "client_secret_basic",
            "grant_types": ["authorization_code"],
            "redirect_uris": [REDIRECT],
        })),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
}

/// A browser over HTTPS that keeps cookies and sends the issuer as `Origin`.
struct Browser<'a> {
    server: &'a Server,
    cookies: HashMap<String, String>,
}

struct Page {
    status: u16,
    location: String,
    body: String,
}

impl Page {
    fn hidden(&self, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&needle)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + needle.len();
        let end = self.body[start..].find('"').expect("closing quote") + start;
        self.body[start..end].to_owned()
    }
}

impl Browser<'_> {
    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut req = req.header("origin", self.server.issuer.as_str());
        if !cookie.is_empty() {
            req = req.header("cookie", cookie.join("; "));
        }
        let resp = req.send().await.expect("browser request");
        for set in resp.headers().get_all("set-cookie") {
            let set = set.to_str().expect("ascii cookie");
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (k, v) = pair.split_once('=').expect("cookie pair");
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = resp.text().await.expect("body");
        Page {
            status,
            location,
            body,
        }
    }

    fn absolute(&self, path: &str) -> String {
        if path.starts_with("https://") {
            path.to_owned()
        } else {
            self.server.url(path)
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let url = self.absolute(path);
        let req = self.server.http.get(url);
        self.send(req).await
    }

    /// Starts the code flow and submits the login form; returns the answer to the form.
    async fn sign_in(&mut self, client_id: &str, username: &str, password: &str) -> Page {
        let start = self
            .get(&format!(
                "/authorize?response_type=code&client_id={client_id}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid+profile+email&state=st-1&nonce=n-1&code_challenge={CHALLENGE}&code_challenge_method=S256"
            ))
            .await;
        assert_eq!(start.status, 303, "{}", start.body);
        assert!(
            start.location.starts_with("/login?request="),
            "{}",
            start.location
        );
        let page = self.get(&start.location).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let request = page.hidden("request");
        let csrf = page.hidden("csrf_token");
        let req = self.server.http.post(self.server.url("/login")).form(&[
            ("request", request.as_str()),
            ("csrf_token", csrf.as_str()),
            ("username", username),
            ("password", password),
        ]);
        self.send(req).await
    }
}

fn code_from(location: &str) -> String {
    assert!(location.starts_with(REDIRECT), "{location}");
    let url = url::Url::parse(location).expect("redirect URL");
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q.get("state").map(String::as_str), Some("st-1"));
    q.get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in {location}"))
}

#[tokio::test]
async fn a_cli_created_user_signs_in_through_a_cli_created_public_client() {
    let server = Server::start();
    let alice = create_alice(&server);
    let user_id = alice["user_id"].as_str().expect("user_id").to_owned();
    let (client_id, secret) = server.create_client(&[
        "--name",
        "spa",
        "--public",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--redirect-uri",
        REDIRECT,
        "--first-party",
    ]);
    assert!(secret.is_none());
    common::wait_for_poll().await;

    // The password from standard input works, by username and by e-mail.
    let mut browser = Browser {
        server: &server,
        cookies: HashMap::new(),
    };
    let done = browser.sign_in(&client_id, "alice", PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let code = code_from(&done.location);
    let resp = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .expect("token");
    let (status, tokens) = status_json(resp).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"].as_str().expect("id_token");
    let claims = common::jwt_part(id_token, 1);
    assert_eq!(claims["sub"], user_id.as_str());
    assert!(
        claims["aud"] == client_id.as_str() || claims["aud"] == json!([client_id]),
        "{claims}"
    );
    assert!(tokens["refresh_token"].is_string(), "{tokens}");

    // The session shows up in the CLI and can be revoked there.
    let sessions = ok_json(&server, &["user", "sessions", "alice", "--json"], None);
    let sessions = sessions.as_array().expect("array");
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(sessions[0].get("cookie_hash").is_none());
    let session_id = sessions[0]["session_id"].as_str().expect("session_id");
    let shown = ok_json(&server, &["user", "show", "alice", "--json"], None);
    assert_eq!(shown["sessions"], 1);
    let out = run(&server, &["user", "revoke-session", session_id], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        ok_json(&server, &["user", "sessions", "alice", "--json"], None),
        json!([])
    );
    let resp = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", client_id.as_str()),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().expect("rt"),
            ),
        ])
        .send()
        .await
        .expect("refresh");
    let (status, body) = status_json(resp).await;
    assert_eq!(
        status, 400,
        "the session's refresh tokens are revoked: {body}"
    );

    // After set-password, only the new password works.
    let out = run(
        &server,
        &["user", "set-password", "alice", "--password-stdin"],
        Some(&format!("{NEW_PASSWORD}\n")),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut fresh = Browser {
        server: &server,
        cookies: HashMap::new(),
    };
    let old = fresh.sign_in(&client_id, "alice", PASSWORD).await;
    assert_eq!(old.status, 401, "the old password still works");
    let new = fresh.sign_in(&client_id, EMAIL, NEW_PASSWORD).await;
    assert_eq!(new.status, 303, "{}", new.body);
    code_from(&new.location);

    // A disabled user cannot sign in; enabled again, they can.
    let out = run(&server, &["user", "disable", "alice"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut other = Browser {
        server: &server,
        cookies: HashMap::new(),
    };
    let refused = other.sign_in(&client_id, "alice", NEW_PASSWORD).await;
    assert_eq!(refused.status, 401, "a disabled user signed in");
    let out = run(&server, &["user", "enable", "alice"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let again = other.sign_in(&client_id, "alice", NEW_PASSWORD).await;
    assert_eq!(again.status, 303, "{}", again.body);
}
