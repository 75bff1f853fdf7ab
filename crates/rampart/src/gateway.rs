//! Running the gateway: `rampart gateway --config FILE`, or inside `rampart serve` when the
//! configuration has a `[gateway]` section. Builds the guard (token verification against the
//! configured issuers), the pipeline, the audit log, the HTTPS listener and the admin listener.
//!
//! # Client certificates
//!
//! With `gateway.client_ca_file`, the listener requests a client certificate on every
//! handshake (optional, so routes without `mtls` work for clients without one) and verifies a
//! presented one against that bundle; an unverifiable one fails the handshake. The verified
//! certificate's identity (first URI SAN, else DNS SAN, else CN) goes into
//! [`ConnectionInfo::client_cert`] for routes accepting `mtls`. This works with every
//! certificate source (the dev CA, the server's certificate, reloaded `tls_cert`/`tls_key`).
//! With `gateway.client_crl_file` too, a client certificate revoked by one of its lists (or
//! from a CA without a list there) fails the handshake. Both files are read again on every
//! reload and whenever either changes; the new bundle and lists apply to new handshakes, with
//! a fresh TLS session cache, so no client resumes a session verified under the old ones.
//!
//! # Reloading
//!
//! The configuration is reloaded on `SIGHUP` and when the config file changes (its
//! modification time, size or inode, polled every second); with `gateway.tls_cert` and
//! `gateway.tls_key`, a change of either file reloads the certificate alone. A reload reads
//! the file again exactly as at startup (same `RAMPART_*` overrides), builds the new guard,
//! pipeline and certificate completely, and only then swaps them in, atomically: requests
//! that arrive afterwards, on new or already open connections, use the new configuration;
//! requests in flight finish on the old one; no connection is closed. A configuration that
//! does not load or validate is rejected with an error naming the key, and the previous one
//! stays in effect. New TLS handshakes use the new certificate; an unreadable or invalid
//! certificate keeps the previous one.
//!
//! Kept across reloads: the listeners (a changed `listen`, `admin_listen`, `workers`,
//! `http_redirect_listen`, `plain_http_listen`, `limits.max_connections`, `limits.header_read_timeout` or `limits.idle_timeout` is logged
//! as needing a restart), the audit sink and the metrics; the fetched keys of issuers whose settings did
//! not change; the health (active and passive) of upstreams still in the same route. Local
//! rate limiter buckets start afresh with each new pipeline (shared ones live in Redis). The
//! health-check tasks of the previous pipeline are stopped, the new pipeline's started.
//!
//! # Readiness
//!
//! `/readyz` on the admin listener answers 503 with a short JSON reason until the keys of every
//! issuer have been fetched once (fetched at start, then retried every 2 s until they are) and
//! every route with a `health_check` has an upstream up; 200 after (see
//! [`rampart_gateway::readiness`]). `/healthz` is liveness only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use axum::http::Request;
use hyper::body::Incoming;
use rampart_gateway::health::HealthChecks;
use rampart_gateway::{
    AuditSink, ConnectionInfo, Gateway, GatewayConfig, GatewayHandle, Readiness,
};
use rampart_guard::{Guard, GuardConfig, IssuerConfig};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind};
use tower::ServiceExt;

use crate::listener::TlsSource;
use crate::settings::{LimitSettings, Settings};

/// How often the config file (and the certificate files) are checked for changes.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// After a change is seen, how long the files must stay unchanged before they are read, so
/// that a file being written in several steps is not read half-written.
const SETTLE: Duration = Duration::from_millis(200);

/// Audit records waiting for the writer; past this, records are dropped and counted
/// (`rampart_gateway_audit_dropped_total`) so that requests never wait for the log.
const AUDIT_QUEUE: usize = 16_384;

