//! API keys and mTLS client identities at the gateway, with a fake authenticator (which
//! accepts `rk_good`/`rk_other` as API keys only when asked for introspection alone) and a
//! real echo upstream.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use rampart_gateway::authn::api_key_fingerprint;
use rampart_gateway::{
    AuditRecord, AuditSink, ConnectionInfo, Gateway, GatewayConfig, LocalRateLimiter, RateCheck,
    RateLimiter,
};
use rampart_guard::{Accepted, AuthError, AuthMethod, Authenticator, Principal};
use serde_json::Value;
use tokio::sync::mpsc;
use tower::ServiceExt;

mod support;

use support::{TokenTable, TokenTableNow, echo_server, next_audit, principal};

const API_KEY_ONLY: Accepted = Accepted {
    jwt: false,
    paseto: false,
    introspection: false,
    api_key: true,
};

/// Every `(credential, accepted)` the authenticator was asked about.
type Calls = Arc<Mutex<Vec<(String, Accepted)>>>;

/// How the fake authenticator answers: after waiting (a token not verified before) or at
/// once (a cached one). The gateway takes a different path for each; both must agree.
#[derive(Debug, Clone, Copy)]
enum Answers {
    AfterWaiting,
    AtOnce,
}

/// Accepts `rk_good`/`rk_other` as API keys (by introspection alone), `jwt_good` as alice's
/// JWT, and records every call in `calls`.
fn fake_auth(calls: Calls, answers: Answers) -> Arc<dyn Authenticator> {
    let table = move |token: &str, audience: &str, accepted: Accepted| {
        calls
            .lock()
            .expect("lock")
            .push((token.to_owned(), accepted));
        let principal = |sub: &str, method| Principal {
            method,
            ..principal(
                sub,
                Some(&format!("{sub}-client")),
                &["orders:read"],
                audience,
            )
        };
        match token {
            "rk_good" | "rk_other" if accepted == API_KEY_ONLY => {
                Ok(principal(&token[3..], AuthMethod::Introspection))
            }
            "jwt_good" if accepted.jwt => Ok(principal("alice", AuthMethod::Jwt)),
            "rk_down" => Err(AuthError::Unavailable),
            "jwt_good" | "rk_good" | "rk_other" => Err(AuthError::NotAccepted),
            _ => Err(AuthError::Inactive),
        }
    };
    match answers {
        Answers::AfterWaiting => Arc::new(TokenTable(table)),
        Answers::AtOnce => Arc::new(TokenTableNow(table)),
    }
}

/// Records the rate-limit keys it sees, delegating to a real limiter.
struct RecordingLimiter {
    inner: LocalRateLimiter,
    keys: Mutex<Vec<String>>,
}

impl RateLimiter for RecordingLimiter {
    fn check(&self, route: &Arc<str>, key: String) -> RateCheck {
        self.keys.lock().expect("lock").push(key.clone());
        self.inner.check(route, key)
    }
}

struct Env {
    gateway: Gateway,
    calls: Calls,
    hits: Arc<AtomicUsize>,
    limiter: Arc<RecordingLimiter>,
    audit: mpsc::Receiver<AuditRecord>,
}

fn config(up: SocketAddr, extra: &str) -> GatewayConfig {
    toml::from_str(&format!(
        r#"
listen = "127.0.0.1:1"
admin_listen = "127.0.0.1:2"
{extra}
[[routes]]
id = "keys"
match = {{ path_prefix = "/keys" }}
upstreams = ["http://{up}"]
auth = ["api_key"]
audience = "api://orders"
require_scopes = ["orders:read"]
[[routes]]
id = "keys-limited"
match = {{ path_prefix = "/keys-limited" }}
upstreams = ["http://{up}"]
auth = ["jwt", "api_key"]
audience = "api://orders"
rate_limit = {{ key = "api_key", per_second = 0.01, burst = 1 }}
[[routes]]
id = "mixed"
match = {{ path_prefix = "/mixed" }}
upstreams = ["http://{up}"]
auth = ["jwt", "api_key", "mtls"]
audience = "api://orders"
[[routes]]
id = "jwt"
match = {{ path_prefix = "/jwt" }}
upstreams = ["http://{up}"]
auth = ["jwt"]
audience = "api://orders"
[[routes]]
id = "mtls"
match = {{ path_prefix = "/mtls" }}
upstreams = ["http://{up}"]
auth = ["mtls"]
audience = "api://workers"
rate_limit = {{ key = "client_id", per_second = 100, burst = 100 }}
[[routes]]
id = "mtls-scoped"
match = {{ path_prefix = "/mtls-scoped" }}
upstreams = ["http://{up}"]
auth = ["mtls"]
audience = "api://workers"
require_scopes = ["orders:read"]
[[routes]]
id = "public"
match = {{ path_prefix = "/public" }}
upstreams = ["http://{up}"]
auth = ["public"]
"#
    ))
    .expect("config")
}

