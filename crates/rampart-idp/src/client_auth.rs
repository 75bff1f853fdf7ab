//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3: `client_secret_basic`, `client_secret_post`; RFC 7523: `private_key_jwt`).
//!
//! Every failure is the same `invalid_client` (401) so that a caller learns nothing about
//! which part was wrong; the cause is logged.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use base64::Engine;
use rampart_store::ClientAuthMethod;

use crate::clients::RegisteredClient;
use crate::error::OAuthError;
use crate::form::Form;
use crate::{AuthServer, unix_now};

/// RFC 7523 §2.2.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Largest `Authorization` header value we decode.
const MAX_AUTHORIZATION_LEN: usize = 1024;

/// An authenticated client.
pub struct AuthenticatedClient(pub Arc<RegisteredClient>);

enum Presented<'a> {
    Secret {
        client_id: String,
        secret: String,
        method: ClientAuthMethod,
    },
    Assertion {
        client_id: Option<&'a str>,
        assertion: &'a str,
    },
    /// Only a `client_id`: acceptable for public clients (RFC 6749 §2.1), which prove the
    /// grant with PKCE instead.
    Public { client_id: &'a str },
}

/// Authenticates the client of a request. `endpoint` is the URL being called, accepted as
/// the audience of a client assertion besides the issuer and the token endpoint.
pub async fn authenticate(
    server: &AuthServer,
    headers: &HeaderMap,
    form: &Form,
    endpoint: &str,
) -> Result<AuthenticatedClient, OAuthError> {
    let presented = presented_credentials(headers, form)?;
    match presented {
        Presented::Secret {
            client_id,
            secret,
            method,
        } => {
            let client = lookup(server, &client_id).await?;
            let Some(client) = client else {
                // Same work as for a known client, so timing does not reveal which ids exist.
                let _ = server.clients.hasher().hash(secret.as_bytes());
                tracing::info!(reason = "unknown_client", "client authentication failed");
                return Err(OAuthError::invalid_client());
            };
            let record = &client.record;
            let hash_ok = record
                .secret_hash
                .as_deref()
                .is_some_and(|hash| server.clients.hasher().verify(secret.as_bytes(), hash));
            if !hash_ok {
                tracing::info!(client_id = %record.client_id, reason = "bad_secret", "client authentication failed");
                return Err(OAuthError::invalid_client());
            }
            if record.auth_method != method {
                tracing::info!(client_id = %record.client_id, reason = "method_not_registered", "client authentication failed");
                return Err(OAuthError::invalid_client());
            }
            Ok(AuthenticatedClient(client))
        }
        Presented::Assertion {
            client_id,
            assertion,
        } => authenticate_assertion(server, client_id, assertion, endpoint).await,
        Presented::Public { client_id } => {
            let client = lookup(server, client_id).await?;
            match client {
                Some(client) if client.record.auth_method == ClientAuthMethod::None => {
                    Ok(AuthenticatedClient(client))
                }
                _ => {
                    tracing::info!(reason = "no_credentials", "client authentication failed");
                    Err(OAuthError::invalid_client())
                }
            }
        }
    }
}

async fn lookup(
    server: &AuthServer,
    client_id: &str,
) -> Result<Option<Arc<RegisteredClient>>, OAuthError> {
    server.clients.lookup(client_id).await.map_err(|e| {
        tracing::error!(error = %e, "client lookup failed");
        OAuthError::server_error()
    })
}

