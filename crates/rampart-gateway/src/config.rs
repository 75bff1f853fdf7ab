//! The `[gateway]` configuration table and its validation.
//!
//! Every key name here is part of the external contract (tools outside the project write these
//! files), so every struct denies unknown fields and every validation error names the key.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// Why a configuration was rejected. The message names the offending key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The key, e.g. `gateway.routes[orders].audience`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// A new error for `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// The `[gateway]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Where the binary serves the gateway over HTTPS; default `127.0.0.1:9443`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where the binary serves `/metrics`, `/healthz` and `/readyz` (plain HTTP, keep it on
    /// loopback or a private network); default `127.0.0.1:9901`.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: SocketAddr,
    /// A plain-HTTP listener that only redirects (308) to the same host and path on `listen`'s
    /// port; nothing is routed over it. Unset: none.
    #[serde(default)]
    pub http_redirect_listen: Option<SocketAddr>,
    /// A plain-HTTP listener serving the routes like `listen`, without TLS, for clients on the
    /// same machine (a sidecar): loopback addresses only. Unset: none.
    #[serde(default)]
    pub plain_http_listen: Option<SocketAddr>,
    /// Clock skew tolerated on `exp`/`nbf`, seconds; default 30.
    #[serde(default = "default_token_leeway")]
    pub token_leeway: u64,
    /// Longest time an active introspection result is reused (never past the token's
    /// expiry), seconds; default 60.
    #[serde(default = "default_introspection_cache_ttl")]
    pub introspection_cache_ttl: u64,
    /// How long an inactive introspection result is reused, seconds; default 5.
    #[serde(default = "default_negative_cache_ttl")]
    pub negative_cache_ttl: u64,
    /// PEM certificate chain for the listener.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for the listener.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Peers (CIDRs or single addresses) whose `X-Forwarded-For` is trusted.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Extra inbound identity headers to remove, on top of the built-in list.
    #[serde(default)]
    pub strip_headers: Vec<String>,
    /// The request header carrying an API key (routes with `api_key`); default `X-API-Key`.
    /// Always removed before forwarding upstream.
    #[serde(default = "default_api_key_header")]
    pub api_key_header: String,
    /// PEM bundle of the CAs whose client certificates the listener verifies (routes with
    /// `mtls`). When set, the listener asks every client for a certificate; one is optional,
    /// but a certificate that does not verify fails the handshake. Read again on reload and
    /// whenever the file changes (new connections use the new bundle).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// PEM file of certificate revocation lists (one per CA of `client_ca_file`): a client
    /// certificate listed there fails the handshake, and so does one from a CA without a list
    /// in the file. Read again on reload and whenever the file changes. Needs
    /// `client_ca_file`.
    #[serde(default)]
    pub client_crl_file: Option<PathBuf>,
    /// Redis shared by the gateway replicas (`redis://host:port[/db]`): when set, every route
    /// with a `rate_limit` is limited across all replicas by an atomic GCRA script in Redis
    /// (see [`crate::redis_limiter`]). Unset: each replica limits alone, in memory.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// TLS to Redis, for a `rediss://` `redis_url`: the CA (and, for Redis' default
    /// `tls-auth-clients yes`, the client certificate). Without it a `rediss://` URL trusts the
    /// system's CA certificates.
    #[serde(default)]
    pub redis_tls: Option<ClientTlsFiles>,
    /// Longest wait for one Redis rate-limit decision, milliseconds; default 100. Past it, or
    /// when Redis is unreachable, the request is limited by the local limiter instead.
    #[serde(default = "default_redis_timeout_ms")]
    pub redis_timeout_ms: u64,
    /// TLS to `https://` upstreams (required when a route has one).
    #[serde(default)]
    pub upstream_tls: Option<ClientTlsFiles>,
    /// Threads serving the listener, each with its own event loop and its own connections
    /// to the upstreams (as Envoy's workers or nginx's worker processes); connections are
    /// spread over them by the kernel. Default: the number of CPUs the process may use.
    /// Needs a restart to change.
    #[serde(default)]
    pub workers: Option<usize>,
    /// Size and time bounds.
    #[serde(default)]
    pub limits: Limits,
    /// Cedar policies every request on a non-public route must pass (`[gateway.policy]`).
    #[serde(default)]
    pub policy: Option<crate::policy::PolicyConfig>,
    /// What the audit log masks (`[gateway.audit]`).
    #[serde(default)]
    pub audit: crate::audit::AuditConfig,
    /// Token issuers the authenticator trusts (consumed by the authenticator's builder).
    #[serde(default)]
    pub issuers: Vec<IssuerConfig>,
    /// Routes.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// The files of the gateway as a TLS client (`[gateway.upstream_tls]` for `https://`
