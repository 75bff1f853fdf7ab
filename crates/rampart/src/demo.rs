//! `rampart serve --demo`: a working system in one command for a newcomer — the
//! authorization server, a gateway with a Cedar policy, a small echo service behind it, demo
//! clients, and the `curl` commands that show an allowed call, a 401, a 403 (missing scope), a
//! 403 (refused by the policy) and a 429.

use std::net::SocketAddr;

use rampart_crypto::ExposeSecret;
use rampart_idp::clients::{NewClient, RegistryError};
use rampart_idp::{ClientRegistry, unix_now};
use rampart_store::{ClientAuthMethod, ClientTokenFormat};

use crate::DataArgs;

/// The demo audience of the echo service.
const AUDIENCE: &str = "api://demo-orders";

/// Starts the echo service, registers the demo clients, writes the demo configuration into
/// the data directory, prints how to try it, then runs `serve` with it.
pub async fn run(args: DataArgs, listen: Option<SocketAddr>) -> Result<(), String> {
    if args.config.is_some() {
        return Err("--demo writes its own configuration; drop --config".into());
    }
    let listen = listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8443)));
    if listen.port() == 0 {
        return Err("--demo needs a fixed --listen port (the gateway must know the issuer)".into());
    }
    // The gateway's ports follow the server's: 8443 gives 9443 and 9901.
    let gateway_port = listen
        .port()
        .checked_add(1000)
        .ok_or("--demo needs a --listen port below 64000")?;
    let admin_port = listen
        .port()
        .checked_add(1458)
        .ok_or("--demo needs a --listen port below 64000")?;
    let upstream = echo_service().await?;
    let data = crate::serve::open_data_dir(&args).await?;
    let registry = ClientRegistry::new(
        data.store.clone(),
        data.master.secret_hasher(),
        &data.settings.idp_config(String::new()),
    );
    let reader = demo_client(&registry, "demo-reader", "orders:read").await?;
    data.store.close().await;

    let issuer = format!("https://{listen}");
    let dir = data.path.display().to_string();
    let policy_path = data.path.join("demo-policies.cedar");
    crate::dev_tls::write_atomic(&policy_path, DEMO_POLICIES.as_bytes(), 0o600)?;
    let config = format!(
        r#"# Written by `rampart serve --demo`; overwritten on every demo start.
[server]
listen = "{listen}"

[gateway]
listen = "127.0.0.1:{gateway_port}"
admin_listen = "127.0.0.1:{admin_port}"

[[gateway.issuers]]
issuer = "{issuer}"
ca_file = "{dir}/tls/ca.pem"

[[gateway.routes]]
id = "orders"
match = {{ path_prefix = "/orders", methods = ["GET", "POST"] }}
upstreams = ["http://{upstream}"]
auth = ["jwt", "paseto"]
audience = "{AUDIENCE}"
require_scopes = ["orders:read"]
rate_limit = {{ key = "client_id", per_second = 1, burst = 5 }}

[[gateway.routes]]
id = "admin"
match = {{ path_prefix = "/admin" }}
upstreams = ["http://{upstream}"]
auth = ["jwt"]
audience = "{AUDIENCE}"
require_scopes = ["orders:admin"]

[gateway.policy]
file = "{policies}"
"#,
        policies = policy_path.display()
    );
    let config_path = data.path.join("demo.toml");
    crate::dev_tls::write_atomic(&config_path, config.as_bytes(), 0o600)?;

    let ca = format!("{dir}/tls/ca.pem");
    let demo = format!(
        r#"
Demo: an echo service on http://{upstream} behind the gateway on https://127.0.0.1:{gateway_port}
Try it (in another shell):

  TOKEN=$(curl -s --cacert {ca} -u demo-reader:{secret} -d grant_type=client_credentials \
      -d resource={AUDIENCE} {issuer}/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

  # allowed (200): the echo shows the X-Rampart-* identity headers the gateway added
  curl --cacert {ca} -H "Authorization: Bearer $TOKEN" https://127.0.0.1:{gateway_port}/orders/42
  # no token (401)
  curl -i --cacert {ca} https://127.0.0.1:{gateway_port}/orders/42
  # missing scope orders:admin (403 insufficient_scope)
  curl -i --cacert {ca} -H "Authorization: Bearer $TOKEN" https://127.0.0.1:{gateway_port}/admin
  # a write the Cedar policy does not permit to readers (403 access_denied; see {dir}/demo-policies.cedar)
  curl -i --cacert {ca} -X POST -H "Authorization: Bearer $TOKEN" https://127.0.0.1:{gateway_port}/orders/42
  # rate limit: 5 then 1 per second (429)
  for i in $(seq 8); do curl -s -o /dev/null -w "%{{http_code}}\n" --cacert {ca} \
      -H "Authorization: Bearer $TOKEN" https://127.0.0.1:{gateway_port}/orders; done
  # metrics
  curl http://127.0.0.1:{admin_port}/metrics
"#,
        secret = reader.expose_secret(),
    );
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(demo.as_bytes());
        let _ = out.flush();
    }
    let args = DataArgs {
        config: Some(config_path),
        data_dir: Some(data.path.clone()),
    };
    crate::serve::run(args, Some(listen)).await
}

/// The demo's policies: readers may read orders, only admins may change them.
const DEMO_POLICIES: &str = r#"// Written by `rampart serve --demo`; overwritten on every demo start.
// Check with `rampart policy check --file demo-policies.cedar`.
@id("readers-read-orders")
permit(principal, action in Rampart::Action::"read", resource == Rampart::Route::"orders")
when { principal.scopes.contains("orders:read") };

@id("admins-do-anything")
permit(principal, action, resource)
when { principal.scopes.contains("orders:admin") };
"#;

/// Registers (or refreshes the secret of) a demo client and returns its secret.
async fn demo_client(
    registry: &ClientRegistry,
    id: &str,
    scope: &str,
) -> Result<rampart_crypto::SecretString, String> {
    let new = NewClient {
        client_id: Some(id.to_owned()),
        name: id.to_owned(),
        scopes: vec![scope.to_owned()],
        audiences: vec![AUDIENCE.to_owned()],
        token_format: ClientTokenFormat::Jwt,
        auth_method: ClientAuthMethod::ClientSecretBasic,
        jwks: None,
        ttl_secs: Some(3600),
        flows: Default::default(),
    };
    match registry.create(new, unix_now()).await {
        Ok(created) => created
            .secret
            .ok_or_else(|| "demo client without secret".to_owned()),
        Err(RegistryError::Conflict) => registry
            .rotate_secret(id, unix_now())
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// A tiny HTTP service that answers with the request it saw, headers included.
async fn echo_service() -> Result<SocketAddr, String> {
    use axum::http::{HeaderMap, Method, Uri};
    let app =
        axum::Router::new().fallback(|method: Method, uri: Uri, headers: HeaderMap| async move {
            let headers: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        v.to_str().unwrap_or("<binary>").into(),
                    )
                })
                .collect();
            axum::Json(serde_json::json!({
                "service": "demo-echo",
                "method": method.as_str(),
                "path": uri.to_string(),
                "headers": headers,
            }))
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("demo echo service: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}
