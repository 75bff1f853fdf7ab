//! Configuration parsing and validation: errors name the key.

mod support;

use support::NO_AUTH;

use rampart_gateway::GatewayConfig;

const BASE: &str = r#"
listen = "127.0.0.1:9443"
admin_listen = "127.0.0.1:9901"
"#;

fn parse(routes: &str) -> GatewayConfig {
    toml::from_str(&format!("{BASE}{routes}")).expect("parses")
}

fn err(routes: &str) -> String {
    parse(routes).validate().expect_err("invalid").to_string()
}

const GOOD_ROUTE: &str = r#"
[[routes]]
id = "orders"
match = { host = "api.local", path_prefix = "/orders", methods = ["GET", "POST"] }
upstreams = ["http://127.0.0.1:7001", "http://127.0.0.1:7002"]
auth = ["jwt", "paseto", "introspection", "api_key", "mtls"]
audience = "api://orders"
require_scopes = ["orders:read"]
rate_limit = { key = "client_id", per_second = 100, burst = 50, block_after = 10, block_for = 30 }
forward_token = false
"#;

#[test]
fn full_example_parses_and_validates() {
    let c: GatewayConfig = toml::from_str(&format!(
        r#"{BASE}
tls_cert = "cert.pem"
tls_key = "key.pem"
trusted_proxies = ["10.0.0.0/8", "192.168.1.1"]
strip_headers = ["X-Tenant"]
[limits]
max_header_bytes = 16384
max_headers = 100
max_body_bytes = 1048576
header_read_timeout = 10
upstream_timeout = 30
max_connections = 10000
[[issuers]]
issuer = "https://127.0.0.1:8443"
jwks_uri = "https://127.0.0.1:8443/jwks"
introspection_uri = "https://127.0.0.1:8443/introspect"
client_id = "gw"
client_secret_env = "GW_SECRET"
ca_file = "rampart-data/tls/ca.pem"
{GOOD_ROUTE}"#
    ))
    .expect("parses");
    c.validate().expect("valid");
    assert_eq!(c.limits.max_body_bytes, 1_048_576);
    assert_eq!(
        c.routes[0].rate_limit.as_ref().map(|r| r.block_for),
        Some(30)
    );
}

#[test]
fn defaults_apply() {
    let c = parse("");
    c.validate().expect("valid");
    assert_eq!(c.limits.upstream_timeout, 30);
    assert!(c.trusted_proxies.is_empty());
}

#[test]
fn unknown_keys_are_rejected() {
    assert!(toml::from_str::<GatewayConfig>(&format!("{BASE}\nlisten_port = 1")).is_err());
    let bad = GOOD_ROUTE.replace("forward_token", "forward_tokens");
    assert!(toml::from_str::<GatewayConfig>(&format!("{BASE}{bad}")).is_err());
}

#[test]
fn errors_name_the_key() {
    let e = err(&GOOD_ROUTE.replace("audience = \"api://orders\"", ""));
    assert_eq!(
        e,
        "gateway.routes[orders].audience: required unless the route is public"
    );
    let e = err(&GOOD_ROUTE.replace("http://127.0.0.1:7002", "ftp://127.0.0.1:7002"));
    assert!(e.starts_with("gateway.routes[orders].upstreams[1]:"), "{e}");
    let e = err(&GOOD_ROUTE.replace("http://127.0.0.1:7002", "http:///x"));
    assert!(e.starts_with("gateway.routes[orders].upstreams[1]:"), "{e}");
    let e = err(&GOOD_ROUTE.replace("per_second = 100", "per_second = 0"));
    assert!(
        e.starts_with("gateway.routes[orders].rate_limit.per_second:"),
        "{e}"
    );
    let e = err(&GOOD_ROUTE.replace("\"mtls\"", "\"saml\""));
    assert!(
        e.starts_with("gateway.routes[orders].auth:") && e.contains("saml"),
        "{e}"
    );
    let e = err(&GOOD_ROUTE.replace("key = \"client_id\"", "key = \"cookie\""));
    assert!(
        e.starts_with("gateway.routes[orders].rate_limit.key:"),
        "{e}"
    );
    let e = err(&format!("{GOOD_ROUTE}{GOOD_ROUTE}"));
    assert_eq!(e, "gateway.routes[orders].id: duplicate route id");
    let e = err(&GOOD_ROUTE.replace("/orders\"", "/orders/../admin\""));
    assert!(
        e.starts_with("gateway.routes[orders].match.path_prefix:"),
        "{e}"
    );
    let e = err(&GOOD_ROUTE.replace("\"GET\"", "\"get\""));
    assert!(
        e.starts_with("gateway.routes[orders].match.methods:"),
        "{e}"
    );
    let e = err(&GOOD_ROUTE.replace("auth = [\"jwt\"", "auth = [\"public\", \"jwt\""));
    assert!(e.starts_with("gateway.routes[orders].auth:"), "{e}");
    let e = err(&GOOD_ROUTE.replace(
        "upstreams = [\"http://127.0.0.1:7001\", \"http://127.0.0.1:7002\"]",
        "upstreams = []",
    ));
    assert!(e.starts_with("gateway.routes[orders].upstreams:"), "{e}");

    let c: GatewayConfig =
        toml::from_str(&format!("{BASE}trusted_proxies = [\"10.0.0.0/33\"]")).expect("parses");
    assert!(
        c.validate()
            .expect_err("invalid")
            .to_string()
            .starts_with("gateway.trusted_proxies[0]:")
    );
    let c: GatewayConfig =
        toml::from_str(&format!("{BASE}[limits]\nmax_body_bytes = 0")).expect("parses");
    assert!(
        c.validate()
            .expect_err("invalid")
            .to_string()
            .starts_with("gateway.limits.max_body_bytes:")
    );
    let c: GatewayConfig = toml::from_str(&format!("{BASE}tls_cert = \"c.pem\"")).expect("parses");
    assert!(
        c.validate()
            .expect_err("invalid")
            .to_string()
            .starts_with("gateway.tls_cert:")
    );
}

