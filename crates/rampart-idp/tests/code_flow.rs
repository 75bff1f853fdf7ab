//! The authorization code flow for people, end to end through the router (no network):
//! sign-in pages, CSRF, PKCE, codes, ID tokens, refresh rotation, consent, TOTP, lockout,
//! logout. Each attack of the issue is one test here.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use base64::Engine;
use http_body_util::BodyExt;
use rampart_crypto::{MasterKey, SecretString};
use rampart_idp::clients::{FlowSettings, NewClient};
use rampart_idp::users::NewUser;
use rampart_idp::{AuthServer, IdpConfig, unix_now};
use rampart_store::{ClientAuthMethod, ClientTokenFormat, SqliteStore};
use serde_json::Value;
use tower::ServiceExt;

const ISSUER: &str = "https://idp.test";
const REDIRECT: &str = "https://app.example/cb";
const PASSWORD: &str = "correct horse battery staple 42";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Idp {
    server: Arc<AuthServer>,
    router: Router,
}

async fn idp() -> Idp {
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let master = MasterKey::generate().unwrap();
    let mut config = IdpConfig::new(ISSUER);
    // Fast hashing keeps the tests quick; the policy itself is tested in rampart-authn.
    config.people.argon2_memory_kib = 19_456;
    let server = Arc::new(AuthServer::open(store, &master, config).await.unwrap());
    let router = server.clone().router();
    Idp { server, router }
}

impl Idp {
    async fn user(&self, username: &str) -> String {
        self.server
            .people
            .users
            .create(
                NewUser {
                    username: username.into(),
                    email: format!("{username}@example.com"),
                    name: Some("Ada Lovelace".into()),
                    phone: None,
                    roles: vec!["admin".into()],
                    groups: vec!["eng".into()],
                    password: SecretString::from(PASSWORD.to_owned()),
                },
                unix_now(),
            )
            .await
            .unwrap()
            .record
            .user_id
    }

    async fn client(&self, id: &str, flows: FlowSettings, public: bool) -> Option<String> {
        let created = self
            .server
            .clients
            .create(
                NewClient {
                    client_id: Some(id.into()),
                    name: format!("App {id}"),
                    scopes: vec!["orders:read".into()],
                    audiences: vec![],
                    token_format: ClientTokenFormat::Jwt,
                    auth_method: if public {
                        ClientAuthMethod::None
                    } else {
                        ClientAuthMethod::ClientSecretBasic
                    },
                    jwks: None,
                    ttl_secs: None,
                    flows,
                },
                unix_now(),
            )
            .await
            .unwrap();
        created
            .secret
            .map(|s| rampart_crypto::ExposeSecret::expose_secret(&s).to_owned())
    }

