//! The configuration file (TOML) and its environment overrides.
//!
//! Every key can be set in the file or by an environment variable
//! `RAMPART_<SECTION>_<KEY>` (e.g. `RAMPART_SERVER_LISTEN`, `RAMPART_TOKENS_DEFAULT_TTL`),
//! which wins over the file. Unknown sections or keys are errors that name the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `[server]`.
    pub server: ServerSettings,
    /// `[database]`: SQLite in the data directory unless a PostgreSQL URL is set.
    pub database: DatabaseSettings,
    /// `[tokens]`.
    pub tokens: TokenSettings,
    /// `[keys]`.
    pub keys: KeySettings,
    /// `[limits]`.
    pub limits: LimitSettings,
    /// `[login]`: sign-in of people (sessions, codes, refresh tokens, password hashing).
    pub login: LoginSettings,
    /// `[gateway]`: when present, `serve` also runs the gateway; `rampart gateway` needs it.
    #[serde(skip_serializing)]
    pub gateway: Option<rampart_gateway::GatewayConfig>,
}

/// `[server]`: where and how the authorization server listens.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// HTTPS listen address.
    pub listen: SocketAddr,
    /// Issuer URL; `https://<listen address>` when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Data directory (database, master key, dev CA).
    pub data_dir: PathBuf,
    /// PEM certificate chain; the dev CA issues one when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// `text` or `json` log lines.
    pub log_format: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            issuer: None,
            data_dir: PathBuf::from("./rampart-data"),
            tls_cert: None,
            tls_key: None,
            log_format: "text".to_owned(),
        }
    }
}

/// `[database]`: where the state lives.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `postgres://user:password@host:port/database` (query parameters such as
    /// `sslmode=verify-full&sslrootcert=ca.pem` allowed): the scale-out store, shared by
    /// several servers. Unset: SQLite, `rampart.db` in the data directory. Set it with
    /// `RAMPART_DATABASE_URL` to keep the password out of the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// PostgreSQL: connections kept at most per process.
    pub max_connections: u32,
    /// PostgreSQL: seconds to wait for a connection before a request fails.
    pub acquire_timeout: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
            acquire_timeout: 5,
        }
    }
}

impl std::fmt::Debug for DatabaseSettings {
    // The URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &self.url.as_ref().map(|_| "(set)"))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// `[tokens]`: access-token policy.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    /// Default access-token lifetime, seconds.
    pub default_ttl: i64,
    /// Longest access-token lifetime any client may get, seconds.
    pub max_ttl: i64,
    /// Clock skew tolerance, seconds.
    pub leeway: u64,
    /// Algorithm of new JWT signing keys: `EdDSA`, `ES256` or `RS256`.
    pub jwt_alg: String,
    /// Algorithm of new ID-token signing keys: `RS256` (what every OpenID Connect relying
    /// party supports), `ES256` or `EdDSA`.
    pub id_token_alg: String,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            default_ttl: 600,
            max_ttl: 86_400,
            leeway: 30,
            jwt_alg: "EdDSA".to_owned(),
            id_token_alg: "RS256".to_owned(),
        }
    }
}

/// `[keys]`: signing key rotation.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    /// Rotate every family's signing key after this many seconds; 0 disables.
    pub rotation_interval: i64,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            rotation_interval: 30 * 86_400,
        }
    }
}