fn build(c: &GatewayConfig) -> Result<rampart_gateway::Gateway, rampart_gateway::ConfigError> {
    rampart_gateway::Gateway::new(
        c,
        std::sync::Arc::new(NO_AUTH),
        rampart_gateway::AuditSink::discard(),
    )
}

#[test]
fn https_upstreams_need_upstream_tls_with_readable_files() {
    let route = GOOD_ROUTE.replace("http://127.0.0.1:7002", "https://127.0.0.1:7002");
    let c = parse(&route);
    c.validate().expect("valid config");
    let e = build(&c).expect_err("https without upstream_tls");
    assert!(
        e.to_string()
            .starts_with("gateway.routes[orders].upstreams[1]:")
            && e.to_string().contains("upstream_tls"),
        "{e}"
    );
    // A CA file that does not exist, or holds no certificate: the key is named.
    let c = parse(&format!(
        "[upstream_tls]\nca_file = \"/nonexistent/ca.pem\"\n{route}"
    ));
    let e = build(&c).expect_err("missing CA file");
    assert!(
        e.to_string().starts_with("gateway.upstream_tls.ca_file:"),
        "{e}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").expect("write");
    let c = parse(&format!(
        "[upstream_tls]\nca_file = \"{}\"\n{route}",
        junk.display()
    ));
    let e = build(&c).expect_err("no certificate in the CA file");
    assert!(
        e.to_string().starts_with("gateway.upstream_tls.ca_file:"),
        "{e}"
    );
    // cert_file without key_file.
    let c = parse(&format!(
        "[upstream_tls]\nca_file = \"ca.pem\"\ncert_file = \"c.pem\"\n{route}"
    ));
    let e = c.validate().expect_err("cert without key").to_string();
    assert!(e.starts_with("gateway.upstream_tls.cert_file:"), "{e}");
    // A real CA: builds.
    let ca = rampart_pki::DevCa::generate("upstream test CA").expect("CA");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.cert_pem()).expect("write");
    let c = parse(&format!(
        "[upstream_tls]\nca_file = \"{}\"\n{route}",
        ca_path.display()
    ));
    build(&c).expect("https upstream with a CA");
}