/// A gateway that is listening.
pub struct RunningGateway {
    /// The HTTPS address.
    pub listen: SocketAddr,
    /// The admin (metrics, health) address.
    pub admin: SocketAddr,
    /// The plain-HTTP redirect listener's address, if configured.
    pub http_redirect: Option<SocketAddr>,
    /// The loopback plain-HTTP listener's address, if configured.
    pub plain_http: Option<SocketAddr>,
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

/// The gateway's TLS certificate.
pub enum GatewayTls {
    /// A fixed configuration (the dev CA's certificate, or the server's): never reloaded.
    Fixed(Arc<rustls::ServerConfig>),
    /// `gateway.tls_cert` and `gateway.tls_key`: reloaded when the files change.
    Files {
        /// PEM certificate chain, leaf first.
        cert: PathBuf,
        /// PEM private key.
        key: PathBuf,
    },
}

/// A TLS server configuration (h2 and HTTP/1.1) from a PEM chain file and a PEM key file.
pub fn tls_from_files(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let alpn: [&[u8]; 2] = [b"h2", b"http/1.1"];
    let chain = std::fs::read_to_string(cert)
        .map_err(|e| format!("gateway.tls_cert {}: {e}", cert.display()))?;
    let key_pem = std::fs::read_to_string(key)
        .map_err(|e| format!("gateway.tls_key {}: {e}", key.display()))?;
    rampart_pki::server_config(&chain, &key_pem, &alpn).map_err(|e| {
        format!(
            "gateway.tls_cert/gateway.tls_key {} / {}: {e}",
            cert.display(),
            key.display()
        )
    })
}

/// The listener's certificate, replaceable while serving: each handshake asks for the
/// current one.
#[derive(Debug)]
struct ReloadableCert {
    current: RwLock<Arc<dyn ResolvesServerCert>>,
}

impl ReloadableCert {
    fn new(config: &rustls::ServerConfig) -> Self {
        Self {
            current: RwLock::new(Arc::clone(&config.cert_resolver)),
        }
    }

    /// Takes the certificate of `config` (built, hence validated, by [`tls_from_files`]).
    fn set(&self, config: &rustls::ServerConfig) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) =
            Arc::clone(&config.cert_resolver);
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner));
        current.resolve(client_hello)
    }
}