/// `[login]`: how people sign in.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSettings {
    /// A browser session ends after this much inactivity, seconds.
    pub session_idle: i64,
    /// A browser session ends this long after sign-in, seconds.
    pub session_max: i64,
    /// Authorization code lifetime, seconds.
    pub code_ttl: i64,
    /// Time a user has to finish signing in, seconds.
    pub request_ttl: i64,
    /// A refresh token expires after this long unused, seconds.
    pub refresh_idle: i64,
    /// Refresh tokens of a sign-in stop working this long after it, seconds.
    pub refresh_max: i64,
    /// ID token lifetime, seconds.
    pub id_token_ttl: i64,
    /// Argon2id memory cost, KiB (at least the OWASP 19456).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations (at least 2).
    pub argon2_iterations: u32,
    /// Password hashes computed at once; 0 = number of CPUs.
    pub max_concurrent_hashes: usize,
    /// Password hashes allowed to wait; beyond that logins get 503 at once.
    pub max_queued_hashes: usize,
    /// Failures per account before sign-in attempts are delayed (doubling from 1 s).
    pub account_free_failures: u32,
    /// Failures per account that lock it for `lockout_secs`.
    pub account_lockout_after: u32,
    /// Failures per client address before its attempts are delayed.
    pub address_free_failures: u32,
    /// Failures per client address that lock it for `lockout_secs`.
    pub address_lockout_after: u32,
    /// Length of a lockout, seconds.
    pub lockout_secs: u64,
    /// URL that receives security events (JSON POST).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_webhook: Option<String>,
    /// `redis://[user:password@]host:port[/db]` (`rediss://` for TLS, system CAs): failure
    /// counters shared by every server
    /// (replicas on one PostgreSQL database); unset, each server counts its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<RedactedUrl>,
    /// Longest wait for Redis per sign-in attempt, milliseconds (then the server's own
    /// counters decide).
    pub redis_timeout_ms: u64,
    /// For a `rediss://` `redis_url`: PEM CA certificates the Redis certificate must chain
    /// to (then no other CA is trusted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_ca_file: Option<PathBuf>,
    /// PEM client certificate chain presented to Redis (`tls-auth-clients yes`); with
    /// `redis_key_file` and `redis_ca_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_cert_file: Option<PathBuf>,
    /// PEM private key of `redis_cert_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_key_file: Option<PathBuf>,
    /// Seconds after a sign-in within which a second factor may be added from the account
    /// page; later the password is asked again (`/account/confirm`).
    pub reauth_window: i64,
}

/// A URL that may hold a password: `Debug` does not show it.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct RedactedUrl(pub String);

impl std::fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedactedUrl(..)")
    }
}

impl Default for LoginSettings {
    fn default() -> Self {
        let d = rampart_idp::config::PeopleConfig::default();
        Self {
            session_idle: d.session_idle_secs,
            session_max: d.session_max_secs,
            code_ttl: d.code_ttl_secs,
            request_ttl: d.auth_request_ttl_secs,
            refresh_idle: d.refresh_idle_secs,
            refresh_max: d.refresh_max_secs,
            id_token_ttl: d.id_token_ttl_secs,
            argon2_memory_kib: d.argon2_memory_kib,
            argon2_iterations: d.argon2_iterations,
            max_concurrent_hashes: d.max_concurrent_hashes,
            max_queued_hashes: d.max_queued_hashes,
            account_free_failures: d.throttle.free_failures,
            account_lockout_after: d.throttle.lockout_after,
            address_free_failures: d.throttle.ip_free_failures,
            address_lockout_after: d.throttle.ip_lockout_after,
            lockout_secs: d.throttle.lockout_for.as_secs(),
            security_webhook: None,
            redis_url: None,
            redis_timeout_ms: 100,
            redis_ca_file: None,
            redis_cert_file: None,
            redis_key_file: None,
            reauth_window: d.reauth_window_secs,
        }
    }
}

