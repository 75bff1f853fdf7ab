//! Introspection, revocation, key rotation, private_key_jwt, the admin API and durability,
//! against the real binary.

mod common;

use std::time::Duration;

use common::{Server, status_json, wait_for_poll};
use serde_json::json;

const AUD: &str = "https://api.example.com/orders";

fn client(server: &Server, format: &str) -> (String, String) {
    let (id, secret) = server.create_client(&[
        "--name",
        "svc",
        "--scope",
        "orders:read",
        "--audience",
        AUD,
        "--token-format",
        format,
    ]);
    (id, secret.expect("secret"))
}

#[tokio::test]
async fn introspection_of_every_format_and_of_garbage() {
    let server = Server::start();
    let (gw, gw_secret) = client(&server, "jwt");
    for format in ["jwt", "paseto-public", "paseto-local"] {
        let (id, secret) = client(&server, format);
        let token = server.access_token(&id, &secret).await;
        let body = server.introspect(&gw, &gw_secret, &token).await;
        assert_eq!(body["active"], true, "{format}: {body}");
        assert_eq!(body["client_id"], id.as_str());
        assert_eq!(body["scope"], "orders:read");
        assert_eq!(body["aud"], AUD);
        assert_eq!(body["iss"], server.issuer.as_str());
        assert_eq!(body["token_type"], "Bearer");
        // Tampering with the last characters makes it inactive.
        let mut tampered = token.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        let body = server.introspect(&gw, &gw_secret, &tampered).await;
        assert_eq!(body, json!({"active": false}), "{format}");
    }
    for garbage in [
        "",
        "garbage",
        "a.b.c",
        "v4.public.",
        "v3.public.AAAA",
        &"x".repeat(9000),
    ] {
        let resp = server
            .http
            .post(server.url("/introspect"))
            .basic_auth(&gw, Some(&gw_secret))
            .form(&[("token", garbage)])
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(resp).await;
        if garbage.is_empty() {
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_request"))
            );
        } else {
            assert_eq!(
                (status, body),
                (200, json!({"active": false})),
                "{garbage:.20}"
            );
        }
    }
}

