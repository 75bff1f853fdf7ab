//! `rampart serve`: opens the data directory (creating it on first start), loads or creates
//! the master key, keyring and TLS material, and serves the authorization server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rampart_crypto::{ExposeSecret, MasterKey};
use rampart_idp::AuthServer;
use rampart_store::{Location, Store};
use tokio::net::TcpListener;

use crate::DataArgs;
use crate::settings::Settings;

/// The opened data directory.
pub struct DataDir {
    /// Effective settings.
    pub settings: Settings,
    /// The directory.
    pub path: PathBuf,
    /// The master key.
    pub master: MasterKey,
    /// The database (SQLite in the data directory, or PostgreSQL).
    pub store: Arc<dyn Store>,
}

/// Opens (creating if needed) the data directory named by `args` and the settings.
pub async fn open_data_dir(args: &DataArgs) -> Result<DataDir, String> {
    let mut settings = Settings::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(dir) = &args.data_dir {
        settings.server.data_dir = dir.clone();
    }
    let path = settings.server.data_dir.clone();
    crate::dev_tls::create_private_dir(&path)?;
    let master = load_master_key(&path)?;
    let location = settings.store_location();
    let store = rampart_store::open(&location)
        .await
        .map_err(|e| format!("{}: {}", describe(&location), error_chain(&e)))?;
    Ok(DataDir {
        settings,
        path,
        master,
        store,
    })
}

/// The database for messages: the SQLite file, or "PostgreSQL" (never the URL, which may
/// hold a password).
pub fn describe(location: &Location) -> String {
    match location {
        Location::Sqlite(path) => format!("database {} (SQLite)", path.display()),
        Location::Postgres { .. } => "database (PostgreSQL, [database] url)".to_owned(),
    }
}

/// An error and its causes, for start-up messages (a refused connection or a failed
/// password check is in the driver's error, under "storage unavailable").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `RAMPART_MASTER_KEY` if set, else `DATA_DIR/master.key` (created with mode 0600).
fn load_master_key(data_dir: &Path) -> Result<MasterKey, String> {
    if let Ok(value) = std::env::var("RAMPART_MASTER_KEY") {
        return MasterKey::from_base64(&value).map_err(|e| format!("RAMPART_MASTER_KEY: {e}"));
    }
    let path = data_dir.join("master.key");
    let (key, created) = MasterKey::load_or_create(&path).map_err(|e| e.to_string())?;
    if created {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "Created master key {} (mode 0600). Back it up: without it, keys and secrets cannot be read.",
            path.display()
        );
    }
    Ok(key)
}

