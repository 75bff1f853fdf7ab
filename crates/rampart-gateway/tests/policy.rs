//! Cedar policies at the gateway (`[gateway.policy]`): a fake authenticator maps tokens to
//! principals, a real upstream counts what reaches it, and the audit log names the deciding
//! policies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use rampart_gateway::{AuditRecord, AuditSink, ConnectionInfo, Gateway, GatewayConfig};
use rampart_guard::{Accepted, AuthError, Authenticator, Principal};
use serde_json::Value;
use tokio::sync::mpsc;
use tower::ServiceExt;

mod support;

use support::{TokenTable, echo_server, next_audit, principal};

/// `user-<scopes>` is alice through `web-app`; `client-<id>` a service; `cert` is a client
/// certificate identity.
fn fake_auth() -> Arc<dyn Authenticator> {
    Arc::new(TokenTable(|token: &str, audience: &str, _: Accepted| {
        let principal = |sub: &str, client_id: &str, scopes: &[&str]| Principal {
            roles: if token == "user-admin" {
                vec!["admin".into()]
            } else {
                Vec::new()
            },
            ..principal(sub, Some(client_id), scopes, audience)
        };
        match token {
            "user-reader" => Ok(principal("alice", "web-app", &["orders:read"])),
            "user-admin" => Ok(principal("root", "web-app", &[])),
            "user-none" => Ok(principal("alice", "web-app", &[])),
            "client-billing" => Ok(principal("billing", "billing", &[])),
            "client-overflow" => Ok(principal("overflow", "overflow", &["boom"])),
            _ => Err(AuthError::Invalid),
        }
    }))
}

const POLICIES: &str = r#"
@id("read-orders")
permit(principal, action in Rampart::Action::"read", resource == Rampart::Route::"orders")
when { principal.scopes.contains("orders:read") };

@id("admins-write")
permit(principal in Rampart::Role::"admin", action in Rampart::Action::"write",
       resource == Rampart::Route::"orders");

@id("billing-writes")
permit(principal == Rampart::Client::"billing", action, resource == Rampart::Route::"orders");

@id("deletes-from-inside-only")
forbid(principal, action == Rampart::Action::"DELETE", resource)
unless { context.client_ip.isInRange(ip("10.0.0.0/8")) };

@id("overflow")
forbid(principal == Rampart::Client::"overflow", action, resource)
when { 9223372036854775807 + (if principal.scopes.contains("boom") then 1 else 0) > 0 };
permit(principal == Rampart::Client::"overflow", action, resource);
"#;

fn config(up: SocketAddr, policy_file: &std::path::Path) -> GatewayConfig {
    toml::from_str(&format!(
        r#"
trusted_proxies = ["127.0.0.1"]
[policy]
file = "{file}"
[[routes]]
id = "orders"
match = {{ path_prefix = "/orders" }}
upstreams = ["http://{up}"]
auth = ["jwt"]
audience = "api://orders"
[[routes]]
id = "scoped"
match = {{ path_prefix = "/scoped" }}
upstreams = ["http://{up}"]
auth = ["jwt"]
audience = "api://orders"
require_scopes = ["orders:write"]
[[routes]]
id = "public"
match = {{ path_prefix = "/public" }}
upstreams = ["http://{up}"]
auth = ["public"]
"#,
        file = policy_file.display()
    ))
    .expect("config")
}

struct Env {
    gateway: Gateway,
    hits: Arc<AtomicUsize>,
    audit: mpsc::Receiver<AuditRecord>,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("policies.cedar");
    std::fs::write(&file, POLICIES).expect("write");
    let (up, hits) = echo_server().await;
    let (sink, audit) = AuditSink::channel(64);
    let gateway = Gateway::new(&config(up, &file), fake_auth(), sink).expect("gateway");
    Env {
        gateway,
        hits,
        audit,
        _dir: dir,
    }
}

