//! Rampart's internal PKI.
//!
//! A small development CA ([`DevCa`]) that issues ECDSA P-256 server
//! certificates, helpers to inspect certificates for renewal, and rustls
//! server/client configurations built on the aws-lc-rs crypto provider
//! (always passed explicitly, never via the process-wide default).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::SupportedProtocolVersion;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use time::OffsetDateTime;

pub use secrecy::{ExposeSecret, SecretString};

/// Validity of a [`DevCa`] certificate (5 years).
pub const CA_VALIDITY: Duration = Duration::from_secs(5 * 365 * 24 * 60 * 60);
/// How far `notBefore` is backdated to tolerate clock skew (1 hour).
pub const BACKDATE: Duration = Duration::from_secs(60 * 60);
/// TLS versions enabled by [`server_config`] and [`client_config`]:
/// TLS 1.3 and TLS 1.2 only.
pub static TLS_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Errors returned by this crate. Messages never contain private key
/// material.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Certificate or key generation/signing failed in rcgen.
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// rustls rejected the configuration (e.g. unusable key or certificate).
    #[error("TLS configuration error: {0}")]
    Tls(#[from] rustls::Error),
    /// A PEM input could not be parsed.
    #[error("invalid PEM: {0}")]
    InvalidPem(&'static str),
    /// The PEM input contained no certificate.
    #[error("no certificate found in PEM input")]
    NoCertificate,
    /// The PEM input contained no private key.
    #[error("no private key found in PEM input")]
    NoPrivateKey,
    /// A certificate could not be parsed as X.509.
    #[error("invalid X.509 certificate: {0}")]
    InvalidCertificate(String),
    /// The certificate given as a CA is not a CA certificate.
    #[error("certificate is not a CA certificate (basicConstraints CA:true required)")]
    NotACa,
    /// The private key does not belong to the certificate.
    #[error("private key does not match the certificate's public key")]
    KeyMismatch,
    /// A DNS name is not a valid IA5 (ASCII) string.
    #[error("invalid DNS name {0:?}")]
    InvalidDnsName(String),
    /// Neither DNS names nor IP addresses were given.
    #[error("a server certificate needs at least one DNS name or IP address")]
    NoSubjectNames,
    /// No name was given for a client certificate.
    #[error("a client certificate needs at least one URI or DNS name")]
    NoClientNames,
    /// A URI subject alternative name is not a valid IA5 (ASCII) string.
    #[error("invalid URI name {0:?}")]
    InvalidUri(String),
    /// The requested validity period is zero or out of range.
    #[error("invalid certificate validity period")]
    InvalidValidity,
}

/// A development certificate authority (ECDSA P-256).
///
/// `Debug` shows the certificate only; the private key is redacted.
pub struct DevCa {
    cert_pem: String,
    key_pem: SecretString,
    not_after: OffsetDateTime,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for DevCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCa")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[REDACTED]")
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// A certificate issued by a [`DevCa`], with its private key.
///
/// `Debug` redacts the private key.
pub struct IssuedCert {
    /// The leaf certificate (PEM).
    pub cert_pem: String,
    /// The leaf followed by the CA certificate (PEM), as served in TLS.
    pub chain_pem: String,
    /// The leaf's private key (PKCS#8 PEM).
    pub key_pem: SecretString,
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("cert_pem", &self.cert_pem)
            .field("chain_pem", &self.chain_pem)
            .field("key_pem", &"[REDACTED]")
            .finish()
    }
}

fn now() -> Result<OffsetDateTime, PkiError> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| PkiError::InvalidValidity)?
        .as_secs();
    let secs = i64::try_from(secs).map_err(|_| PkiError::InvalidValidity)?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| PkiError::InvalidValidity)
}

fn add(t: OffsetDateTime, d: Duration) -> Result<OffsetDateTime, PkiError> {
    let d = time::Duration::try_from(d).map_err(|_| PkiError::InvalidValidity)?;
    t.checked_add(d).ok_or(PkiError::InvalidValidity)
}

fn sub(t: OffsetDateTime, d: Duration) -> Result<OffsetDateTime, PkiError> {
    let d = time::Duration::try_from(d).map_err(|_| PkiError::InvalidValidity)?;
    t.checked_sub(d).ok_or(PkiError::InvalidValidity)
}

/// Parses the first certificate of a PEM bundle into DER.
fn first_cert_der(pem: &str) -> Result<CertificateDer<'static>, PkiError> {
    parse_certs(pem)?
        .into_iter()
        .next()
        .ok_or(PkiError::NoCertificate)
}