fn init_tracing(format: &str) {
    // rustls warns about things any client can send (an IP address as SNI, for one): one log
    // line per connection for the asking. Quiet unless RAMPART_LOG names rustls itself.
    let directives = std::env::var("RAMPART_LOG").unwrap_or_else(|_| "info".into());
    let directives = if directives.contains("rustls") {
        directives
    } else {
        format!("{directives},rustls=error")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rustls=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(args: DataArgs, listen: Option<SocketAddr>) -> Result<(), String> {
    let data = open_data_dir(&args).await?;
    init_tracing(&data.settings.server.log_format);
    let settings = &data.settings;
    let listen = listen.unwrap_or(settings.server.listen);
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let issuer = settings
        .server
        .issuer
        .clone()
        .unwrap_or_else(|| format!("https://{local}"));

    let configured_tls = settings
        .server
        .tls_cert
        .as_deref()
        .zip(settings.server.tls_key.as_deref());
    let tls = crate::dev_tls::load_or_create(
        &data.path,
        &data.master.envelope(),
        configured_tls,
        local.ip(),
    )?;

    let server = AuthServer::open(
        data.store.clone(),
        &data.master,
        settings.idp_config(issuer.clone()),
    )
    .await
    .map_err(|e| e.to_string())?;
    let admin_secret = server
        .ensure_admin_client()
        .await
        .map_err(|e| e.to_string())?;
    let server = Arc::new(server);

    // Written with errors ignored: a closed stdout must never stop the server.
    let mut banner: Vec<String> = Vec::new();
    banner.push("Rampart authorization server".to_owned());
    banner.push(format!("issuer: {issuer}"));
    banner.push(format!("listening: https://{local}"));
    if let Some(ca) = &tls.ca_path {
        banner.push(format!(
            "dev CA: {} (trust it, e.g. curl --cacert {})",
            ca.display(),
            ca.display()
        ));
    }
    banner.push(format!("data: {}", data.path.display()));
    banner.push(format!("store: {}", describe(&settings.store_location())));
    if let Some(secret) = admin_secret {
        banner.push(String::new());
        banner.push("Admin API credentials (shown once; stored only as a keyed hash):".to_owned());
        banner.push("  client_id:     rampart-admin".to_owned());
        banner.push(format!("  client_secret: {}", secret.expose_secret()));
    }
    banner.push(String::new());
    banner.push("Create a client:".to_owned());
    banner.push(format!(
        "  rampart client create --data-dir {} --name my-service --scope \"orders:read\" --audience https://api.example.com/orders",
        data.path.display()
    ));
    banner.push("Get a token:".to_owned());
    banner.push(format!("  curl --cacert {}/tls/ca.pem -u CLIENT_ID:CLIENT_SECRET -d grant_type=client_credentials {issuer}/token", data.path.display()));
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all((banner.join("\n") + "\n").as_bytes());
        let _ = out.flush();
    }

    if let Some(gateway) = &settings.gateway {
        // The gateway shares the server's certificate here (not reloaded); its own
        // configuration is reloaded on SIGHUP and when the config file changes.
        let running = crate::gateway::start(
            gateway,
            crate::gateway::GatewayTls::Fixed(tls.config.clone()),
            args.config.clone(),
            shutdown_signal(),
        )
        .await?;
        print_gateway(&running);
    }

    tokio::spawn(server.clone().maintenance_loop());
    let service = crate::listener::router_service(server.router(), &settings.limits);
    crate::listener::serve_tls(
        listener,
        tls.config,
        service,
        &settings.limits,
        shutdown_signal(),
    )
    .await;
    data.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `rampart gateway`: the gateway alone, with its own TLS certificate or one from the dev CA
/// of the data directory. The configuration (and its own certificate) are reloaded on
/// `SIGHUP` and when the files change, without dropping connections; see [`crate::gateway`].
pub async fn run_gateway(args: DataArgs) -> Result<(), String> {
    let mut settings = Settings::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(dir) = &args.data_dir {
        settings.server.data_dir = dir.clone();
    }
    init_tracing(&settings.server.log_format);
    let Some(gateway) = settings.gateway.clone() else {
        return Err("the configuration has no [gateway] section (see README: Gateway)".into());
    };
    let tls = match (&gateway.tls_cert, &gateway.tls_key) {
        (Some(cert), Some(key)) => crate::gateway::GatewayTls::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => {
            let dir = &settings.server.data_dir;
            crate::dev_tls::create_private_dir(dir)?;
            let master = load_master_key(dir)?;
            crate::gateway::GatewayTls::Fixed(
                crate::dev_tls::load_or_create(dir, &master.envelope(), None, gateway.listen.ip())?
                    .config,
            )
        }
    };
    // Reloaded on SIGHUP and when the config file (or gateway.tls_cert/tls_key) changes.
    let running =
        crate::gateway::start(&gateway, tls, args.config.clone(), shutdown_signal()).await?;
    print_gateway(&running);
    shutdown_signal().await;
    tracing::info!("stopped");
    Ok(())
}

fn print_gateway(running: &crate::gateway::RunningGateway) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "gateway: https://{}", running.listen);
    let _ = writeln!(out, "gateway admin: http://{}", running.admin);
    if let Some(addr) = running.http_redirect {
        let _ = writeln!(out, "gateway redirect: http://{addr}");
    }
    if let Some(addr) = running.plain_http {
        let _ = writeln!(out, "gateway plain: http://{addr}");
    }
    let _ = out.flush();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
