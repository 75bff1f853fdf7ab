//! `POST /introspect` (RFC 7662): is this token active, and what does it say?
//!
//! Anything unknown, expired, revoked, malformed or oversized is `{"active": false}`; the
//! reason is never revealed.
//!
//! API keys (`rk_...`, see [`crate::api_keys`]) are introspected too, with
//! `token_type: "api_key"`, so that gateways accept them like opaque tokens. A key without
//! expiry is reported with `exp` = now + [`API_KEY_EXP_HORIZON_SECS`]: consumers require an
//! `exp` and cache results at most until it, so this is a cache horizon, not the key's end.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use rampart_store::ApiKeyRecord;
use rampart_token::{AccessClaims, AudienceCheck, TokenFormat, Validation, VerifiedClaims};
use serde_json::json;

use crate::api_keys::API_KEY_PREFIX;
use crate::error::OAuthError;
use crate::token_cache::token_hash;
use crate::{AuthServer, unix_now};

/// The introspection endpoint handler.
pub async fn introspect(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let (form, client) = super::client_request(&server, &headers, &body, "/introspect").await?;
    if client.record.auth_method == rampart_store::ClientAuthMethod::None {
        // A public client holds no secret: it must not learn about arbitrary tokens.
        return Err(OAuthError::invalid_client());
    }
    let token = form.require("token")?;
    if token.starts_with(API_KEY_PREFIX) {
        let now = unix_now();
        // Oversized or unknown keys, revoked and expired ones are all inactive.
        let body = match server.api_keys.verify(token, now).await {
            Ok(Some(record)) => api_key_response(&server.config.issuer, &record, now),
            Ok(None) => json!({ "active": false }),
            Err(e) => {
                tracing::error!(error = %e, "API key lookup failed");
                return Err(OAuthError::server_error());
            }
        };
        return Ok(super::no_store_json(body));
    }
    let body = match server.verify_own_token(token, AudienceCheck::Any) {
        Some(verified) => active_response(&verified),
        None => json!({ "active": false }),
    };
    Ok(super::no_store_json(body))
}

/// The `exp` reported for an API key without expiry: now plus this many seconds.
pub const API_KEY_EXP_HORIZON_SECS: i64 = 300;

fn api_key_response(issuer: &str, key: &ApiKeyRecord, now: i64) -> serde_json::Value {
    let exp = key
        .expires_at
        .unwrap_or_else(|| now.saturating_add(API_KEY_EXP_HORIZON_SECS));
    let mut body = json!({
        "active": true,
        "token_type": "api_key",
        "sub": key.owner,
        "client_id": key.owner,
        "iss": issuer,
        "iat": key.created_at,
        "exp": exp,
        "jti": key.key_id,
        "aud": if key.audiences.len() == 1 { json!(key.audiences[0]) } else { json!(key.audiences) },
    });
    if !key.scopes.is_empty()
        && let Some(map) = body.as_object_mut()
    {
        map.insert("scope".into(), json!(key.scopes.join(" ")));
    }
    body
}

fn active_response(verified: &VerifiedClaims) -> serde_json::Value {
    claims_response(verified.claims(), verified.format())
}

fn claims_response(claims: &AccessClaims, format: TokenFormat) -> serde_json::Value {
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
        "token_format": match format {
            TokenFormat::Jwt => "jwt",
            TokenFormat::PasetoV4Public => "paseto-v4.public",
            TokenFormat::PasetoV4Local => "paseto-v4.local",
        },
    });
    if let Some(map) = body.as_object_mut() {
        if let Some(scope) = &claims.scope {
            map.insert("scope".into(), json!(scope));
        }
        // RFC 9068 §7.2.1.1 claims, so a gateway introspecting opaque or v4.local tokens
        // sees what one verifying a JWT sees.
        if !claims.roles.is_empty() {
            map.insert("roles".into(), json!(claims.roles));
        }
        if !claims.groups.is_empty() {
            map.insert("groups".into(), json!(claims.groups));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(expires_at: Option<i64>, audiences: &[&str], scopes: &[&str]) -> ApiKeyRecord {
        ApiKeyRecord {
            key_id: "kid".into(),
            key_hash: vec![7; 32],
            name: "n".into(),
            owner: "svc".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            audiences: audiences.iter().map(|s| s.to_string()).collect(),
            created_at: 100,
            expires_at,
            revoked_at: None,
        }
    }

    #[test]
    fn api_key_response_fields() {
        let body = api_key_response(
            "https://iss",
            &record(Some(500), &["https://a"], &["r", "w"]),
            200,
        );
        assert_eq!(
            body,
            json!({
                "active": true, "token_type": "api_key", "sub": "svc", "client_id": "svc",
                "iss": "https://iss", "iat": 100, "exp": 500, "jti": "kid",
                "aud": "https://a", "scope": "r w",
            })
        );
        // No expiry: a cache horizon; several audiences: an array; no scope: omitted.
        let body = api_key_response(
            "https://iss",
            &record(None, &["https://a", "https://b"], &[]),
            200,
        );
        assert_eq!(body["exp"], 200 + API_KEY_EXP_HORIZON_SECS);
        assert_eq!(body["aud"], json!(["https://a", "https://b"]));
        assert!(body.get("scope").is_none());
        assert!(!body.to_string().contains("key_hash"));
    }

    #[test]
    fn a_users_roles_and_groups_are_introspected() {
        let mut claims = AccessClaims {
            iss: "https://iss".into(),
            sub: "u1".into(),
            aud: vec!["https://a".into()],
            exp: 500,
            iat: 100,
            nbf: 100,
            jti: "j".into(),
            client_id: "spa".into(),
            scope: Some("openid".into()),
            roles: vec!["admin".into()],
            groups: vec!["eng".into(), "ops".into()],
        };
        let body = claims_response(&claims, TokenFormat::PasetoV4Local);
        assert_eq!(body["roles"], json!(["admin"]));
        assert_eq!(body["groups"], json!(["eng", "ops"]));
        assert_eq!(body["token_format"], "paseto-v4.local");
        claims.roles.clear();
        claims.groups.clear();
        let body = claims_response(&claims, TokenFormat::Jwt);
        assert!(body.get("roles").is_none() && body.get("groups").is_none());
    }
}