async fn authenticate_assertion(
    server: &AuthServer,
    client_id: Option<&str>,
    assertion: &str,
    endpoint: &str,
) -> Result<AuthenticatedClient, OAuthError> {
    let claimed = match client_id {
        Some(id) => id.to_owned(),
        None => unverified_subject(assertion).ok_or_else(OAuthError::invalid_client)?,
    };
    let Some(client) = lookup(server, &claimed).await? else {
        tracing::info!(reason = "unknown_client", "client assertion rejected");
        return Err(OAuthError::invalid_client());
    };
    let (ClientAuthMethod::PrivateKeyJwt, Some(keys)) =
        (client.record.auth_method, client.assertion_keys.as_ref())
    else {
        tracing::info!(client_id = %claimed, reason = "method_not_registered", "client assertion rejected");
        return Err(OAuthError::invalid_client());
    };
    let config = &server.config;
    let audiences = [
        config.issuer.clone(),
        config.token_endpoint(),
        endpoint.to_owned(),
    ];
    let now = unix_now();
    let claims = rampart_token::verify_client_assertion(
        assertion,
        keys,
        &claimed,
        &audiences,
        config.max_assertion_lifetime_secs,
        Some(now),
    )
    .map_err(|e| {
        tracing::info!(client_id = %claimed, reason = %e, "client assertion rejected");
        OAuthError::invalid_client()
    })?;
    // RFC 7523 §3 item 7: a jti may be used only once while the assertion is valid.
    let fresh = server
        .replay
        .record_once(
            &format!("client-assertion:{claimed}"),
            &claims.jti,
            claims.exp + config.leeway_secs as i64,
            now,
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "replay store failed");
            OAuthError::server_error()
        })?;
    if !fresh {
        tracing::warn!(client_id = %claimed, reason = "assertion_replay", "client assertion rejected");
        return Err(OAuthError::invalid_client());
    }
    Ok(AuthenticatedClient(client))
}

fn presented_credentials<'a>(
    headers: &HeaderMap,
    form: &'a Form,
) -> Result<Presented<'a>, OAuthError> {
    let basic = basic_credentials(headers)?;
    let post_secret = form.get("client_secret");
    let assertion_type = form.get("client_assertion_type");
    let assertion = form.get("client_assertion");
    let used = [
        basic.is_some(),
        post_secret.is_some(),
        assertion_type.is_some() || assertion.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if used > 1 {
        return Err(OAuthError::invalid_request(
            "more than one client authentication method was used",
        ));
    }
    if let Some((client_id, secret)) = basic {
        if form.get("client_id").is_some_and(|id| id != client_id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the Authorization header",
            ));
        }
        return Ok(Presented::Secret {
            client_id,
            secret,
            method: ClientAuthMethod::ClientSecretBasic,
        });
    }
    if let Some(secret) = post_secret {
        let client_id = form.require("client_id")?;
        return Ok(Presented::Secret {
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
            method: ClientAuthMethod::ClientSecretPost,
        });
    }
    if assertion_type.is_some() || assertion.is_some() {
        if assertion_type != Some(JWT_BEARER_ASSERTION) {
            return Err(OAuthError::invalid_request(
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
        }
        let assertion = form.require("client_assertion")?;
        return Ok(Presented::Assertion {
            client_id: form.get("client_id"),
            assertion,
        });
    }
    if let Some(client_id) = form.get("client_id") {
        return Ok(Presented::Public { client_id });
    }
    Err(OAuthError::invalid_client())
}

/// The credentials of an `Authorization: Basic` header, form-urldecoded as RFC 6749 §2.3.1
/// requires. `Ok(None)` when there is no Basic header.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_request("repeated Authorization header"));
    }
    let value = value.to_str().map_err(|_| OAuthError::invalid_client())?;
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(OAuthError::invalid_client());
    }
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(OAuthError::invalid_client());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| OAuthError::invalid_client())?;
    let decoded = String::from_utf8(decoded).map_err(|_| OAuthError::invalid_client())?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(OAuthError::invalid_client)?;
    Ok(Some((form_decode(id)?, form_decode(secret)?)))
}

fn form_decode(s: &str) -> Result<String, OAuthError> {
    let plus_decoded = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_decoded)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| OAuthError::invalid_client())
}

/// The `sub` of a not-yet-verified assertion, only to find which client's keys verify it.
fn unverified_subject(assertion: &str) -> Option<String> {
    if assertion.len() > rampart_token::MAX_TOKEN_BYTES {
        return None;
    }
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    #[derive(serde::Deserialize)]
    struct Sub {
        sub: String,
    }
    let sub: Sub = serde_json::from_slice(&bytes).ok()?;
    (sub.sub.len() <= 128).then_some(sub.sub)
}