/// `[limits]`: bounds on every input.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Most concurrent connections; more are refused.
    pub max_connections: usize,
    /// Time to complete the TLS handshake, seconds.
    pub handshake_timeout: u64,
    /// Time to send the request headers, seconds (slow-header clients are cut off).
    pub header_read_timeout: u64,
    /// Time to answer one request, seconds.
    pub request_timeout: u64,
    /// Largest request head (request line and headers), bytes.
    pub max_header_bytes: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024,
            max_connections: 10_000,
            handshake_timeout: 10,
            header_read_timeout: 10,
            request_timeout: 30,
            max_header_bytes: 16 * 1024,
        }
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file or an override is not valid.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Where the store is: PostgreSQL when `[database] url` is set, else SQLite in the data
    /// directory.
    pub fn store_location(&self) -> rampart_store::Location {
        match &self.database.url {
            Some(url) => rampart_store::Location::Postgres {
                url: url.clone(),
                options: rampart_store::PostgresOptions {
                    max_connections: self.database.max_connections,
                    acquire_timeout: std::time::Duration::from_secs(self.database.acquire_timeout),
                },
            },
            None => rampart_store::Location::Sqlite(self.server.data_dir.join("rampart.db")),
        }
    }

    /// Reads `path` (if any), applies `RAMPART_<SECTION>_<KEY>` environment overrides, and
    /// validates the result.
    pub fn load(path: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// [`Settings::load`] with an explicit environment, for tests.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| SettingsError::Read {
                path: p.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        let mut table: toml::Table =
            toml::from_str(&text).map_err(|e| SettingsError::Invalid(e.to_string()))?;
        let known = known_keys();
        for (section, value) in &table {
            let Some((_, keys)) = known.iter().find(|(s, _)| s == section) else {
                return Err(SettingsError::Invalid(format!(
                    "unknown section [{section}]"
                )));
            };
            let Some(entries) = value.as_table() else {
                return Err(SettingsError::Invalid(format!(
                    "[{section}] must be a table"
                )));
            };
            if section == "gateway" {
                // Nested tables and arrays: its own deny_unknown_fields names the key.
                continue;
            }
            for key in entries.keys() {
                if !keys.contains(key) {
                    return Err(SettingsError::Invalid(format!(
                        "unknown key {section}.{key}"
                    )));
                }
            }
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("RAMPART_") else {
                continue;
            };
            let Some((section, keys)) = known.iter().find(|(s, _)| {
                rest.strip_prefix(&s.to_uppercase())
                    .is_some_and(|r| r.starts_with('_'))
            }) else {
                continue;
            };
            let key_part = &rest[section.len() + 1..];
            let Some(key) = keys.iter().find(|k| k.to_uppercase() == key_part) else {
                return Err(SettingsError::Invalid(format!(
                    "environment variable {name} names no key of [{section}]"
                )));
            };
            if section == "gateway" && !table.contains_key("gateway") {
                return Err(SettingsError::Invalid(format!(
                    "environment variable {name} is set but the configuration has no [gateway] section"
                )));
            }
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let Some(t) = entry.as_table_mut() {
                t.insert(key.clone(), env_value(&value));
            }
        }
        let merged = toml::to_string(&table).map_err(|e| SettingsError::Invalid(e.to_string()))?;
        let settings: Settings =
            toml::from_str(&merged).map_err(|e| SettingsError::Invalid(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let bad = |key: &str, why: &str| Err(SettingsError::Invalid(format!("{key}: {why}")));
        if let Some(issuer) = &self.server.issuer {
            match url::Url::parse(issuer) {
                Ok(u)
                    if u.scheme() == "https"
                        && u.query().is_none()
                        && u.fragment().is_none()
                        && !issuer.ends_with('/') => {}
                _ => {
                    return bad(
                        "server.issuer",
                        "must be an https URL without query, fragment or trailing slash",
                    );
                }
            }
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return bad(
                "server.tls_cert",
                "tls_cert and tls_key must be set together",
            );
        }
        if let Some(url) = &self.database.url {
            // The URL is not repeated in the message: it may hold a password.
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "postgres" | "postgresql") && u.has_host() => {}
                _ => {
                    return bad(
                        "database.url",
                        "must be a postgres:// or postgresql:// URL with a host",
                    );
                }
            }
        }
        if !(1..=1000).contains(&self.database.max_connections) {
            return bad("database.max_connections", "must be between 1 and 1000");
        }
        if !(1..=300).contains(&self.database.acquire_timeout) {
            return bad(
                "database.acquire_timeout",
                "must be between 1 and 300 seconds",
            );
        }
        if !matches!(self.server.log_format.as_str(), "text" | "json") {
            return bad("server.log_format", "must be \"text\" or \"json\"");
        }
        if self.tokens.default_ttl < 1 || self.tokens.default_ttl > self.tokens.max_ttl {
            return bad("tokens.default_ttl", "must be between 1 and tokens.max_ttl");
        }
        if self.tokens.max_ttl < 1 || self.tokens.max_ttl > 7 * 86_400 {
            return bad("tokens.max_ttl", "must be between 1 and 604800 (7 days)");
        }
        if self.tokens.leeway > 300 {
            return bad("tokens.leeway", "must be at most 300 seconds");
        }
        if rampart_idp::endpoints::admin::parse_jwt_alg(&self.tokens.jwt_alg).is_none() {
            return bad("tokens.jwt_alg", "must be EdDSA, ES256 or RS256");
        }
        if rampart_idp::endpoints::admin::parse_jwt_alg(&self.tokens.id_token_alg).is_none() {
            return bad("tokens.id_token_alg", "must be RS256, ES256 or EdDSA");
        }
        if self.keys.rotation_interval < 0
            || (self.keys.rotation_interval > 0 && self.keys.rotation_interval < 60)
        {
            return bad(
                "keys.rotation_interval",
                "must be 0 (off) or at least 60 seconds",
            );
        }
        let l = &self.limits;
        if !(1024..=1024 * 1024).contains(&l.max_body_bytes) {
            return bad("limits.max_body_bytes", "must be between 1024 and 1048576");
        }
        if !(1..=1_000_000).contains(&l.max_connections) {
            return bad("limits.max_connections", "must be between 1 and 1000000");
        }
        for (key, v) in [
            ("limits.handshake_timeout", l.handshake_timeout),
            ("limits.header_read_timeout", l.header_read_timeout),
            ("limits.request_timeout", l.request_timeout),
        ] {
            if !(1..=600).contains(&v) {
                return bad(key, "must be between 1 and 600 seconds");
            }
        }
        if !(4096..=1024 * 1024).contains(&l.max_header_bytes) {
            return bad(
                "limits.max_header_bytes",
                "must be between 4096 and 1048576",
            );
        }
        let g = &self.login;
        for (key, v, lo, hi) in [
            ("login.session_idle", g.session_idle, 60, 30 * 86_400),
            ("login.session_max", g.session_max, 60, 90 * 86_400),
            ("login.code_ttl", g.code_ttl, 10, 600),
            ("login.request_ttl", g.request_ttl, 60, 3600),
            ("login.refresh_idle", g.refresh_idle, 60, 365 * 86_400),
            ("login.refresh_max", g.refresh_max, 60, 365 * 86_400),
            ("login.id_token_ttl", g.id_token_ttl, 60, 86_400),
        ] {
            if !(lo..=hi).contains(&v) {
                return bad(key, &format!("must be between {lo} and {hi} seconds"));
            }
        }
        if g.session_idle > g.session_max {
            return bad("login.session_idle", "must not exceed login.session_max");
        }
        if g.refresh_idle > g.refresh_max {
            return bad("login.refresh_idle", "must not exceed login.refresh_max");
        }
        if !(19_456..=4 * 1024 * 1024).contains(&g.argon2_memory_kib) {
            return bad(
                "login.argon2_memory_kib",
                "must be between 19456 (OWASP minimum) and 4194304",
            );
        }
        if !(2..=20).contains(&g.argon2_iterations) {
            return bad("login.argon2_iterations", "must be between 2 and 20");
        }
        if g.max_concurrent_hashes > 1024 {
            return bad("login.max_concurrent_hashes", "must be at most 1024");
        }
        if g.max_queued_hashes > 100_000 {
            return bad("login.max_queued_hashes", "must be at most 100000");
        }
        if g.account_free_failures >= g.account_lockout_after || g.account_lockout_after == 0 {
            return bad(
                "login.account_lockout_after",
                "must be above login.account_free_failures",
            );
        }
        if g.address_free_failures >= g.address_lockout_after || g.address_lockout_after == 0 {
            return bad(
                "login.address_lockout_after",
                "must be above login.address_free_failures",
            );
        }
        if !(1..=86_400).contains(&g.lockout_secs) {
            return bad("login.lockout_secs", "must be between 1 and 86400 seconds");
        }
        if let Some(hook) = &g.security_webhook
            && !url::Url::parse(hook).is_ok_and(|u| u.scheme() == "https" || u.scheme() == "http")
        {
            return bad("login.security_webhook", "must be an http(s) URL");
        }
        if let Some(url) = &g.redis_url
            && !url::Url::parse(&url.0)
                .is_ok_and(|u| matches!(u.scheme(), "redis" | "rediss") && u.has_host())
        {
            // The URL is not repeated: it may hold a password.
            return bad(
                "login.redis_url",
                "must be a redis:// or rediss:// URL with a host",
            );
        }
        if !(1..=5_000).contains(&g.redis_timeout_ms) {
            return bad("login.redis_timeout_ms", "must be between 1 and 5000");
        }
        if g.redis_cert_file.is_some() != g.redis_key_file.is_some() {
            return bad(
                "login.redis_cert_file",
                "redis_cert_file and redis_key_file must be set together",
            );
        }
        if g.redis_cert_file.is_some() && g.redis_ca_file.is_none() {
            return bad(
                "login.redis_cert_file",
                "needs login.redis_ca_file (the CA of the Redis server)",
            );
        }
        if g.redis_ca_file.is_some()
            && !g
                .redis_url
                .as_ref()
                .is_some_and(|u| u.0.starts_with("rediss://"))
        {
            return bad("login.redis_ca_file", "needs a rediss:// login.redis_url");
        }
        if !(60..=86_400).contains(&g.reauth_window) {
            return bad(
                "login.reauth_window",
                "must be between 60 and 86400 seconds",
            );
        }
        Ok(())
    }

    /// The configured JWT algorithm.
    pub fn jwt_alg(&self) -> rampart_token::JwtAlg {
        rampart_idp::endpoints::admin::parse_jwt_alg(&self.tokens.jwt_alg)
            .unwrap_or(rampart_token::JwtAlg::EdDSA)
    }

    /// The authorization server settings for `issuer`.
    pub fn idp_config(&self, issuer: String) -> rampart_idp::IdpConfig {
        let mut c = rampart_idp::IdpConfig::new(issuer);
        c.default_access_token_ttl = self.tokens.default_ttl;
        c.max_access_token_ttl = self.tokens.max_ttl;
        c.leeway_secs = self.tokens.leeway;
        c.jwt_alg = self.jwt_alg();
        c.id_token_alg = rampart_idp::endpoints::admin::parse_jwt_alg(&self.tokens.id_token_alg)
            .unwrap_or(rampart_token::JwtAlg::RS256);
        c.key_rotation_interval_secs = self.keys.rotation_interval;
        c.max_body_bytes = self.limits.max_body_bytes;
        let g = &self.login;
        c.people = rampart_idp::config::PeopleConfig {
            session_idle_secs: g.session_idle,
            session_max_secs: g.session_max,
            code_ttl_secs: g.code_ttl,
            auth_request_ttl_secs: g.request_ttl,
            par_ttl_secs: 90,
            refresh_idle_secs: g.refresh_idle,
            refresh_max_secs: g.refresh_max,
            id_token_ttl_secs: g.id_token_ttl,
            argon2_memory_kib: g.argon2_memory_kib,
            argon2_iterations: g.argon2_iterations,
            max_concurrent_hashes: g.max_concurrent_hashes,
            max_queued_hashes: g.max_queued_hashes,
            security_webhook: g.security_webhook.clone(),
            throttle: rampart_idp::config::ThrottleConfig {
                free_failures: g.account_free_failures,
                lockout_after: g.account_lockout_after,
                ip_free_failures: g.address_free_failures,
                ip_lockout_after: g.address_lockout_after,
                lockout_for: std::time::Duration::from_secs(g.lockout_secs),
                ..rampart_idp::config::ThrottleConfig::default()
            },
            reauth_window_secs: g.reauth_window,
            shared_throttle: g.redis_url.as_ref().map(|url| {
                rampart_idp::config::SharedThrottleConfig {
                    url: url.0.clone(),
                    timeout: std::time::Duration::from_millis(g.redis_timeout_ms),
                    tls: g.redis_ca_file.clone().map(|ca_file| {
                        rampart_idp::config::RedisTlsFiles {
                            ca_file,
                            client: g.redis_cert_file.clone().zip(g.redis_key_file.clone()),
                        }
                    }),
                }
            }),
        };
        c
    }
}

