//! Guard configuration and its validation.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use secrecy::SecretString;
use url::{Host, Url};

/// Largest accepted issuer or URL string, in bytes.
pub(crate) const MAX_URL_LEN: usize = 2048;
/// Largest accepted number of configured issuers.
pub const MAX_ISSUERS: usize = 64;

/// A trusted token issuer (a Rampart authorization server or any OAuth2 server that publishes
/// JWKS / PASERK documents or offers introspection).
#[derive(Clone, Default)]
pub struct IssuerConfig {
    /// The exact `iss` value of its tokens.
    pub issuer: String,
    /// JWKS document URL; `None` means `{issuer}/jwks.json`.
    pub jwks_uri: Option<String>,
    /// PASERK document URL; `None` means `{issuer}/paserk.json`.
    pub paserk_uri: Option<String>,
    /// RFC 7662 introspection endpoint; `None` means no introspection at this issuer.
    pub introspection_uri: Option<String>,
    /// Client id for introspection (`client_secret_basic`).
    pub client_id: Option<String>,
    /// Client secret for introspection. Never printed.
    pub client_secret: Option<SecretString>,
    /// Trust only this CA bundle (PEM) for this issuer's URLs; `None` means the platform roots.
    pub ca_pem: Option<String>,
}

impl IssuerConfig {
    /// A configuration for `issuer` with default key URLs and no introspection.
    pub fn new(issuer: impl Into<String>) -> Self {
        IssuerConfig {
            issuer: issuer.into(),
            ..IssuerConfig::default()
        }
    }

    /// The JWKS URL, explicit or derived from the issuer.
    pub fn jwks_url(&self) -> String {
        self.jwks_uri
            .clone()
            .unwrap_or_else(|| format!("{}/jwks.json", self.issuer.trim_end_matches('/')))
    }

    /// The PASERK URL, explicit or derived from the issuer.
    pub fn paserk_url(&self) -> String {
        self.paserk_uri
            .clone()
            .unwrap_or_else(|| format!("{}/paserk.json", self.issuer.trim_end_matches('/')))
    }
}

impl fmt::Debug for IssuerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerConfig")
            .field("issuer", &self.issuer)
            .field("jwks_uri", &self.jwks_uri)
            .field("paserk_uri", &self.paserk_uri)
            .field("introspection_uri", &self.introspection_uri)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "[PEM]"))
            .finish()
    }
}

/// Configuration of a [`Guard`](crate::Guard).
#[derive(Clone, Debug)]
pub struct GuardConfig {
    /// Trusted issuers (distinct `issuer` strings).
    pub issuers: Vec<IssuerConfig>,
    /// Clock leeway for `exp` / `nbf` / `iat`, in seconds. Default 30.
    pub leeway_secs: u64,
    /// An unknown kid triggers a key refetch at most this often per issuer. Default 10 s.
    pub key_refresh_min_interval: Duration,
    /// Keys are refetched at least this often. Default 300 s.
    pub key_max_age: Duration,
    /// Active introspection results are cached at most this long (never past `exp`). Default 60 s.
    pub introspection_ttl: Duration,
    /// Inactive introspection results are cached this long. Default 5 s.
    pub negative_ttl: Duration,
    /// Timeout of every HTTP request to an issuer. Default 5 s.
    pub http_timeout: Duration,
    /// Largest number of entries of each cache. Default 100 000.
    pub max_cache_entries: usize,
}

impl GuardConfig {
    /// A configuration with the default limits.
    pub fn new(issuers: Vec<IssuerConfig>) -> Self {
        GuardConfig {
            issuers,
            leeway_secs: 30,
            key_refresh_min_interval: Duration::from_secs(10),
            key_max_age: Duration::from_secs(300),
            introspection_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(5),
            http_timeout: Duration::from_secs(5),
            max_cache_entries: 100_000,
        }
    }
}

/// A configuration error detected by [`Guard::new`](crate::Guard::new).
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// A URL cannot be parsed, is too long, or carries credentials.
    #[error("invalid URL for issuer {issuer}: {reason}")]
    BadUrl {
        /// The issuer concerned.
        issuer: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A plain `http` URL to a host that is not loopback.
    #[error("http URL not allowed (only https, or http on a loopback host) for issuer {issuer}")]
    HttpNotAllowed {
        /// The issuer concerned.
        issuer: String,
    },
    /// The CA bundle is not valid PEM or holds no certificate.
    #[error("invalid CA PEM for issuer {issuer}")]
    BadCaPem {
        /// The issuer concerned.
        issuer: String,
    },
    /// The same issuer is configured twice, or an issuer string is empty or too long.
    #[error("invalid or duplicate issuer: {0}")]
    BadIssuer(String),
    /// Too many issuers.
    #[error("too many issuers (max {MAX_ISSUERS})")]
    TooManyIssuers,
    /// Only one of `client_id` / `client_secret` is set.
    #[error("issuer {0}: client_id and client_secret must be set together")]
    IncompleteCredentials(String),
    /// A limit is zero or otherwise unusable.
    #[error("invalid limit: {0}")]
    BadLimit(&'static str),
    /// The HTTP client cannot be built.
    #[error("HTTP client: {0}")]
    Http(String),
}

/// Checks that `raw` is an absolute https URL, or http on a loopback host, without userinfo.
pub(crate) fn check_url(issuer: &str, raw: &str) -> Result<Url, GuardError> {
    let bad = |reason| GuardError::BadUrl {
        issuer: issuer.to_owned(),
        reason,
    };
    if raw.len() > MAX_URL_LEN {
        return Err(bad("too long"));
    }
    let url = Url::parse(raw).map_err(|_| bad("cannot be parsed"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not carry a fragment"));
    }
    let host = url.host().ok_or_else(|| bad("no host"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&host) => Ok(url),
        "http" => Err(GuardError::HttpNotAllowed {
            issuer: issuer.to_owned(),
        }),
        _ => Err(bad("scheme must be https")),
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_rules() {
        assert!(check_url("i", "https://idp.example/jwks.json").is_ok());
        assert!(check_url("i", "http://127.0.0.1:8080/x").is_ok());
        assert!(check_url("i", "http://127.8.9.1/x").is_ok());
        assert!(check_url("i", "http://[::1]:9/x").is_ok());
        assert!(check_url("i", "http://localhost/x").is_ok());
        assert!(matches!(
            check_url("i", "http://idp.example/x"),
            Err(GuardError::HttpNotAllowed { .. })
        ));
        assert!(matches!(
            check_url("i", "http://10.0.0.1/x"),
            Err(GuardError::HttpNotAllowed { .. })
        ));
        assert!(matches!(
            check_url("i", "http://localhost.evil.example/x"),
            Err(GuardError::HttpNotAllowed { .. })
        ));
        assert!(check_url("i", "ftp://idp.example/x").is_err());
        assert!(check_url("i", "https://user:pw@idp.example/x").is_err());
        assert!(check_url("i", "not a url").is_err());
    }

    #[test]
    fn debug_redacts_secret() {
        let mut c = IssuerConfig::new("https://idp.example");
        c.client_id = Some("gw".into());
        c.client_secret = Some(SecretString::from("hunter2-very-secret"));
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("REDACTED"));
    }
}
