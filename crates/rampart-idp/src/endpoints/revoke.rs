//! `POST /revoke` (RFC 7009): a client revokes one of its own tokens. The revocation is
//! durable before the answer and effective at once.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use rampart_token::AudienceCheck;

use crate::AuthServer;
use crate::error::{ErrorCode, OAuthError};

/// The revocation endpoint handler.
pub async fn revoke(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let (form, client) = super::client_request(&server, &headers, &body, "/revoke").await?;
    let token = form.require("token")?;
    if token.starts_with(crate::grant::user_tokens::REFRESH_TOKEN_PREFIX) {
        revoke_refresh_token(&server, &client.record.client_id, token).await?;
        return Ok(super::no_store_json(serde_json::json!({})));
    }
    // RFC 7009 §2.2: an invalid, expired or already revoked token is answered with 200.
    if let Some(verified) = server.verify_own_token(token, AudienceCheck::Any) {
        let claims = verified.claims();
        if claims.client_id != client.record.client_id {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "the token was not issued to this client",
            ));
        }
        server
            .revocations
            .revoke(&claims.jti, claims.exp + server.config.leeway_secs as i64)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "revocation write failed");
                OAuthError::server_error()
            })?;
        tracing::info!(client_id = %claims.client_id, jti = %claims.jti, "token revoked");
    }
    Ok(super::no_store_json(serde_json::json!({})))
}

/// Revokes the family of a refresh token (RFC 7009 §2.1: revoking a refresh token may
/// revoke what it is tied to; here, its whole rotation chain).
async fn revoke_refresh_token(
    server: &AuthServer,
    client_id: &str,
    token: &str,
) -> Result<(), OAuthError> {
    let hash = crate::browser::secret_hash(&server.people.hasher, "refresh", token);
    let found = server
        .people
        .flows
        .get_refresh_family_by_token(&hash)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "refresh token lookup failed");
            OAuthError::server_error()
        })?;
    let Some((_, family)) = found else {
        return Ok(());
    };
    if family.client_id != client_id {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the token was not issued to this client",
        ));
    }
    server
        .people
        .flows
        .revoke_refresh_family(&family.family_id, crate::unix_now())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "refresh family revocation failed");
            OAuthError::server_error()
        })?;
    tracing::info!(client_id = %client_id, "refresh token family revoked");
    Ok(())
}