async fn env_with(extra: &str) -> Env {
    env_answering(extra, Answers::AfterWaiting).await
}

async fn env_answering(extra: &str, answers: Answers) -> Env {
    let (up, hits) = echo_server().await;
    let config = config(up, extra);
    let limiter = Arc::new(RecordingLimiter {
        inner: LocalRateLimiter::new(
            config
                .routes
                .iter()
                .filter_map(|r| r.rate_limit.as_ref().map(|rl| (r.id.as_str(), rl))),
        ),
        keys: Mutex::new(Vec::new()),
    });
    let calls = Calls::default();
    let (sink, audit) = AuditSink::channel(1024);
    let gateway = Gateway::with_rate_limiter(
        &config,
        fake_auth(Arc::clone(&calls), answers),
        sink,
        limiter.clone(),
    )
    .expect("gateway");
    Env {
        gateway,
        calls,
        hits,
        limiter,
        audit,
    }
}

async fn env() -> Env {
    env_with("").await
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Value,
}

impl Reply {
    /// A header the upstream received (single value), if any.
    fn upstream(&self, name: &str) -> Option<String> {
        self.body["headers"][name][0].as_str().map(str::to_owned)
    }
}

impl Env {
    async fn call(&self, path: &str, headers: &[(&str, &str)], cert: Option<&str>) -> Reply {
        let mut conn = ConnectionInfo::new("127.0.0.1:4000".parse().expect("addr"), true);
        if let Some(id) = cert {
            conn = conn.with_client_cert(id);
        }
        let mut req = Request::builder().uri(path).extension(conn);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::new())).expect("req");
        let resp = self
            .gateway
            .service()
            .oneshot(req)
            .await
            .expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        }
    }

    fn calls(&self) -> Vec<(String, Accepted)> {
        std::mem::take(&mut *self.calls.lock().expect("lock"))
    }

    async fn audit_records(&mut self, n: usize) -> Vec<AuditRecord> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(next_audit(&mut self.audit).await);
        }
        out
    }
}

const KEY: (&str, &str) = ("x-api-key", "rk_good");
const BEARER: (&str, &str) = ("authorization", "Bearer jwt_good");

#[tokio::test]
async fn api_key_authenticates_by_introspection_only() {
    for answers in [Answers::AfterWaiting, Answers::AtOnce] {
        let mut e = env_answering("", answers).await;
        let r = e
            .call("/keys/1", &[KEY, ("x-forwarded-user", "mallory")], None)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.upstream("x-rampart-auth").as_deref(), Some("api_key"));
        assert_eq!(r.upstream("x-rampart-subject").as_deref(), Some("good"));
        assert_eq!(
            r.upstream("x-rampart-client-id").as_deref(),
            Some("good-client")
        );
        assert_eq!(
            r.upstream("x-rampart-scopes").as_deref(),
            Some("orders:read")
        );
        // The key is a credential: never forwarded.
        assert_eq!(r.upstream("x-api-key"), None);
        assert_eq!(r.upstream("x-forwarded-user"), None);
        assert_eq!(e.calls(), vec![("rk_good".to_owned(), API_KEY_ONLY)]);

        // Audit: the principal, never the key.
        let rec = &e.audit_records(1).await[0];
        assert_eq!(rec.subject(), Some("good"));
        assert_eq!(rec.decision, "allow");
        let json = serde_json::to_string(rec).expect("json");
        assert!(!json.contains("rk_good"), "{json}");
    }
}

