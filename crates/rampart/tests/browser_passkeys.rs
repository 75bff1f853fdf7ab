//! Passkeys in a real browser: headless Chromium driven through WebDriver (chromedriver)
//! with a WebDriver virtual authenticator (CTAP2, internal transport, resident keys, user
//! verification that succeeds), against the real binary over HTTPS.
//!
//! WebAuthn refuses IP addresses as relying party ids, so this server's issuer is
//! `https://localhost:PORT` (the dev certificate covers `localhost`).
//!
//! Scenario: a password sign-in for a client without MFA; on `/account`, "Register a
//! passkey"; then a fresh browser (a new profile, no cookies) whose virtual authenticator
//! holds the same credential signs in with "Sign in with a passkey" on the login page, no
//! username, no password, and the ID token's `amr` has `hwk`. A second test drives the JSON
//! endpoints over plain HTTP: wrong or missing CSRF header, cross-site origin, missing
//! ceremony, forged assertion, and an IP issuer without passkeys.
//!
//! thirtyfour 0.38 has no virtual authenticator API: the W3C WebAuthn WebDriver extension
//! commands (`POST /session/{id}/webauthn/authenticator`, `.../credentials`, `.../credential`)
//! are sent through `SessionHandle::cmd`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; fails, never skips, without them.
//! `RAMPART_CHROMIUM` and `RAMPART_CHROMEDRIVER` override the paths.

mod browser_support;
mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use browser_support::{ChromeDriver, free_port, open_browser, server_spki_hash};
use common::{BIN, https_client, jwt_part, status_json, wait_for_poll};
use serde_json::{Value, json};
use thirtyfour::common::command::FormatRequestData;
use thirtyfour::prelude::*;
use thirtyfour::{RequestData, SessionId};

const PASSWORD: &str = "correct horse battery staple 42";
const USERNAME: &str = "grace";
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// The server, with a `localhost` issuer.

struct LocalhostServer {
    child: Child,
    issuer: String,
    data_dir: PathBuf,
    http: reqwest::Client,
    _tmp: tempfile::TempDir,
}

