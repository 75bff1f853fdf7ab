//! The sign-in pages in a real browser: headless Chromium driven through WebDriver
//! (chromedriver), against the real binary over HTTPS.
//!
//! One scenario, in order: a password sign-in (a wrong password first) for a client that
//! requires a second factor, TOTP enrollment with the setup key read off the page, the
//! recovery codes, the code at the relying party and its exchange for tokens; sign-out
//! through the confirmation page; a second sign-in with a fresh TOTP code; a third-party
//! client's consent page; an error page. Every page is saved as a PNG in
//! `target/screenshots/` and checked for its stylesheet and for Content-Security-Policy
//! violations.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); the test fails,
//! never skips, without them. `RAMPART_CHROMIUM` and `RAMPART_CHROMEDRIVER` override the
//! paths.

mod browser_support;
mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use browser_support::{ChromeDriver, open_browser, server_spki_hash};
use common::{BIN, Server, jwt_part, status_json, wait_for_poll};
use serde_json::Value;
use thirtyfour::prelude::*;

const PASSWORD: &str = "correct horse battery staple 42";
const USERNAME: &str = "ada";
const WAIT: Duration = Duration::from_secs(20);
/// The TOTP time step of enrolled authenticators, in seconds.
const TOTP_PERIOD: u64 = 30;

// ---------------------------------------------------------------------------------------------
// The relying party: a plain-HTTP loopback listener that answers every request with a page
// and records the request targets.

struct RelyingParty {
    port: u16,
    hits: Arc<Mutex<Vec<String>>>,
}

impl RelyingParty {
    fn start() -> RelyingParty {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relying party");
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let seen = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let seen = seen.clone();
                std::thread::spawn(move || serve_rp(stream, &seen));
            }
        });
        RelyingParty { port, hits }
    }

    fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/cb", self.port)
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

fn serve_rp(mut stream: TcpStream, seen: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split(' ').nth(1).unwrap_or_default().to_owned();
    // Drain the headers (GET requests have no body).
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" || header == "\n" => break,
            Ok(_) => {}
        }
    }
    seen.lock().unwrap().push(target);
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
// Set-up through the command line.