/// Starts the gateway's listeners; they run until `shutdown` resolves. With `config_path`,
/// the configuration is reloaded when that file changes; it is reloaded on `SIGHUP` in any
/// case (see the module documentation).
pub async fn start(
    config: &GatewayConfig,
    tls: GatewayTls,
    config_path: Option<PathBuf>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<RunningGateway, String> {
    let (tls, cert) = match tls {
        GatewayTls::Fixed(tls) => (tls, None),
        GatewayTls::Files { cert, key } => {
            let built = tls_from_files(&cert, &key)?;
            let reloadable = Arc::new(ReloadableCert::new(&built));
            let mut tls = (*built).clone();
            tls.cert_resolver = reloadable.clone();
            (Arc::new(tls), Some(reloadable))
        }
    };
    if config.client_ca_file.is_none()
        && config
            .routes
            .iter()
            .any(|r| r.auth.iter().any(|a| a == "mtls"))
    {
        tracing::warn!(
            "routes accept mtls but gateway.client_ca_file is not set: no client \
             certificate is requested, so mtls never authenticates"
        );
    }
    // `tls` (the certificate, reloadable) is the base of every configuration the listener
    // gets; the client-certificate settings come on top and are rebuilt on reload.
    let tls_source = TlsSource::new(server_tls(&tls, config)?);
    // Before anything is printed, so a SIGHUP sent once the gateway has announced itself
    // never falls back to the default action (terminating the process).
    let hangup = match tokio::signal::unix::signal(SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(e) => {
            tracing::warn!(error = %e, "cannot handle SIGHUP; reload on file change only");
            None
        }
    };
    let guard = guard(config)?;
    let audit = AuditSink::spawn(Box::new(std::io::stdout()), AUDIT_QUEUE);
    let gateway =
        Gateway::new(config, Arc::new(guard.clone()), audit.clone()).map_err(|e| e.to_string())?;
    let metrics = rampart_gateway::install_recorder().map_err(|e| format!("metrics: {e}"))?;
    let pipeline = GatewayHandle::new(gateway.service::<Incoming>());
    let health = gateway.start_health_checks();
    let prefetching = fetch_keys_until_fetched(guard.clone());
    let live = Arc::new(RwLock::new(Live {
        guard,
        gateway: gateway.clone(),
    }));

    let workers = config.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    // One listening socket per worker thread (see `listener::serve_tls_on_workers`).
    let listeners = bind_per_worker(config.listen, workers)
        .map_err(|e| format!("gateway.listen {}: {e}", config.listen))?;
    let listen = listeners
        .first()
        .ok_or("gateway: no listener")?
        .local_addr()
        .map_err(|e| e.to_string())?;
    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .map_err(|e| format!("gateway.admin_listen {}: {e}", config.admin_listen))?;
    let admin = admin_listener.local_addr().map_err(|e| e.to_string())?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let readiness = Arc::clone(&live);
    let admin_router = rampart_gateway::admin_router_with_readiness(
        metrics,
        Arc::new(move || {
            let live = readiness.read().unwrap_or_else(PoisonError::into_inner);
            Readiness {
                issuers_without_keys: live.guard.issuers_without_keys(),
                routes_without_healthy_upstream: live.gateway.unready_routes(),
            }
        }),
    );
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

    let replace = pipeline.clone();
    let reloader = Reloader {
        path: config_path,
        applied: config.clone(),
        started: config.clone(),
        audit,
        cert,
        base_tls: tls,
        tls: tls_source.clone(),
        apply: Box::new(move |gateway: Gateway| replace.replace(gateway.service::<Incoming>())),
        live,
        health,
        prefetching,
    };
    tokio::spawn(reloader.run(hangup, stop_rx.clone()));

    let l = &config.limits;
    // Unset: as long as the header read timeout (idle HTTP/1.1 connections close as before,
    // and a connection that never sends a byte is cut like a slow one).
    let idle_timeout = Duration::from_secs(l.idle_timeout.unwrap_or(l.header_read_timeout));
    let limits = LimitSettings {
        max_connections: l.max_connections,
        header_read_timeout: l.header_read_timeout,
        max_header_bytes: l.max_header_bytes,
        ..LimitSettings::default()
    };
    // Called once the handshake is done: `client_cert` is the identity of a client
    // certificate the listener verified against `client_ca_file` (never set without it).
    let make_service = |tls: bool| {
        let pipeline = pipeline.clone();
        move |peer: SocketAddr, client_cert: Option<String>| {
            let info = ConnectionInfo {
                peer,
                tls,
                client_cert,
            };
            pipeline
                .service()
                .map_request(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(info.clone());
                    request
                })
        }
    };
    let http_redirect = match config.http_redirect_listen {
        Some(addr) => {
            let https_port = listen.port();
            let redirect = move |_peer: SocketAddr, _client_cert: Option<String>| {
                tower::service_fn(move |request: Request<Incoming>| async move {
                    Ok::<_, std::convert::Infallible>(rampart_gateway::redirect::https_redirect(
                        &request, https_port,
                    ))
                })
            };
            Some(
                spawn_plain_http(
                    "gateway.http_redirect_listen",
                    addr,
                    redirect,
                    limits.clone(),
                    idle_timeout,
                    &stop_rx,
                )
                .await?,
            )
        }
        None => None,
    };
    let plain_http = match config.plain_http_listen {
        Some(addr) => Some(
            spawn_plain_http(
                "gateway.plain_http_listen",
                addr,
                make_service(false),
                limits.clone(),
                idle_timeout,
                &stop_rx,
            )
            .await?,
        ),
        None => None,
    };
    crate::listener::serve_tls_on_workers(
        listeners,
        tls_source.clone(),
        make_service(true),
        &limits,
        Some(idle_timeout),
        stop_rx,
    )
    .map_err(|e| format!("gateway workers: {e}"))?;
    Ok(RunningGateway {
        listen,
        admin,
        http_redirect,
        plain_http,
    })
}

