//! Running the gateway: `rampart gateway --config FILE`, or inside `rampart serve` when the
//! configuration has a `[gateway]` section. Builds the guard (token verification against the
//! configured issuers), the pipeline, the audit log, the HTTPS listener and the admin listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::Request;
use hyper::body::Incoming;
use rampart_gateway::{AuditSink, ConnectionInfo, Gateway, GatewayConfig};
use rampart_guard::{Guard, GuardConfig, IssuerConfig};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::settings::LimitSettings;

/// Audit records waiting for the writer; past this, records are dropped and counted
/// (`rampart_gateway_audit_dropped_total`) so that requests never wait for the log.
const AUDIT_QUEUE: usize = 16_384;

/// A gateway that is listening.
pub struct RunningGateway {
    /// The HTTPS address.
    pub listen: SocketAddr,
    /// The admin (metrics, health) address.
    pub admin: SocketAddr,
}

/// Builds the token guard from `[[gateway.issuers]]`: secrets come from the environment
/// variables the config names, CA bundles from files.
pub fn guard(config: &GatewayConfig) -> Result<Guard, String> {
    let mut issuers = Vec::new();
    for (i, iss) in config.issuers.iter().enumerate() {
        let key = format!("gateway.issuers[{i}]");
        let client_secret = match &iss.client_secret_env {
            Some(var) => Some(
                std::env::var(var)
                    .map_err(|_| {
                        format!("{key}.client_secret_env: environment variable {var} is not set")
                    })?
                    .into(),
            ),
            None => None,
        };
        let ca_pem = match &iss.ca_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("{key}.ca_file: {}: {e}", path.display()))?,
            ),
            None => None,
        };
        let mut issuer = IssuerConfig::new(iss.issuer.clone());
        issuer.jwks_uri = iss.jwks_uri.clone();
        issuer.introspection_uri = iss.introspection_uri.clone();
        issuer.client_id = iss.client_id.clone();
        issuer.client_secret = client_secret;
        issuer.ca_pem = ca_pem;
        issuers.push(issuer);
    }
    let mut guard_config = GuardConfig::new(issuers);
    guard_config.leeway_secs = config.token_leeway;
    guard_config.introspection_ttl = Duration::from_secs(config.introspection_cache_ttl);
    guard_config.negative_ttl = Duration::from_secs(config.negative_cache_ttl);
    Guard::new(guard_config).map_err(|e| format!("gateway.issuers: {e}"))
}

/// Starts the gateway's listeners; they run until `shutdown` resolves.
pub async fn start(
    config: &GatewayConfig,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<RunningGateway, String> {
    let guard = guard(config)?;
    let prefetch = guard.clone();
    tokio::spawn(async move { prefetch.prefetch().await });
    let audit = AuditSink::spawn(Box::new(std::io::stdout()), AUDIT_QUEUE);
    let gateway = Gateway::new(config, Arc::new(guard), audit).map_err(|e| e.to_string())?;
    let metrics = rampart_gateway::install_recorder().map_err(|e| format!("metrics: {e}"))?;

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("gateway.listen {}: {e}", config.listen))?;
    let listen = listener.local_addr().map_err(|e| e.to_string())?;
    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .map_err(|e| format!("gateway.admin_listen {}: {e}", config.admin_listen))?;
    let admin = admin_listener.local_addr().map_err(|e| e.to_string())?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let admin_router = rampart_gateway::admin_router(metrics);
    let mut admin_stop = stop_rx.clone();
    tokio::spawn(async move {
        let stop = async move {
            let _ = admin_stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(admin_listener, admin_router)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "gateway admin listener failed");
        }
    });

    let l = &config.limits;
    let limits = LimitSettings {
        max_connections: l.max_connections,
        header_read_timeout: l.header_read_timeout,
        max_header_bytes: l.max_header_bytes,
        ..LimitSettings::default()
    };
    let make_service = move |peer: SocketAddr| {
        gateway
            .service::<Incoming>()
            .map_request(move |mut request: Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectionInfo { peer, tls: true });
                request
            })
    };
    let mut gw_stop = stop_rx;
    tokio::spawn(async move {
        let stop = async move {
            let _ = gw_stop.wait_for(|s| *s).await;
        };
        crate::listener::serve_tls(listener, tls, make_service, &limits, stop).await;
    });
    Ok(RunningGateway { listen, admin })
}
