//! API keys against the real binary: created with the CLI while the server runs, verified
//! through introspection, revoked, expired, managed through the admin API, and never stored
//! in plaintext.

mod common;

use std::time::{Duration, Instant};

use common::{Server, status_json};
use serde_json::{Value, json};

const AUD: &str = "https://api.example.com/orders";
const AUD2: &str = "https://api.example.com/invoices";

/// A registered client that introspects (as a gateway would).
fn introspector(server: &Server) -> (String, String) {
    let (id, secret) = server.create_client(&["--name", "gateway", "--audience", AUD]);
    (id, secret.expect("secret"))
}

/// `rampart api-key create ... --json`; returns (key_id, api_key).
fn create_key(server: &Server, extra: &[&str]) -> (String, String) {
    let mut args = vec![
        "api-key",
        "create",
        "--json",
        "--name",
        "billing batch",
        "--owner",
        "svc-billing",
        "--scope",
        "orders:read orders:write",
        "--audience",
        AUD,
    ];
    args.extend_from_slice(extra);
    let out = server.cli(&args);
    assert!(
        out.status.success(),
        "api-key create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json output");
    let key_id = v["key_id"].as_str().expect("key_id").to_owned();
    let api_key = v["api_key"].as_str().expect("api_key").to_owned();
    (key_id, api_key)
}

fn one_char_changed(key: &str) -> String {
    let mut wrong = key.to_owned();
    let last = wrong.pop().expect("non-empty");
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    wrong
}