/// Binds `addr` (the config key `key`) and serves plain HTTP there with `make_service` on this
/// runtime, under `limits` and the idle timeout, until `stop` turns `true`; returns the bound
/// address.
async fn spawn_plain_http<F, S, B>(
    key: &str,
    addr: SocketAddr,
    make_service: F,
    limits: LimitSettings,
    idle_timeout: Duration,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<SocketAddr, String>
where
    F: Fn(SocketAddr, Option<String>) -> S + Clone + Send + 'static,
    S: crate::listener::ConnectionService<B>,
    B: crate::listener::ResponseBody,
{
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{key} {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let mut stop = stop.clone();
    tokio::spawn(async move {
        let until_stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        crate::listener::serve_plain_http(
            listener,
            make_service,
            &limits,
            Some(idle_timeout),
            until_stopped,
        )
        .await;
    });
    Ok(local)
}

/// `workers` listening sockets on `addr` (the first one picks the port when it is 0), each as
/// Tokio's `TcpListener::bind` makes it (`SO_REUSEADDR`, a backlog of 1024) plus `SO_REUSEPORT`,
/// so that the kernel spreads new connections evenly over them; detached from this runtime so
/// that the workers' runtimes can accept from them. (With one shared socket, the first worker
/// to wake took a whole burst of connections and the other sat idle.) Linux lets only sockets
/// of the same user join the group.
fn bind_per_worker(
    addr: SocketAddr,
    workers: usize,
) -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut addr = addr;
    let mut listeners = Vec::with_capacity(workers);
    for _ in 0..workers.max(1) {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(1024)?;
        addr = listener.local_addr()?;
        listeners.push(listener.into_std()?);
    }
    Ok(listeners)
}

/// The listener's TLS configuration: `base` (its certificate and ALPN), plus, when
/// `client_ca_file` is set, client-certificate verification against that bundle and the
/// revocation lists of `client_crl_file`. Files are read now. A new configuration has a
/// session cache of its own, so a session resumed after a reload is one verified under the
/// current CAs and lists.
fn server_tls(
    base: &Arc<rustls::ServerConfig>,
    config: &GatewayConfig,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let Some(ca_path) = &config.client_ca_file else {
        return Ok(Arc::clone(base));
    };
    let ca_error =
        |e: &dyn std::fmt::Display| format!("gateway.client_ca_file {}: {e}", ca_path.display());
    let ca = std::fs::read_to_string(ca_path).map_err(|e| ca_error(&e))?;
    // The bundle alone first, so that an error names the file at fault.
    let mut verifier = rampart_pki::client_cert_verifier(&ca).map_err(|e| ca_error(&e))?;
    if let Some(path) = &config.client_crl_file {
        let crl_error =
            |e: &dyn std::fmt::Display| format!("gateway.client_crl_file {}: {e}", path.display());
        let crl = std::fs::read_to_string(path).map_err(|e| crl_error(&e))?;
        verifier = rampart_pki::client_cert_verifier_with_crls(&ca, Some(&crl))
            .map_err(|e| crl_error(&e))?;
    }
    rampart_pki::with_client_verifier(base, verifier).map_err(|e| ca_error(&e))
}

/// What identifies a version of a file: modification time, size and inode (a file replaced
/// by a rename has a new inode even when time and size match). `None`: unreadable.
type Stamp = Option<(Option<SystemTime>, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    // Follows symbolic links, so a link switched to another file counts as a change.
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok(), meta.len(), meta.ino()))
}

/// Reloads the configuration and the certificate; owned by one task, so reloads never
/// overlap.
struct Reloader {
    /// The config file, read again on every reload.
    path: Option<PathBuf>,
    /// The configuration in effect.
    applied: GatewayConfig,
    /// The configuration the listeners were started with.
    started: GatewayConfig,
    /// Shared by every pipeline, so the audit log is one stream across reloads.
    audit: AuditSink,
    /// The listener's certificate, when it comes from `gateway.tls_cert`/`tls_key`.
    cert: Option<Arc<ReloadableCert>>,
    /// The listener's TLS configuration without client-certificate settings.
    base_tls: Arc<rustls::ServerConfig>,
    /// What the listener uses for new connections: `base_tls` plus the client-certificate
    /// settings in effect.
    tls: TlsSource,
    /// Makes a new gateway the one serving.
    apply: Box<dyn Fn(Gateway) + Send + Sync>,
    /// The guard and gateway serving, for `/readyz` and the next reload.
    live: Arc<RwLock<Live>>,
    /// The health-check tasks of the serving gateway (dropping it stops them).
    health: HealthChecks,
    /// Stops the key fetching of the serving guard when dropped.
    prefetching: tokio::sync::watch::Sender<()>,
}