/// upstreams, `[gateway.redis_tls]` for `rediss://`). Files are read when the configuration is
/// (re)loaded, so a rotated client certificate applies on reload.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsFiles {
    /// CA certificates (PEM) the servers' certificates must chain to; the host in the URL
    /// (DNS name or IP address) must be in the certificate. No other roots are trusted.
    pub ca_file: PathBuf,
    /// Certificate chain (PEM) the gateway presents to servers that ask for one (mutual
    /// TLS); set together with `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Private key (PEM) of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// The contents of a [`ClientTlsFiles`] (PEM).
#[derive(Clone)]
pub struct ClientTlsPem {
    /// `ca_file`.
    pub ca: String,
    /// `cert_file` and `key_file`, when set.
    pub identity: Option<(String, String)>,
}

impl std::fmt::Debug for ClientTlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTlsPem")
            .field("ca", &self.ca)
            .field("identity", &self.identity.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

impl ClientTlsFiles {
    /// Reads the files; an unreadable one is an error naming `{section}.{key}` (e.g.
    /// `gateway.upstream_tls.ca_file`).
    pub fn read(&self, section: &str) -> Result<ClientTlsPem, ConfigError> {
        let read = |key: &str, path: &std::path::Path| {
            std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    format!("{section}.{key}"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })
        };
        let identity = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some((read("cert_file", cert)?, read("key_file", key)?)),
            _ => None,
        };
        Ok(ClientTlsPem {
            ca: read("ca_file", &self.ca_file)?,
            identity,
        })
    }
}

/// Most worker threads `gateway.workers` may ask for.
pub const MAX_WORKERS: usize = 256;

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9443))
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9901))
}

fn default_api_key_header() -> String {
    "X-API-Key".into()
}

fn default_redis_timeout_ms() -> u64 {
    100
}

fn default_token_leeway() -> u64 {
    30
}

fn default_introspection_cache_ttl() -> u64 {
    60
}

fn default_negative_cache_ttl() -> u64 {
    5
}

/// `[gateway.limits]`; every key optional.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest total size of the request headers, bytes (enforced by the listener and checked
    /// again by the gateway: 431).
    pub max_header_bytes: usize,
    /// Most request header fields (enforced by the listener and checked again by the gateway:
    /// 431).
    pub max_headers: usize,
    /// Largest request body, bytes (413 above it).
    pub max_body_bytes: u64,
    /// Seconds to receive the request head (enforced by the listener).
    pub header_read_timeout: u64,
    /// Seconds to wait for the upstream's response head (504 after it).
    pub upstream_timeout: u64,
    /// Most concurrent connections (enforced by the listener).
    pub max_connections: usize,
    /// Seconds a keep-alive connection may stay idle (no request in progress) before the
    /// listener closes it; default: `header_read_timeout`. For HTTP/1.1 the idle time runs
    /// from the end of the last response to the first byte of the next request, and
    /// `header_read_timeout` then from that first byte (for the first request: from the end of
    /// the TLS handshake) to the end of the request head; for HTTP/2 the idle time runs from
    /// the end of the last stream (or the handshake) to the start of the next one. A request in
    /// progress is never cut by it. Enforced by the listener: changing it needs a restart.
    pub idle_timeout: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 16384,
            max_headers: 100,
            max_body_bytes: 1_048_576,
            header_read_timeout: 10,
            upstream_timeout: 30,
            max_connections: 10000,
            idle_timeout: None,
        }
    }
}