/// Polls introspection until the key is inactive; returns how long it took.
async fn wait_inactive(server: &Server, id: &str, secret: &str, key: &str) -> Duration {
    let start = Instant::now();
    loop {
        let body = server.introspect(id, secret, key).await;
        if body == json!({"active": false}) {
            return start.elapsed();
        }
        assert_eq!(body["active"], true, "{body}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "key still active after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn cli_created_key_is_active_wrong_key_is_not_and_revocation_is_seen_quickly() {
    let server = Server::start();
    let (gw, gw_secret) = introspector(&server);
    // Created by another process while the server runs.
    let (key_id, key) = create_key(&server, &["--audience", AUD2]);
    assert!(key.starts_with("rk_"), "{key}");
    assert_eq!(key.len(), 3 + 43, "256-bit key");
    assert!(!key.contains(&key_id));

    let before = unix_now();
    let body = server.introspect(&gw, &gw_secret, &key).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "api_key");
    assert_eq!(body["sub"], "svc-billing");
    assert_eq!(body["client_id"], "svc-billing");
    assert_eq!(body["scope"], "orders:read orders:write");
    assert_eq!(body["aud"], json!([AUD, AUD2]));
    assert_eq!(body["iss"], server.issuer.as_str());
    assert_eq!(body["jti"], key_id.as_str());
    // No expiry: `exp` is a short cache horizon, not the key's end.
    let exp = body["exp"].as_i64().expect("exp");
    assert!(exp >= before + 290 && exp <= unix_now() + 310, "exp {exp}");
    assert!(body["iat"].as_i64().expect("iat") <= unix_now());

    // One character changed, the bare prefix, an oversized key: inactive.
    for wrong in [
        one_char_changed(&key),
        "rk_".to_owned(),
        format!("{key}{}", "A".repeat(300)),
        key.to_uppercase(),
    ] {
        assert_eq!(
            server.introspect(&gw, &gw_secret, &wrong).await,
            json!({"active": false}),
            "{wrong:.12}"
        );
    }

    // A key is not a client secret and is not a token for the token endpoint.
    let (status, body) = server.token_basic("svc-billing", &key, &[]).await;
    assert_eq!(status, 401, "{body}");

    // Revoked with the CLI: the server notices within its poll interval (500 ms).
    let out = server.cli(&["api-key", "revoke", &key_id, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let revoked: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(revoked["status"], "revoked");
    let took = wait_inactive(&server, &gw, &gw_secret, &key).await;
    assert!(took <= Duration::from_millis(1200), "took {took:?}");

    // Listing never shows the key or its hash.
    let out = server.cli(&["api-key", "list", "--json"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(&key), "key in list output");
    assert!(!text.contains("hash"), "{text}");
    let list: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(list[0]["key_id"], key_id.as_str());
    assert_eq!(list[0]["status"], "revoked");

    // Deleted: gone from the list; revoking it again is an error that does not echo a key.
    let out = server.cli(&["api-key", "delete", &key_id]);
    assert!(out.status.success());
    let out = server.cli(&["api-key", "revoke", &key_id]);
    assert!(!out.status.success());
    let out = server.cli(&["api-key", "revoke", &key]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(&key), "key echoed: {stderr}");
    let out = server.cli(&["api-key", "list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list, json!([]));
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

#[tokio::test]
async fn expired_key_is_inactive_and_invalid_input_is_rejected() {
    let server = Server::start();
    let (gw, gw_secret) = introspector(&server);
    let (short_id, short) = create_key(&server, &["--ttl", "1"]);
    let (_, long) = create_key(&server, &["--ttl", "3600"]);
    let out = server.cli(&["api-key", "list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).expect("json");
    let entry = list
        .as_array()
        .expect("array")
        .iter()
        .find(|k| k["key_id"] == short_id.as_str())
        .expect("listed");
    assert_eq!(
        entry["expires_at"].as_i64(),
        entry["created_at"].as_i64().map(|t| t + 1)
    );
    let body = server.introspect(&gw, &gw_secret, &long).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(
        body["exp"].as_i64().expect("exp") - body["iat"].as_i64().expect("iat"),
        3600,
        "exp is the key's expiry"
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        server.introspect(&gw, &gw_secret, &short).await,
        json!({"active": false})
    );
    assert_eq!(
        server.introspect(&gw, &gw_secret, &long).await["active"],
        true
    );

    for bad in [
        &["--ttl", "0"][..],
        &["--audience", "not-a-uri"],
        &["--scope", "a\"b"],
    ] {
        let mut args = vec![
            "api-key",
            "create",
            "--name",
            "x",
            "--owner",
            "o",
            "--audience",
            AUD,
        ];
        args.extend_from_slice(bad);
        let out = server.cli(&args);
        assert!(!out.status.success(), "{bad:?} accepted");
    }
    // `--audience` is required.
    let out = server.cli(&["api-key", "create", "--name", "x", "--owner", "o"]);
    assert!(!out.status.success());
}

#[tokio::test]
async fn keys_are_not_stored_in_plaintext_and_survive_kill_9() {
    let server = Server::start();
    let (gw, gw_secret) = introspector(&server);
    let (key_id, key) = create_key(&server, &[]);
    let (revoked_id, revoked_key) = create_key(&server, &[]);
    let out = server.cli(&["api-key", "revoke", &revoked_id]);
    assert!(out.status.success());

    let mut db = Vec::new();
    for entry in std::fs::read_dir(&server.data_dir).expect("data dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("rampart.db") {
            db.extend(std::fs::read(&path).expect("read db"));
        }
    }
    assert!(
        db.windows(key_id.len()).any(|w| w == key_id.as_bytes()),
        "sanity: the key id is in the database files"
    );
    for k in [&key, &revoked_key] {
        let bytes = k.as_bytes();
        // Neither the key nor any 16-character piece of it (the random part included).
        for start in 0..=bytes.len() - 16 {
            let piece = &bytes[start..start + 16];
            assert!(
                !db.windows(16).any(|w| w == piece),
                "a 16-char substring of an API key is in the database"
            );
        }
    }

    let server = server.kill9_and_restart();
    assert_eq!(
        server.introspect(&gw, &gw_secret, &key).await["active"],
        true
    );
    assert_eq!(
        server.introspect(&gw, &gw_secret, &revoked_key).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn admin_api_creates_lists_revokes_and_deletes_keys() {
    let server = Server::start();
    let (gw, gw_secret) = introspector(&server);
    let admin = server.admin_token().await;
    let url = server.url("/admin/v1/api-keys");

    // Without the admin token: 401 problem details.
    let resp = server.http.get(&url).send().await.expect("GET");
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    // A plain client's token is not enough.
    let gw_token = server.access_token(&gw, &gw_secret).await;
    let resp = server
        .http
        .get(&url)
        .bearer_auth(&gw_token)
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 401);

    let resp = server
        .http
        .post(&url)
        .bearer_auth(&admin)
        .json(&json!({
            "name": "reporting",
            "owner": "svc-reporting",
            "scope": "orders:read",
            "audiences": [AUD],
            "ttl": 3600,
        }))
        .send()
        .await
        .expect("POST");
    assert_eq!(
        resp.headers()["cache-control"],
        "no-store",
        "the key is in the body"
    );
    let (status, created) = status_json(resp).await;
    assert_eq!(status, 201, "{created}");
    let key_id = created["key_id"].as_str().expect("key_id").to_owned();
    let key = created["api_key"].as_str().expect("api_key").to_owned();
    assert!(key.starts_with("rk_"));
    assert_eq!(created["key"]["status"], "active");

    let body = server.introspect(&gw, &gw_secret, &key).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["sub"], "svc-reporting");
    assert_eq!(body["scope"], "orders:read");
    assert_eq!(body["aud"], AUD);
    let exp = body["exp"].as_i64().expect("exp");
    assert_eq!(
        exp,
        created["key"]["expires_at"].as_i64().expect("expires_at")
    );

    // Invalid requests: 400 problem details naming the field; unknown fields rejected.
    for (bad, field) in [
        (
            json!({"name": "x", "owner": "o", "audiences": []}),
            "audience",
        ),
        (
            json!({"name": "x", "owner": "o", "audiences": [AUD], "ttl": -1}),
            "ttl",
        ),
        (
            json!({"name": "x", "owner": "o", "audiences": [AUD], "key_hash": "00"}),
            "key_hash",
        ),
    ] {
        let resp = server
            .http
            .post(&url)
            .bearer_auth(&admin)
            .json(&bad)
            .send()
            .await
            .expect("POST");
        let (status, problem) = status_json(resp).await;
        assert_eq!(status, 400, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap_or("").contains(field),
            "{problem}"
        );
    }

    let resp = server
        .http
        .get(&url)
        .bearer_auth(&admin)
        .send()
        .await
        .expect("GET");
    let text = resp.text().await.expect("body");
    assert!(!text.contains(&key), "key in list");
    assert!(!text.contains("hash"), "{text}");
    let list: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(list.as_array().expect("array").len(), 1);
    assert_eq!(list[0]["key_id"], key_id.as_str());
    assert_eq!(list[0]["owner"], "svc-reporting");

    // Revocation through the admin API takes effect at once on this server.
    let resp = server
        .http
        .post(server.url(&format!("/admin/v1/api-keys/{key_id}/revoke")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("revoke");
    let (status, view) = status_json(resp).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "revoked");
    assert_eq!(
        server.introspect(&gw, &gw_secret, &key).await,
        json!({"active": false})
    );

    let resp = server
        .http
        .post(server.url("/admin/v1/api-keys/nope/revoke"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("revoke");
    assert_eq!(resp.status(), 404);

    let delete = |id: String| {
        server
            .http
            .delete(server.url(&format!("/admin/v1/api-keys/{id}")))
            .bearer_auth(&admin)
            .send()
    };
    assert_eq!(delete(key_id.clone()).await.expect("delete").status(), 204);
    assert_eq!(delete(key_id.clone()).await.expect("delete").status(), 404);
    let resp = server
        .http
        .get(&url)
        .bearer_auth(&admin)
        .send()
        .await
        .expect("GET");
    let (_, list) = status_json(resp).await;
    assert_eq!(list, json!([]));
}
