//! TLS material for the listeners: the configured certificate, or the dev CA in
//! `DATA_DIR/tls/` and a server certificate it issues for localhost, 127.0.0.1 and ::1.
//!
//! The CA and server private keys are stored sealed under the master key; only the
//! certificates are plain files (`ca.pem` is what clients trust).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rampart_crypto::{Envelope, ExposeSecret};
use rampart_pki::DevCa;

/// A server certificate is renewed when it expires within this many seconds.
const RENEW_BEFORE_SECS: i64 = 30 * 86_400;
/// Validity of dev server certificates.
const SERVER_CERT_VALIDITY: Duration = Duration::from_secs(90 * 86_400);

/// TLS files in use.
pub struct TlsMaterial {
    /// The server configuration for rustls.
    pub config: Arc<rustls::ServerConfig>,
    /// The CA certificate clients should trust, when the dev CA is in use.
    pub ca_path: Option<PathBuf>,
}

/// Loads or creates TLS material.
pub fn load_or_create(
    data_dir: &Path,
    envelope: &Envelope,
    configured: Option<(&Path, &Path)>,
    listen_ip: IpAddr,
) -> Result<TlsMaterial, String> {
    let alpn: [&[u8]; 2] = [b"h2", b"http/1.1"];
    if let Some((cert, key)) = configured {
        let chain = std::fs::read_to_string(cert)
            .map_err(|e| format!("server.tls_cert {}: {e}", cert.display()))?;
        let key = std::fs::read_to_string(key)
            .map_err(|e| format!("server.tls_key {}: {e}", key.display()))?;
        let config = rampart_pki::server_config(&chain, &key, &alpn)
            .map_err(|e| format!("server.tls_cert: {e}"))?;
        return Ok(TlsMaterial {
            config,
            ca_path: None,
        });
    }
    let dir = data_dir.join("tls");
    create_private_dir(&dir)?;
    let ca = load_or_create_ca(&dir, envelope)?;
    let mut ips = vec![
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    if !listen_ip.is_unspecified() && !ips.contains(&listen_ip) {
        ips.push(listen_ip);
    }
    let (chain, key) = load_or_issue_server_cert(&dir, envelope, &ca, &ips)?;
    let config = rampart_pki::server_config(&chain, key.expose_secret(), &alpn)
        .map_err(|e| format!("dev TLS: {e}"))?;
    Ok(TlsMaterial {
        config,
        ca_path: Some(dir.join("ca.pem")),
    })
}

fn load_or_create_ca(dir: &Path, envelope: &Envelope) -> Result<DevCa, String> {
    let cert_path = dir.join("ca.pem");
    let key_path = dir.join("ca.key.sealed");
    if cert_path.exists() && key_path.exists() {
        let cert = std::fs::read_to_string(&cert_path)
            .map_err(|e| format!("{}: {e}", cert_path.display()))?;
        let key = open_sealed(&key_path, envelope, b"rampart/dev-ca-key")?;
        return DevCa::from_pem(&cert, &key).map_err(|e| format!("dev CA: {e}"));
    }
    let ca = DevCa::generate("Rampart Dev CA").map_err(|e| format!("dev CA: {e}"))?;
    write_sealed(
        &key_path,
        envelope,
        b"rampart/dev-ca-key",
        ca.key_pem().expose_secret(),
    )?;
    write_atomic(&cert_path, ca.cert_pem().as_bytes(), 0o644)?;
    Ok(ca)
}

fn load_or_issue_server_cert(
    dir: &Path,
    envelope: &Envelope,
    ca: &DevCa,
    ips: &[IpAddr],
) -> Result<(String, rampart_crypto::SecretString), String> {
    let cert_path = dir.join("server.pem");
    let key_path = dir.join("server.key.sealed");
    if cert_path.exists() && key_path.exists() {
        let chain = std::fs::read_to_string(&cert_path)
            .map_err(|e| format!("{}: {e}", cert_path.display()))?;
        let fresh = rampart_pki::cert_not_after_unix(&chain)
            .is_ok_and(|not_after| not_after - rampart_idp::unix_now() > RENEW_BEFORE_SECS);
        if fresh {
            let key = open_sealed(&key_path, envelope, b"rampart/dev-server-key")?;
            return Ok((chain, key.into()));
        }
    }
    let names = vec!["localhost".to_owned()];
    let issued = ca
        .issue_server_cert(&names, ips, SERVER_CERT_VALIDITY)
        .map_err(|e| format!("dev server certificate: {e}"))?;
    write_sealed(
        &key_path,
        envelope,
        b"rampart/dev-server-key",
        issued.key_pem.expose_secret(),
    )?;
    write_atomic(&cert_path, issued.chain_pem.as_bytes(), 0o644)?;
    Ok((issued.chain_pem, issued.key_pem))
}

fn open_sealed(path: &Path, envelope: &Envelope, context: &[u8]) -> Result<String, String> {
    let sealed = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let plain = envelope
        .open(&sealed, context)
        .map_err(|_| format!("{}: cannot be unsealed (wrong master key?)", path.display()))?;
    String::from_utf8(plain.to_vec()).map_err(|_| format!("{}: not a PEM key", path.display()))
}

fn write_sealed(
    path: &Path,
    envelope: &Envelope,
    context: &[u8],
    plaintext: &str,
) -> Result<(), String> {
    let sealed = envelope
        .seal(plaintext.as_bytes(), context)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    write_atomic(path, &sealed, 0o600)
}

/// Writes a file completely or not at all: temp file, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(contents).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(err)?;
    }
    Ok(())
}

/// Creates a directory readable only by its owner (mode 0700).
pub fn create_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
}
