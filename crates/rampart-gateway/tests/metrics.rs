//! Metrics: the Prometheus recorder and the admin router (own process: installs the global
//! recorder).

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use rampart_gateway::{AuditSink, ConnectionInfo, Gateway, GatewayConfig};
use rampart_guard::AuthError;
use tower::ServiceExt;

mod support;
use support::Refuse;

async fn get(router: axum::Router, path: &str) -> (StatusCode, String) {
    let resp = router
        .oneshot(
            Request::builder()
                .uri(path)
                .body(axum::body::Body::empty())
                .expect("req"),
        )
        .await
        .expect("infallible");
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn admin_router_exposes_gateway_metrics() {
    let handle = rampart_gateway::install_recorder().expect("recorder");
    let config: GatewayConfig = toml::from_str(
        r#"
listen = "127.0.0.1:1"
admin_listen = "127.0.0.1:2"
[[routes]]
id = "orders"
match = { path_prefix = "/orders" }
upstreams = ["http://127.0.0.1:9"]
auth = ["jwt"]
audience = "api://orders"
"#,
    )
    .expect("config");
    let gw = Gateway::new(
        &config,
        Arc::new(Refuse(AuthError::Expired)),
        AuditSink::discard(),
    )
    .expect("gateway");
    let req = Request::builder()
        .uri("/orders/1")
        .header("authorization", "Bearer expired")
        .extension(ConnectionInfo::new(
            "127.0.0.1:1".parse().expect("addr"),
            false,
        ))
        .body(Full::new(Bytes::new()))
        .expect("req");
    let resp = gw.service().oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let admin = rampart_gateway::admin_router(handle);
    let (status, text) = get(admin.clone(), "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(
            r#"rampart_gateway_requests_total{route="orders",status="401",decision="deny"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"rampart_gateway_auth_failures_total{reason="expired"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("rampart_gateway_request_duration_seconds"),
        "{text}"
    );
    assert_eq!(get(admin.clone(), "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(admin, "/readyz").await.0, StatusCode::OK);
}
