//! Settings of the authorization server that the binary passes in.

pub use rampart_authn::{RedisTlsFiles, SharedThrottleConfig, ThrottleConfig};
use rampart_token::JwtAlg;

/// What the authorization server needs to know about itself.
#[derive(Clone, Debug)]
pub struct IdpConfig {
    /// The issuer identifier (RFC 8414): an `https` URL without query or fragment, no
    /// trailing slash. Endpoint URLs are built from it.
    pub issuer: String,
    /// Access-token lifetime for clients registered without `--ttl`, in seconds.
    pub default_access_token_ttl: i64,
    /// Upper bound for any client's access-token lifetime, in seconds. Retired keys stay
    /// published at least this long so that no token outlives its key.
    pub max_access_token_ttl: i64,
    /// Clock skew tolerated when checking `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
    /// Longest lifetime accepted for a `private_key_jwt` client assertion, in seconds.
    pub max_assertion_lifetime_secs: i64,
    /// Largest accepted request body on the OAuth endpoints, in bytes.
    pub max_body_bytes: usize,
    /// Algorithm of newly generated JWT signing keys.
    pub jwt_alg: JwtAlg,
    /// Algorithm of newly generated ID-token signing keys (RS256 by default: OpenID Connect
    /// relying parties must all support it; not every one supports EdDSA).
    pub id_token_alg: JwtAlg,
    /// Automatic key rotation interval in seconds; 0 disables scheduled rotation.
    pub key_rotation_interval_secs: i64,
    /// How often the server looks for changes made by other processes (the CLI) to clients
    /// and keys, in milliseconds.
    pub change_poll_interval_ms: u64,
    /// Settings of the sign-in flows for people.
    pub people: PeopleConfig,
}

/// Lifetimes and limits of the flows for people (OpenID Connect).
#[derive(Clone, Debug)]
pub struct PeopleConfig {
    /// A browser session ends after this much inactivity, in seconds.
    pub session_idle_secs: i64,
    /// A browser session ends this long after sign-in, whatever the activity, in seconds.
    pub session_max_secs: i64,
    /// Lifetime of an authorization code, in seconds.
    pub code_ttl_secs: i64,
    /// How long a user has to finish signing in (authorization and pushed requests), in
    /// seconds.
    pub auth_request_ttl_secs: i64,
    /// Lifetime of the `request_uri` of a pushed authorization request, in seconds.
    pub par_ttl_secs: i64,
    /// A refresh token expires after this long unused, in seconds.
    pub refresh_idle_secs: i64,
    /// No refresh token of a family is valid this long after the sign-in, in seconds.
    pub refresh_max_secs: i64,
    /// Lifetime of ID tokens, in seconds.
    pub id_token_ttl_secs: i64,
    /// Argon2id memory cost in KiB (OWASP minimum: 19456).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations (OWASP minimum with 19 MiB: 2).
    pub argon2_iterations: u32,
    /// Password hashes computed at once; 0 means the number of CPUs.
    pub max_concurrent_hashes: usize,
    /// Password hashes waiting for a slot before new logins are answered 503 at once.
    pub max_queued_hashes: usize,
    /// URL that receives security events as JSON (`POST`), if any.
    pub security_webhook: Option<String>,
    /// Login throttling per account and per client address.
    pub throttle: ThrottleConfig,
    /// Longest time since the session's last sign-in (seconds) within which a second factor
    /// may be added from the account page without entering the password again.
    pub reauth_window_secs: i64,
    /// Redis for login counters shared by every server (`[login] redis_url`); `None`:
    /// each server counts on its own.
    pub shared_throttle: Option<SharedThrottleConfig>,
}

impl Default for PeopleConfig {
    fn default() -> Self {
        Self {
            session_idle_secs: 3600,
            session_max_secs: 12 * 3600,
            code_ttl_secs: 60,
            auth_request_ttl_secs: 900,
            par_ttl_secs: 90,
            refresh_idle_secs: 14 * 86_400,
            refresh_max_secs: 30 * 86_400,
            id_token_ttl_secs: 600,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            max_concurrent_hashes: 0,
            max_queued_hashes: 16,
            security_webhook: None,
            throttle: ThrottleConfig::default(),
            shared_throttle: None,
            reauth_window_secs: 900,
        }
    }
}

impl IdpConfig {
    /// Defaults for the given issuer.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            default_access_token_ttl: 600,
            max_access_token_ttl: 86_400,
            leeway_secs: 30,
            max_assertion_lifetime_secs: 3600,
            max_body_bytes: 16 * 1024,
            jwt_alg: JwtAlg::EdDSA,
            id_token_alg: JwtAlg::RS256,
            key_rotation_interval_secs: 30 * 86_400,
            change_poll_interval_ms: 500,
            people: PeopleConfig::default(),
        }
    }

    /// `{issuer}{path}`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// The token endpoint URL (accepted as `aud` of client assertions).
    pub fn token_endpoint(&self) -> String {
        self.endpoint("/token")
    }

    /// How long a retired key stays published and usable for verification.
    pub fn key_retention_secs(&self) -> i64 {
        self.max_access_token_ttl + self.leeway_secs as i64
    }
}

/// The audience of access tokens that authorize calls to the admin API.
pub const ADMIN_AUDIENCE: &str = "urn:rampart:admin";
/// The scope that admin API calls require.
pub const ADMIN_SCOPE: &str = "rampart:admin";
/// The client registered on first start for the administrator.
pub const ADMIN_CLIENT_ID: &str = "rampart-admin";