#[tokio::test]
async fn bad_api_keys_are_denied() {
    for answers in [Answers::AfterWaiting, Answers::AtOnce] {
        let mut e = env_answering("", answers).await;
        let long = format!("rk_{}", "a".repeat(300));
        for (headers, status) in [
            (vec![], StatusCode::UNAUTHORIZED),
            (vec![("x-api-key", "rk_revoked")], StatusCode::UNAUTHORIZED),
            (
                vec![("x-api-key", "rk_down")],
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                vec![("x-api-key", "rk_good"), ("x-api-key", "rk_good")],
                StatusCode::UNAUTHORIZED,
            ),
            (vec![("x-api-key", long.as_str())], StatusCode::UNAUTHORIZED),
            (vec![("x-api-key", "rk good")], StatusCode::UNAUTHORIZED),
            (vec![("x-api-key", "")], StatusCode::UNAUTHORIZED),
            // A bearer token is not an API key on a route accepting only keys.
            (
                vec![("authorization", "Bearer rk_good")],
                StatusCode::UNAUTHORIZED,
            ),
        ] {
            let r = e.call("/keys/1", &headers, None).await;
            assert_eq!(r.status, status, "{headers:?}");
            if status == StatusCode::UNAUTHORIZED {
                assert!(r.headers.contains_key("www-authenticate"), "{headers:?}");
            }
        }
        // Only the well-formed keys reached the authenticator.
        let asked: Vec<String> = e.calls().into_iter().map(|(t, _)| t).collect();
        assert_eq!(asked, ["rk_revoked", "rk_down"]);
        assert_eq!(e.hits.load(Ordering::SeqCst), 0, "nothing forwarded");
        for rec in e.audit_records(8).await {
            let json = serde_json::to_string(&rec).expect("json");
            assert!(!json.contains("rk_"), "{json}");
            assert_eq!(rec.decision, "deny");
        }
    }
}