impl LocalhostServer {
    fn start() -> LocalhostServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let port = free_port();
        let issuer = format!("https://localhost:{port}");
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&data_dir)
            .env_remove("RAMPART_MASTER_KEY")
            .env("RAMPART_SERVER_ISSUER", &issuer)
            .env(
                "RAMPART_LOG",
                std::env::var("TEST_RAMPART_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn rampart serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("server did not start (see stderr)");
            if let Some(rest) = line.strip_prefix("issuer: ") {
                assert_eq!(rest.trim(), issuer, "the configured issuer is used");
            }
            if line.starts_with("Create a client:") {
                break;
            }
        }
        let ca = std::fs::read(data_dir.join("tls/ca.pem")).expect("dev CA written");
        LocalhostServer {
            child,
            issuer,
            data_dir,
            http: https_client(&ca),
            _tmp: tmp,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// `rampart user create ... --password-stdin`.
    fn create_user(&self, username: &str, password: &str) {
        let mut child = Command::new(BIN)
            .args(["user", "create", "--data-dir"])
            .arg(&self.data_dir)
            .args([
                "--username",
                username,
                "--email",
                &format!("{username}@example.com"),
                "--password-stdin",
            ])
            .env_remove("RAMPART_MASTER_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run rampart user create");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("password on stdin");
        let out = child.wait_with_output().expect("user create");
        assert!(
            out.status.success(),
            "user create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `rampart client create ... --json`; returns the client id.
    fn create_client(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(["client", "create", "--json"])
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env_remove("RAMPART_MASTER_KEY")
            .output()
            .expect("run rampart client create");
        assert!(
            out.status.success(),
            "client create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("json output");
        v["client_id"].as_str().expect("client_id").to_owned()
    }
}

impl Drop for LocalhostServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// chromedriver and the browser (as in tests/browser.rs)

// ---------------------------------------------------------------------------------------------
// The WebAuthn WebDriver extension (W3C WebAuthn Level 2, §11), which thirtyfour lacks.

#[derive(Debug)]
struct WebAuthnCommand {
    method: reqwest::Method,
    path: String,
    body: Option<Value>,
}

impl FormatRequestData for WebAuthnCommand {
    fn format_request(&self, session_id: &SessionId) -> RequestData {
        let request = RequestData::new(
            self.method.clone(),
            format!("/session/{session_id}/webauthn/{}", self.path),
        );
        match &self.body {
            Some(body) => request.add_body(body.clone()),
            None => request,
        }
    }
}

async fn webauthn_cmd(
    driver: &WebDriver,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let command = WebAuthnCommand {
        method,
        path: path.to_owned(),
        body,
    };
    driver
        .handle()
        .cmd(command)
        .await
        .unwrap_or_else(|e| panic!("webauthn {path}: {e}"))
        .value_json()
        .unwrap_or_else(|e| panic!("webauthn {path}: {e}"))
}

/// A platform authenticator like a phone's or a laptop's: CTAP2, internal, resident keys,
/// user verification that succeeds.
async fn add_authenticator(driver: &WebDriver) -> String {
    let id = webauthn_cmd(
        driver,
        reqwest::Method::POST,
        "authenticator",
        Some(json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        })),
    )
    .await;
    id.as_str().expect("authenticator id").to_owned()
}

async fn credentials(driver: &WebDriver, authenticator: &str) -> Vec<Value> {
    webauthn_cmd(
        driver,
        reqwest::Method::GET,
        &format!("authenticator/{authenticator}/credentials"),
        None,
    )
    .await
    .as_array()
    .expect("credential list")
    .clone()
}

// ---------------------------------------------------------------------------------------------
// The relying party: a plain-HTTP loopback listener that answers every request with a page.

struct RelyingParty {
    port: u16,
}

impl RelyingParty {
    fn start() -> RelyingParty {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relying party");
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                std::thread::spawn(move || serve_rp(stream));
            }
        });
        RelyingParty { port }
    }

    fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/cb", self.port)
    }
}

fn serve_rp(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" || header == "\n" => break,
            Ok(_) => {}
        }
    }
    let body = "<!doctype html><html lang=\"en\"><head><title>Relying party</title></head>\
                <body><h1>signed in</h1></body></html>";
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
}

// ---------------------------------------------------------------------------------------------
// OAuth helpers.

struct Pkce {
    verifier: String,
    challenge: String,
    state: String,
    nonce: String,
}

fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).expect("random");
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Pkce {
    fn new() -> Pkce {
        let verifier = random_b64(32);
        let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            verifier.as_bytes(),
        ));
        Pkce {
            verifier,
            challenge,
            state: random_b64(12),
            nonce: random_b64(12),
        }
    }

    fn authorize_path(&self, client_id: &str, redirect_uri: &str) -> String {
        let mut url = url::Url::parse("http://x/authorize").unwrap();
        url.query_pairs_mut().extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", "openid profile"),
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &self.challenge),
            ("code_challenge_method", "S256"),
        ]);
        format!("/authorize?{}", url.query().unwrap())
    }
}

/// Exchanges the code of the redirect; returns the ID token's claims.
async fn exchange(
    server: &LocalhostServer,
    query: &HashMap<String, String>,
    pkce: &Pkce,
    client_id: &str,
    redirect_uri: &str,
) -> Value {
    assert_eq!(query.get("state"), Some(&pkce.state), "{query:?}");
    assert_eq!(query.get("iss"), Some(&server.issuer), "{query:?}");
    let code = query.get("code").unwrap_or_else(|| panic!("{query:?}"));
    let resp = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", pkce.verifier.as_str()),
            ("client_id", client_id),
        ])
        .send()
        .await
        .expect("token");
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt_part(body["id_token"].as_str().expect("id_token"), 1);
    assert_eq!(claims["iss"], server.issuer.as_str(), "{claims}");
    assert_eq!(claims["aud"], client_id, "{claims}");
    assert_eq!(claims["nonce"], pkce.nonce.as_str(), "{claims}");
    claims
}

