//! The refresh token grant (RFC 6749 §6) with rotation (RFC 9700 §4.14.2): every use
//! returns a new refresh token; presenting an already used one revokes the whole family.

use rampart_store::RefreshRotation;

use super::client_credentials::TokenResponse;
use super::user_tokens::{self, Authentication};
use crate::AuthServer;
use crate::browser::secret_hash;
use crate::clients::RegisteredClient;
use crate::error::{ErrorCode, OAuthError};
use crate::form::Form;
use crate::people::events::{EventKind, event};

fn invalid_grant() -> OAuthError {
    OAuthError::new(
        ErrorCode::InvalidGrant,
        "the refresh token is invalid, expired or revoked",
    )
}

fn storage(e: rampart_store::StoreError) -> OAuthError {
    tracing::error!(error = %e, "refresh grant storage failed");
    OAuthError::server_error()
}

/// Exchanges a refresh token for new tokens.
pub async fn refresh(
    server: &AuthServer,
    client: &RegisteredClient,
    form: &Form,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let record = &client.record;
    if !record.grant_types.iter().any(|g| g == "refresh_token") {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the client may not use the refresh_token grant",
        ));
    }
    let token = form.require("refresh_token")?;
    if !token.starts_with(user_tokens::REFRESH_TOKEN_PREFIX) || token.len() > 128 {
        return Err(invalid_grant());
    }
    let people = &server.people;
    let hash = secret_hash(&people.hasher, "refresh", token);
    // The client is checked before rotating: another client must not burn the token.
    let Some((_, family)) = people
        .flows
        .get_refresh_family_by_token(&hash)
        .await
        .map_err(storage)?
    else {
        return Err(invalid_grant());
    };
    if family.client_id != record.client_id {
        return Err(invalid_grant());
    }
    let granted: Vec<String> = family
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let scope = match form.get("scope") {
        None => granted.clone(),
        Some(requested) => {
            let mut out: Vec<String> = Vec::new();
            for s in requested.split(' ').filter(|s| !s.is_empty()) {
                if !granted.iter().any(|g| g == s) {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidScope,
                        "the requested scope exceeds the original grant",
                    ));
                }
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_owned());
                }
            }
            out
        }
    };
    let (value, next) = user_tokens::new_refresh_token(server, &family.family_id, now)?;
    let family = match people
        .flows
        .rotate_refresh_token(&hash, &next, now)
        .await
        .map_err(storage)?
    {
        RefreshRotation::Rotated(f) => f,
        RefreshRotation::Reused(f) => {
            tracing::warn!(client_id = %f.client_id, "refresh token reused: family revoked");
            people.events.emit(event(
                EventKind::RefreshTokenReuse,
                Some(&f.user_id),
                Some(&f.client_id),
                f.session_id.as_deref(),
            ));
            return Err(invalid_grant());
        }
        RefreshRotation::Invalid => return Err(invalid_grant()),
    };
    let user = match people.users.get(&family.user_id).await {
        Ok(u) if !u.record.disabled => u,
        Ok(_) | Err(crate::users::UserError::NotFound) => return Err(invalid_grant()),
        Err(e) => {
            tracing::error!(error = %e, "user lookup failed");
            return Err(OAuthError::server_error());
        }
    };
    let audience = super::client_credentials::granted_audience(&record.audiences, form)?;
    let auth = Authentication {
        auth_time: family.auth_time,
        amr: &family.amr,
        acr: &family.acr,
        session_id: family.session_id.as_deref(),
        nonce: None,
    };
    let mut issued = user_tokens::issue(server, client, &user, &scope, audience, &auth, now)?;
    issued.response.refresh_token = Some(value);
    Ok(issued.response)
}