/// What serves now: read by `/readyz`, replaced on every reload.
struct Live {
    guard: Guard,
    gateway: Gateway,
}

/// How often the keys of issuers never fetched are asked for again (each issuer's own
/// refresh limit, 10 s, still applies).
const KEY_RETRY: Duration = Duration::from_secs(2);

/// Fetches the keys of every issuer now, and again until each has been fetched once (so the
/// gateway becomes ready without waiting for a token to arrive). Stops when the returned
/// sender is dropped.
fn fetch_keys_until_fetched(guard: Guard) -> tokio::sync::watch::Sender<()> {
    let (stop, mut stopped) = tokio::sync::watch::channel(());
    tokio::spawn(async move {
        let fetch = async {
            loop {
                guard.prefetch().await;
                if guard.issuers_without_keys().is_empty() {
                    return;
                }
                tokio::time::sleep(KEY_RETRY).await;
            }
        };
        tokio::select! {
            _ = stopped.changed() => {}
            () = fetch => {}
        }
    });
    stop
}

impl Reloader {
    /// The config file and the policy file it names (a changed policy file is a reload of
    /// the whole configuration, so a bad one is rejected the same way).
    fn config_stamp(&self) -> (Stamp, Stamp) {
        (
            self.path.as_deref().and_then(stamp),
            self.applied.policy.as_ref().and_then(|p| stamp(&p.file)),
        )
    }

    fn cert_stamp(&self) -> (Stamp, Stamp) {
        match (&self.cert, &self.applied.tls_cert, &self.applied.tls_key) {
            (Some(_), Some(cert), Some(key)) => (stamp(cert), stamp(key)),
            _ => (None, None),
        }
    }

    /// The client CA bundle and revocation lists in effect.
    fn client_auth_stamp(&self) -> (Stamp, Stamp) {
        (
            self.applied.client_ca_file.as_deref().and_then(stamp),
            self.applied.client_crl_file.as_deref().and_then(stamp),
        )
    }

