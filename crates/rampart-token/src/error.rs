//! Error type shared by every operation of the crate.

/// Everything that can go wrong while issuing or verifying a token, or while
/// handling keys.
///
/// The `Display` messages are short and safe to return to clients: they never
/// contain key material, token contents or library internals.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The token (or key document) exceeds the size limit.
    #[error("token too large")]
    TooLarge,
    /// The token is not well formed (encoding, JSON, structure).
    #[error("malformed token")]
    Malformed,
    /// The token format, version or purpose is not supported (e.g. PASETO v2/v3).
    #[error("unsupported token format")]
    UnsupportedFormat,
    /// No key with the token's key id is known (or the key id is missing).
    #[error("unknown key")]
    UnknownKey,
    /// The token's algorithm or format does not match the one pinned by the key.
    #[error("algorithm mismatch")]
    AlgorithmMismatch,
    /// The JWT header carries a `crit` parameter, which is never accepted.
    #[error("critical header not supported")]
    CriticalHeader,
    /// The JWT `typ` header is not the expected one.
    #[error("wrong token type")]
    WrongType,
    /// The signature (or PASETO authentication tag) is invalid.
    #[error("invalid signature")]
    BadSignature,
    /// The token has expired.
    #[error("token expired")]
    Expired,
    /// The token is not valid yet (`nbf` or `iat` in the future).
    #[error("token not yet valid")]
    NotYetValid,
    /// The issuer (or, for client assertions, `iss`/`sub`) is not the expected one.
    #[error("wrong issuer")]
    WrongIssuer,
    /// None of the token audiences is accepted.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim is missing or empty.
    #[error("missing claim: {0}")]
    MissingClaim(&'static str),
    /// A client assertion lives longer than the accepted maximum lifetime.
    #[error("token lifetime too long")]
    LifetimeTooLong,
    /// Key generation, import or parsing problem. The message never contains
    /// secret material.
    #[error("key error: {0}")]
    Key(String),
}

impl TokenError {
    /// Builds a [`TokenError::Key`] from a static, secret-free message.
    pub(crate) fn key(msg: &str) -> Self {
        TokenError::Key(msg.to_owned())
    }
}