#[tokio::test]
async fn api_key_is_ignored_and_stripped_where_not_accepted() {
    let e = env().await;
    // A jwt-only route: the key is not a credential there...
    let r = e.call("/jwt/1", &[KEY], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(e.calls().is_empty());
    // ...and is removed even when the request is allowed.
    let r = e.call("/jwt/1", &[KEY, BEARER], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.upstream("x-rampart-auth").as_deref(), Some("jwt"));
    assert_eq!(r.upstream("x-api-key"), None);
    let r = e.call("/public/1", &[KEY], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.upstream("x-api-key"), None);
}

#[tokio::test]
async fn bearer_token_wins_over_api_key_when_both_are_accepted() {
    for answers in [Answers::AfterWaiting, Answers::AtOnce] {
        let e = env_answering("", answers).await;
        let r = e.call("/mixed/1", &[KEY, BEARER], None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.upstream("x-rampart-auth").as_deref(), Some("jwt"));
        assert_eq!(e.calls().len(), 1);
        // A bad bearer token is not rescued by a good key (no fallback to another credential).
        let r = e
            .call("/mixed/1", &[KEY, ("authorization", "Bearer nope")], None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        // Nor is a malformed Authorization header.
        let r = e
            .call("/mixed/1", &[KEY, ("authorization", "Basic YTpi")], None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        // The key alone, or with a client certificate: the key.
        let r = e.call("/mixed/1", &[KEY], Some("spiffe://demo/w")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.upstream("x-rampart-auth").as_deref(), Some("api_key"));
        // On an api_key route, a bearer token alongside the key is ignored.
        let r = e.call("/keys/1", &[KEY, BEARER], None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.upstream("x-rampart-auth").as_deref(), Some("api_key"));
    }
}

#[tokio::test]
async fn api_key_rate_limit_uses_a_fingerprint() {
    for answers in [Answers::AfterWaiting, Answers::AtOnce] {
        let e = env_answering("", answers).await;
        let r = e.call("/keys-limited/1", &[KEY], None).await;
        assert_eq!(r.status, StatusCode::OK);
        let r = e.call("/keys-limited/1", &[KEY], None).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        // Another key has its own bucket.
        let r = e
            .call("/keys-limited/1", &[("x-api-key", "rk_other")], None)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        // A token on the same route is keyed by its client.
        let r = e.call("/keys-limited/1", &[BEARER], None).await;
        assert_eq!(r.status, StatusCode::OK);
        let keys = e.limiter.keys.lock().expect("lock").clone();
        let good = format!("key:{}", api_key_fingerprint("rk_good"));
        let other = format!("key:{}", api_key_fingerprint("rk_other"));
        assert_eq!(
            keys,
            [good.clone(), good, other, "client:alice-client".into()]
        );
        assert!(keys.iter().all(|k| !k.contains("rk_")));
    }
}

#[tokio::test]
async fn custom_api_key_header() {
    let e = env_with(r#"api_key_header = "X-Service-Key""#).await;
    let r = e.call("/keys/1", &[KEY], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = e
        .call("/keys/1", &[("x-service-key", "rk_good")], None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.upstream("x-service-key"), None);
}

#[tokio::test]
async fn mtls_identity_authenticates() {
    let mut e = env().await;
    let id = "spiffe://demo/orders-worker";
    let r = e
        .call("/mtls/1", &[("x-rampart-subject", "mallory")], Some(id))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.upstream("x-rampart-subject").as_deref(), Some(id));
    assert_eq!(r.upstream("x-rampart-client-id").as_deref(), Some(id));
    assert_eq!(r.upstream("x-rampart-auth").as_deref(), Some("mtls"));
    assert_eq!(r.upstream("x-rampart-issuer").as_deref(), Some("mtls"));
    assert_eq!(r.upstream("x-rampart-scopes").as_deref(), Some(""));
    assert!(e.calls().is_empty(), "no authenticator round trip");
    let rec = &e.audit_records(1).await[0];
    assert_eq!(rec.subject(), Some(id));
    assert_eq!(rec.client_id(), Some(id));

    // Without a certificate: 401; tokens and keys are not accepted there.
    for headers in [vec![], vec![BEARER], vec![KEY]] {
        let r = e.call("/mtls/1", &headers, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{headers:?}");
    }
    assert!(e.calls().is_empty());
    // A certificate means nothing on a route without mtls.
    let r = e.call("/jwt/1", &[], Some(id)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Certificates carry no scopes.
    let r = e.call("/mtls-scoped/1", &[], Some(id)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(e.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn mtls_falls_through_to_other_kinds() {
    let e = env().await;
    let id = "worker.local";
    // No certificate: the token.
    let r = e.call("/mixed/1", &[BEARER], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.upstream("x-rampart-auth").as_deref(), Some("jwt"));
    // A certificate and no other credential: the certificate.
    let r = e.call("/mixed/1", &[], Some(id)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.upstream("x-rampart-auth").as_deref(), Some("mtls"));
    assert_eq!(r.upstream("x-rampart-subject").as_deref(), Some(id));
    // A certificate and a bad token: the token decides (no fallback).
    let r = e
        .call("/mixed/1", &[("authorization", "Bearer nope")], Some(id))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Nothing at all.
    let r = e.call("/mixed/1", &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

fn validate(extra: &str, route: &str) -> Result<(), String> {
    let c: GatewayConfig = toml::from_str(&format!(
        r#"
listen = "127.0.0.1:1"
admin_listen = "127.0.0.1:2"
{extra}
[[routes]]
id = "r"
match = {{ path_prefix = "/" }}
upstreams = ["http://127.0.0.1:9"]
audience = "api://x"
{route}
"#
    ))
    .map_err(|e| e.to_string())?;
    c.validate().map_err(|e| e.to_string())
}

#[test]
fn config_keys() {
    let c: GatewayConfig = toml::from_str(
        r#"
listen = "127.0.0.1:1"
admin_listen = "127.0.0.1:2"
"#,
    )
    .expect("config");
    assert_eq!(c.api_key_header, "X-API-Key");
    assert_eq!(c.client_ca_file, None);
    validate(r#"client_ca_file = "ca.pem""#, r#"auth = ["mtls"]"#).expect("valid");
    validate(r#"api_key_header = "X-Key""#, r#"auth = ["api_key"]"#).expect("valid");
    for (extra, route, key) in [
        (
            r#"api_key_header = "bad header""#,
            r#"auth = ["api_key"]"#,
            "gateway.api_key_header",
        ),
        (
            r#"api_key_header = """#,
            r#"auth = ["api_key"]"#,
            "gateway.api_key_header",
        ),
        (
            r#"api_key_header = "Authorization""#,
            r#"auth = ["api_key"]"#,
            "gateway.api_key_header",
        ),
        (
            r#"api_key_header = "X-Rampart-Key""#,
            r#"auth = ["api_key"]"#,
            "gateway.api_key_header",
        ),
        (
            r#"client_ca_file = """#,
            r#"auth = ["mtls"]"#,
            "gateway.client_ca_file",
        ),
    ] {
        let e = validate(extra, route).expect_err(route);
        assert!(e.starts_with(key), "{e}");
    }
    // Accepted, but such a route denies every request (certificates carry no scopes).
    validate("", "auth = [\"mtls\"]\nrequire_scopes = [\"a\"]").expect("valid");
    validate(
        "",
        "auth = [\"jwt\"]\nrate_limit = { key = \"api_key\", per_second = 1, burst = 1 }",
    )
    .expect("valid");
}