/// `[[gateway.issuers]]`: used to build the authenticator; the gateway only validates it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The `iss` value.
    pub issuer: String,
    /// JWKS endpoint.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// RFC 7662 introspection endpoint.
    #[serde(default)]
    pub introspection_uri: Option<String>,
    /// Client id for introspection.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Name of the environment variable holding the introspection client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// CA bundle to trust for this issuer.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// `[[gateway.routes]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Unique id, used in metrics, audit records and rate-limit keys.
    pub id: String,
    /// What requests the route takes (the `match` key).
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    /// Upstream base URLs (`http://host:port`, or `https://` with `[gateway.upstream_tls]`),
    /// used round robin.
    pub upstreams: Vec<String>,
    /// Accepted credential kinds: `jwt`, `paseto`, `introspection` (a bearer token),
    /// `api_key` (the `api_key_header` header, checked by introspection), `mtls` (a client
    /// certificate verified against `client_ca_file`); or `["public"]`. Precedence when several
    /// are present: a bearer token (if a token kind is listed), then an API key, then the
    /// client certificate.
    pub auth: Vec<String>,
    /// Audience the token must carry; required unless public.
    #[serde(default)]
    pub audience: Option<String>,
    /// Scopes the principal must hold. A client certificate (`mtls`) carries none, so a route
    /// accepting only `mtls` with required scopes denies every request (403).
    #[serde(default)]
    pub require_scopes: Vec<String>,
    /// Optional rate limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    /// Forward the caller's `Authorization` header upstream.
    #[serde(default)]
    pub forward_token: bool,
    /// Optional active health check of the route's upstreams.
    #[serde(default)]
    pub health_check: Option<HealthCheckConfig>,
}

/// A route's `health_check` table: every `interval` seconds, each upstream of the route gets a
/// plain HTTP `GET {upstream}{path}`; a 2xx answer within `timeout` seconds is a success,
/// anything else a failure. An upstream is marked down after `unhealthy_after` consecutive
/// failures and up again after `healthy_after` consecutive successes (its first probe decides
/// at once). Down upstreams get no traffic while another upstream of the route is not down.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// Path (and optional query) to probe, e.g. `/healthz`; appended to the upstream URL.
    pub path: String,
    /// Seconds between probes; default 5.
    #[serde(default = "default_hc_interval")]
    pub interval: u64,
    /// Seconds to wait for the answer; default 2; at most `interval`.
    #[serde(default = "default_hc_timeout")]
    pub timeout: u64,
    /// Consecutive failures that mark an upstream down; default 2.
    #[serde(default = "default_hc_threshold")]
    pub unhealthy_after: u32,
    /// Consecutive successes that mark a down upstream up again; default 2.
    #[serde(default = "default_hc_threshold")]
    pub healthy_after: u32,
}

fn default_hc_interval() -> u64 {
    5
}

fn default_hc_timeout() -> u64 {
    2
}

fn default_hc_threshold() -> u32 {
    2
}

/// The `match` table of a route.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// Host (without port), case-insensitive; any host when absent.
    #[serde(default)]
    pub host: Option<String>,
    /// Path prefix, matched on segment boundaries.
    pub path_prefix: String,
    /// Allowed methods; all when absent.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
}

/// A route's `rate_limit` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// `ip` (checked before authentication), `client_id`, `sub` or `api_key` (after it).
    /// `api_key` keys by a SHA-256 fingerprint of the key (never the key); requests
    /// authenticated otherwise (or on a route without `api_key`) are keyed by `client_id`
    /// (else `sub`).
    pub key: String,
    /// Sustained rate; must be > 0.
    pub per_second: f64,
    /// Requests allowed at once above the sustained rate (at least 1 is used).
    pub burst: u32,
    /// Consecutive rejections after which the key is blocked; 0 = never.
    #[serde(default)]
    pub block_after: u32,
    /// Seconds a blocked key stays blocked.
    #[serde(default = "default_block_for")]
    pub block_for: u64,
}

fn default_block_for() -> u64 {
    60
}