/// Sections and their keys, taken from the defaults plus the optional keys.
fn known_keys() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    if let Ok(toml::Value::Table(defaults)) = toml::Value::try_from(Settings::default()) {
        for (section, value) in defaults {
            let mut keys: Vec<String> = value
                .as_table()
                .map(|t| t.keys().cloned().collect())
                .unwrap_or_default();
            if section == "server" {
                keys.extend(["issuer", "tls_cert", "tls_key"].map(String::from));
            }
            if section == "login" {
                keys.push("security_webhook".to_owned());
                keys.push("redis_url".to_owned());
                keys.extend(
                    ["redis_ca_file", "redis_cert_file", "redis_key_file"].map(str::to_owned),
                );
            }
            if section == "database" {
                keys.push("url".to_owned());
            }
            out.push((section, keys));
        }
    }
    // The scalar keys of [gateway] that environment variables may set.
    out.push((
        "gateway".to_owned(),
        [
            "listen",
            "admin_listen",
            "tls_cert",
            "tls_key",
            "token_leeway",
            "introspection_cache_ttl",
            "negative_cache_ttl",
        ]
        .map(String::from)
        .to_vec(),
    ));
    out
}

/// An environment value as TOML when it parses as a number or boolean, else a string.
fn env_value(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if let Ok(b) = raw.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    toml::Value::String(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(s.server.listen.port(), 8443);
        assert_eq!(s.tokens.default_ttl, 600);
    }

    #[test]
    fn env_overrides_file_values() {
        let s = Settings::load_with_env(
            None,
            env(&[
                ("RAMPART_SERVER_LISTEN", "127.0.0.1:9000"),
                ("RAMPART_TOKENS_DEFAULT_TTL", "120"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.listen.port(), 9000);
        assert_eq!(s.tokens.default_ttl, 120);
    }

    #[test]
    fn unknown_env_key_is_named() {
        let err = Settings::load_with_env(None, env(&[("RAMPART_TOKENS_TTL", "5")])).unwrap_err();
        assert!(err.to_string().contains("RAMPART_TOKENS_TTL"), "{err}");
    }

    #[test]
    fn bad_value_names_the_key() {
        let err = Settings::load_with_env(None, env(&[("RAMPART_TOKENS_DEFAULT_TTL", "soon")]))
            .unwrap_err();
        assert!(err.to_string().contains("default_ttl"), "{err}");
        let err =
            Settings::load_with_env(None, env(&[("RAMPART_TOKENS_JWT_ALG", "HS256")])).unwrap_err();
        assert!(err.to_string().contains("tokens.jwt_alg"), "{err}");
        let err = Settings::load_with_env(None, env(&[("RAMPART_TOKENS_ID_TOKEN_ALG", "none")]))
            .unwrap_err();
        assert!(err.to_string().contains("tokens.id_token_alg"), "{err}");
        let s = Settings::load_with_env(None, env(&[("RAMPART_TOKENS_ID_TOKEN_ALG", "ES256")]))
            .unwrap();
        assert_eq!(
            s.idp_config("https://i".into()).id_token_alg,
            rampart_token::JwtAlg::ES256
        );
        assert_eq!(
            Settings::default()
                .idp_config("https://i".into())
                .id_token_alg,
            rampart_token::JwtAlg::RS256
        );
    }

    #[test]
    fn unknown_file_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 1\n").unwrap();
        let err = Settings::load_with_env(Some(&path), env(&[])).unwrap_err();
        assert!(err.to_string().contains("server.lisen"), "{err}");
    }

    #[test]
    fn database_defaults_to_sqlite_in_the_data_directory() {
        let s =
            Settings::load_with_env(None, env(&[("RAMPART_SERVER_DATA_DIR", "/srv/r")])).unwrap();
        match s.store_location() {
            rampart_store::Location::Sqlite(path) => {
                assert_eq!(path, std::path::Path::new("/srv/r/rampart.db"));
            }
            other => panic!("expected SQLite, got {other:?}"),
        }
    }

    #[test]
    fn database_url_selects_postgres_and_is_never_shown() {
        let url = "postgres://rampart:pw-x1@db.internal:5432/rampart?sslmode=verify-full";
        let s = Settings::load_with_env(
            None,
            env(&[
                ("RAMPART_DATABASE_URL", url),
                ("RAMPART_DATABASE_MAX_CONNECTIONS", "25"),
            ]),
        )
        .unwrap();
        match s.store_location() {
            rampart_store::Location::Postgres { url: got, options } => {
                assert_eq!(got, url);
                assert_eq!(options.max_connections, 25);
                assert_eq!(options.acquire_timeout, std::time::Duration::from_secs(5));
            }
            other => panic!("expected PostgreSQL, got {other:?}"),
        }
        let shown = format!("{:?} {:?}", s.database, s.store_location());
        assert!(!shown.contains("pw-x1"), "{shown}");
    }

    #[test]
    fn bad_database_settings_name_the_key() {
        for (name, value, key) in [
            ("RAMPART_DATABASE_URL", "mysql://u:p@h/db", "database.url"),
            (
                "RAMPART_DATABASE_URL",
                "postgres:///no-host",
                "database.url",
            ),
            (
                "RAMPART_DATABASE_MAX_CONNECTIONS",
                "0",
                "database.max_connections",
            ),
            (
                "RAMPART_DATABASE_ACQUIRE_TIMEOUT",
                "0",
                "database.acquire_timeout",
            ),
        ] {
            let err = Settings::load_with_env(None, env(&[(name, value)])).unwrap_err();
            assert!(err.to_string().contains(key), "{name}={value}: {err}");
            assert!(!err.to_string().contains("u:p"), "{err}");
        }
    }

    #[test]
    fn login_redis_url_is_checked_mapped_and_never_shown() {
        let s = Settings::load_with_env(
            None,
            env(&[("RAMPART_LOGIN_REDIS_URL", "redis://:pw-y2@10.0.0.5:6379/1")]),
        )
        .unwrap();
        let shared = s
            .idp_config("https://idp.test".into())
            .people
            .shared_throttle
            .expect("shared throttle");
        assert_eq!(shared.url, "redis://:pw-y2@10.0.0.5:6379/1");
        assert_eq!(shared.timeout, std::time::Duration::from_millis(100));
        let shown = format!("{:?} {:?}", s.login, shared);
        assert!(!shown.contains("pw-y2"), "{shown}");
        assert!(
            Settings::default()
                .idp_config("https://i".into())
                .people
                .shared_throttle
                .is_none()
        );

        for (name, value, key) in [
            (
                "RAMPART_LOGIN_REDIS_URL",
                "http://u:p@h:1",
                "login.redis_url",
            ),
            (
                "RAMPART_LOGIN_REDIS_TIMEOUT_MS",
                "0",
                "login.redis_timeout_ms",
            ),
        ] {
            let err = Settings::load_with_env(None, env(&[(name, value)])).unwrap_err();
            assert!(err.to_string().contains(key), "{name}={value}: {err}");
            assert!(!err.to_string().contains("u:p"), "{err}");
        }
    }

    #[test]
    fn login_redis_tls_files_are_mapped_and_checked() {
        let tls = [
            ("RAMPART_LOGIN_REDIS_URL", "rediss://10.0.0.5:6380"),
            ("RAMPART_LOGIN_REDIS_CA_FILE", "/etc/rampart/redis-ca.pem"),
            ("RAMPART_LOGIN_REDIS_CERT_FILE", "/etc/rampart/auth.pem"),
            ("RAMPART_LOGIN_REDIS_KEY_FILE", "/etc/rampart/auth.key"),
        ];
        let s = Settings::load_with_env(None, env(&tls)).unwrap();
        let shared = s
            .idp_config("https://idp.test".into())
            .people
            .shared_throttle
            .expect("shared throttle");
        let files = shared.tls.expect("tls files");
        assert_eq!(files.ca_file, PathBuf::from("/etc/rampart/redis-ca.pem"));
        assert_eq!(
            files.client,
            Some((
                PathBuf::from("/etc/rampart/auth.pem"),
                PathBuf::from("/etc/rampart/auth.key")
            ))
        );
        // A certificate without its key; a certificate without the CA; a CA for plain redis://.
        for (drop, replace, key) in [
            (3, None, "login.redis_cert_file"),
            (1, None, "login.redis_cert_file"),
            (
                4,
                Some(("RAMPART_LOGIN_REDIS_URL", "redis://10.0.0.5:6379")),
                "login.redis_ca_file",
            ),
        ] {
            let mut vars: Vec<(&str, &str)> = tls
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != drop)
                .map(|(_, v)| *v)
                .collect();
            if let Some(r) = replace {
                vars.retain(|(n, _)| *n != r.0);
                vars.push(r);
            }
            let err = Settings::load_with_env(None, env(&vars)).unwrap_err();
            assert!(err.to_string().contains(key), "{vars:?}: {err}");
        }
    }
}