/// Parses all certificates of a PEM bundle.
fn parse_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| PkiError::InvalidPem("malformed certificate PEM"))?;
    if certs.is_empty() {
        return Err(PkiError::NoCertificate);
    }
    Ok(certs)
}

/// Parses the first private key of a PEM input.
fn parse_key(pem: &str) -> Result<PrivateKeyDer<'static>, PkiError> {
    use rustls::pki_types::pem::{self, PemObject};
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| match e {
        pem::Error::NoItemsFound => PkiError::NoPrivateKey,
        // The underlying error is dropped so no key bytes can leak through it.
        _ => PkiError::InvalidPem("malformed private key PEM"),
    })
}

fn parse_x509(der: &[u8]) -> Result<x509_parser::certificate::X509Certificate<'_>, PkiError> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, cert)| cert)
        .map_err(|e| PkiError::InvalidCertificate(e.to_string()))
}

impl DevCa {
    /// Generates a new self-signed CA: ECDSA P-256, `CA:true, pathlen:0`,
    /// key usage `keyCertSign` + `cRLSign`, valid for 5 years from one hour
    /// ago.
    pub fn generate(common_name: &str) -> Result<DevCa, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = now()?;
        params.not_before = sub(now, BACKDATE)?;
        params.not_after = add(now, CA_VALIDITY)?;
        let cert = params.self_signed(&key)?;
        let key_pem = SecretString::from(key.serialize_pem());
        Ok(DevCa {
            cert_pem: cert.pem(),
            key_pem,
            not_after: params.not_after,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its certificate and PKCS#8 private key (PEM).
    ///
    /// Checks that the certificate is a CA and that the key matches it.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<DevCa, PkiError> {
        let der = first_cert_der(cert_pem)?;
        let x509 = parse_x509(&der)?;
        match x509.basic_constraints() {
            Ok(Some(bc)) if bc.value.ca => {}
            _ => return Err(PkiError::NotACa),
        }
        let not_after = OffsetDateTime::from_unix_timestamp(x509.validity().not_after.timestamp())
            .map_err(|_| PkiError::InvalidValidity)?;
        // rcgen's error for a bad key carries no key material.
        let key = KeyPair::from_pem(key_pem)?;
        if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(PkiError::KeyMismatch);
        }
        // Normalized to PKCS#8 PEM.
        let key_pem = SecretString::from(key.serialize_pem());
        let issuer = Issuer::from_ca_cert_der(&der, key)?;
        Ok(DevCa {
            cert_pem: cert_der_to_pem(&der),
            key_pem,
            not_after,
            issuer,
        })
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key (PKCS#8 PEM).
    pub fn key_pem(&self) -> &SecretString {
        &self.key_pem
    }

    /// The CA certificate's `notAfter` as a Unix timestamp.
    pub fn not_after_unix(&self) -> i64 {
        self.not_after.unix_timestamp()
    }

    /// Issues an ECDSA P-256 server certificate with the given DNS and IP
    /// subject alternative names, the `serverAuth` extended key usage and
    /// CN = the first DNS name (or the first IP if there is none).
    ///
    /// `notBefore` is backdated one hour; `notAfter` is now + `validity`,
    /// capped at the CA's own `notAfter`.
    pub fn issue_server_cert(
        &self,
        dns_names: &[String],
        ips: &[IpAddr],
        validity: Duration,
    ) -> Result<IssuedCert, PkiError> {
        if validity.is_zero() {
            return Err(PkiError::InvalidValidity);
        }
        let common_name = match (dns_names.first(), ips.first()) {
            (Some(name), _) => name.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => return Err(PkiError::NoSubjectNames),
        };
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.subject_alt_names = dns_names
            .iter()
            .map(|n| {
                rcgen::string::Ia5String::try_from(n.as_str())
                    .map(SanType::DnsName)
                    .map_err(|_| PkiError::InvalidDnsName(n.clone()))
            })
            .chain(ips.iter().map(|ip| Ok(SanType::IpAddress(*ip))))
            .collect::<Result<_, _>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        self.sign_leaf(params, validity)
    }
}

impl DevCa {
    /// Issues an ECDSA P-256 client certificate with the `clientAuth` extended key usage.
    ///
    /// Each name containing `://` becomes a URI subject alternative name (e.g.
    /// `spiffe://demo/orders-worker`), any other a DNS name; CN = the first name. Validity as
    /// for [`DevCa::issue_server_cert`].
    pub fn issue_client_cert(
        &self,
        names: &[String],
        validity: Duration,
    ) -> Result<IssuedCert, PkiError> {
        if validity.is_zero() {
            return Err(PkiError::InvalidValidity);
        }
        let common_name = names.first().ok_or(PkiError::NoClientNames)?.clone();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.subject_alt_names = names
            .iter()
            .map(|n| {
                let ia5 = rcgen::string::Ia5String::try_from(n.as_str());
                if n.contains("://") {
                    ia5.map(SanType::URI)
                        .map_err(|_| PkiError::InvalidUri(n.clone()))
                } else {
                    ia5.map(SanType::DnsName)
                        .map_err(|_| PkiError::InvalidDnsName(n.clone()))
                }
            })
            .collect::<Result<_, _>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        self.sign_leaf(params, validity)
    }

    fn sign_leaf(
        &self,
        mut params: CertificateParams,
        validity: Duration,
    ) -> Result<IssuedCert, PkiError> {
        let now = now()?;
        params.not_before = sub(now, BACKDATE)?;
        params.not_after = add(now, validity)?.min(self.not_after);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let cert_pem = cert.pem();
        let mut chain_pem = String::with_capacity(cert_pem.len() + self.cert_pem.len() + 1);
        chain_pem.push_str(&cert_pem);
        if !chain_pem.ends_with('\n') {
            chain_pem.push('\n');
        }
        chain_pem.push_str(&self.cert_pem);
        Ok(IssuedCert {
            cert_pem,
            chain_pem,
            key_pem: SecretString::from(key.serialize_pem()),
        })
    }
}

impl DevCa {
    /// Issues a certificate revocation list (PEM) that revokes `revoked_cert_pems` (certificates
    /// this CA issued, PEM; each revoked as of now), valid from one hour ago until now +
    /// `validity`, with CRL number `crl_number` (must grow with each new list).
    pub fn issue_crl(
        &self,
        revoked_cert_pems: &[&str],
        crl_number: u64,
        validity: Duration,
    ) -> Result<String, PkiError> {
        if validity.is_zero() {
            return Err(PkiError::InvalidValidity);
        }
        let now = now()?;
        let revoked_certs = revoked_cert_pems
            .iter()
            .map(|pem| {
                let der = first_cert_der(pem)?;
                let x509 = parse_x509(&der)?;
                Ok(rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from_slice(x509.raw_serial()),
                    revocation_time: now,
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        let params = rcgen::CertificateRevocationListParams {
            this_update: sub(now, BACKDATE)?,
            next_update: add(now, validity)?,
            crl_number: rcgen::SerialNumber::from(crl_number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.pem()?)
    }
}

/// Encodes one DER certificate as PEM (normalizes user-supplied PEM).
fn cert_der_to_pem(der: &CertificateDer<'_>) -> String {
    let b64 = STANDARD.encode(der.as_ref());
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Returns the `notAfter` of the first certificate in `cert_pem` as a Unix
/// timestamp (seconds), for renewal decisions.
pub fn cert_not_after_unix(cert_pem: &str) -> Result<i64, PkiError> {
    let der = first_cert_der(cert_pem)?;
    let x509 = parse_x509(&der)?;
    Ok(x509.validity().not_after.timestamp())
}

/// The aws-lc-rs rustls crypto provider used for every configuration built
/// here. Always passed explicitly, so it works even when several providers
/// are compiled in and none is installed as the process default.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// Builds a TLS server configuration (TLS 1.2 and 1.3 only, no client
/// authentication) from a PEM certificate chain (leaf first) and a PEM
/// private key, advertising the given ALPN protocols in order of preference.
pub fn server_config(
    chain_pem: &str,
    key_pem: &str,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, PkiError> {
    let certs = parse_certs(chain_pem)?;
    let key = parse_key(key_pem)?;
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(TLS_VERSIONS)?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A client-certificate verifier trusting only the CA certificate(s) in `client_ca_pem`.
///
/// Client certificates are requested but optional: a client that presents none completes
/// the handshake (so requests that need no certificate still work), while a client that
/// presents one that does not chain to these CAs (or lacks `clientAuth`, or is expired) is
/// refused during the handshake.
pub fn client_cert_verifier(client_ca_pem: &str) -> Result<Arc<dyn ClientCertVerifier>, PkiError> {
    client_cert_verifier_with_crls(client_ca_pem, None)
}

/// Like [`client_cert_verifier`], also refusing client certificates revoked by the CRLs in
/// `crl_pem` (one or more `X509 CRL` PEM blocks). The client's own certificate is checked
/// (not the CAs above it), and it must be covered by one of the lists: a certificate from a
/// CA that has no CRL there is refused too (unknown status fails closed). A CRL past its
/// `nextUpdate` still applies (an out-of-date list does not lock every client out).
pub fn client_cert_verifier_with_crls(
    client_ca_pem: &str,
    crl_pem: Option<&str>,
) -> Result<Arc<dyn ClientCertVerifier>, PkiError> {
    use rustls::pki_types::CertificateRevocationListDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(client_ca_pem)? {
        roots.add(cert)?;
    }
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crypto_provider())
            .allow_unauthenticated();
    if let Some(pem) = crl_pem {
        let crls = CertificateRevocationListDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| PkiError::InvalidPem("malformed CRL PEM"))?;
        if crls.is_empty() {
            return Err(PkiError::InvalidPem("no CRL (X509 CRL block) found"));
        }
        builder = builder.with_crls(crls).only_check_end_entity_revocation();
    }
    builder
        .build()
        .map_err(|e| PkiError::Tls(rustls::Error::General(e.to_string())))
}

/// Like [`server_config`], also requesting a client certificate verified against
/// `client_ca_pem` (see [`client_cert_verifier`]: optional, but verified when presented).
pub fn server_config_with_client_auth(
    chain_pem: &str,
    key_pem: &str,
    alpn: &[&[u8]],
    client_ca_pem: &str,
) -> Result<Arc<ServerConfig>, PkiError> {
    let certs = parse_certs(chain_pem)?;
    let key = parse_key(key_pem)?;
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(TLS_VERSIONS)?
        .with_client_cert_verifier(client_cert_verifier(client_ca_pem)?)
        .with_single_cert(certs, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A copy of `base` (same certificate resolver, so a reloadable certificate keeps
/// working, and the same ALPN protocols) that also requests a client certificate verified
/// against `client_ca_pem` (see [`client_cert_verifier`]). Other settings of `base` (session
/// cache, tickets, key log) are reset to rustls' defaults.
pub fn with_client_auth(
    base: &ServerConfig,
    client_ca_pem: &str,
) -> Result<Arc<ServerConfig>, PkiError> {
    with_client_verifier(base, client_cert_verifier(client_ca_pem)?)
}

/// Like [`with_client_auth`] with any client-certificate verifier (e.g. one from
/// [`client_cert_verifier_with_crls`]). The copy has a session cache of its own, so no
/// session resumed from `base` skips the new verifier.
pub fn with_client_verifier(
    base: &ServerConfig,
    verifier: Arc<dyn ClientCertVerifier>,
) -> Result<Arc<ServerConfig>, PkiError> {
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(TLS_VERSIONS)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::clone(&base.cert_resolver));
    config.alpn_protocols = base.alpn_protocols.clone();
    Ok(Arc::new(config))
}

/// The identity of a (verified) client certificate: its first URI subject alternative name
/// (e.g. `spiffe://demo/orders-worker`), else its first DNS name, else its subject CN.
/// `None` if the certificate cannot be parsed or has none of these (or only empty or
/// non-printable ones).
pub fn client_identity(cert_der: &[u8]) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    let cert = parse_x509(cert_der).ok()?;
    let usable = |s: &str| {
        !s.is_empty() && s.len() <= 1024 && s.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        let names = &san.value.general_names;
        let uri = names.iter().find_map(|n| match n {
            GeneralName::URI(u) if usable(u) => Some(*u),
            _ => None,
        });
        let dns = || {
            names.iter().find_map(|n| match n {
                GeneralName::DNSName(d) if usable(d) => Some(*d),
                _ => None,
            })
        };
        if let Some(name) = uri.or_else(dns) {
            return Some(name.to_owned());
        }
    }
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .filter(|cn| usable(cn))
        .map(str::to_owned)
}

/// Like [`client_config_with_alpn`], also presenting the client certificate `chain_pem`
/// (leaf first) with its private key `key_pem` (for mTLS clients and tests).
pub fn client_config_with_client_cert(
    ca_pem: &str,
    chain_pem: &str,
    key_pem: &str,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, PkiError> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(ca_pem)? {
        roots.add(cert)?;
    }
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(TLS_VERSIONS)?
        .with_root_certificates(roots)
        .with_client_auth_cert(parse_certs(chain_pem)?, parse_key(key_pem)?)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Builds a TLS client configuration (TLS 1.2 and 1.3 only) that trusts only
/// the CA certificate(s) in `ca_pem`.
pub fn client_config(ca_pem: &str) -> Result<Arc<ClientConfig>, PkiError> {
    client_config_with_alpn(ca_pem, &[])
}

/// Like [`client_config`], also offering the given ALPN protocols.
pub fn client_config_with_alpn(
    ca_pem: &str,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, PkiError> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(ca_pem)? {
        roots.add(cert)?;
    }
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(TLS_VERSIONS)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