    fn browser(&self) -> Browser {
        Browser {
            router: self.router.clone(),
            cookies: HashMap::new(),
        }
    }

    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let body = serde_urlencoded(form);
        let req = Request::post("/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn userinfo(&self, access_token: &str) -> (StatusCode, Value) {
        let req = Request::get("/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {access_token}"))
            .body(Body::empty())
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

fn serde_urlencoded(fields: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

fn flows(first_party: bool, require_mfa: bool) -> FlowSettings {
    FlowSettings {
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        redirect_uris: vec![REDIRECT.into()],
        first_party,
        require_mfa,
        require_par: false,
    }
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// The value of the hidden input `name`.
    fn hidden(&self, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&needle)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + needle.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

struct Browser {
    router: Router,
    cookies: HashMap<String, String>,
}

impl Browser {
    async fn send(&mut self, req: axum::http::request::Builder, body: Body) -> Page {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut req = req.header(header::ORIGIN, ISSUER);
        if !cookie.is_empty() {
            req = req.header(header::COOKIE, cookie.join("; "));
        }
        let res = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        for set in res.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            assert!(set.starts_with("__Host-"), "{set}");
            assert!(
                set.contains("Secure") && set.contains("HttpOnly") && set.contains("SameSite=Lax")
            );
            let (pair, attrs) = set.split_once(';').unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&mut self, uri: &str) -> Page {
        self.send(Request::get(uri), Body::empty()).await
    }

    async fn post(&mut self, uri: &str, fields: &[(&str, &str)]) -> Page {
        self.send(
            Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
            Body::from(serde_urlencoded(fields)),
        )
        .await
    }

    /// GET /authorize and return where it sends the browser.
    async fn authorize(&mut self, client_id: &str, extra: &str) -> Page {
        self.get(&format!(
            "/authorize?response_type=code&client_id={client_id}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid+profile+email&state=st-1&nonce=n-1&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
        ))
        .await
    }

    /// Submits the login form at `login_url` (a `/login?request=` location).
    async fn login(&mut self, login_url: &str, username: &str, password: &str) -> Page {
        let page = self.get(login_url).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let request = page.hidden("request");
        let csrf = page.hidden("csrf_token");
        self.post(
            "/login",
            &[
                ("request", &request),
                ("csrf_token", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }
}

fn code_from(location: &str) -> String {
    let url = url::Url::parse(location).unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q.get("state").map(String::as_str), Some("st-1"));
    assert_eq!(q.get("iss").map(String::as_str), Some(ISSUER));
    q.get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in {location}"))
}

async fn sign_in_for_code(idp: &Idp, b: &mut Browser, client_id: &str) -> String {
    let start = b.authorize(client_id, "").await;
    assert_eq!(start.status, StatusCode::SEE_OTHER);
    assert!(
        start.location().starts_with("/login?request="),
        "{}",
        start.location()
    );
    let done = b.login(&start.location(), "ada", PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let _ = idp;
    code_from(&done.location())
}

fn decode_jwt_payload(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn code_flow_with_pkce_gives_verified_id_token_userinfo_and_rotating_refresh() {
    let idp = idp().await;
    let user_id = idp.user("ada").await;
    idp.client("spa", flows(true, false), true).await;
    let mut b = idp.browser();
    let code = sign_in_for_code(&idp, &mut b, "spa").await;
    assert!(b.cookies.contains_key("__Host-rampart-session"));

    let (status, tokens) = idp
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    // The ID token verifies with the published keys and carries the OIDC claims.
    let keys = idp.server.keys.snapshot();
    let claims =
        rampart_token::read_id_token_hint(id_token, keys.verification_keys(), ISSUER).unwrap();
    assert_eq!(claims.sub, user_id);
    assert_eq!(claims.aud, "spa");
    assert_eq!(claims.nonce.as_deref(), Some("n-1"));
    assert_eq!(claims.amr, ["pwd"]);
    assert!(claims.exp > unix_now());
    // Signed by the ID-token key family (RS256 by default), not the access-token key.
    let active = keys.active(rampart_idp::keys::KeyFamily::IdToken).unwrap();
    assert_eq!(
        active.kind(),
        rampart_token::KeyKind::Jwt(rampart_token::JwtAlg::RS256)
    );
    assert_eq!(jwt_header(id_token)["alg"], "RS256");
    assert_eq!(jwt_header(id_token)["kid"], active.kid());
    assert_eq!(
        claims.at_hash.unwrap(),
        rampart_token::token_hash(active, access).unwrap()
    );
    assert_eq!(claims.extra["email"], "ada@example.com");
    assert_eq!(claims.extra["roles"], serde_json::json!(["admin"]));
    assert!(decode_jwt_payload(id_token)["auth_time"].as_i64().unwrap() <= unix_now());
    // The access token carries them too (RFC 9068 §7.2.1.1), for the resource servers.
    let access_claims = decode_jwt_payload(access);
    assert_eq!(access_claims["roles"], serde_json::json!(["admin"]));
    assert_eq!(access_claims["groups"], serde_json::json!(["eng"]));

    let (status, info) = idp.userinfo(access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["sub"], user_id.as_str());
    assert_eq!(info["email"], "ada@example.com");
    assert_eq!(info["preferred_username"], "ada");

    // Refresh rotates; the old refresh token then revokes the family.
    let r1 = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, t2) = idp
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", &r1),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{t2}");
    let refreshed = decode_jwt_payload(t2["access_token"].as_str().unwrap());
    assert_eq!(refreshed["roles"], serde_json::json!(["admin"]));
    let r2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    let (status, err) = idp
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", &r1),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");
    let (status, err) = idp
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", &r2),
        ])
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the family must be revoked after reuse"
    );
    assert_eq!(err["error"], "invalid_grant");

    // Single sign-on: the same browser gets a code without the login page.
    let again = b.authorize("spa", "").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    code_from(&again.location());
}

#[tokio::test]
async fn a_reused_code_fails_and_revokes_what_it_issued() {
    let idp = idp().await;
    idp.user("ada").await;
    idp.client("spa", flows(true, false), true).await;
    let mut b = idp.browser();
    let code = sign_in_for_code(&idp, &mut b, "spa").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "spa"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let (status, first) = idp.token(&form).await;
    assert_eq!(status, StatusCode::OK);
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(idp.userinfo(access).await.0, StatusCode::OK);
    let (status, err) = idp.token(&form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");
    assert_eq!(
        idp.userinfo(access).await.0,
        StatusCode::UNAUTHORIZED,
        "first access token revoked"
    );
    let (status, _) = idp
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "first refresh token revoked"
    );
}

#[tokio::test]
async fn pkce_is_required_and_checked() {
    let idp = idp().await;
    idp.user("ada").await;
    idp.client("spa", flows(true, false), true).await;
    let mut b = idp.browser();
    // plain and missing methods are refused back to the client.
    for bad in ["&code_challenge_method=plain", ""] {
        let page = b
            .get(&format!(
                "/authorize?response_type=code&client_id=spa&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid&state=s&code_challenge={CHALLENGE}{bad}"
            ))
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert!(
            page.location().contains("error=invalid_request"),
            "{}",
            page.location()
        );
    }
    let code = sign_in_for_code(&idp, &mut b, "spa").await;
    let (status, err) = idp
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            (
                "code_verifier",
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
            ),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");
}

#[tokio::test]
async fn redirect_uri_mismatch_is_never_redirected() {
    let idp = idp().await;
    idp.client("spa", flows(true, false), true).await;
    let mut b = idp.browser();
    for uri in [
        "https%3A%2F%2Fevil.example%2Fcb",
        "https%3A%2F%2Fapp.example%2Fcb%2F..%2Fx",
        "https%3A%2F%2Fapp.example%2Fcb2",
    ] {
        let page = b
            .get(&format!(
                "/authorize?response_type=code&client_id=spa&redirect_uri={uri}&code_challenge={CHALLENGE}&code_challenge_method=S256"
            ))
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(page.headers.get(header::LOCATION).is_none());
        assert!(page.body.contains("redirect URI"), "{}", page.body);
    }
}

#[tokio::test]
async fn login_without_csrf_token_or_from_another_site_is_refused() {
    let idp = idp().await;
    idp.user("ada").await;
    idp.client("spa", flows(true, false), true).await;
    let mut b = idp.browser();
    let start = b.authorize("spa", "").await;
    let page = b.get(&start.location()).await;
    let request = page.hidden("request");
    let no_csrf = b
        .post(
            "/login",
            &[
                ("request", &request),
                ("username", "ada"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    // Another browser's token does not work with this browser's cookie.
    let mut other = idp.browser();
    let other_page = other.get(&start.location()).await;
    let stolen = other_page.hidden("csrf_token");
    let wrong = b
        .post(
            "/login",
            &[
                ("request", &request),
                ("csrf_token", &stolen),
                ("username", "ada"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(!b.cookies.contains_key("__Host-rampart-session"));
    // The page itself forbids framing and inline script.
    let csp = page
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
}

#[tokio::test]
async fn unknown_user_and_wrong_password_look_the_same_and_brute_force_locks() {
    let idp = idp().await;
    idp.user("ada").await;
    idp.client("spa", flows(true, false), true).await;
    let mut b = idp.browser();
    let start = b.authorize("spa", "").await;
    let unknown = b.login(&start.location(), "nobody", PASSWORD).await;
    let wrong = b
        .login(&start.location(), "ada", "wrong password 123")
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let strip = |p: &Page| {
        p.body
            .replace(&p.hidden("csrf_token"), "")
            .replace("nobody", "ada")
    };
    assert_eq!(strip(&unknown), strip(&wrong), "the answers differ");
    // Keep failing: the account is slowed down, then locked, even for the right password.
    let mut saw_throttle = false;
    for _ in 0..12 {
        let p = b
            .login(&start.location(), "ada", "wrong password 123")
            .await;
        if p.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(p.headers.get(header::RETRY_AFTER).is_some());
            saw_throttle = true;
            break;
        }
    }
    assert!(saw_throttle, "no throttling after repeated failures");
    let right = b.login(&start.location(), "ada", PASSWORD).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
}

/// Two servers on one store (replicas) with the given login throttle sharing; the user
/// "ada" and the client "spa" exist before the second opens (it has no change poll here).
async fn replicas(shared: Option<rampart_idp::config::SharedThrottleConfig>) -> (Idp, Idp) {
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let master = MasterKey::generate().unwrap();
    let open = || async {
        let mut config = IdpConfig::new(ISSUER);
        config.people.shared_throttle = shared.clone();
        let server = Arc::new(
            AuthServer::open(store.clone(), &master, config)
                .await
                .unwrap(),
        );
        let router = server.clone().router();
        Idp { server, router }
    };
    let a = open().await;
    a.user("ada").await;
    a.client("spa", flows(true, false), true).await;
    let b = open().await;
    (a, b)
}

/// Two failures at server A and one at B, then a fourth attempt at A: its status.
async fn fourth_attempt_after_failures_at_two_servers(a: &Idp, b: &Idp) -> StatusCode {
    let mut at_a = a.browser();
    let start_a = at_a.authorize("spa", "").await;
    let mut at_b = b.browser();
    let start_b = at_b.authorize("spa", "").await;
    for at_b_now in [false, false, true] {
        let (browser, start) = if at_b_now {
            (&mut at_b, &start_b)
        } else {
            (&mut at_a, &start_a)
        };
        let p = browser
            .login(&start.location(), "ada", "wrong password 123")
            .await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    }
    at_a.login(&start_a.location(), "ada", "wrong password 123")
        .await
        .status
}

#[tokio::test]
async fn login_failures_are_counted_across_servers_through_redis() {
    let redis = rampart_testkit::RedisServer::start();
    let (a, b) = replicas(Some(rampart_idp::config::SharedThrottleConfig {
        url: redis.url(),
        timeout: std::time::Duration::from_millis(500),
        tls: None,
    }))
    .await;
    assert!(a.server.people.throttle.is_shared());
    // Three failures in all (the free ones): the next attempt within a second waits, at A
    // too, although A saw only two.
    let status = fourth_attempt_after_failures_at_two_servers(&a, &b).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // Without Redis each server counts alone: A saw two, so it checks the password.
    let (a, b) = replicas(None).await;
    let status = fourth_attempt_after_failures_at_two_servers(&a, &b).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn third_party_clients_ask_for_consent_and_deny_reaches_the_client() {
    let idp = idp().await;
    idp.user("ada").await;
    let secret = idp
        .client("partner", flows(false, false), false)
        .await
        .unwrap();
    let mut b = idp.browser();
    let start = b.authorize("partner", "").await;
    let to_consent = b.login(&start.location(), "ada", PASSWORD).await;
    assert!(
        to_consent.location().starts_with("/consent?request="),
        "{}",
        to_consent.location()
    );
    let consent = b.get(&to_consent.location()).await;
    assert!(consent.body.contains("App partner"));
    let request = consent.hidden("request");
    let csrf = consent.hidden("csrf_token");
    let denied = b
        .post(
            "/consent",
            &[
                ("request", &request),
                ("csrf_token", &csrf),
                ("decision", "deny"),
            ],
        )
        .await;
    assert!(
        denied.location().contains("error=access_denied"),
        "{}",
        denied.location()
    );
    // Allow: a code; next time no consent page.
    let start = b.authorize("partner", "").await;
    let consent = b.get(&start.location()).await;
    let allowed = b
        .post(
            "/consent",
            &[
                ("request", &consent.hidden("request")),
                ("csrf_token", &consent.hidden("csrf_token")),
                ("decision", "allow"),
            ],
        )
        .await;
    let code = code_from(&allowed.location());
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("partner:{secret}"));
    let req = Request::post("/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, format!("Basic {basic}"))
        .body(Body::from(serde_urlencoded(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])))
        .unwrap();
    let res = idp.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let again = b.authorize("partner", "").await;
    code_from(&again.location());
    // prompt=none in a fresh browser: login_required back to the client.
    let mut fresh = idp.browser();
    let none = fresh.authorize("partner", "&prompt=none").await;
    assert!(
        none.location().contains("error=login_required"),
        "{}",
        none.location()
    );
}

fn base32_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = alphabet
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .unwrap() as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            out.push((bits >> (n - 8)) as u8);
            n -= 8;
        }
    }
    out
}

#[tokio::test]
async fn totp_enrollment_then_sign_in_with_code_replay_and_recovery() {
    let idp = idp().await;
    idp.user("ada").await;
    idp.client("bank", flows(true, true), true).await;
    let mut b = idp.browser();
    let start = b.authorize("bank", "").await;
    let to_mfa = b.login(&start.location(), "ada", PASSWORD).await;
    assert!(
        to_mfa.location().starts_with("/login/mfa?request="),
        "{}",
        to_mfa.location()
    );
    assert!(
        !b.cookies.contains_key("__Host-rampart-session"),
        "no session before the second factor"
    );
    let to_enroll = b.get(&to_mfa.location()).await;
    assert!(to_enroll.location().starts_with("/login/totp?request="));
    let enroll = b.get(&to_enroll.location()).await;
    assert!(enroll.body.contains("<svg"), "QR code shown");
    let start_code =
        enroll.body.find("<code translate=\"no\">").unwrap() + "<code translate=\"no\">".len();
    let end_code = enroll.body[start_code..].find('<').unwrap() + start_code;
    let secret =
        rampart_authn::TotpSecret::from_bytes(&base32_decode(&enroll.body[start_code..end_code]))
            .unwrap();
    let now = unix_now() as u64;
    let code = rampart_authn::generate_code(&secret, now);
    let codes_page = b
        .post(
            "/login/totp",
            &[
                ("request", &enroll.hidden("request")),
                ("csrf_token", &enroll.hidden("csrf_token")),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(codes_page.status, StatusCode::OK, "{}", codes_page.body);
    let recovery: Vec<String> = codes_page
        .body
        .split("<li><code translate=\"no\">")
        .skip(1)
        .filter_map(|li| {
            let text: String = li.split('<').next()?.trim().to_owned();
            rampart_authn::normalize_recovery_code(&text).map(|_| text)
        })
        .collect();
    assert_eq!(recovery.len(), 10, "{}", codes_page.body);
    let done = b
        .post(
            "/login/continue",
            &[
                ("request", &codes_page.hidden("request")),
                ("csrf_token", &codes_page.hidden("csrf_token")),
            ],
        )
        .await;
    let c = code_from(&done.location());
    let (status, tokens) = idp
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "bank"),
            ("code", &c),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(status, StatusCode::OK);
    let claims = decode_jwt_payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp"]));
    assert_eq!(claims["acr"], "urn:rampart:acr:mfa");

    // A new browser: password, then the code. The enrollment code is a replay now.
    let mut b2 = idp.browser();
    let start = b2.authorize("bank", "").await;
    let to_mfa = b2.login(&start.location(), "ada", PASSWORD).await;
    let mfa = b2.get(&to_mfa.location()).await;
    assert_eq!(mfa.status, StatusCode::OK, "{}", mfa.body);
    let replay = b2
        .post(
            "/login/mfa",
            &[
                ("request", &mfa.hidden("request")),
                ("csrf_token", &mfa.hidden("csrf_token")),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(
        replay.status,
        StatusCode::UNAUTHORIZED,
        "a used TOTP step must be refused"
    );
    let with_recovery = b2
        .post(
            "/login/mfa",
            &[
                ("request", &mfa.hidden("request")),
                ("csrf_token", &mfa.hidden("csrf_token")),
                ("code", &recovery[0]),
            ],
        )
        .await;
    code_from(&with_recovery.location());
    // The same recovery code works once.
    let mut b3 = idp.browser();
    let start = b3.authorize("bank", "").await;
    let to_mfa = b3.login(&start.location(), "ada", PASSWORD).await;
    let mfa = b3.get(&to_mfa.location()).await;
    let again = b3
        .post(
            "/login/mfa",
            &[
                ("request", &mfa.hidden("request")),
                ("csrf_token", &mfa.hidden("csrf_token")),
                ("code", &recovery[0]),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    // The MFA step cannot be finished from another browser holding only the request id.
    let mut thief = idp.browser();
    let stolen = thief.get(&to_mfa.location()).await;
    assert!(
        stolen.location().starts_with("/login?request="),
        "{}",
        stolen.location()
    );
}

#[tokio::test]
async fn pushed_authorization_requests_are_single_use_and_can_be_required() {
    let idp = idp().await;
    idp.user("ada").await;
    let mut settings = flows(true, false);
    settings.require_par = true;
    idp.client("par", settings, true).await;
    let mut b = idp.browser();
    let front = b.authorize("par", "").await;
    assert!(
        front.location().contains("error=invalid_request"),
        "{}",
        front.location()
    );
    let req = Request::post("/par")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(serde_urlencoded(&[
            ("client_id", "par"),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "st-1"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])))
        .unwrap();
    let res = idp.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let request_uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    let enc = form_urlencoded::byte_serialize(request_uri.as_bytes()).collect::<String>();
    let start = b
        .get(&format!("/authorize?client_id=par&request_uri={enc}"))
        .await;
    assert!(
        start.location().starts_with("/login?request="),
        "{}",
        start.location()
    );
    let done = b.login(&start.location(), "ada", PASSWORD).await;
    code_from(&done.location());
    let reuse = b
        .get(&format!("/authorize?client_id=par&request_uri={enc}"))
        .await;
    assert_eq!(
        reuse.status,
        StatusCode::BAD_REQUEST,
        "request_uri is single use"
    );
}

#[tokio::test]
async fn logout_ends_the_session_and_its_refresh_tokens() {
    let idp = idp().await;
    idp.user("ada").await;
    idp.client("spa", flows(true, false), true).await;
    let mut b = idp.browser();
    let code = sign_in_for_code(&idp, &mut b, "spa").await;
    let (_, tokens) = idp
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let confirm = b
        .get(&format!(
            "/logout?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=bye"
        ))
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    let out = b
        .post(
            "/logout",
            &[
                ("csrf_token", &confirm.hidden("csrf_token")),
                ("post_logout_redirect_uri", REDIRECT),
                ("id_token_hint", id_token),
                ("state", "bye"),
            ],
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    assert!(
        out.location()
            .starts_with("https://app.example/cb?state=bye"),
        "{}",
        out.location()
    );
    assert!(!b.cookies.contains_key("__Host-rampart-session"));
    let (status, _) = idp
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "refresh tokens of the session end with it"
    );
    let again = b.authorize("spa", "").await;
    assert!(again.location().starts_with("/login?request="));
}

/// Unknown users and wrong passwords cost the same: both run one Argon2id verification.
/// Interleaved samples, compared by their fastest; a shortcut for unknown users (no hash)
/// would make them 100x faster and fail this by far.
#[tokio::test]
async fn unknown_user_and_wrong_password_take_the_same_time() {
    let idp = idp().await;
    idp.user("ada").await;
    let users = &idp.server.people.users;
    let wrong = SecretString::from("wrong password 123".to_owned());
    let mut unknown_times = Vec::new();
    let mut wrong_times = Vec::new();
    for i in 0..15 {
        let t = std::time::Instant::now();
        assert!(
            users
                .authenticate(&format!("nobody{i}"), &wrong, unix_now())
                .await
                .unwrap()
                .is_none()
        );
        unknown_times.push(t.elapsed());
        let t = std::time::Instant::now();
        assert!(
            users
                .authenticate("ada", &wrong, unix_now())
                .await
                .unwrap()
                .is_none()
        );
        wrong_times.push(t.elapsed());
    }
    unknown_times.sort();
    wrong_times.sort();
    // The fastest samples: other tests running on the same cores only ever add time, so the
    // minimum is the least noisy estimate of the work itself. Without the dummy hash an
    // unknown user would cost a database lookup, about 100x less.
    let (u, w) = (unknown_times[0].as_secs_f64(), wrong_times[0].as_secs_f64());
    let ratio = u / w;
    assert!(
        (0.6..1.67).contains(&ratio),
        "fastest unknown {u:.4}s vs wrong password {w:.4}s; medians {:.4}s vs {:.4}s",
        unknown_times[7].as_secs_f64(),
        wrong_times[7].as_secs_f64()
    );
}

/// Security events reach the configured webhook as JSON, without names or secrets.
#[tokio::test]
async fn security_events_reach_the_webhook() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Value>(16);
    let hook = Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(v).await;
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, hook).await });
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let master = MasterKey::generate().unwrap();
    let mut config = IdpConfig::new(ISSUER);
    config.people.security_webhook = Some(format!("http://{addr}/hook"));
    let server = Arc::new(AuthServer::open(store, &master, config).await.unwrap());
    let idp = Idp {
        router: server.clone().router(),
        server,
    };
    let user_id = idp.user("ada").await;
    idp.client("spa", flows(true, false), true).await;
    let mut b = idp.browser();
    let start = b.authorize("spa", "").await;
    b.login(&start.location(), "ada", "wrong password 123")
        .await;
    b.login(&start.location(), "ada", PASSWORD).await;
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let v = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .expect("webhook event")
            .unwrap();
        let text = v.to_string();
        assert!(
            !text.contains("ada@example.com")
                && !text.contains(PASSWORD)
                && !text.contains("\"ada\""),
            "{text}"
        );
        kinds.push(v["kind"].as_str().unwrap().to_owned());
        if v["kind"] == "login_succeeded" {
            assert_eq!(v["user_id"], user_id.as_str());
            assert_eq!(v["client_id"], "spa");
        }
    }
    assert_eq!(kinds, ["login_failed", "login_succeeded"]);
}

/// The account page lists the user's sessions; revoking one ends it (and only the user's
/// own); an authenticator app can be enrolled there, after which sign-ins ask for it.
#[tokio::test]
async fn account_page_lists_and_revokes_sessions_and_enrolls_totp() {
    let idp = idp().await;
    idp.user("ada").await;
    idp.user("bob").await;
    idp.client("spa", flows(true, false), true).await;
    let mut laptop = idp.browser();
    sign_in_for_code(&idp, &mut laptop, "spa").await;
    let mut phone = idp.browser();
    sign_in_for_code(&idp, &mut phone, "spa").await;
    let mut other = idp.browser();
    let start = other.authorize("spa", "").await;
    other.login(&start.location(), "bob", PASSWORD).await;

    assert_eq!(
        idp.browser().get("/account").await.status,
        StatusCode::UNAUTHORIZED
    );
    let page = laptop.get("/account").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let ids: Vec<String> = page
        .body
        .split("name=\"session_id\" value=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "ada has two sessions: {}", page.body);
    // Bob cannot revoke Ada's sessions.
    let bob_page = other.get("/account").await;
    for id in &ids {
        other
            .post(
                "/account/sessions/revoke",
                &[
                    ("csrf_token", &bob_page.hidden("csrf_token")),
                    ("session_id", id),
                ],
            )
            .await;
    }
    assert_eq!(laptop.get("/account").await.status, StatusCode::OK);
    // Ada revokes every session from the laptop, its own last; the phone is signed out.
    let laptop_cookie = laptop.cookies["__Host-rampart-session"].clone();
    let hash =
        rampart_idp::browser::secret_hash(&idp.server.people.hasher, "session", &laptop_cookie);
    let own = idp
        .server
        .people
        .sessions
        .get_session_by_cookie(&hash)
        .await
        .unwrap()
        .unwrap()
        .session_id;
    let mut ids = ids.clone();
    ids.sort_by_key(|id| *id == own);
    for id in &ids {
        laptop
            .post(
                "/account/sessions/revoke",
                &[
                    ("csrf_token", &page.hidden("csrf_token")),
                    ("session_id", id),
                ],
            )
            .await;
    }
    assert_eq!(phone.get("/account").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        laptop.get("/account").await.status,
        StatusCode::UNAUTHORIZED
    );

    // Enroll TOTP from the account page of a fresh session.
    let mut b = idp.browser();
    sign_in_for_code(&idp, &mut b, "spa").await;
    let enroll = b.get("/account/totp").await;
    assert_eq!(enroll.status, StatusCode::OK, "{}", enroll.body);
    let start_code =
        enroll.body.find("<code translate=\"no\">").unwrap() + "<code translate=\"no\">".len();
    let end_code = enroll.body[start_code..].find('<').unwrap() + start_code;
    let secret =
        rampart_authn::TotpSecret::from_bytes(&base32_decode(&enroll.body[start_code..end_code]))
            .unwrap();
    let code = rampart_authn::generate_code(&secret, unix_now() as u64);
    let codes = b
        .post(
            "/account/totp",
            &[
                ("csrf_token", &enroll.hidden("csrf_token")),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(codes.status, StatusCode::OK, "{}", codes.body);
    assert!(codes.body.contains("recovery codes") || codes.body.contains("Recovery codes"));
    // Now a new browser must give a second factor even for a client that does not require one.
    let mut fresh = idp.browser();
    let start = fresh.authorize("spa", "").await;
    let next = fresh.login(&start.location(), "ada", PASSWORD).await;
    assert!(
        next.location().starts_with("/login/mfa?request="),
        "{}",
        next.location()
    );
}

/// A password hashed with older (weaker) parameters is re-hashed with the current ones at
/// the next successful sign-in.
#[tokio::test]
async fn passwords_are_rehashed_when_the_parameters_change() {
    use rampart_store::UserStore;
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let master = MasterKey::generate().unwrap();
    let old = AuthServer::open(store.clone(), &master, IdpConfig::new(ISSUER))
        .await
        .unwrap();
    let user = old
        .people
        .users
        .create(
            NewUser {
                username: "ada".into(),
                email: "ada@example.com".into(),
                name: None,
                phone: None,
                roles: vec![],
                groups: vec![],
                password: SecretString::from(PASSWORD.to_owned()),
            },
            unix_now(),
        )
        .await
        .unwrap();
    assert!(
        user.record.password_hash.starts_with("$argon2id$"),
        "{}",
        user.record.password_hash
    );
    assert!(user.record.password_hash.contains("m=19456,t=2,p=1"));
    let mut config = IdpConfig::new(ISSUER);
    config.people.argon2_iterations = 3;
    let new = AuthServer::open(store.clone(), &master, config)
        .await
        .unwrap();
    let password = SecretString::from(PASSWORD.to_owned());
    assert!(
        new.people
            .users
            .authenticate("ada", &password, unix_now())
            .await
            .unwrap()
            .is_some()
    );
    let stored = store.get_user(&user.record.user_id).await.unwrap().unwrap();
    assert!(
        stored.password_hash.contains("m=19456,t=3,p=1"),
        "{}",
        stored.password_hash
    );
    // Still the same password.
    assert!(
        new.people
            .users
            .authenticate("ada", &password, unix_now())
            .await
            .unwrap()
            .is_some()
    );
}

/// `prompt=login` and `max_age=0` make a signed-in user authenticate again, even within the
/// same second as the previous sign-in; the sign-in during the request then satisfies them.
#[tokio::test]
async fn prompt_login_and_max_age_zero_force_a_new_sign_in() {
    let idp = idp().await;
    idp.user("ada").await;
    idp.client("spa", flows(true, false), true).await;
    let mut b = idp.browser();
    sign_in_for_code(&idp, &mut b, "spa").await;
    for extra in ["&prompt=login", "&max_age=0"] {
        let again = b.authorize("spa", extra).await;
        assert!(
            again.location().starts_with("/login?request="),
            "{extra}: {}",
            again.location()
        );
        let done = b.login(&again.location(), "ada", PASSWORD).await;
        code_from(&done.location());
    }
    // An OpenID request must name its redirect URI, even with a single one registered.
    let page = b
        .get(&format!(
            "/authorize?response_type=code&client_id=spa&scope=openid&code_challenge={CHALLENGE}&code_challenge_method=S256"
        ))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
}

/// An attacker's failures lock the account for everyone else, but not for a browser in which
/// the owner signed in before (device cookie): the lockout cannot be turned against the owner.
#[tokio::test]
async fn a_known_device_signs_in_while_the_account_is_locked() {
    let idp = idp().await;
    idp.user("ada").await;
    idp.client("spa", flows(true, false), true).await;
    let mut owner = idp.browser();
    sign_in_for_code(&idp, &mut owner, "spa").await;
    assert!(owner.cookies.contains_key("__Host-rampart-device"));
    // Forget the session, keep the device cookie.
    owner.cookies.remove("__Host-rampart-session");
    let mut attacker = idp.browser();
    let start = attacker.authorize("spa", "").await;
    let mut locked = false;
    for _ in 0..15 {
        let p = attacker
            .login(&start.location(), "ada", "guess guess guess")
            .await;
        if p.status == StatusCode::TOO_MANY_REQUESTS {
            locked = true;
            break;
        }
    }
    assert!(locked, "the attacker was never throttled");
    let start = attacker.authorize("spa", "").await;
    let p = attacker.login(&start.location(), "ada", PASSWORD).await;
    assert_eq!(
        p.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the attacker's browser stays locked"
    );
    let start = owner.authorize("spa", "").await;
    let done = owner.login(&start.location(), "ada", PASSWORD).await;
    code_from(&done.location());
}

/// The decoded JOSE header of a compact JWT.
fn jwt_header(token: &str) -> Value {
    let head = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(head)
            .unwrap(),
    )
    .unwrap()
}

/// A session whose sign-in is older than the re-authentication window cannot add a second
/// factor (an authenticator app or a passkey) until the password is entered again; wrong
/// passwords there count towards the account's lockout like sign-in failures.
#[tokio::test]
async fn adding_a_second_factor_needs_a_recent_sign_in_or_the_password_again() {
    let idp = idp().await;
    let user_id = idp.user("ada").await;
    idp.client("spa", flows(true, false), true).await;
    let mut b = idp.browser();
    sign_in_for_code(&idp, &mut b, "spa").await;
    assert_eq!(b.get("/account/totp").await.status, StatusCode::OK);

    // An hour later: the session's last authentication moves back past the window (900 s).
    let sessions = &idp.server.people.sessions;
    let session = sessions.list_sessions(&user_id).await.unwrap().remove(0);
    sessions
        .update_session_auth(
            &session.session_id,
            unix_now() - 3600,
            &session.amr,
            &session.acr,
        )
        .await
        .unwrap();
    let enroll = b.get("/account/totp").await;
    assert_eq!(enroll.status, StatusCode::SEE_OTHER);
    assert_eq!(enroll.location(), "/account/confirm?next=/account/totp");
    let account = b.get("/account").await;
    assert!(
        account
            .body
            .contains("href=\"/account/confirm?next=/account\""),
        "the passkey button leads to the confirmation: {}",
        account.body
    );
    let passkey = b
        .send(
            Request::post("/webauthn/register/start")
                .header(header::CONTENT_TYPE, "application/json")
                .header("x-csrf-token", account.hidden("csrf_token")),
            Body::from("{}"),
        )
        .await;
    assert_eq!(passkey.status, StatusCode::FORBIDDEN, "{}", passkey.body);
    // Posting the enrollment form directly is refused the same way.
    let posted = b
        .post(
            "/account/totp",
            &[
                ("csrf_token", &account.hidden("csrf_token")),
                ("code", "123456"),
            ],
        )
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER);

    // The confirmation: a wrong password is refused; only local pages are continued to.
    let confirm = b.get("/account/confirm?next=https://evil.example/").await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    // (HTML-escaped in the page: `/` is `&#x2f;`.)
    let next = |p: &Page| p.hidden("next").replace("&#x2f;", "/");
    assert_eq!(next(&confirm), "/account");
    let confirm = b.get("/account/confirm?next=/account/totp").await;
    assert_eq!(next(&confirm), "/account/totp");
    let csrf = confirm.hidden("csrf_token");
    let wrong = b
        .post(
            "/account/confirm",
            &[
                ("csrf_token", &csrf),
                ("next", "/account/totp"),
                ("password", "wrong password 123"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(b.get("/account/totp").await.status, StatusCode::SEE_OTHER);
    // Without the CSRF token nothing is checked.
    let forged = b
        .post(
            "/account/confirm",
            &[("next", "/account/totp"), ("password", PASSWORD)],
        )
        .await;
    assert_ne!(forged.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get("/account/totp").await.status, StatusCode::SEE_OTHER);

    let right = b
        .post(
            "/account/confirm",
            &[
                ("csrf_token", &csrf),
                ("next", "/account/totp"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(right.status, StatusCode::SEE_OTHER, "{}", right.body);
    assert_eq!(right.location(), "/account/totp");
    assert_eq!(b.get("/account/totp").await.status, StatusCode::OK);
    let renewed = sessions
        .get_session(&session.session_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        renewed.auth_time >= unix_now() - 5,
        "authentication time renewed"
    );

    // Guessing the password there runs into the same lockout as the sign-in.
    sessions
        .update_session_auth(
            &session.session_id,
            unix_now() - 3600,
            &session.amr,
            &session.acr,
        )
        .await
        .unwrap();
    let mut throttled = false;
    for _ in 0..12 {
        let p = b
            .post(
                "/account/confirm",
                &[
                    ("csrf_token", &csrf),
                    ("next", "/account"),
                    ("password", "wrong password 123"),
                ],
            )
            .await;
        if p.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = true;
            break;
        }
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    }
    assert!(
        throttled,
        "password guessing at /account/confirm is throttled"
    );
}