/// Credential kinds a route may list.
pub const AUTH_KINDS: [&str; 6] = [
    "jwt",
    "paseto",
    "introspection",
    "api_key",
    "mtls",
    "public",
];
/// Rate-limit keys.
pub const RATE_KEYS: [&str; 4] = ["ip", "client_id", "sub", "api_key"];

fn check_url(key: &str, value: &str, allow_path: bool) -> Result<http::Uri, ConfigError> {
    let uri: http::Uri = value
        .parse()
        .map_err(|_| ConfigError::new(key, "not a valid URL"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(ConfigError::new(key, "must be an http or https URL")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(ConfigError::new(key, "URL must have a host"));
    }
    if uri.query().is_some() {
        return Err(ConfigError::new(key, "URL must not have a query"));
    }
    if !allow_path && !matches!(uri.path(), "" | "/") {
        return Err(ConfigError::new(key, "URL must not have a path"));
    }
    Ok(uri)
}

fn is_header_name(value: &str) -> bool {
    !value.is_empty() && http::HeaderName::from_bytes(value.as_bytes()).is_ok()
}

/// Parses a trusted-proxy entry: a CIDR or a single address.
pub(crate) fn parse_net(value: &str) -> Option<ipnet::IpNet> {
    value.parse::<ipnet::IpNet>().ok().or_else(|| {
        value
            .parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

impl GatewayConfig {
    /// Checks everything serde cannot; errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::new(
                "gateway.tls_cert",
                "tls_cert and tls_key must be set together",
            ));
        }
        if let Some(addr) = self.plain_http_listen
            && !addr.ip().is_loopback()
        {
            return Err(ConfigError::new(
                "gateway.plain_http_listen",
                "must be a loopback address: plain HTTP is never served to the network \
                 (use http_redirect_listen to send clients to HTTPS)",
            ));
        }
        if self.client_crl_file.is_some() && self.client_ca_file.is_none() {
            return Err(ConfigError::new(
                "gateway.client_crl_file",
                "needs gateway.client_ca_file (the CAs whose certificates it revokes)",
            ));
        }
        for (key, files) in [
            ("gateway.upstream_tls", &self.upstream_tls),
            ("gateway.redis_tls", &self.redis_tls),
        ] {
            if let Some(t) = files
                && t.cert_file.is_some() != t.key_file.is_some()
            {
                return Err(ConfigError::new(
                    format!("{key}.cert_file"),
                    "cert_file and key_file must be set together",
                ));
            }
        }
        if let Some(w) = self.workers
            && !(1..=MAX_WORKERS).contains(&w)
        {
            return Err(ConfigError::new(
                "gateway.workers",
                format!("must be between 1 and {MAX_WORKERS}"),
            ));
        }
        for (i, p) in self.trusted_proxies.iter().enumerate() {
            if parse_net(p).is_none() {
                return Err(ConfigError::new(
                    format!("gateway.trusted_proxies[{i}]"),
                    "not a CIDR or IP address",
                ));
            }
        }
        self.audit.validate()?;
        for (i, h) in self.strip_headers.iter().enumerate() {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(ConfigError::new(
                    format!("gateway.strip_headers[{i}]"),
                    "not a valid header name",
                ));
            }
        }
        if !is_header_name(&self.api_key_header)
            || self.api_key_header.eq_ignore_ascii_case("authorization")
            || self
                .api_key_header
                .to_ascii_lowercase()
                .starts_with(crate::identity::RAMPART_PREFIX)
        {
            return Err(ConfigError::new(
                "gateway.api_key_header",
                "must be a valid header name other than Authorization and X-Rampart-*",
            ));
        }
        if self
            .client_ca_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(ConfigError::new(
                "gateway.client_ca_file",
                "must not be empty",
            ));
        }
        self.validate_limits()?;
        self.validate_redis()?;
        if self.token_leeway > 300 {
            return Err(ConfigError::new(
                "gateway.token_leeway",
                "must be at most 300 seconds",
            ));
        }
        if self.introspection_cache_ttl > 3600 {
            return Err(ConfigError::new(
                "gateway.introspection_cache_ttl",
                "must be at most 3600 seconds",
            ));
        }
        if self.negative_cache_ttl > 300 {
            return Err(ConfigError::new(
                "gateway.negative_cache_ttl",
                "must be at most 300 seconds",
            ));
        }
        for (i, iss) in self.issuers.iter().enumerate() {
            let k = format!("gateway.issuers[{i}]");
            if iss.issuer.trim().is_empty() {
                return Err(ConfigError::new(format!("{k}.issuer"), "must not be empty"));
            }
            if let Some(u) = &iss.jwks_uri {
                check_url(&format!("{k}.jwks_uri"), u, true)?;
            }
            if let Some(u) = &iss.introspection_uri {
                check_url(&format!("{k}.introspection_uri"), u, true)?;
            }
        }
        let mut ids = HashSet::new();
        for route in &self.routes {
            let k = format!("gateway.routes[{}]", route.id);
            if route.id.is_empty()
                || route.id.len() > 64
                || !route
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                return Err(ConfigError::new(
                    format!("{k}.id"),
                    "must be 1-64 characters of A-Z a-z 0-9 - _ .",
                ));
            }
            if !ids.insert(route.id.as_str()) {
                return Err(ConfigError::new(format!("{k}.id"), "duplicate route id"));
            }
            route.validate(&k)?;
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let checks = [
            ("max_header_bytes", l.max_header_bytes as u64),
            ("max_headers", l.max_headers as u64),
            ("max_body_bytes", l.max_body_bytes),
            ("header_read_timeout", l.header_read_timeout),
            ("upstream_timeout", l.upstream_timeout),
            ("max_connections", l.max_connections as u64),
        ];
        for (name, v) in checks {
            if v == 0 {
                return Err(ConfigError::new(
                    format!("gateway.limits.{name}"),
                    "must be greater than 0",
                ));
            }
        }
        if l.idle_timeout == Some(0) {
            return Err(ConfigError::new(
                "gateway.limits.idle_timeout",
                "must be greater than 0 when set",
            ));
        }
        Ok(())
    }

    fn validate_redis(&self) -> Result<(), ConfigError> {
        if self.redis_tls.is_some() && self.redis_url.is_none() {
            return Err(ConfigError::new(
                "gateway.redis_tls",
                "set, but gateway.redis_url is not",
            ));
        }
        if let Some(url) = &self.redis_url {
            let parsed = url::Url::parse(url)
                .map_err(|_| ConfigError::new("gateway.redis_url", "not a valid URL"))?;
            match parsed.scheme() {
                "redis" if self.redis_tls.is_some() => {
                    return Err(ConfigError::new(
                        "gateway.redis_tls",
                        "set, but gateway.redis_url is not a rediss:// URL",
                    ));
                }
                "redis" | "rediss" => {}
                _ => {
                    return Err(ConfigError::new(
                        "gateway.redis_url",
                        "must be a redis:// or rediss:// URL",
                    ));
                }
            }
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(ConfigError::new(
                    "gateway.redis_url",
                    "URL must have a host",
                ));
            }
        }
        if self.redis_timeout_ms == 0 || self.redis_timeout_ms > 10_000 {
            return Err(ConfigError::new(
                "gateway.redis_timeout_ms",
                "must be between 1 and 10000",
            ));
        }
        Ok(())
    }
}

