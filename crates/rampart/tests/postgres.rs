//! PostgreSQL as the shared store: two servers (replicas behind one issuer) and the CLI on
//! one database, with the real binary and a real PostgreSQL server (rampart-testkit starts
//! one from the system's packages; `.ci/run` installs them).

mod common;

use std::process::Command;

use common::{BIN, Server, wait_for_poll};
use serde_json::json;

const AUD: &str = "https://api.example.com/orders";
const ISSUER: &str = "https://auth.rampart.test";

/// Starts two servers on one fresh database, with one master key and one issuer.
async fn replicas() -> (Server, Server) {
    let url = rampart_testkit::postgres_database().await;
    let a = Server::start_with_env(&[
        ("RAMPART_DATABASE_URL", url.as_str()),
        ("RAMPART_SERVER_ISSUER", ISSUER),
    ]);
    assert!(
        a.admin_secret.is_some(),
        "the first server bootstraps the admin client"
    );
    let key = std::fs::read_to_string(a.data_dir.join("master.key")).expect("master key");
    let b = Server::start_with_env(&[
        ("RAMPART_DATABASE_URL", url.as_str()),
        ("RAMPART_SERVER_ISSUER", ISSUER),
        ("RAMPART_MASTER_KEY", key.trim()),
    ]);
    assert!(
        b.admin_secret.is_none(),
        "the admin client is already in the shared database: no second bootstrap secret"
    );
    (a, b)
}

fn client(server: &Server) -> (String, String) {
    let (id, secret) = server.create_client(&[
        "--name",
        "svc",
        "--scope",
        "orders:read",
        "--audience",
        AUD,
        "--token-format",
        "jwt",
    ]);
    (id, secret.expect("secret"))
}

#[tokio::test]
async fn replicas_share_clients_keys_and_revocations() {
    let (a, b) = replicas().await;
    assert_eq!(a.issuer, ISSUER);
    assert_eq!(b.issuer, ISSUER);
    // The state is in PostgreSQL, not in a SQLite file beside the server.
    assert!(!a.data_dir.join("rampart.db").exists());
    assert!(!b.data_dir.join("rampart.db").exists());

    // A client created by the CLI (through A's settings) is known to both servers.
    let (id, secret) = client(&a);
    let (gw, gw_secret) = client(&a);
    wait_for_poll().await;

    // A token issued by B is verified by A: the signing keys are shared too.
    let token = b.access_token(&id, &secret).await;
    let at_a = a.introspect(&gw, &gw_secret, &token).await;
    assert_eq!(at_a["active"], true, "{at_a}");
    assert_eq!(at_a["iss"], ISSUER);
    assert_eq!(at_a["client_id"], id.as_str());

    // Revoked at A: inactive at A at once, and at B after its change poll.
    let resp = a
        .http
        .post(a.url("/revoke"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        a.introspect(&gw, &gw_secret, &token).await,
        json!({"active": false})
    );
    wait_for_poll().await;
    assert_eq!(
        b.introspect(&gw, &gw_secret, &token).await,
        json!({"active": false}),
        "a token revoked at one replica is revoked at the other"
    );

    // A client deleted through B's CLI can no longer get tokens from A.
    let out = b.cli(&["client", "delete", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for_poll().await;
    let resp = a
        .http
        .post(a.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn state_survives_a_crash_of_every_server() {
    let (a, b) = replicas().await;
    let (id, secret) = client(&a);
    wait_for_poll().await;
    let token = a.access_token(&id, &secret).await;
    drop(b);
    let a = a.kill9_and_restart();
    let body = a.introspect(&id, &secret, &token).await;
    assert_eq!(body["active"], true, "{body}");
}

#[tokio::test]
async fn readiness_follows_the_database() {
    use sqlx::Connection;
    let url = rampart_testkit::postgres_database().await;
    let server = Server::start_with_env(&[("RAMPART_DATABASE_URL", url.as_str())]);
    let ready = |server: &Server| {
        let request = server.http.get(server.url("/readyz")).send();
        async move {
            let resp = request.await.expect("readyz");
            let status = resp.status().as_u16();
            (
                status,
                resp.json::<serde_json::Value>().await.expect("json"),
            )
        }
    };
    assert_eq!(ready(&server).await, (200, json!({"ready": true})));

    // The database disappears under the running server (its connections are cut).
    let (base, query) = url.split_once('?').expect("query");
    let (admin, database) = base.rsplit_once('/').expect("database name");
    let mut conn = sqlx::PgConnection::connect(&format!("{admin}/postgres?{query}"))
        .await
        .expect("admin connection");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {database} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .expect("drop database");
    let (status, body) = ready(&server).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body, json!({"ready": false, "reason": "database"}));
    // Still alive: liveness does not depend on the database.
    let alive = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(alive.status(), 200);
}

#[test]
fn an_unreachable_database_is_a_clear_error_without_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Port 1 on loopback: nothing listens there.
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("RAMPART_MASTER_KEY")
        .env(
            "RAMPART_DATABASE_URL",
            "postgres://rampart:s3cret-pw@127.0.0.1:1/rampart",
        )
        .env("RAMPART_DATABASE_ACQUIRE_TIMEOUT", "2")
        .output()
        .expect("run rampart serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PostgreSQL"), "{stderr}");
    assert!(stderr.contains("storage unavailable"), "{stderr}");
    assert!(!stderr.contains("s3cret-pw"), "password leaked: {stderr}");
}

#[test]
fn a_database_url_that_is_not_postgres_is_rejected_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("RAMPART_MASTER_KEY")
        .env("RAMPART_DATABASE_URL", "mysql://root:hunter2@db/rampart")
        .output()
        .expect("run rampart serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("database.url"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "password leaked: {stderr}");
}
