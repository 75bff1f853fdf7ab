//! The authorization code grant (RFC 6749 §4.1.3) with PKCE (RFC 7636, S256 only).
//!
//! A code works once. A second redemption is treated as theft (RFC 6749 §4.1.2, RFC 9700
//! §4.5): it fails, and the access token and refresh-token family that the first
//! redemption issued are revoked.

use aws_lc_rs::digest;
use base64::Engine;
use rampart_crypto::{constant_time_eq, random_token};
use rampart_store::{CodeRedemption, IssuedGrant, RefreshFamilyRecord};

use super::client_credentials::TokenResponse;
use super::user_tokens::{self, Authentication};
use crate::AuthServer;
use crate::browser::secret_hash;
use crate::clients::RegisteredClient;
use crate::error::{ErrorCode, OAuthError};
use crate::form::Form;
use crate::people::events::{EventKind, event};

fn invalid_grant(msg: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, msg)
}

fn storage(e: rampart_store::StoreError) -> OAuthError {
    tracing::error!(error = %e, "code grant storage failed");
    OAuthError::server_error()
}

/// Whether `verifier` is a well-formed PKCE verifier whose S256 hash is `challenge`.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed {
        return false;
    }
    let hash = digest::digest(&digest::SHA256, verifier.as_bytes());
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.as_ref());
    constant_time_eq(computed.as_bytes(), challenge.as_bytes())
}

/// Exchanges a code for tokens.
pub async fn exchange(
    server: &AuthServer,
    client: &RegisteredClient,
    form: &Form,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let record = &client.record;
    if !record.grant_types.iter().any(|g| g == "authorization_code") {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the client may not use the authorization_code grant",
        ));
    }
    let code = form.require("code")?;
    let people = &server.people;
    let hash = secret_hash(&people.hasher, "code", code);
    let redeemed = match people
        .flows
        .redeem_code(&hash, now)
        .await
        .map_err(storage)?
    {
        CodeRedemption::Redeemed(r) => r,
        CodeRedemption::Invalid => return Err(invalid_grant("the code is invalid or expired")),
        CodeRedemption::AlreadyRedeemed(r, grant) => {
            if r.client_id == record.client_id {
                revoke_first_grant(server, grant.as_ref(), now).await?;
                people.events.emit(event(
                    EventKind::CodeReuse,
                    Some(&r.user_id),
                    Some(&r.client_id),
                    Some(&r.session_id),
                ));
            }
            return Err(invalid_grant("the code was already used"));
        }
    };
    if redeemed.client_id != record.client_id {
        return Err(invalid_grant("the code was issued to another client"));
    }
    // RFC 6749 §4.1.3: required when the authorization request had it, which OpenID
    // requests always do; a plain OAuth request of a client with one URI may omit it.
    let openid = redeemed.scope.split(' ').any(|s| s == "openid");
    match form.get("redirect_uri") {
        Some(uri) if uri == redeemed.redirect_uri => {}
        None if !openid
            && record.redirect_uris.len() == 1
            && record.redirect_uris[0] == redeemed.redirect_uri => {}
        _ => {
            return Err(invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
    }
    let Some(verifier) = form.get("code_verifier") else {
        return Err(invalid_grant("code_verifier is required (PKCE)"));
    };
    if !pkce_matches(verifier, &redeemed.code_challenge) {
        return Err(invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    let user = match people.users.get(&redeemed.user_id).await {
        Ok(u) if !u.record.disabled => u,
        Ok(_) | Err(crate::users::UserError::NotFound) => {
            return Err(invalid_grant("the user can no longer sign in"));
        }
        Err(e) => {
            tracing::error!(error = %e, "user lookup failed");
            return Err(OAuthError::server_error());
        }
    };
    let scope: Vec<String> = redeemed
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let audience = super::client_credentials::granted_audience(&record.audiences, form)?;
    let auth = Authentication {
        auth_time: redeemed.auth_time,
        amr: &redeemed.amr,
        acr: &redeemed.acr,
        session_id: Some(&redeemed.session_id),
        nonce: redeemed.nonce.as_deref(),
    };
    let mut issued = user_tokens::issue(server, client, &user, &scope, audience, &auth, now)?;
    let mut family_id = None;
    if record.grant_types.iter().any(|g| g == "refresh_token") {
        let id = random_token(16).map_err(|_| OAuthError::server_error())?;
        let family = RefreshFamilyRecord {
            family_id: id.clone(),
            client_id: record.client_id.clone(),
            user_id: user.record.user_id.clone(),
            session_id: Some(redeemed.session_id.clone()),
            scope: redeemed.scope.clone(),
            auth_time: redeemed.auth_time,
            amr: redeemed.amr.clone(),
            acr: redeemed.acr.clone(),
            created_at: now,
            absolute_expires_at: now + server.config.people.refresh_max_secs,
            revoked_at: None,
        };
        let (value, first) = user_tokens::new_refresh_token(server, &id, now)?;
        people
            .flows
            .create_refresh_family(&family, &first)
            .await
            .map_err(storage)?;
        issued.response.refresh_token = Some(value);
        family_id = Some(id);
    }
    people
        .flows
        .record_code_grant(
            &hash,
            &IssuedGrant {
                access_jti: issued.jti.clone(),
                access_expires_at: issued.exp,
                refresh_family_id: family_id,
            },
        )
        .await
        .map_err(storage)?;
    Ok(issued.response)
}

async fn revoke_first_grant(
    server: &AuthServer,
    grant: Option<&IssuedGrant>,
    now: i64,
) -> Result<(), OAuthError> {
    let Some(grant) = grant else { return Ok(()) };
    server
        .revocations
        .revoke(
            &grant.access_jti,
            grant.access_expires_at + server.config.leeway_secs as i64,
        )
        .await
        .map_err(storage)?;
    if let Some(family) = &grant.refresh_family_id {
        match server.people.flows.revoke_refresh_family(family, now).await {
            Ok(()) | Err(rampart_store::StoreError::NotFound) => {}
            Err(e) => return Err(storage(e)),
        }
    }
    tracing::warn!("authorization code reused: its tokens were revoked");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_rfc7636_appendix_b() {
        assert!(pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        // The plain method (verifier == challenge) never matches.
        let v = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(!pkce_matches(v, v));
        // Too short.
        assert!(!pkce_matches(
            "abc",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }
}
