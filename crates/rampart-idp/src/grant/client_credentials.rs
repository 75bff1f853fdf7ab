//! The client credentials grant (RFC 6749 §4.4): a service gets a token for itself.
//!
//! Issuing writes nothing: the token is self-contained and the client record comes from the
//! in-memory cache.

use rampart_crypto::random_token;
use rampart_store::ClientTokenFormat;
use rampart_token::{AccessClaims, TokenFormat};
use serde::Serialize;

use crate::AuthServer;
use crate::clients::{RegisteredClient, is_scope_token, is_valid_audience};
use crate::error::{ErrorCode, OAuthError};
use crate::form::Form;
use crate::keys::KeyFamily;

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// The granted scope (space separated); omitted when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The refresh token (code and refresh grants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The ID token (when `openid` was granted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// Issues an access token to an authenticated client.
pub fn issue(
    server: &AuthServer,
    client: &RegisteredClient,
    form: &Form,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let record = &client.record;
    let scope = granted_scope(&record.scopes, form.get("scope"))?;
    let audience = granted_audience(&record.audiences, form)?;
    let format = match record.token_format {
        ClientTokenFormat::Jwt => TokenFormat::Jwt,
        ClientTokenFormat::PasetoPublic => TokenFormat::PasetoV4Public,
        ClientTokenFormat::PasetoLocal => TokenFormat::PasetoV4Local,
    };
    let ttl = record
        .access_token_ttl_secs
        .min(server.config.max_access_token_ttl);
    let jti = random_token(16).map_err(|_| OAuthError::server_error())?;
    let claims = AccessClaims {
        roles: Vec::new(),
        groups: Vec::new(),
        iss: server.config.issuer.clone(),
        sub: record.client_id.clone(),
        aud: audience,
        exp: now + ttl,
        iat: now,
        nbf: now,
        jti,
        client_id: record.client_id.clone(),
        scope: (!scope.is_empty()).then(|| scope.join(" ")),
    };
    let keys = server.keys.snapshot();
    let key = keys.active(KeyFamily::for_format(format)).ok_or_else(|| {
        tracing::error!(format = ?format, "no active signing key");
        OAuthError::server_error()
    })?;
    let access_token = rampart_token::issue(key, &claims).map_err(|e| {
        tracing::error!(error = %e, "token issuing failed");
        OAuthError::server_error()
    })?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        scope: claims.scope,
        refresh_token: None,
        id_token: None,
    })
}

/// The requested scopes if every one was granted to the client; all the client's scopes
/// when none were requested.
fn granted_scope(allowed: &[String], requested: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(allowed.to_vec());
    };
    let mut granted: Vec<String> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !is_scope_token(scope) {
            return Err(OAuthError::new(ErrorCode::InvalidScope, "malformed scope"));
        }
        if !allowed.iter().any(|a| a == scope) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "the requested scope exceeds what the client may request",
            ));
        }
        if !granted.iter().any(|g| g == scope) {
            granted.push(scope.to_owned());
        }
    }
    Ok(granted)
}

/// The audience from `resource` (RFC 8707, repeatable) or `audience`, each among the
/// client's audiences; all of the client's audiences when none was asked for.
pub(crate) fn granted_audience(allowed: &[String], form: &Form) -> Result<Vec<String>, OAuthError> {
    let mut requested: Vec<&str> = form.resources().iter().map(String::as_str).collect();
    if let Some(audience) = form.get("audience") {
        requested.extend(audience.split(' ').filter(|s| !s.is_empty()));
    }
    if requested.is_empty() {
        return Ok(allowed.to_vec());
    }
    let mut granted: Vec<String> = Vec::new();
    for aud in requested {
        if !is_valid_audience(aud) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "a resource must be an absolute URI without fragment",
            ));
        }
        if !allowed.iter().any(|a| a == aud) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "the requested resource is not allowed for this client",
            ));
        }
        if !granted.iter().any(|g| g == aud) {
            granted.push(aud.to_owned());
        }
    }
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    #[test]
    fn scope_subset() {
        assert_eq!(granted_scope(&allowed(), Some("b")).unwrap(), ["b"]);
        assert_eq!(granted_scope(&allowed(), None).unwrap(), ["a", "b"]);
        let err = granted_scope(&allowed(), Some("a c")).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidScope);
    }

    #[test]
    fn audience_subset() {
        let allowed = vec!["https://a.example".to_owned(), "api://b".to_owned()];
        let form = Form::parse_body(b"resource=api%3A%2F%2Fb").unwrap();
        assert_eq!(granted_audience(&allowed, &form).unwrap(), ["api://b"]);
        let form = Form::parse_body(b"audience=https%3A%2F%2Fevil.example").unwrap();
        assert_eq!(
            granted_audience(&allowed, &form).unwrap_err().code(),
            ErrorCode::InvalidTarget
        );
    }
}
