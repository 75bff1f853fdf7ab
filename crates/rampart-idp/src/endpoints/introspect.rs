//! `POST /introspect` (RFC 7662): is this token active, and what does it say?
//!
//! Anything unknown, expired, revoked, malformed or oversized is `{"active": false}`; the
//! reason is never revealed.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use rampart_token::{AudienceCheck, TokenFormat, Validation, VerifiedClaims};
use serde_json::json;

use crate::error::OAuthError;
use crate::token_cache::token_hash;
use crate::{AuthServer, unix_now};

/// The introspection endpoint handler.
pub async fn introspect(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let (form, _client) = super::client_request(&server, &headers, &body, "/introspect").await?;
    let token = form.require("token")?;
    let body = match server.verify_own_token(token, AudienceCheck::Any) {
        Some(verified) => active_response(&verified),
        None => json!({ "active": false }),
    };
    Ok(super::no_store_json(body))
}

fn active_response(verified: &VerifiedClaims) -> serde_json::Value {
    let claims = verified.claims();
    let mut body = json!({
        "active": true,
        "token_type": "Bearer",
        "client_id": claims.client_id,
        "sub": claims.sub,
        "iss": claims.iss,
        "exp": claims.exp,
        "iat": claims.iat,
        "nbf": claims.nbf,
        "jti": claims.jti,
        "aud": if claims.aud.len() == 1 { json!(claims.aud[0]) } else { json!(claims.aud) },
        "token_format": match verified.format() {
            TokenFormat::Jwt => "jwt",
            TokenFormat::PasetoV4Public => "paseto-v4.public",
            TokenFormat::PasetoV4Local => "paseto-v4.local",
        },
    });
    if let (Some(scope), Some(map)) = (&claims.scope, body.as_object_mut()) {
        map.insert("scope".into(), json!(scope));
    }
    body
}

impl AuthServer {
    /// Verifies a token this server issued: signature or decryption with the keyring (or
    /// the cache of verified tokens), issuer, lifetime, audience, and revocation. `None` for
    /// anything else.
    pub fn verify_own_token(&self, token: &str, audience: AudienceCheck) -> Option<VerifiedClaims> {
        if token.len() > rampart_token::MAX_TOKEN_BYTES {
            return None;
        }
        let now = unix_now();
        let hash = token_hash(token);
        let verified = match self.verified_tokens.get(&hash) {
            Some(hit) => {
                let claims = hit.claims();
                let leeway = self.config.leeway_secs as i64;
                if claims.exp + leeway <= now || claims.nbf - leeway > now {
                    return None;
                }
                hit
            }
            None => {
                let keys = self.keys.snapshot();
                let validation = Validation {
                    issuer: self.config.issuer.clone(),
                    audience: AudienceCheck::Any,
                    leeway_secs: self.config.leeway_secs,
                    now: Some(now),
                };
                let verified =
                    rampart_token::verify(token, keys.verification_keys(), &validation).ok()?;
                self.verified_tokens.insert(hash, verified.clone(), now);
                verified
            }
        };
        if let AudienceCheck::OneOf(allowed) = &audience
            && !verified.claims().aud.iter().any(|a| allowed.contains(a))
        {
            return None;
        }
        if self.revocations.is_revoked(&verified.claims().jti) {
            return None;
        }
        Some(verified)
    }
}
