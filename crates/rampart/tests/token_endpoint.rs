//! The token endpoint over HTTPS against the real binary: client credentials with every
//! client authentication method, RFC 6749 error responses, scope and audience rules.

mod common;

use common::{Server, jwt_part, status_json};

const AUD: &str = "https://api.example.com/orders";

fn orders_client(server: &Server, extra: &[&str]) -> (String, String) {
    let mut args = vec![
        "--name",
        "orders-svc",
        "--scope",
        "orders:read orders:write",
        "--audience",
        AUD,
        "--audience",
        "api://billing",
    ];
    args.extend_from_slice(extra);
    let (id, secret) = server.create_client(&args);
    (id, secret.expect("secret"))
}

#[tokio::test]
async fn client_credentials_issues_an_rfc9068_jwt() {
    let server = Server::start();
    let (id, secret) = orders_client(&server, &["--ttl", "300"]);
    let resp = server
        .http
        .post(server.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "orders:read"),
            ("resource", AUD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "orders:read");
    let token = body["access_token"].as_str().unwrap();
    let header = jwt_part(token, 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    assert!(header["kid"].is_string());
    let claims = jwt_part(token, 1);
    assert_eq!(claims["iss"], server.issuer.as_str());
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["aud"], AUD);
    assert_eq!(claims["scope"], "orders:read");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert!(claims["nbf"].is_i64());
    assert!(claims["jti"].as_str().unwrap().len() >= 16);
    // The published JWKS holds the signing key with kid, alg and use.
    let jwks = server.get_json("/jwks.json").await;
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("signing key published");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert!(
        key.get("d").is_none(),
        "private part must never be published"
    );
}

#[tokio::test]
async fn default_scope_and_audience_are_the_clients() {
    let server = Server::start();
    let (id, secret) = orders_client(&server, &[]);
    let (status, body) = server.token_basic(&id, &secret, &[]).await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt_part(body["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["scope"], "orders:read orders:write");
    assert_eq!(claims["aud"], serde_json::json!([AUD, "api://billing"]));
    // `audience` picks one of them too.
    let (status, body) = server
        .token_basic(&id, &secret, &[("audience", "api://billing")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_part(body["access_token"].as_str().unwrap(), 1)["aud"],
        "api://billing"
    );
}

#[tokio::test]
async fn client_secret_post_and_method_pinning() {
    let server = Server::start();
    let (id, secret) = orders_client(&server, &["--auth-method", "client_secret_post"]);
    let resp = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200, "{body}");
    // The same credentials with a method the client did not register are refused.
    let (status, body) = server.token_basic(&id, &secret, &[]).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn bad_client_credentials_get_401_with_www_authenticate() {
    let server = Server::start();
    let (id, _secret) = orders_client(&server, &[]);
    for (who, secret) in [
        (id.as_str(), "wrong-secret"),
        ("no-such-client", "whatever"),
    ] {
        let resp = server
            .http
            .post(server.url("/token"))
            .basic_auth(who, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        let challenge = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.starts_with("Basic"), "{challenge}");
        let (_, body) = status_json(resp).await;
        assert_eq!(body["error"], "invalid_client");
        assert_eq!(body["error_description"], "client authentication failed");
    }
    // No authentication at all.
    let resp = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn scope_and_audience_must_be_the_clients() {
    let server = Server::start();
    let (id, secret) = orders_client(&server, &[]);
    let (status, body) = server
        .token_basic(&id, &secret, &[("scope", "orders:read admin")])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, body) = server
        .token_basic(&id, &secret, &[("resource", "https://evil.example/")])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );
    let (status, body) = server
        .token_basic(&id, &secret, &[("audience", "https://evil.example/")])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );
    let (status, body) = server
        .token_basic(&id, &secret, &[("resource", "relative/path")])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );
}

#[tokio::test]
async fn malformed_requests_get_rfc6749_errors() {
    let server = Server::start();
    let (id, secret) = orders_client(&server, &[]);
    let post = |body: &'static str, content_type: &'static str| {
        server
            .http
            .post(server.url("/token"))
            .basic_auth(&id, Some(&secret))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let form = "application/x-www-form-urlencoded";
    let cases = [
        (
            "grant_type=client_credentials&grant_type=client_credentials",
            form,
            "invalid_request",
        ),
        (
            "grant_type=client_credentials&scope=a&scope=b",
            form,
            "invalid_request",
        ),
        ("scope=orders%3Aread", form, "invalid_request"),
        (
            "grant_type=password&username=a&password=b",
            form,
            "unsupported_grant_type",
        ),
        ("grant_type=implicit", form, "unsupported_grant_type"),
        (
            "{\"grant_type\":\"client_credentials\"}",
            "application/json",
            "invalid_request",
        ),
    ];
    for (body, content_type, expected) in cases {
        let (status, json) = status_json(post(body, content_type).await.unwrap()).await;
        assert_eq!(status, 400, "{body}: {json}");
        assert_eq!(json["error"], expected, "{body}");
    }
    // GET is not allowed on the token endpoint.
    let resp = server.http.get(server.url("/token")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    // Bodies are bounded (16 KiB by default). Small enough to sit in the socket buffer whole,
    // so the client reads the 413 instead of racing the server's close.
    let big = format!(
        "grant_type=client_credentials&scope={}",
        "a".repeat(20 * 1024)
    );
    let resp = server
        .http
        .post(server.url("/token"))
        .basic_auth(&id, Some(&secret))
        .header("content-type", form)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
}

#[tokio::test]
async fn paseto_clients_get_paseto_tokens() {
    let server = Server::start();
    let (id, secret) = orders_client(&server, &["--token-format", "paseto-public"]);
    let token = server.access_token(&id, &secret).await;
    assert!(token.starts_with("v4.public."), "{token}");
    let (id, secret) = orders_client(&server, &["--token-format", "paseto-local"]);
    let token = server.access_token(&id, &secret).await;
    assert!(token.starts_with("v4.local."), "{token}");
    // The v4.public keys are published as PASERK, the v4.local ones never.
    let set = server.get_json("/paserk.json").await;
    let keys = set["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    for k in keys {
        assert!(k["kid"].as_str().unwrap().starts_with("k4.pid."));
        assert!(k["paserk"].as_str().unwrap().starts_with("k4.public."));
    }
    assert!(!set.to_string().contains("k4.local"));
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let server = Server::start();
    let resp = server
        .http
        .get(server.url("/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert!(
        resp.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
}