    /// Reloads on `SIGHUP` and on file changes until `stop`.
    async fn run(
        mut self,
        mut hangup: Option<Signal>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut ticks = tokio::time::interval(POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen_config = self.config_stamp();
        let mut seen_cert = self.cert_stamp();
        let mut seen_client_auth = self.client_auth_stamp();
        loop {
            let hangup_received = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            let stopped = async {
                let _ = stop.wait_for(|s| *s).await;
            };
            tokio::select! {
                () = stopped => return,
                Some(()) = hangup_received => {
                    self.reload("SIGHUP");
                }
                _ = ticks.tick() => {
                    let (config, cert, client_auth) =
                        (self.config_stamp(), self.cert_stamp(), self.client_auth_stamp());
                    if config == seen_config && cert == seen_cert && client_auth == seen_client_auth {
                        continue;
                    }
                    tokio::time::sleep(SETTLE).await;
                    if self.config_stamp() != config
                        || self.cert_stamp() != cert
                        || self.client_auth_stamp() != client_auth
                    {
                        // Still being written: look again at the next tick.
                        continue;
                    }
                    if config.0 != seen_config.0 {
                        self.reload("config file changed");
                    } else if config.1 != seen_config.1 {
                        self.reload("policy file changed");
                    } else {
                        if cert != seen_cert {
                            self.reload_cert("certificate file changed");
                        }
                        if client_auth != seen_client_auth {
                            self.reload_client_auth("client CA or CRL file changed");
                        }
                    }
                }
            }
            seen_config = self.config_stamp();
            seen_cert = self.cert_stamp();
            seen_client_auth = self.client_auth_stamp();
        }
    }

    fn reload(&mut self, trigger: &str) {
        let path = self
            .path
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        match self.try_reload() {
            Ok(()) => tracing::info!(trigger, config = %path, "gateway configuration reloaded"),
            Err(e) => tracing::error!(
                trigger,
                config = %path,
                error = %e,
                "gateway configuration rejected, the previous configuration stays in effect"
            ),
        }
    }

    /// Builds everything from the file first; swaps only if all of it succeeded.
    fn try_reload(&mut self) -> Result<(), String> {
        let settings = Settings::load(self.path.as_deref()).map_err(|e| e.to_string())?;
        let Some(config) = settings.gateway else {
            return Err("the configuration no longer has a [gateway] section".into());
        };
        let guard = guard(&config)?;
        let gateway = Gateway::new(&config, Arc::new(guard.clone()), self.audit.clone())
            .map_err(|e| e.to_string())?;
        {
            // Keys of unchanged issuers and the health of the same upstreams carry over.
            let live = self.live.read().unwrap_or_else(PoisonError::into_inner);
            for issuer in config
                .issuers
                .iter()
                .filter(|i| self.applied.issuers.contains(i))
            {
                guard.inherit_keys(&live.guard, &issuer.issuer);
            }
            gateway.inherit_upstream_health(&live.gateway);
        }
        let tls = match (&self.cert, &config.tls_cert, &config.tls_key) {
            (Some(_), Some(cert), Some(key)) => Some(tls_from_files(cert, key)?),
            (Some(_), _, _) => {
                tracing::warn!(
                    "gateway.tls_cert/gateway.tls_key removed: restart to use the dev CA; \
                     the current certificate stays in use"
                );
                None
            }
            (None, Some(_), _) => {
                tracing::warn!(
                    "gateway.tls_cert/gateway.tls_key set while the gateway serves another \
                     certificate: restart to use them"
                );
                None
            }
            (None, None, _) => None,
        };
        let server_tls = server_tls(&self.base_tls, &config)?;
        self.warn_restart_needed(&config);

        let health = gateway.start_health_checks();
        (self.apply)(gateway.clone());
        if let (Some(cert), Some(tls)) = (&self.cert, &tls) {
            cert.set(tls);
        }
        self.tls.replace(server_tls);
        // The previous tasks stop as their handles are dropped here.
        self.prefetching = fetch_keys_until_fetched(guard.clone());
        self.health = health;
        *self.live.write().unwrap_or_else(PoisonError::into_inner) = Live { guard, gateway };
        self.applied = config;
        Ok(())
    }

    fn reload_cert(&mut self, trigger: &str) {
        let (Some(reloadable), Some(cert), Some(key)) =
            (&self.cert, &self.applied.tls_cert, &self.applied.tls_key)
        else {
            return;
        };
        match tls_from_files(cert, key) {
            Ok(tls) => {
                reloadable.set(&tls);
                tracing::info!(trigger, cert = %cert.display(), "gateway TLS certificate reloaded");
            }
            Err(e) => tracing::error!(
                trigger,
                error = %e,
                "gateway TLS certificate rejected, the previous certificate stays in use"
            ),
        }
    }

    /// Settings of the listeners, which keep running as they are.
    fn reload_client_auth(&mut self, trigger: &str) {
        match server_tls(&self.base_tls, &self.applied) {
            Ok(tls) => {
                self.tls.replace(tls);
                tracing::info!(
                    trigger,
                    "gateway client CA bundle and revocation lists reloaded"
                );
            }
            Err(e) => tracing::error!(
                trigger,
                error = %e,
                "gateway client CA or CRL file rejected, the previous ones stay in effect"
            ),
        }
    }

    fn warn_restart_needed(&self, new: &GatewayConfig) {
        let old = &self.started;
        let changed = [
            ("gateway.listen", old.listen != new.listen),
            ("gateway.admin_listen", old.admin_listen != new.admin_listen),
            (
                "gateway.limits.max_connections",
                old.limits.max_connections != new.limits.max_connections,
            ),
            (
                "gateway.limits.header_read_timeout",
                old.limits.header_read_timeout != new.limits.header_read_timeout,
            ),
            (
                "gateway.limits.idle_timeout",
                old.limits.idle_timeout != new.limits.idle_timeout,
            ),
            ("gateway.workers", old.workers != new.workers),
            (
                "gateway.http_redirect_listen",
                old.http_redirect_listen != new.http_redirect_listen,
            ),
            (
                "gateway.plain_http_listen",
                old.plain_http_listen != new.plain_http_listen,
            ),
        ];
        for (key, _) in changed.iter().filter(|(_, changed)| *changed) {
            tracing::warn!(
                key,
                "{key} changed: it applies only after a restart; the listeners keep their current settings"
            );
        }
    }
}
