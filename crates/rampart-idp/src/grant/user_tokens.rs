//! The tokens a user's sign-in yields: an access token about the user, an ID token when
//! `openid` was granted, and a refresh token when the client may refresh.
//!
//! Shared by the authorization code and refresh token grants.

use rampart_crypto::random_token;
use rampart_store::{ClientTokenFormat, RefreshTokenRecord};
use rampart_token::{AccessClaims, IdTokenClaims, TokenFormat};

use super::client_credentials::TokenResponse;
use crate::AuthServer;
use crate::browser::secret_hash;
use crate::clients::RegisteredClient;
use crate::error::OAuthError;
use crate::keys::KeyFamily;
use crate::people::claims::user_claims;
use crate::users::User;

/// Prefix of refresh tokens (tells them apart from access tokens and API keys).
pub const REFRESH_TOKEN_PREFIX: &str = "rrt_";

/// How the user authenticated, carried from the session into every token.
pub struct Authentication<'a> {
    /// When.
    pub auth_time: i64,
    /// Methods (RFC 8176).
    pub amr: &'a [String],
    /// Context class.
    pub acr: &'a str,
    /// The session, if any.
    pub session_id: Option<&'a str>,
    /// The ID token `nonce`.
    pub nonce: Option<&'a str>,
}

/// An issued set, and the access token's `jti` and expiry (so a reused code can revoke it).
pub struct Issued {
    /// The token response.
    pub response: TokenResponse,
    /// The access token's `jti`.
    pub jti: String,
    /// The access token's expiry.
    pub exp: i64,
}

/// Issues the access token and, with `openid`, the ID token.
pub fn issue(
    server: &AuthServer,
    client: &RegisteredClient,
    user: &User,
    scope: &[String],
    audience: Vec<String>,
    auth: &Authentication<'_>,
    now: i64,
) -> Result<Issued, OAuthError> {
    let record = &client.record;
    let format = match record.token_format {
        ClientTokenFormat::Jwt => TokenFormat::Jwt,
        ClientTokenFormat::PasetoPublic => TokenFormat::PasetoV4Public,
        ClientTokenFormat::PasetoLocal => TokenFormat::PasetoV4Local,
    };
    let ttl = record
        .access_token_ttl_secs
        .min(server.config.max_access_token_ttl);
    let audience = if audience.is_empty() {
        vec![server.config.endpoint("/userinfo")]
    } else {
        audience
    };
    let jti = random_token(16).map_err(|_| OAuthError::server_error())?;
    let claims = AccessClaims {
        // RFC 9068 §7.2.1.1: resource servers (the gateway's policies) authorize by them.
        roles: user.record.roles.clone(),
        groups: user.record.groups.clone(),
        iss: server.config.issuer.clone(),
        sub: user.record.user_id.clone(),
        aud: audience,
        exp: now + ttl,
        iat: now,
        nbf: now,
        jti: jti.clone(),
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
    let id_token = if scope.iter().any(|s| s == "openid") {
        let id_key = keys.active(KeyFamily::IdToken).ok_or_else(|| {
            tracing::error!("no active ID-token signing key");
            OAuthError::server_error()
        })?;
        let at_hash = rampart_token::token_hash(id_key, &access_token)
            .map_err(|_| OAuthError::server_error())?;
        let id_claims = IdTokenClaims {
            iss: server.config.issuer.clone(),
            sub: user.record.user_id.clone(),
            aud: record.client_id.clone(),
            exp: now + server.config.people.id_token_ttl_secs,
            iat: now,
            auth_time: auth.auth_time,
            nonce: auth.nonce.map(str::to_owned),
            acr: Some(auth.acr.to_owned()),
            amr: auth.amr.to_vec(),
            azp: Some(record.client_id.clone()),
            at_hash: Some(at_hash),
            sid: auth.session_id.map(str::to_owned),
            extra: user_claims(user, scope),
        };
        Some(
            rampart_token::issue_id_token(id_key, &id_claims).map_err(|e| {
                tracing::error!(error = %e, "ID token issuing failed");
                OAuthError::server_error()
            })?,
        )
    } else {
        None
    };
    Ok(Issued {
        response: TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: ttl,
            scope: claims.scope,
            refresh_token: None,
            id_token,
        },
        jti,
        exp: claims.exp,
    })
}

/// A new refresh token value and its record (family id filled in by the caller or store).
pub fn new_refresh_token(
    server: &AuthServer,
    family_id: &str,
    now: i64,
) -> Result<(String, RefreshTokenRecord), OAuthError> {
    let value = format!(
        "{REFRESH_TOKEN_PREFIX}{}",
        random_token(32).map_err(|_| OAuthError::server_error())?
    );
    let record = RefreshTokenRecord {
        token_hash: secret_hash(&server.people.hasher, "refresh", &value),
        family_id: family_id.to_owned(),
        created_at: now,
        idle_expires_at: now + server.config.people.refresh_idle_secs,
        used_at: None,
    };
    Ok((value, record))
}