#[test]
fn health_check_idle_timeout_and_redis_keys() {
    let with_hc = |hc: &str| format!("{GOOD_ROUTE}health_check = {{ {hc} }}\n");
    let c = parse(&with_hc(
        r#"path = "/healthz", interval = 5, timeout = 2, unhealthy_after = 2, healthy_after = 2"#,
    ));
    c.validate().expect("valid");
    let hc = c.routes[0].health_check.as_ref().expect("health_check");
    assert_eq!((hc.interval, hc.timeout), (5, 2));
    // Defaults.
    let c = parse(&with_hc(r#"path = "/ready?deep=1""#));
    c.validate().expect("valid");
    let hc = c.routes[0].health_check.as_ref().expect("health_check");
    assert_eq!(
        (
            hc.interval,
            hc.timeout,
            hc.unhealthy_after,
            hc.healthy_after
        ),
        (5, 2, 2, 2)
    );
    // Unknown keys are rejected.
    assert!(
        toml::from_str::<GatewayConfig>(&format!("{BASE}{}", with_hc(r#"path = "/h", every = 3"#)))
            .is_err()
    );
    for (hc, key) in [
        (r#"path = "healthz""#, "path"),
        (r#"path = "/a/../b""#, "path"),
        (r#"path = "/h", interval = 0"#, "interval"),
        (r#"path = "/h", interval = 2, timeout = 3"#, "timeout"),
        (r#"path = "/h", timeout = 0"#, "timeout"),
        (r#"path = "/h", unhealthy_after = 0"#, "unhealthy_after"),
        (r#"path = "/h", healthy_after = 101"#, "healthy_after"),
    ] {
        let e = err(&with_hc(hc));
        assert!(
            e.starts_with(&format!("gateway.routes[orders].health_check.{key}:")),
            "{hc}: {e}"
        );
    }

    let c: GatewayConfig =
        toml::from_str(&format!("{BASE}[limits]\nidle_timeout = 60")).expect("parses");
    c.validate().expect("valid");
    assert_eq!(c.limits.idle_timeout, Some(60));
    assert_eq!(parse("").limits.idle_timeout, None);
    let c: GatewayConfig =
        toml::from_str(&format!("{BASE}[limits]\nidle_timeout = 0")).expect("parses");
    assert!(
        c.validate()
            .expect_err("invalid")
            .to_string()
            .starts_with("gateway.limits.idle_timeout:")
    );

    let redis = |extra: &str| -> Result<(), String> {
        let c: GatewayConfig = toml::from_str(&format!("{BASE}\n{extra}")).expect("parses");
        c.validate().map_err(|e| e.to_string())
    };
    redis(r#"redis_url = "redis://127.0.0.1:6379/2""#).expect("valid");
    redis(r#"redis_url = "rediss://127.0.0.1:6380""#).expect("valid: system roots");
    redis("redis_url = \"rediss://127.0.0.1:6380\"\n[redis_tls]\nca_file = \"ca.pem\"")
        .expect("valid: pinned CA");
    for (bad, key) in [
        (
            "redis_url = \"redis://127.0.0.1:6379\"\n[redis_tls]\nca_file = \"ca.pem\"",
            "gateway.redis_tls:",
        ),
        ("[redis_tls]\nca_file = \"ca.pem\"", "gateway.redis_tls:"),
        (
            "redis_url = \"rediss://h:1\"\n[redis_tls]\nca_file = \"ca.pem\"\nkey_file = \"k.pem\"",
            "gateway.redis_tls.cert_file:",
        ),
    ] {
        let e = redis(bad).expect_err(bad);
        assert!(e.starts_with(key), "{bad}: {e}");
    }
    assert_eq!(parse("").redis_timeout_ms, 100);
    for bad in [
        r#"redis_url = "127.0.0.1:6379""#,
        r#"redis_url = "http://127.0.0.1:6379""#,
    ] {
        let e = redis(bad).expect_err(bad);
        assert!(e.starts_with("gateway.redis_url:"), "{e}");
    }
    let e = redis("redis_timeout_ms = 0").expect_err("zero");
    assert!(e.starts_with("gateway.redis_timeout_ms:"), "{e}");
}

#[test]
fn worker_count_is_bounded() {
    let with = |n: &str| {
        toml::from_str::<GatewayConfig>(&format!("{BASE}workers = {n}\n{GOOD_ROUTE}"))
            .expect("parses")
    };
    assert_eq!(
        with("4").validate().map(|()| with("4").workers),
        Ok(Some(4))
    );
    for bad in ["0", "257"] {
        let e = with(bad).validate().expect_err(bad).to_string();
        assert!(e.contains("gateway.workers"), "{e}");
    }
}

#[test]
fn client_crl_file_needs_client_ca_file() {
    let c = parse(&format!(
        "client_crl_file = \"clients.crl.pem\"\n{GOOD_ROUTE}"
    ));
    let e = c.validate().expect_err("CRL without CA").to_string();
    assert!(e.starts_with("gateway.client_crl_file:"), "{e}");
    let c = parse(&format!(
        "client_ca_file = \"ca.pem\"\nclient_crl_file = \"clients.crl.pem\"\n{GOOD_ROUTE}"
    ));
    c.validate().expect("CRL with CA");
}