/// `rampart user create ... --password-stdin`.
fn create_user(server: &Server, username: &str, password: &str) {
    let mut child = Command::new(BIN)
        .args(["user", "create", "--data-dir"])
        .arg(&server.data_dir)
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

// ---------------------------------------------------------------------------------------------
// Page helpers.

struct Pages {
    driver: WebDriver,
    shots: PathBuf,
    issuer: String,
    taken: Vec<String>,
}

impl Pages {
    /// Waits until the title starts with `title`.
    async fn wait_title(&self, title: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.driver.title().await.unwrap_or_default();
            if now.starts_with(title) {
                return;
            }
            if Instant::now() > deadline {
                let url = self.driver.current_url().await.map(|u| u.to_string());
                let source = self.driver.source().await.unwrap_or_default();
                panic!("waited for a page titled {title:?}; at {url:?}, {now:?}:\n{source}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page shows an element matching `css` with text, and returns the text.
    /// After a form post answered with the same page (same title), `wait_title` returns at
    /// once, possibly before the answer has loaded: the element is what tells them apart.
    async fn wait_text(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(element) = self.driver.find(By::Css(css)).await
                && let Ok(text) = element.text().await
                && !text.is_empty()
            {
                return text;
            }
            if Instant::now() > deadline {
                let source = self.driver.source().await.unwrap_or_default();
                panic!("waited for {css:?} with text:\n{source}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the browser is at the relying party and returns the query of its URL.
    async fn wait_relying_party(&self, rp: &RelyingParty) -> HashMap<String, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.driver.current_url().await.expect("url");
            if url.as_str().starts_with(&rp.redirect_uri()) {
                self.wait_title("Relying party").await;
                return url.query_pairs().into_owned().collect();
            }
            if Instant::now() > deadline {
                let source = self.driver.source().await.unwrap_or_default();
                panic!("never reached the relying party; at {url}:\n{source}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn goto(&self, path: &str) {
        self.driver
            .goto(format!("{}{path}", self.issuer))
            .await
            .expect("goto");
    }

    async fn type_into(&self, id: &str, text: &str) {
        let field = self.driver.find(By::Id(id)).await.expect(id);
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    async fn click(&self, css: &str) {
        self.driver
            .find(By::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn text(&self, css: &str) -> String {
        self.driver
            .find(By::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .expect("text")
    }

    /// Checks the page: the stylesheet is loaded and applied, nothing was refused by the
    /// Content-Security-Policy (the browser log says so), then saves a screenshot as
    /// `NAME.png`.
    async fn check_and_shoot(&mut self, name: &str) {
        let styles = self
            .driver
            .execute(
                r#"
                const sheets = [...document.styleSheets].map(s => {
                    let rules = -1;
                    try { rules = s.cssRules.length; } catch (e) {}
                    return { href: s.href, path: s.href && new URL(s.href).pathname, rules };
                });
                const card = document.querySelector("main.card");
                const cs = card ? getComputedStyle(card) : null;
                return {
                    sheets,
                    card: cs ? { maxWidth: cs.maxWidth, radius: cs.borderTopLeftRadius,
                                 padding: cs.paddingTop, background: cs.backgroundColor } : null,
                    inlineStyles: document.querySelectorAll("[style]").length,
                    inlineScripts: [...document.scripts].filter(s => !s.src).length,
                    width: document.documentElement.scrollWidth,
                    viewport: window.innerWidth,
                };
                "#,
                Vec::new(),
            )
            .await
            .expect("script")
            .json()
            .clone();
        let sheets = styles["sheets"].as_array().expect("sheets");
        assert!(
            sheets.iter().any(|s| {
                s["path"] == "/assets/rampart.css" && s["rules"].as_i64().unwrap_or(0) > 0
            }),
            "{name}: stylesheet not loaded: {styles}"
        );
        let card = &styles["card"];
        assert!(card.is_object(), "{name}: no main.card: {styles}");
        assert_ne!(card["maxWidth"], "none", "{name}: card unstyled: {styles}");
        assert_ne!(card["radius"], "0px", "{name}: card unstyled: {styles}");
        assert_ne!(card["padding"], "0px", "{name}: card unstyled: {styles}");
        assert!(
            styles["width"].as_i64() <= styles["viewport"].as_i64(),
            "{name}: horizontal overflow: {styles}"
        );
        let log = self.driver.browser_log().await.expect("browser log");
        for entry in &log {
            println!("  [{name}] browser log {}: {}", entry.level, entry.message);
        }
        let violations: Vec<&str> = log
            .iter()
            .map(|e| e.message.as_str())
            .filter(|m| {
                m.contains("Content Security Policy")
                    || m.contains("Content-Security-Policy")
                    || m.contains("Refused to")
            })
            .collect();
        assert!(
            violations.is_empty(),
            "{name}: CSP violations: {violations:#?}"
        );
        std::fs::create_dir_all(&self.shots).expect("screenshot dir");
        let file = self.shots.join(format!("{name}.png"));
        // The whole page: grow the window to the document's height for the shot.
        let extra = self
            .driver
            .execute(
                "return document.documentElement.scrollHeight - window.innerHeight;",
                Vec::new(),
            )
            .await
            .expect("script")
            .json()
            .as_i64()
            .unwrap_or(0);
        let rect = self.driver.get_window_rect().await.expect("window rect");
        if extra > 0 {
            self.driver
                .set_window_rect(
                    rect.x,
                    rect.y,
                    rect.width as u32,
                    (rect.height + extra) as u32,
                )
                .await
                .expect("grow window");
        }
        self.driver.screenshot(&file).await.expect("screenshot");
        if extra > 0 {
            self.driver
                .set_window_rect(rect.x, rect.y, rect.width as u32, rect.height as u32)
                .await
                .expect("restore window");
        }
        println!("  screenshot {}", file.display());
        self.taken.push(name.to_owned());
    }
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
        let query: String = form_urlencoded_pairs(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", "openid profile email"),
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &self.challenge),
            ("code_challenge_method", "S256"),
        ]);
        format!("/authorize?{query}")
    }
}

fn form_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse("http://x/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

/// Checks the redirect to the client and exchanges its code; returns the token response.
async fn exchange(
    server: &Server,
    query: &HashMap<String, String>,
    pkce: &Pkce,
    client_id: &str,
    secret: Option<&str>,
    redirect_uri: &str,
) -> Value {
    assert_eq!(query.get("state"), Some(&pkce.state), "{query:?}");
    assert_eq!(query.get("iss"), Some(&server.issuer), "{query:?}");
    let code = query.get("code").unwrap_or_else(|| panic!("{query:?}"));
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let mut req = server.http.post(server.url("/token"));
    match secret {
        Some(secret) => req = req.basic_auth(client_id, Some(secret)),
        None => form.push(("client_id", client_id)),
    }
    let (status, body) = status_json(req.form(&form).send().await.expect("token")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
    let id_token = body["id_token"].as_str().expect("id_token");
    let claims = jwt_part(id_token, 1);
    assert_eq!(claims["iss"], server.issuer.as_str(), "{claims}");
    assert_eq!(claims["aud"], client_id, "{claims}");
    assert_eq!(claims["nonce"], pkce.nonce.as_str(), "{claims}");
    body
}

fn amr(tokens: &Value) -> Vec<String> {
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    claims["amr"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .unwrap_or_else(|| panic!("not base32: {s:?}")) as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            out.push((bits >> (n - 8)) as u8);
            n -= 8;
        }
    }
    out
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_pages_in_a_real_browser() {
    let t0 = Instant::now();
    let lap = |what: &str| println!("[{:>6.1}s] {what}", t0.elapsed().as_secs_f64());
    let tmp = tempfile::tempdir().expect("tempdir");
    // Fails here, before anything else, when the browser is missing.
    let chromedriver = ChromeDriver::start(tmp.path());

    let server = Server::start();
    let rp = RelyingParty::start();
    let redirect_uri = rp.redirect_uri();
    create_user(&server, USERNAME, PASSWORD);
    let (bank, _) = server.create_client(&[
        "--name",
        "Bank",
        "--grant-type",
        "authorization_code",
        "--redirect-uri",
        &redirect_uri,
        "--public",
        "--first-party",
        "--require-mfa",
    ]);
    let (partner, partner_secret) = server.create_client(&[
        "--name",
        "Partner App",
        "--grant-type",
        "authorization_code",
        "--redirect-uri",
        &redirect_uri,
    ]);
    let partner_secret = partner_secret.expect("confidential client has a secret");
    wait_for_poll().await;
    lap("server, user and clients ready");

    let profile = tmp.path().join("profile");
    std::fs::create_dir_all(&profile).unwrap();
    let driver = open_browser(&chromedriver, &profile, &server_spki_hash(&server.data_dir)).await;
    lap("browser session open");
    let mut p = Pages {
        driver,
        shots: Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .expect("workspace root")
            .join("target/screenshots"),
        issuer: server.issuer.clone(),
        taken: Vec::new(),
    };

    // 1. Password (a wrong one first), TOTP enrollment, recovery codes, code, tokens.
    let pkce = Pkce::new();
    p.goto(&pkce.authorize_path(&bank, &redirect_uri)).await;
    p.wait_title("Sign in").await;
    assert!(
        p.driver.current_url().await.unwrap().path() == "/login",
        "HTTPS trusted through the SPKI pin, /authorize sent us to /login"
    );
    assert!(p.text("main").await.contains("Bank"), "client name shown");
    p.check_and_shoot("01-login").await;
    p.type_into("username", USERNAME).await;
    p.type_into("password", "not the password").await;
    p.click("form button[type=submit]").await;
    p.wait_title("Sign in").await;
    let error = p.wait_text("#login-error").await;
    assert!(
        !error.is_empty(),
        "an error is shown after a wrong password"
    );
    println!("  login error: {error:?}");
    p.check_and_shoot("02-login-error").await;
    lap("wrong password refused");

    p.type_into("username", USERNAME).await;
    p.type_into("password", PASSWORD).await;
    p.click("form button[type=submit]").await;
    p.wait_title("Set up an authenticator app").await;
    assert_eq!(p.driver.current_url().await.unwrap().path(), "/login/totp");
    let qr = p.driver.find(By::Css(".qr svg")).await.expect("QR code");
    let qr_rect = qr.rect().await.expect("QR size");
    assert!(
        qr_rect.width >= 120.0 && qr_rect.height >= 120.0,
        "QR code rendered at a scannable size: {qr_rect:?}"
    );
    let shown = p.text(".secret code").await;
    println!("  setup key as shown: {shown:?}");
    assert!(
        shown.split(' ').all(|g| g.len() <= 4),
        "grouped by four: {shown:?}"
    );
    let secret = rampart_authn::TotpSecret::from_bytes(&base32_decode(&shown)).expect("secret");
    p.check_and_shoot("03-totp-enroll").await;
    let enrolled_at = unix_now();
    let code = rampart_authn::generate_code(&secret, enrolled_at);
    p.type_into("code", &code).await;
    p.click("form button[type=submit]").await;
    p.wait_title("Save your recovery codes").await;
    let codes = p
        .driver
        .find_all(By::Css("ol.codes li code"))
        .await
        .expect("codes");
    assert_eq!(codes.len(), 10, "ten recovery codes");
    // Layout note (not a failure): a recovery code broken over two lines is easy to copy
    // wrongly by hand.
    let wrapped = p
        .driver
        .execute(
            "return [...document.querySelectorAll('ol.codes li code')]\
             .filter(c => c.getClientRects().length > 1).length;",
            Vec::new(),
        )
        .await
        .expect("script")
        .json()
        .as_i64()
        .unwrap_or(0);
    if wrapped > 0 {
        println!("  layout note: {wrapped} of 10 recovery codes wrap onto two lines");
    }
    p.check_and_shoot("04-recovery-codes").await;
    p.click("form button[type=submit]").await;
    let query = p.wait_relying_party(&rp).await;
    let tokens = exchange(&server, &query, &pkce, &bank, None, &redirect_uri).await;
    let methods = amr(&tokens);
    assert!(methods.contains(&"otp".to_owned()), "amr {methods:?}");
    assert!(
        rp.hits().iter().any(|h| h.starts_with("/cb?")),
        "the relying party saw the redirect: {:?}",
        rp.hits()
    );
    lap("enrolled and signed in, tokens exchanged");

    // 2. Sign out through the confirmation page.
    p.goto("/logout").await;
    p.wait_title("Sign out").await;
    p.check_and_shoot("05-logout-confirm").await;
    p.click("form button[type=submit]").await;
    p.wait_title("Signed out").await;
    p.check_and_shoot("06-logged-out").await;
    let cookies = p.driver.get_all_cookies().await.expect("cookies");
    assert!(
        cookies.iter().all(|c| c.name != "__Host-rampart-session"),
        "session cookie cleared: {cookies:?}"
    );
    lap("signed out");

    // 3. Password again, then the second-factor page with a fresh code.
    let pkce = Pkce::new();
    p.goto(&pkce.authorize_path(&bank, &redirect_uri)).await;
    p.wait_title("Sign in").await;
    p.type_into("username", USERNAME).await;
    p.type_into("password", PASSWORD).await;
    p.click("form button[type=submit]").await;
    p.wait_title("Two-step verification").await;
    assert_eq!(p.driver.current_url().await.unwrap().path(), "/login/mfa");
    p.check_and_shoot("07-mfa").await;
    p.type_into("code", "000000").await;
    p.click("form button[type=submit]").await;
    p.wait_title("Two-step verification").await;
    let error = p.wait_text("#mfa-error").await;
    assert!(!error.is_empty(), "an error is shown after a wrong code");
    println!("  mfa error: {error:?}");
    p.check_and_shoot("08-mfa-error").await;
    // The enrollment code's time step is used up: wait for the next one.
    let used_step = enrolled_at / TOTP_PERIOD;
    while unix_now() / TOTP_PERIOD <= used_step {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    lap("next TOTP step");
    let code = rampart_authn::generate_code(&secret, unix_now());
    p.type_into("code", &code).await;
    p.click("form button[type=submit]").await;
    let query = p.wait_relying_party(&rp).await;
    let tokens = exchange(&server, &query, &pkce, &bank, None, &redirect_uri).await;
    let methods = amr(&tokens);
    assert!(methods.contains(&"otp".to_owned()), "amr {methods:?}");
    lap("signed in again with a TOTP code");

    // 4. A third-party client: the consent page.
    let pkce = Pkce::new();
    p.goto(&pkce.authorize_path(&partner, &redirect_uri)).await;
    p.wait_title("Allow access").await;
    assert!(p.text("main").await.contains("Partner App"));
    p.check_and_shoot("09-consent").await;
    p.click("button[name=decision][value=allow]").await;
    let query = p.wait_relying_party(&rp).await;
    exchange(
        &server,
        &query,
        &pkce,
        &partner,
        Some(&partner_secret),
        &redirect_uri,
    )
    .await;
    lap("consent given, tokens exchanged");

    // 5. An error page: a redirect URI that is not registered is never redirected to.
    let pkce = Pkce::new();
    p.goto(&pkce.authorize_path(&bank, "http://127.0.0.1:9/elsewhere"))
        .await;
    let deadline = Instant::now() + WAIT;
    while p.driver.find(By::Css(".status-error")).await.is_err() {
        assert!(Instant::now() < deadline, "no error page");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        p.driver
            .current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(&server.issuer),
        "stays on the server"
    );
    println!("  error page: {:?}", p.text("main").await);
    p.check_and_shoot("10-error").await;
    lap("error page");

    println!("screenshots: {}", p.taken.join(", "));
    p.driver.quit().await.expect("quit");
    drop(chromedriver);
    lap("done");
}
