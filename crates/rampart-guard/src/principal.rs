//! What authentication yields, and how it fails.

use std::sync::Arc;

/// How a principal was authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A JWT access token verified locally.
    Jwt,
    /// A PASETO v4.public token verified locally.
    Paseto,
    /// A token the issuer vouched for through introspection (RFC 7662).
    Introspection,
    /// An API key.
    ApiKey,
    /// A TLS client certificate.
    Mtls,
}

/// A verified caller. Exists only after successful authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// `sub`.
    pub subject: String,
    /// `client_id`, if the token has one.
    pub client_id: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The user's roles (`roles`, RFC 9068 §7.2.1.1; empty for clients).
    pub roles: Vec<String>,
    /// The user's groups (`groups`, RFC 9068 §7.2.1.1; empty for clients).
    pub groups: Vec<String>,
    /// `aud`.
    pub audiences: Vec<String>,
    /// `iss`.
    pub issuer: String,
    /// `exp`, unix seconds.
    pub expires_at: i64,
    /// `jti`, if any.
    pub token_id: Option<String>,
    /// How it was authenticated.
    pub method: AuthMethod,
}

impl AuthMethod {
    /// A short stable label: `jwt`, `paseto`, `introspection`, `api_key` or `mtls`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Jwt => "jwt",
            AuthMethod::Paseto => "paseto",
            AuthMethod::Introspection => "introspection",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Mtls => "mtls",
        }
    }
}

impl Principal {
    /// Whether every scope in `required` was granted.
    pub fn has_scopes(&self, required: &[String]) -> bool {
        required.iter().all(|r| self.scopes.iter().any(|s| s == r))
    }
}

/// Why authentication failed. Every variant denies (fail closed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials.
    #[error("missing credentials")]
    Missing,
    /// Credentials that cannot be parsed.
    #[error("malformed credentials")]
    Malformed,
    /// Signature, key, algorithm or format problems.
    #[error("invalid token")]
    Invalid,
    /// Expired or not yet valid.
    #[error("token expired or not yet valid")]
    Expired,
    /// Issued for another audience.
    #[error("token not for this audience")]
    WrongAudience,
    /// From an issuer that is not trusted.
    #[error("untrusted issuer")]
    UntrustedIssuer,
    /// Inactive by introspection (revoked, unknown).
    #[error("token inactive")]
    Inactive,
    /// This kind of credential is not accepted here.
    #[error("credential type not accepted")]
    NotAccepted,
    /// The issuer could not be reached to check the token.
    #[error("issuer unavailable")]
    Unavailable,
}

impl AuthError {
    /// A short stable label for metrics and audit records.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed => "malformed",
            AuthError::Invalid => "invalid",
            AuthError::Expired => "expired",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::UntrustedIssuer => "untrusted_issuer",
            AuthError::Inactive => "inactive",
            AuthError::NotAccepted => "not_accepted",
            AuthError::Unavailable => "issuer_unavailable",
        }
    }
}

/// Which token kinds a route accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// JWT verified locally.
    pub jwt: bool,
    /// PASETO v4.public verified locally.
    pub paseto: bool,
    /// Introspection for v4.local and opaque access tokens.
    pub introspection: bool,
    /// API keys: opaque credentials that introspection reports with `token_type: api_key`.
    /// Kept apart from `introspection` so that an API key is never accepted as a bearer
    /// token, nor an access token in an API-key header.
    pub api_key: bool,
}

/// Verifies a bearer token for an audience. The principal comes shared: verified tokens are
/// cached, and a cache hit hands out the same principal instead of copying its strings.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync {
    /// Authenticates `token` for `audience`, accepting only the token kinds in `accepted`.
    async fn authenticate(
        &self,
        token: &str,
        audience: &str,
        accepted: Accepted,
    ) -> Result<Arc<Principal>, AuthError>;

    /// The answer of [`Authenticator::authenticate`] for the same arguments when it is known
    /// without waiting (e.g. a token verified before and still cached), else `None`: the
    /// caller then awaits `authenticate`. An implementation must answer exactly as
    /// `authenticate` would. The default knows nothing without waiting.
    fn authenticate_now(
        &self,
        token: &str,
        audience: &str,
        accepted: Accepted,
    ) -> Option<Result<Arc<Principal>, AuthError>> {
        let _ = (token, audience, accepted);
        None
    }
}