impl RouteConfig {
    /// Whether the route is public (no authentication).
    pub fn is_public(&self) -> bool {
        self.auth.iter().any(|a| a == "public")
    }

    fn validate(&self, k: &str) -> Result<(), ConfigError> {
        let m = &self.matcher;
        if let Some(host) = &m.host
            && (host.is_empty()
                || host.len() > 253
                || !host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        {
            return Err(ConfigError::new(
                format!("{k}.match.host"),
                "must be a host name without port",
            ));
        }
        if !m.path_prefix.starts_with('/')
            || crate::path::check_target(&m.path_prefix).is_err()
            || m.path_prefix.contains('?')
        {
            return Err(ConfigError::new(
                format!("{k}.match.path_prefix"),
                "must be a clean absolute path starting with /",
            ));
        }
        if let Some(methods) = &m.methods {
            if methods.is_empty() {
                return Err(ConfigError::new(
                    format!("{k}.match.methods"),
                    "must not be empty when present",
                ));
            }
            for meth in methods {
                if http::Method::from_bytes(meth.as_bytes()).is_err()
                    || meth.chars().any(|c| c.is_ascii_lowercase())
                {
                    return Err(ConfigError::new(
                        format!("{k}.match.methods"),
                        format!("invalid method {meth:?} (use upper case)"),
                    ));
                }
            }
        }
        if self.upstreams.is_empty() {
            return Err(ConfigError::new(
                format!("{k}.upstreams"),
                "at least one upstream is required",
            ));
        }
        for (i, u) in self.upstreams.iter().enumerate() {
            check_url(&format!("{k}.upstreams[{i}]"), u, true)?;
        }
        if self.auth.is_empty() {
            return Err(ConfigError::new(
                format!("{k}.auth"),
                "must list at least one kind",
            ));
        }
        for a in &self.auth {
            if !AUTH_KINDS.contains(&a.as_str()) {
                return Err(ConfigError::new(
                    format!("{k}.auth"),
                    format!("unknown auth kind {a:?} (expected one of {AUTH_KINDS:?})"),
                ));
            }
        }
        if self.is_public() && self.auth.len() > 1 {
            return Err(ConfigError::new(
                format!("{k}.auth"),
                "\"public\" cannot be combined with other kinds",
            ));
        }
        if self.is_public() {
            if !self.require_scopes.is_empty() {
                return Err(ConfigError::new(
                    format!("{k}.require_scopes"),
                    "a public route cannot require scopes",
                ));
            }
        } else if self.audience.as_deref().is_none_or(|a| a.trim().is_empty()) {
            return Err(ConfigError::new(
                format!("{k}.audience"),
                "required unless the route is public",
            ));
        }
        if let Some(rl) = &self.rate_limit {
            if !RATE_KEYS.contains(&rl.key.as_str()) {
                return Err(ConfigError::new(
                    format!("{k}.rate_limit.key"),
                    format!("unknown key {:?} (expected one of {RATE_KEYS:?})", rl.key),
                ));
            }
            if self.is_public() && rl.key != "ip" {
                return Err(ConfigError::new(
                    format!("{k}.rate_limit.key"),
                    "a public route can only be limited by ip",
                ));
            }
            if !(rl.per_second.is_finite() && rl.per_second > 0.0) {
                return Err(ConfigError::new(
                    format!("{k}.rate_limit.per_second"),
                    "must be greater than 0",
                ));
            }
            if rl.block_after > 0 && rl.block_for == 0 {
                return Err(ConfigError::new(
                    format!("{k}.rate_limit.block_for"),
                    "must be greater than 0 when block_after is set",
                ));
            }
        }
        if let Some(hc) = &self.health_check {
            hc.validate(&format!("{k}.health_check"))?;
        }
        Ok(())
    }
}

impl HealthCheckConfig {
    fn validate(&self, k: &str) -> Result<(), ConfigError> {
        let path_ok = self.path.starts_with('/')
            && self.path.len() <= 1024
            && crate::path::check_target(&self.path).is_ok()
            && self.path.parse::<http::uri::PathAndQuery>().is_ok();
        if !path_ok {
            return Err(ConfigError::new(
                format!("{k}.path"),
                "must be a clean absolute path starting with / (at most 1024 bytes)",
            ));
        }
        if self.interval == 0 || self.interval > 3600 {
            return Err(ConfigError::new(
                format!("{k}.interval"),
                "must be between 1 and 3600 seconds",
            ));
        }
        if self.timeout == 0 || self.timeout > self.interval {
            return Err(ConfigError::new(
                format!("{k}.timeout"),
                "must be at least 1 second and at most the interval",
            ));
        }
        for (name, v) in [
            ("unhealthy_after", self.unhealthy_after),
            ("healthy_after", self.healthy_after),
        ] {
            if v == 0 || v > 100 {
                return Err(ConfigError::new(
                    format!("{k}.{name}"),
                    "must be between 1 and 100",
                ));
            }
        }
        Ok(())
    }
}