impl Env {
    /// Sends `method path` with `token` from `peer`; returns the status, the JSON body and the
    /// audit record.
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        peer: &str,
        forwarded_for: Option<&str>,
    ) -> (StatusCode, Value, AuditRecord) {
        let conn = ConnectionInfo::new(peer.parse().expect("peer"), true);
        let mut req = Request::builder().method(method).uri(path).extension(conn);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if let Some(xff) = forwarded_for {
            req = req.header("x-forwarded-for", xff);
        }
        let req = req.body(Full::new(Bytes::new())).expect("request");
        let resp = self
            .gateway
            .service()
            .oneshot(req)
            .await
            .expect("infallible");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let record = next_audit(&mut self.audit).await;
        (
            status,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
            record,
        )
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

const INSIDE: &str = "10.1.2.3:5000";
const OUTSIDE: &str = "203.0.113.9:5000";

#[tokio::test]
async fn a_permitted_request_reaches_the_upstream_and_the_audit_names_the_policy() {
    let mut e = env().await;
    let (status, _, record) = e
        .call("GET", "/orders/1", Some("user-reader"), OUTSIDE, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(e.hits(), 1);
    assert_eq!(record.decision, "allow");
    assert_eq!(record.policy.as_deref(), Some("read-orders"));
}

#[tokio::test]
async fn without_a_permit_the_request_is_refused_before_the_upstream() {
    let mut e = env().await;
    for (method, token) in [
        ("GET", "user-none"),    // the scope the permit needs is missing
        ("POST", "user-reader"), // reading scope, writing method
    ] {
        let (status, body, record) = e.call(method, "/orders/1", Some(token), INSIDE, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {token}");
        assert_eq!(body["error"], "access_denied");
        assert_eq!(record.decision, "deny");
        assert_eq!(record.reason, "policy_no_permit");
        assert_eq!(record.policy, None, "no policy decided");
    }
    assert_eq!(e.hits(), 0);
}

#[tokio::test]
async fn a_users_role_from_the_token_is_a_parent_entity() {
    let mut e = env().await;
    let (status, _, record) = e
        .call("POST", "/orders/1", Some("user-admin"), INSIDE, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(record.policy.as_deref(), Some("admins-write"));
    // The same user without the role: no permit for a write.
    let (status, _, _) = e
        .call("POST", "/orders/1", Some("user-reader"), INSIDE, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(e.hits(), 1);
}

#[tokio::test]
async fn a_forbid_wins_and_spoofed_forwarding_headers_do_not_change_the_address() {
    let mut e = env().await;
    let (status, _, _) = e
        .call("DELETE", "/orders/1", Some("client-billing"), INSIDE, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // From outside, claiming to be inside through X-Forwarded-For (the peer is no trusted
    // proxy): still outside.
    let (status, body, record) = e
        .call(
            "DELETE",
            "/orders/1",
            Some("client-billing"),
            OUTSIDE,
            Some("10.0.0.1"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "access_denied");
    assert_eq!(record.reason, "policy_forbid");
    assert_eq!(record.policy.as_deref(), Some("deletes-from-inside-only"));
    // Through the trusted proxy, the forwarded address counts.
    let (status, _, _) = e
        .call(
            "DELETE",
            "/orders/1",
            Some("client-billing"),
            "127.0.0.1:5000",
            Some("10.0.0.1"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(e.hits(), 2);
}

#[tokio::test]
async fn a_policy_that_fails_to_evaluate_denies() {
    let mut e = env().await;
    let (status, body, record) = e
        .call("GET", "/orders/1", Some("client-overflow"), INSIDE, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "access_denied");
    // Nothing of the evaluation error reaches the caller.
    assert!(!body.to_string().contains("overflow"), "{body}");
    assert_eq!(record.reason, "policy_error");
    assert_eq!(e.hits(), 0);
}

#[tokio::test]
async fn scopes_are_checked_first_and_public_routes_skip_the_policies() {
    let mut e = env().await;
    let (status, body, record) = e
        .call("GET", "/scoped", Some("user-reader"), INSIDE, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(record.policy, None);
    let (status, _, record) = e.call("GET", "/public/x", None, OUTSIDE, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(record.policy, None);
    // A bad token is a 401 before any policy.
    let (status, _, _) = e
        .call("GET", "/orders/1", Some("forged"), INSIDE, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(e.hits(), 1);
}

#[tokio::test]
async fn an_invalid_or_missing_policy_file_rejects_the_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (up, _) = echo_server().await;
    let file = dir.path().join("policies.cedar");
    std::fs::write(
        &file,
        "permit(principal, action, resource)\n  when { principal.scope.contains(\"x\") };",
    )
    .expect("write");
    let (sink, _audit) = AuditSink::channel(1);
    let err = Gateway::new(&config(up, &file), fake_auth(), sink.clone())
        .expect_err("misspelt attribute");
    assert_eq!(err.key, "gateway.policy.file");
    assert!(err.message.contains("line 2"), "{}", err.message);
    assert!(err.message.contains("policies.cedar"), "{}", err.message);

    let missing = dir.path().join("absent.cedar");
    let err = Gateway::new(&config(up, &missing), fake_auth(), sink).expect_err("missing file");
    assert_eq!(err.key, "gateway.policy.file");
    assert!(err.message.contains("absent.cedar"), "{}", err.message);
}