fn amr(claims: &Value) -> Vec<String> {
    claims["amr"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Page helpers.

async fn wait_title(driver: &WebDriver, title: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = driver.title().await.unwrap_or_default();
        if now.starts_with(title) {
            return;
        }
        if Instant::now() > deadline {
            let url = driver.current_url().await.map(|u| u.to_string());
            let source = driver.source().await.unwrap_or_default();
            panic!("waited for a page titled {title:?}; at {url:?}, {now:?}:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_relying_party(driver: &WebDriver, rp: &RelyingParty) -> HashMap<String, String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let url = driver.current_url().await.expect("url");
        if url.as_str().starts_with(&rp.redirect_uri()) {
            wait_title(driver, "Relying party").await;
            return url.query_pairs().into_owned().collect();
        }
        if Instant::now() > deadline {
            let source = driver.source().await.unwrap_or_default();
            panic!("never reached the relying party; at {url}:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks a button once the passkey script has shown it (it stays hidden without support).
async fn click_when_shown(driver: &WebDriver, css: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(button) = driver.find(By::Css(css)).await
            && button.is_displayed().await.unwrap_or(false)
        {
            button
                .click()
                .await
                .unwrap_or_else(|e| panic!("click {css}: {e}"));
            return;
        }
        if Instant::now() > deadline {
            let source = driver.source().await.unwrap_or_default();
            panic!("{css} never shown:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn type_into(driver: &WebDriver, id: &str, text: &str) {
    let field = driver.find(By::Id(id)).await.expect(id);
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

async fn screenshot(driver: &WebDriver, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let file = dir.join(format!("{name}.png"));
    driver.screenshot(&file).await.expect("screenshot");
    println!("  screenshot {}", file.display());
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_a_passkey_then_sign_in_with_it() {
    let t0 = Instant::now();
    let lap = |what: &str| println!("[{:>6.1}s] {what}", t0.elapsed().as_secs_f64());
    let tmp = tempfile::tempdir().expect("tempdir");
    let chromedriver = ChromeDriver::start(tmp.path());
    let server = LocalhostServer::start();
    let rp = RelyingParty::start();
    let redirect_uri = rp.redirect_uri();
    server.create_user(USERNAME, PASSWORD);
    let client = server.create_client(&[
        "--name",
        "Notes",
        "--grant-type",
        "authorization_code",
        "--redirect-uri",
        &redirect_uri,
        "--public",
        "--first-party",
    ]);
    wait_for_poll().await;
    let spki = server_spki_hash(&server.data_dir);
    lap("server, user and client ready");

    // 1. Password sign-in (the client needs no second factor), then /account.
    let driver = open_browser(&chromedriver, &tmp.path().join("profile-1"), &spki).await;
    let authenticator = add_authenticator(&driver).await;
    let pkce = Pkce::new();
    driver
        .goto(server.url(&pkce.authorize_path(&client, &redirect_uri)))
        .await
        .expect("goto");
    wait_title(&driver, "Sign in").await;
    type_into(&driver, "username", USERNAME).await;
    type_into(&driver, "password", PASSWORD).await;
    driver
        .find(By::Css("form button[type=submit]"))
        .await
        .expect("submit")
        .click()
        .await
        .expect("click");
    let query = wait_relying_party(&driver, &rp).await;
    let claims = exchange(&server, &query, &pkce, &client, &redirect_uri).await;
    assert_eq!(amr(&claims), ["pwd"], "{claims}");
    lap("signed in with the password");

    // 2. "Register a passkey" on the account page.
    driver.goto(server.url("/account")).await.expect("goto");
    wait_title(&driver, "Your account").await;
    assert!(
        driver.find(By::Css(".passkey-list li")).await.is_err(),
        "no passkey yet"
    );
    click_when_shown(&driver, "button[data-webauthn=register]").await;
    // The script follows {"redirect": "/account"}: the list then shows the new passkey.
    let deadline = Instant::now() + WAIT;
    let listed = loop {
        if let Ok(item) = driver.find(By::Css(".passkey-list li")).await {
            break item.text().await.expect("text");
        }
        if Instant::now() > deadline {
            let alert = driver
                .find(By::Id("account-error"))
                .await
                .ok()
                .map(|e| async move { e.text().await.unwrap_or_default() });
            let alert = match alert {
                Some(f) => f.await,
                None => String::new(),
            };
            panic!(
                "the passkey never appeared; alert {alert:?}:\n{}",
                driver.source().await.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(listed, "Passkey 1");
    screenshot(&driver, "passkey-01-account").await;
    let stored = credentials(&driver, &authenticator).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let credential = stored[0].clone();
    assert_eq!(credential["rpId"], "localhost", "{credential}");
    assert_eq!(
        credential["isResidentCredential"], true,
        "a discoverable credential: {credential}"
    );
    lap("passkey registered");
    driver.quit().await.expect("quit");

    // 3. A fresh browser (new profile: no cookies) with the same credential on its
    //    authenticator: "Sign in with a passkey", no username, no password.
    let driver = open_browser(&chromedriver, &tmp.path().join("profile-2"), &spki).await;
    let authenticator = add_authenticator(&driver).await;
    webauthn_cmd(
        &driver,
        reqwest::Method::POST,
        &format!("authenticator/{authenticator}/credential"),
        Some(json!({
            "credentialId": credential["credentialId"],
            "isResidentCredential": true,
            "rpId": credential["rpId"],
            "privateKey": credential["privateKey"],
            "userHandle": credential["userHandle"],
            "signCount": credential["signCount"],
        })),
    )
    .await;
    let pkce = Pkce::new();
    driver
        .goto(server.url(&pkce.authorize_path(&client, &redirect_uri)))
        .await
        .expect("goto");
    wait_title(&driver, "Sign in").await;
    assert!(
        driver
            .get_all_cookies()
            .await
            .expect("cookies")
            .iter()
            .all(|c| c.name != "__Host-rampart-session"),
        "no session in the fresh browser"
    );
    screenshot(&driver, "passkey-02-login").await;
    click_when_shown(&driver, "button[data-webauthn=login]").await;
    let query = wait_relying_party(&driver, &rp).await;
    let claims = exchange(&server, &query, &pkce, &client, &redirect_uri).await;
    let methods = amr(&claims);
    assert!(methods.contains(&"hwk".to_owned()), "amr {methods:?}");
    assert!(!methods.contains(&"pwd".to_owned()), "amr {methods:?}");
    assert!(claims["acr"].is_string(), "{claims}");
    lap("signed in with the passkey");

    // The signature counter moved on the authenticator; the server stored it (a replay of
    // the old count would now be refused as a possible clone).
    let after = credentials(&driver, &authenticator).await;
    assert!(
        after[0]["signCount"].as_u64() > credential["signCount"].as_u64(),
        "{after:?}"
    );

    // 4. The passkey is now the user's second factor: after the password, the MFA page
    //    offers it (no authenticator app needed), and TOTP enrollment is closed to a
    //    password-only sign-in.
    // Cookies are deleted for the current document's site: the server's.
    driver.goto(server.url("/healthz")).await.expect("goto");
    driver.delete_all_cookies().await.expect("cookies");
    let pkce = Pkce::new();
    driver
        .goto(server.url(&pkce.authorize_path(&client, &redirect_uri)))
        .await
        .expect("goto");
    wait_title(&driver, "Sign in").await;
    type_into(&driver, "username", USERNAME).await;
    type_into(&driver, "password", PASSWORD).await;
    driver
        .find(By::Css("form button[type=submit]"))
        .await
        .expect("submit")
        .click()
        .await
        .expect("click");
    wait_title(&driver, "Two-step verification").await;
    let mfa_url = driver.current_url().await.expect("url");
    assert_eq!(mfa_url.path(), "/login/mfa");
    let request_id = mfa_url
        .query_pairs()
        .find(|(k, _)| k == "request")
        .map(|(_, v)| v.into_owned())
        .expect("request id");
    driver
        .goto(server.url(&format!("/login/totp?request={request_id}")))
        .await
        .expect("goto");
    wait_title(&driver, "Two-step verification").await;
    assert_eq!(
        driver.current_url().await.expect("url").path(),
        "/login/mfa",
        "no TOTP enrollment past an existing passkey"
    );
    screenshot(&driver, "passkey-03-mfa").await;
    click_when_shown(&driver, "button[data-webauthn=login]").await;
    let query = wait_relying_party(&driver, &rp).await;
    let claims = exchange(&server, &query, &pkce, &client, &redirect_uri).await;
    assert_eq!(amr(&claims), ["pwd", "hwk"], "{claims}");
    lap("password and passkey as the second factor");
    driver.quit().await.expect("quit");
    drop(chromedriver);
    lap("done");
}

// ---------------------------------------------------------------------------------------------
// The JSON endpoints over plain HTTP.

/// A `/login` page for a new authorization request: (request id, CSRF cookie, CSRF token).
async fn login_page(server: &LocalhostServer, client: &str, redirect_uri: &str) -> LoginPage {
    let pkce = Pkce::new();
    let resp = server
        .http
        .get(server.url(&pkce.authorize_path(client, redirect_uri)))
        .send()
        .await
        .expect("authorize");
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let request_id = location
        .split("request=")
        .nth(1)
        .expect("request id")
        .to_owned();
    let resp = server
        .http
        .get(server.url(&location))
        .send()
        .await
        .expect("login page");
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-rampart-csrf="))
        .expect("CSRF cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = resp.text().await.expect("html");
    assert!(
        html.contains("Sign in with a passkey"),
        "offered on localhost"
    );
    let token = html
        .split("<meta name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf meta")
        .to_owned();
    LoginPage {
        request_id,
        cookie,
        token,
    }
}

struct LoginPage {
    request_id: String,
    cookie: String,
    token: String,
}

async fn post_json(
    server: &LocalhostServer,
    path: &str,
    cookies: &str,
    csrf: Option<&str>,
    origin: Option<&str>,
    body: Value,
) -> (u16, Value, Vec<String>) {
    let mut req = server
        .http
        .post(server.url(path))
        .header("cookie", cookies)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(token) = csrf {
        req = req.header("x-csrf-token", token);
    }
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    let resp = req.send().await.expect("post");
    let set_cookies = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let (status, json) = status_json(resp).await;
    (status, json, set_cookies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_endpoints_refuse_what_they_must() {
    let server = LocalhostServer::start();
    let redirect_uri = "http://127.0.0.1:9/cb";
    let client = server.create_client(&[
        "--name",
        "Notes",
        "--grant-type",
        "authorization_code",
        "--redirect-uri",
        redirect_uri,
        "--public",
        "--first-party",
    ]);
    wait_for_poll().await;
    let page = login_page(&server, &client, redirect_uri).await;
    let fake_credential = json!({
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {
            "attestationObject": "AAAA",
            "clientDataJSON": "AAAA",
        },
        "extensions": {},
    });

    // register/finish with a wrong, then a missing, CSRF header: refused before anything.
    for csrf in [Some("not-the-token"), None] {
        let (status, body, _) = post_json(
            &server,
            "/webauthn/register/finish",
            &page.cookie,
            csrf,
            None,
            fake_credential.clone(),
        )
        .await;
        assert_eq!(status, 403, "{csrf:?}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    // The right token from another site: refused by the origin check.
    let (status, body, _) = post_json(
        &server,
        "/webauthn/login/start",
        &page.cookie,
        Some(&page.token),
        Some("https://evil.example"),
        json!({ "request": page.request_id }),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // The right token but no ceremony: nothing to finish.
    let (status, body, _) = post_json(
        &server,
        "/webauthn/register/finish",
        &page.cookie,
        Some(&page.token),
        None,
        fake_credential.clone(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // Registration needs a session (or a pending user): none here.
    let (status, body, _) = post_json(
        &server,
        "/webauthn/register/start",
        &page.cookie,
        Some(&page.token),
        None,
        json!({}),
    )
    .await;
    assert_eq!(status, 401, "{body}");

    // A usernameless challenge, bound to a SameSite=Strict cookie.
    let (status, options, set_cookies) = post_json(
        &server,
        "/webauthn/login/start",
        &page.cookie,
        Some(&page.token),
        None,
        json!({ "request": page.request_id, "username": "someone" }),
    )
    .await;
    assert_eq!(status, 200, "{options}");
    let public_key = &options["publicKey"];
    assert_eq!(public_key["rpId"], "localhost", "{options}");
    assert_eq!(public_key["userVerification"], "required", "{options}");
    assert!(
        public_key["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "no credential ids given away for a username: {options}"
    );
    let challenge = public_key["challenge"].as_str().expect("challenge");
    assert!(URL_SAFE_NO_PAD.decode(challenge).expect("base64url").len() >= 16);
    let ceremony = set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-rampart-webauthn="))
        .expect("ceremony cookie");
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(ceremony.contains(attr), "{ceremony}");
    }
    let ceremony = ceremony.split(';').next().unwrap().to_owned();
    let both = format!("{}; {ceremony}", page.cookie);

    // A forged assertion: refused; the ceremony is used up either way.
    let forged = json!({
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {
            "authenticatorData": "AAAA",
            "clientDataJSON": "AAAA",
            "signature": "AAAA",
            "userHandle": URL_SAFE_NO_PAD.encode([7u8; 16]),
        },
        "extensions": {},
    });
    let (status, body, set_cookies) = post_json(
        &server,
        "/webauthn/login/finish",
        &both,
        Some(&page.token),
        None,
        forged.clone(),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].is_string(), "{body}");
    assert!(
        set_cookies
            .iter()
            .any(|c| c.starts_with("__Host-rampart-webauthn=;") && c.contains("Max-Age=0")),
        "ceremony cookie cleared: {set_cookies:?}"
    );
    let (status, body, _) = post_json(
        &server,
        "/webauthn/login/finish",
        &both,
        Some(&page.token),
        None,
        forged,
    )
    .await;
    assert_eq!(status, 400, "single use: {body}");

    // The ceremony belongs to the browser that started it: another browser's CSRF binding
    // with the stolen ceremony cookie gets nothing.
    let (_, _, set_cookies) = post_json(
        &server,
        "/webauthn/login/start",
        &page.cookie,
        Some(&page.token),
        None,
        json!({ "request": page.request_id }),
    )
    .await;
    let ceremony = set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-rampart-webauthn="))
        .expect("ceremony cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let other = login_page(&server, &client, redirect_uri).await;
    let (status, body, _) = post_json(
        &server,
        "/webauthn/login/finish",
        &format!("{}; {ceremony}", other.cookie),
        Some(&other.token),
        None,
        json!({}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn no_passkeys_on_an_ip_address_issuer() {
    // common::Server's issuer is https://127.0.0.1:PORT: browsers refuse WebAuthn there.
    let server = common::Server::start();
    let (client, _) = server.create_client(&[
        "--name",
        "Notes",
        "--grant-type",
        "authorization_code",
        "--redirect-uri",
        "http://127.0.0.1:9/cb",
        "--public",
        "--first-party",
    ]);
    wait_for_poll().await;
    let pkce = Pkce::new();
    let resp = server
        .http
        .get(server.url(&pkce.authorize_path(&client, "http://127.0.0.1:9/cb")))
        .send()
        .await
        .expect("authorize");
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let resp = server
        .http
        .get(server.url(&location))
        .send()
        .await
        .expect("login");
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-rampart-csrf="))
        .expect("CSRF cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = resp.text().await.expect("html");
    assert!(!html.contains("passkey"), "no passkey button");
    let token = html
        .split("<meta name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf meta");
    let resp = server
        .http
        .post(server.url("/webauthn/login/start"))
        .header("cookie", cookie)
        .header("content-type", "application/json")
        .header("x-csrf-token", token)
        .body("{}")
        .send()
        .await
        .expect("post");
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 404, "{body}");
}