#[tokio::test]
async fn introspection_requires_client_authentication() {
    let server = Server::start();
    let (id, secret) = client(&server, "jwt");
    let token = server.access_token(&id, &secret).await;
    let resp = server
        .http
        .post(server.url("/introspect"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn expired_tokens_are_inactive() {
    let server = Server::start_with_env(&[("RAMPART_TOKENS_LEEWAY", "0")]);
    // 5 s, not 1: on a loaded CI machine the first introspection once came more than a second
    // after the token was issued, and found it already expired.
    let (id, secret) = server.create_client(&["--name", "short", "--audience", AUD, "--ttl", "5"]);
    let secret = secret.unwrap();
    let token = server.access_token(&id, &secret).await;
    let live = server.introspect(&id, &secret, &token).await;
    assert_eq!(live["active"], true, "{live}");
    // Past `exp` by the server's own clock (the same machine's): then inactive, leeway 0.
    let exp = live["exp"].as_u64().expect("exp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    tokio::time::sleep(Duration::from_millis(
        (exp + 1).saturating_sub(now) * 1000 + 100,
    ))
    .await;
    assert_eq!(
        server.introspect(&id, &secret, &token).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn revocation_is_immediate_and_survives_kill_9() {
    let server = Server::start();
    let (id, secret) = client(&server, "jwt");
    let (other, other_secret) = client(&server, "paseto-local");
    let token = server.access_token(&id, &secret).await;
    let local_token = server.access_token(&other, &other_secret).await;

    // A client may not revoke another client's token.
    let resp = server
        .http
        .post(server.url("/revoke"))
        .basic_auth(&other, Some(&other_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        server.introspect(&id, &secret, &token).await["active"],
        true
    );

    for (cid, csecret, t) in [
        (&id, &secret, &token),
        (&other, &other_secret, &local_token),
    ] {
        let resp = server
            .http
            .post(server.url("/revoke"))
            .basic_auth(cid, Some(csecret))
            .form(&[("token", t.as_str()), ("token_type_hint", "access_token")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            server.introspect(&id, &secret, t).await,
            json!({"active": false})
        );
    }
    // Unknown tokens are answered with 200 too (RFC 7009 §2.2).
    let resp = server
        .http
        .post(server.url("/revoke"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", "not-a-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let server = server.kill9_and_restart();
    assert_eq!(
        server.introspect(&id, &secret, &token).await,
        json!({"active": false})
    );
    assert_eq!(
        server.introspect(&id, &secret, &local_token).await,
        json!({"active": false})
    );
    // An unrevoked token of the same client is still fine after the restart.
    let fresh = server.access_token(&id, &secret).await;
    assert_eq!(
        server.introspect(&id, &secret, &fresh).await["active"],
        true
    );
}

#[tokio::test]
async fn key_rotation_breaks_no_token() {
    let server = Server::start();
    let (id, secret) = client(&server, "jwt");
    let (pid, psecret) = client(&server, "paseto-public");
    let before = server.access_token(&id, &secret).await;
    let pbefore = server.access_token(&pid, &psecret).await;
    let kid_before = common::jwt_part(&before, 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwks_before = server.get_json("/jwks.json").await;
    let out = server.cli(&["key", "rotate", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotations: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rotations.as_array().unwrap().len(), 4);
    // The key that becomes active was already published as `next` before the rotation.
    let activated = rotations[0]["activated"].as_str().unwrap();
    assert!(
        jwks_before.to_string().contains(activated),
        "next key published ahead"
    );
    wait_for_poll().await;

    let after = server.access_token(&id, &secret).await;
    let kid_after = common::jwt_part(&after, 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(kid_before, kid_after, "the server signs with the new key");
    assert_eq!(kid_after, activated);
    for t in [&before, &after, &pbefore] {
        assert_eq!(server.introspect(&id, &secret, t).await["active"], true);
    }
    let jwks = server.get_json("/jwks.json").await.to_string();
    assert!(
        jwks.contains(&kid_before) && jwks.contains(&kid_after),
        "retired key stays published"
    );

    let listed = server.cli(&["key", "list", "--json"]);
    let keys: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let states: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    // One of each per family: jwt, id-token, paseto-public, paseto-local.
    assert_eq!(states.iter().filter(|s| **s == "active").count(), 4);
    assert_eq!(states.iter().filter(|s| **s == "next").count(), 4);
    assert_eq!(states.iter().filter(|s| **s == "retired").count(), 4);
    let families: std::collections::BTreeSet<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["family"].as_str().unwrap())
        .collect();
    assert_eq!(
        families.into_iter().collect::<Vec<_>>(),
        ["id-token", "jwt", "paseto-local", "paseto-public"]
    );
}

#[tokio::test]
async fn es256_and_rs256_keys_by_rotation() {
    let server = Server::start();
    let (id, secret) = client(&server, "jwt");
    for alg in ["ES256", "RS256"] {
        // Two rotations: the first makes the new-alg key `next`, the second activates it.
        for _ in 0..2 {
            let out = server.cli(&["key", "rotate", "--family", "jwt", "--alg", alg]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        wait_for_poll().await;
        let token = server.access_token(&id, &secret).await;
        assert_eq!(common::jwt_part(&token, 0)["alg"], alg);
        assert_eq!(
            server.introspect(&id, &secret, &token).await["active"],
            true
        );
    }
}

#[tokio::test]
async fn client_changes_by_the_cli_apply_to_the_running_server() {
    let server = Server::start();
    let (id, secret) = client(&server, "jwt");
    server.access_token(&id, &secret).await;
    let out = server.cli(&["client", "rotate-secret", &id, "--json"]);
    assert!(out.status.success());
    let rotated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    wait_for_poll().await;
    assert_eq!(
        server.token_basic(&id, &secret, &[]).await.0,
        401,
        "old secret refused"
    );
    server.access_token(&id, &new_secret).await;
    let out = server.cli(&["client", "delete", &id]);
    assert!(out.status.success());
    wait_for_poll().await;
    assert_eq!(
        server.token_basic(&id, &new_secret, &[]).await.0,
        401,
        "deleted client refused"
    );
}

#[tokio::test]
async fn private_key_jwt_with_replay_protection() {
    let server = Server::start();
    let key = rampart_token::SigningKey::generate(rampart_token::KeyKind::Jwt(
        rampart_token::JwtAlg::EdDSA,
    ))
    .unwrap();
    let jwks = json!({ "keys": [key.public_jwk().unwrap()] });
    let jwks_file = server.data_dir.join("client-jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    let (id, secret) = server.create_client(&[
        "--name",
        "pkjwt",
        "--audience",
        AUD,
        "--auth-method",
        "private_key_jwt",
        "--jwks-file",
        jwks_file.to_str().unwrap(),
    ]);
    assert!(secret.is_none(), "private_key_jwt clients have no secret");

    let now = rampart_idp::unix_now();
    let sign = |claims: serde_json::Value| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(key.kid().to_owned());
        let enc = jsonwebtoken::EncodingKey::from_ed_der(&key.secret_bytes());
        jsonwebtoken::encode(&header, &claims, &enc).unwrap()
    };
    let assertion = sign(json!({
        "iss": id, "sub": id, "aud": server.url("/token"), "exp": now + 60, "iat": now, "jti": "assertion-1",
    }));
    let request = |assertion: String| {
        server
            .http
            .post(server.url("/token"))
            .form(&[
                ("grant_type", "client_credentials".to_owned()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ),
                ("client_assertion", assertion),
            ])
            .send()
    };
    let (status, body) = status_json(request(assertion.clone()).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    // The same assertion again is a replay.
    let (status, body) = status_json(request(assertion).await.unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // Wrong audience, expired, too long-lived, and signed by another key are refused.
    let other = rampart_token::SigningKey::generate(rampart_token::KeyKind::Jwt(
        rampart_token::JwtAlg::EdDSA,
    ))
    .unwrap();
    let cases = [
        sign(
            json!({"iss": id, "sub": id, "aud": "https://elsewhere.example", "exp": now + 60, "jti": "a2"}),
        ),
        sign(
            json!({"iss": id, "sub": id, "aud": server.url("/token"), "exp": now - 120, "jti": "a3"}),
        ),
        sign(
            json!({"iss": id, "sub": id, "aud": server.url("/token"), "exp": now + 7200, "jti": "a4"}),
        ),
        {
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
            header.kid = Some(key.kid().to_owned());
            let enc = jsonwebtoken::EncodingKey::from_ed_der(&other.secret_bytes());
            let claims = json!({"iss": id, "sub": id, "aud": server.url("/token"), "exp": now + 60, "jti": "a5"});
            jsonwebtoken::encode(&header, &claims, &enc).unwrap()
        },
    ];
    for assertion in cases {
        let (status, body) = status_json(request(assertion).await.unwrap()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{body}"
        );
    }
}

#[tokio::test]
async fn admin_api_manages_clients_and_keys() {
    let server = Server::start();
    let admin = server.admin_token().await;
    // Without a token: 401 with a Bearer challenge, as problem details.
    let resp = server
        .http
        .get(server.url("/admin/v1/clients"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    // A token of an ordinary client (wrong audience) is refused.
    let (id, secret) = client(&server, "jwt");
    let ordinary = server.access_token(&id, &secret).await;
    let resp = server
        .http
        .get(server.url("/admin/v1/clients"))
        .bearer_auth(&ordinary)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let resp = server
        .http
        .post(server.url("/admin/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({"name": "via-api", "scope": "a b", "audiences": [AUD], "token_format": "paseto-public"}))
        .send()
        .await
        .unwrap();
    let (status, created) = status_json(resp).await;
    assert_eq!(status, 201, "{created}");
    let new_id = created["client_id"].as_str().unwrap().to_owned();
    let new_secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(
        server
            .access_token(&new_id, &new_secret)
            .await
            .starts_with("v4.public.")
    );

    let resp = server
        .http
        .get(server.url("/admin/v1/clients"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let (status, list) = status_json(resp).await;
    assert_eq!(status, 200);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == new_id.as_str())
    );
    assert!(!list.to_string().contains("secret_hash"));

    // Invalid input names the field.
    let resp = server
        .http
        .post(server.url("/admin/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({"name": "x", "audiences": ["not a uri"]}))
        .send()
        .await
        .unwrap();
    let (status, problem) = status_json(resp).await;
    assert_eq!(status, 400);
    assert!(
        problem["detail"].as_str().unwrap().starts_with("audience"),
        "{problem}"
    );

    let resp = server
        .http
        .post(server.url(&format!("/admin/v1/clients/{new_id}/rotate-secret")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let (status, rotated) = status_json(resp).await;
    assert_eq!(status, 200);
    let rotated_secret = rotated["client_secret"].as_str().unwrap();
    assert_eq!(server.token_basic(&new_id, &new_secret, &[]).await.0, 401);
    server.access_token(&new_id, rotated_secret).await;

    let resp = server
        .http
        .post(server.url("/admin/v1/keys/rotate"))
        .bearer_auth(&admin)
        .json(&json!({"family": "jwt"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = server
        .http
        .get(server.url("/admin/v1/keys"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let (_, keys) = status_json(resp).await;
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["state"] == "retired")
    );
    assert!(!keys.to_string().contains("sealed"));
    // The admin token still works after the rotation that retired its key.
    let resp = server
        .http
        .delete(server.url(&format!("/admin/v1/clients/{new_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = server
        .http
        .get(server.url(&format!("/admin/v1/clients/{new_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn acknowledged_client_survives_kill_9() {
    let server = Server::start();
    let admin = server.admin_token().await;
    let resp = server
        .http
        .post(server.url("/admin/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({"name": "durable", "audiences": [AUD]}))
        .send()
        .await
        .unwrap();
    let (status, created) = status_json(resp).await;
    assert_eq!(status, 201);
    // SIGKILL right after the acknowledgement: no clean shutdown, no checkpoint.
    let server = server.kill9_and_restart();
    let id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    server.access_token(id, secret).await;
}

#[tokio::test]
async fn nothing_secret_is_stored_in_plaintext() {
    let server = Server::start();
    let (id, secret) = client(&server, "jwt");
    server.access_token(&id, &secret).await;
    let admin_secret = server.admin_secret.clone().unwrap();
    let mut db = Vec::new();
    for entry in std::fs::read_dir(&server.data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("rampart.db")
        {
            db.extend(std::fs::read(&path).unwrap());
        }
    }
    let haystack = String::from_utf8_lossy(&db);
    assert!(
        haystack.contains(&id),
        "sanity: the client is in the database"
    );
    assert!(
        !haystack.contains(&secret),
        "client secret stored in plaintext"
    );
    assert!(
        !haystack.contains(&admin_secret),
        "admin secret stored in plaintext"
    );
    assert!(
        !haystack.contains("PRIVATE KEY"),
        "a private key stored in plaintext"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(server.data_dir.join("master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    for f in std::fs::read_dir(server.data_dir.join("tls")).unwrap() {
        let path = f.unwrap().path();
        if path.extension().is_some_and(|e| e == "pem") {
            assert!(
                !std::fs::read_to_string(&path)
                    .unwrap()
                    .contains("PRIVATE KEY"),
                "{}",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn discovery_documents_match_the_server() {
    let server = Server::start();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let meta = server.get_json(path).await;
        assert_eq!(meta["issuer"], server.issuer.as_str());
        assert_eq!(meta["token_endpoint"], server.url("/token").as_str());
        assert_eq!(meta["jwks_uri"], server.url("/jwks.json").as_str());
        assert_eq!(meta["paserk_uri"], server.url("/paserk.json").as_str());
        assert_eq!(
            meta["introspection_endpoint"],
            server.url("/introspect").as_str()
        );
        assert_eq!(meta["revocation_endpoint"], server.url("/revoke").as_str());
        assert_eq!(
            meta["grant_types_supported"],
            json!(["authorization_code", "refresh_token", "client_credentials"])
        );
        assert_eq!(meta["response_types_supported"], json!(["code"]));
        assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            meta["pushed_authorization_request_endpoint"],
            server.url("/par").as_str()
        );
        // Every advertised endpoint answers.
        for endpoint in ["jwks_uri", "paserk_uri"] {
            let url = meta[endpoint].as_str().unwrap();
            assert_eq!(server.http.get(url).send().await.unwrap().status(), 200);
        }
        // Access tokens by the JWT family (EdDSA by default); ID tokens by their own family,
        // RS256 by default (OIDC Core §15.1), whose keys are in the same JWKS.
        assert_eq!(
            meta["access_token_signing_alg_values_supported"],
            json!(["EdDSA"])
        );
        if path.contains("openid") {
            assert_eq!(
                meta["id_token_signing_alg_values_supported"],
                json!(["RS256"])
            );
            let jwks = server.get_json("/jwks.json").await;
            let rsa = jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|k| k["alg"] == "RS256" && k["kty"] == "RSA" && k["use"] == "sig")
                .count();
            assert_eq!(rsa, 2, "the active and the next ID-token key: {jwks}");
            assert_eq!(meta["userinfo_endpoint"], server.url("/userinfo").as_str());
            assert_eq!(meta["end_session_endpoint"], server.url("/logout").as_str());
            // Without a token, userinfo asks for one (RFC 6750), it does not 404.
            let url = meta["userinfo_endpoint"].as_str().unwrap();
            let res = server.http.get(url).send().await.unwrap();
            assert_eq!(res.status(), 401);
            assert!(res.headers().contains_key("www-authenticate"));
        }
    }
}

#[tokio::test]
async fn readiness_is_200_with_the_embedded_database() {
    let server = Server::start();
    let resp = server
        .http
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers().get("cache-control").map(|v| v.as_bytes()),
        Some(&b"no-store"[..])
    );
    assert_eq!(
        resp.json::<serde_json::Value>().await.expect("json"),
        json!({"ready": true})
    );
}
