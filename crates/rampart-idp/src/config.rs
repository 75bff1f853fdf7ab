//! Settings of the authorization server that the binary passes in.

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
    /// Automatic key rotation interval in seconds; 0 disables scheduled rotation.
    pub key_rotation_interval_secs: i64,
    /// How often the server looks for changes made by other processes (the CLI) to clients
    /// and keys, in milliseconds.
    pub change_poll_interval_ms: u64,
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
            key_rotation_interval_secs: 30 * 86_400,
            change_poll_interval_ms: 500,
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
