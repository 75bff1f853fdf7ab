//! Plain HTTP at the gateway, end to end: `http_redirect_listen` only redirects to HTTPS (never
//! routes), `plain_http_listen` serves the routes without TLS on loopback only, and a
//! non-loopback `plain_http_listen` keeps the gateway from starting.

mod gateway_support;

use std::process::Command;

use gateway_support::{BIN, GatewayProcess};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn redirect_listener_only_redirects_and_plain_listener_serves_loopback() {
    let up = gateway_support::ok_upstream().await;
    let (redirect_port, plain_port) = (free_port(), free_port());
    let gw = GatewayProcess::start(&format!(
        r#"
[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
http_redirect_listen = "127.0.0.1:{redirect_port}"
plain_http_listen = "127.0.0.1:{plain_port}"

[[gateway.routes]]
id = "svc"
match = {{ path_prefix = "/svc" }}
upstreams = ["http://{up}"]
auth = ["public"]
"#
    ));
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // The redirect listener: 308 to the same host and path on the gateway's HTTPS port, for a
    // route and for a path no route has alike; the upstream is never asked.
    for path in ["/svc/a?x=1", "/nowhere"] {
        let resp = plain
            .post(format!("http://127.0.0.1:{redirect_port}{path}"))
            .header("host", "api.example:80")
            .body("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 308, "{path}");
        assert_eq!(
            resp.headers()["location"],
            format!("https://api.example:{}{path}", gw.addr.port()).as_str()
        );
        assert!(resp.headers().get("strict-transport-security").is_none());
    }
    let resp = plain
        .get(format!("http://127.0.0.1:{redirect_port}/svc/a"))
        .header("host", "evil.example@api.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    // Following the redirect (to 127.0.0.1) reaches the route over HTTPS.
    let resp = gw
        .http
        .get(format!("http://127.0.0.1:{redirect_port}/svc/b"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.url().scheme(), "https");

    // The loopback plain listener runs the same pipeline: routed, answered, no HSTS (not TLS).
    let resp = plain
        .get(format!("http://127.0.0.1:{plain_port}/svc/c"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().get("strict-transport-security").is_none());
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.text().await.unwrap(), "ok");
    let resp = plain
        .get(format!("http://127.0.0.1:{plain_port}/elsewhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    // Over HTTPS the same route carries HSTS.
    let resp = gw
        .http
        .get(format!("{}/svc/d", gw.url))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("strict-transport-security").is_some());
}

#[test]
fn plain_http_on_a_network_address_is_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        r#"
[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
plain_http_listen = "0.0.0.0:0"
"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["gateway", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("RAMPART_MASTER_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gateway.plain_http_listen") && stderr.contains("loopback"),
        "{stderr}"
    );
}
