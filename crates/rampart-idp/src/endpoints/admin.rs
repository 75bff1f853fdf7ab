//! The admin API (`/admin/v1/...`): clients, keys and API keys, for remote use. The same
//! operations as the `rampart client`, `rampart key` and `rampart api-key` commands. Users
//! and sessions are in [`super::admin_users`].
//!
//! Calls carry a Bearer access token issued by this server with audience
//! [`ADMIN_AUDIENCE`] and scope [`ADMIN_SCOPE`] (the bootstrap `rampart-admin` client gets
//! one with client credentials). Errors are RFC 9457 problem details.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use rampart_crypto::ExposeSecret;
use rampart_store::{ApiKeyRecord, ClientAuthMethod, ClientRecord, ClientTokenFormat};
use rampart_token::{AudienceCheck, JwtAlg};
use serde::{Deserialize, Serialize};

use crate::api_keys::NewApiKey;
use crate::clients::{FlowSettings, NewClient, RegistryError};
use crate::config::{ADMIN_AUDIENCE, ADMIN_SCOPE};
use crate::error::Problem;
use crate::keys::{KeyFamily, KeyManager};
use crate::{AuthServer, unix_now};

/// A client as shown to administrators: never its secret or secret hash.
#[derive(Debug, Serialize)]
pub struct ClientView {
    /// Client id.
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// Token endpoint authentication method.
    pub auth_method: ClientAuthMethod,
    /// The same, under its RFC 7591 name (`none` for a public client).
    pub token_endpoint_auth_method: ClientAuthMethod,
    /// Scopes it may request.
    pub scopes: Vec<String>,
    /// Audiences it may request.
    pub audiences: Vec<String>,
    /// Access-token format.
    pub token_format: ClientTokenFormat,
    /// Access-token lifetime in seconds.
    pub access_token_ttl_secs: i64,
    /// Grant types it may use.
    pub grant_types: Vec<String>,
    /// Registered redirect URIs (exact match).
    pub redirect_uris: Vec<String>,
    /// A first-party client: no consent page.
    pub first_party: bool,
    /// Every sign-in for this client needs a second factor.
    pub require_mfa: bool,
    /// Authorization requests must be pushed (RFC 9126).
    pub require_par: bool,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Last changed, unix seconds.
    pub updated_at: i64,
}

impl From<&ClientRecord> for ClientView {
    fn from(r: &ClientRecord) -> Self {
        Self {
            client_id: r.client_id.clone(),
            name: r.name.clone(),
            auth_method: r.auth_method,
            token_endpoint_auth_method: r.auth_method,
            scopes: r.scopes.clone(),
            audiences: r.audiences.clone(),
            token_format: r.token_format,
            access_token_ttl_secs: r.access_token_ttl_secs,
            grant_types: r.grant_types.clone(),
            redirect_uris: r.redirect_uris.clone(),
            first_party: r.first_party,
            require_mfa: r.require_mfa,
            require_par: r.require_par,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// An API key as shown to administrators: never the key or its hash.
#[derive(Debug, Serialize)]
pub struct ApiKeyView {
    /// Public key id.
    pub key_id: String,
    /// Display name.
    pub name: String,
    /// The subject the key acts for.
    pub owner: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Audiences.
    pub audiences: Vec<String>,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Expires, unix seconds; `null` if never.
    pub expires_at: Option<i64>,
    /// Revoked, unix seconds; `null` if not revoked.
    pub revoked_at: Option<i64>,
    /// `active`, `revoked` or `expired` at the time of the view.
    pub status: &'static str,
}

impl ApiKeyView {
    /// The view of `r` at time `now`.
    pub fn new(r: &ApiKeyRecord, now: i64) -> Self {
        let status = if r.revoked_at.is_some() {
            "revoked"
        } else if r.is_active(now) {
            "active"
        } else {
            "expired"
        };
        Self {
            key_id: r.key_id.clone(),
            name: r.name.clone(),
            owner: r.owner.clone(),
            scopes: r.scopes.clone(),
            audiences: r.audiences.clone(),
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            status,
        }
    }
}

/// The body of `POST /admin/v1/api-keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// Display name.
    pub name: String,
    /// The subject the key acts for (`sub` and `client_id` in introspection).
    pub owner: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
    /// Audiences; at least one.
    pub audiences: Vec<String>,
    /// Lifetime in seconds; no expiry when absent.
    pub ttl: Option<i64>,
}

/// A key as shown to administrators: id, kind and lifecycle, never key material.
#[derive(Debug, Serialize)]
pub struct KeyView {
    /// Key id.
    pub kid: String,
    /// Family: `jwt`, `id-token`, `paseto-public` or `paseto-local`.
    pub family: &'static str,
    /// Kind, e.g. `jwt-EdDSA`.
    pub kind: &'static str,
    /// `next`, `active` or `retired`.
    pub state: &'static str,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Activated, unix seconds.
    pub activated_at: Option<i64>,
    /// Retired, unix seconds.
    pub retired_at: Option<i64>,
}

/// The keyring as shown to administrators.
pub fn key_views(keys: &KeyManager) -> Vec<KeyView> {
    keys.snapshot()
        .entries()
        .iter()
        .map(|e| KeyView {
            kid: e.key.kid().to_owned(),
            family: e.family.as_str(),
            kind: e.key.kind().as_str(),
            state: e.state.as_str(),
            created_at: e.created_at,
            activated_at: e.activated_at,
            retired_at: e.retired_at,
        })
        .collect()
}

/// The body of `POST /admin/v1/clients`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    /// Optional chosen id.
    pub client_id: Option<String>,
    /// Display name.
    pub name: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
    /// Audiences; required with `client_credentials`.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// `jwt`, `paseto-public` or `paseto-local`; default `jwt`.
    pub token_format: Option<ClientTokenFormat>,
    /// Default `client_secret_basic` (`none` when `public`).
    pub auth_method: Option<ClientAuthMethod>,
    /// The client's public JWKS, for `private_key_jwt`.
    pub jwks: Option<serde_json::Value>,
    /// Access-token lifetime in seconds.
    pub ttl: Option<i64>,
    /// `client_credentials`, `authorization_code`, `refresh_token`; default
    /// `["client_credentials"]`.
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Redirect URIs for the authorization code flow.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// A public client (auth method `none`, no secret; PKCE only).
    #[serde(default)]
    pub public: bool,
    /// Skip the consent page.
    #[serde(default)]
    pub first_party: bool,
    /// Every sign-in for this client needs a second factor.
    #[serde(default)]
    pub require_mfa: bool,
    /// Authorization requests must be pushed (RFC 9126).
    #[serde(default)]
    pub require_par: bool,
}

/// The body of `POST /admin/v1/keys/rotate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// `jwt`, `paseto-public` or `paseto-local`; every family when absent.
    pub family: Option<String>,
    /// Algorithm of the new JWT key: `EdDSA`, `ES256` or `RS256`.
    pub alg: Option<String>,
}

/// Parses a JWT algorithm name.
pub fn parse_jwt_alg(s: &str) -> Option<JwtAlg> {
    match s {
        "EdDSA" => Some(JwtAlg::EdDSA),
        "ES256" => Some(JwtAlg::ES256),
        "RS256" => Some(JwtAlg::RS256),
        _ => None,
    }
}

pub(crate) fn require_admin(server: &AuthServer, headers: &HeaderMap) -> Result<(), Problem> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or_else(Problem::unauthorized)?;
    let verified = server
        .verify_own_token(token, AudienceCheck::OneOf(vec![ADMIN_AUDIENCE.to_owned()]))
        .ok_or_else(Problem::unauthorized)?;
    let has_scope = verified
        .claims()
        .scope
        .as_deref()
        .is_some_and(|s| s.split(' ').any(|s| s == ADMIN_SCOPE));
    if !has_scope {
        return Err(Problem::forbidden());
    }
    Ok(())
}

fn registry_problem(e: RegistryError) -> Problem {
    match e {
        RegistryError::Invalid(msg) => Problem::bad_request(msg),
        RegistryError::NotApplicable(msg) => Problem::bad_request(msg),
        RegistryError::Conflict => Problem::conflict("a client with this id already exists"),
        RegistryError::NotFound => Problem::not_found("no such client"),
        other => {
            tracing::error!(error = %other, "admin operation failed");
            Problem::internal()
        }
    }
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")))
}

/// `GET /admin/v1/clients`.
pub async fn list_clients(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    require_admin(&server, &headers)?;
    let clients = server.clients.list().await.map_err(registry_problem)?;
    let views: Vec<ClientView> = clients.iter().map(ClientView::from).collect();
    Ok(super::no_store_json(views))
}

/// `POST /admin/v1/clients`: 201 with the client id and, once, its secret.
pub async fn create_client(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    require_admin(&server, &headers)?;
    let request: CreateClientRequest = parse_json(&body)?;
    let auth_method = match (request.public, request.auth_method) {
        (false, method) => method.unwrap_or(ClientAuthMethod::ClientSecretBasic),
        (true, None | Some(ClientAuthMethod::None)) => ClientAuthMethod::None,
        (true, Some(_)) => {
            return Err(Problem::bad_request(
                "public: a public client has auth_method none",
            ));
        }
    };
    if request.public && request.jwks.is_some() {
        return Err(Problem::bad_request("public: a public client has no JWKS"));
    }
    let new = NewClient {
        client_id: request.client_id,
        name: request.name,
        scopes: vec![request.scope],
        audiences: request.audiences,
        token_format: request.token_format.unwrap_or(ClientTokenFormat::Jwt),
        auth_method,
        jwks: request.jwks.map(|v| v.to_string()),
        ttl_secs: request.ttl,
        flows: FlowSettings {
            grant_types: request.grant_types,
            redirect_uris: request.redirect_uris,
            first_party: request.first_party,
            require_mfa: request.require_mfa,
            require_par: request.require_par,
        },
    };
    let created = server
        .clients
        .create(new, unix_now())
        .await
        .map_err(registry_problem)?;
    let body = serde_json::json!({
        "client_id": created.record.client_id,
        "client_secret": created.secret.as_ref().map(|s| s.expose_secret().to_owned()),
        "client": ClientView::from(&created.record),
    });
    let mut response = super::no_store_json(body);
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// `GET /admin/v1/clients/{client_id}`.
pub async fn get_client(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    require_admin(&server, &headers)?;
    let record = server.clients.get(&id).await.map_err(registry_problem)?;
    Ok(super::no_store_json(ClientView::from(&record)))
}

/// `DELETE /admin/v1/clients/{client_id}`: 204.
pub async fn delete_client(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    require_admin(&server, &headers)?;
    server.clients.delete(&id).await.map_err(registry_problem)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /admin/v1/clients/{client_id}/rotate-secret`: the new secret, once.
pub async fn rotate_secret(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    require_admin(&server, &headers)?;
    let secret = server
        .clients
        .rotate_secret(&id, unix_now())
        .await
        .map_err(registry_problem)?;
    Ok(super::no_store_json(serde_json::json!({
        "client_id": id,
        "client_secret": secret.expose_secret(),
    })))
}

/// `GET /admin/v1/keys`.
pub async fn list_keys(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    require_admin(&server, &headers)?;
    Ok(super::no_store_json(key_views(&server.keys)))
}

/// `POST /admin/v1/keys/rotate`.
pub async fn rotate_keys(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    require_admin(&server, &headers)?;
    let request: RotateRequest = if body.is_empty() {
        RotateRequest::default()
    } else {
        parse_json(&body)?
    };
    let families = match request.family.as_deref() {
        None => KeyFamily::ALL.to_vec(),
        Some(name) => vec![KeyFamily::parse(name).ok_or_else(|| {
            Problem::bad_request("family: one of jwt, id-token, paseto-public, paseto-local")
        })?],
    };
    let alg = match request.alg.as_deref() {
        None => None,
        Some(name) => Some(
            parse_jwt_alg(name)
                .ok_or_else(|| Problem::bad_request("alg: one of EdDSA, ES256, RS256"))?,
        ),
    };
    let rotations = server
        .keys
        .rotate(&families, alg, unix_now())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "key rotation failed");
            Problem::internal()
        })?;
    Ok(super::no_store_json(rotations))
}

fn api_key_problem(e: RegistryError) -> Problem {
    match e {
        RegistryError::NotFound => Problem::not_found("no such API key"),
        RegistryError::Conflict => Problem::conflict("an API key with this id already exists"),
        other => registry_problem(other),
    }
}

/// `GET /admin/v1/api-keys`: every key, never the key itself or its hash.
pub async fn list_api_keys(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    require_admin(&server, &headers)?;
    let keys = server.api_keys.list().await.map_err(api_key_problem)?;
    let now = unix_now();
    let views: Vec<ApiKeyView> = keys.iter().map(|k| ApiKeyView::new(k, now)).collect();
    Ok(super::no_store_json(views))
}

/// `POST /admin/v1/api-keys`: 201 with the key id and, once, the key.
pub async fn create_api_key(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    require_admin(&server, &headers)?;
    let request: CreateApiKeyRequest = parse_json(&body)?;
    let new = NewApiKey {
        name: request.name,
        owner: request.owner,
        scopes: vec![request.scope],
        audiences: request.audiences,
        ttl_secs: request.ttl,
    };
    let now = unix_now();
    let created = server
        .api_keys
        .create(new, now)
        .await
        .map_err(api_key_problem)?;
    tracing::info!(key_id = %created.record.key_id, owner = %created.record.owner, "API key created");
    let body = serde_json::json!({
        "key_id": created.record.key_id,
        "api_key": created.key.expose_secret(),
        "key": ApiKeyView::new(&created.record, now),
    });
    let mut response = super::no_store_json(body);
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// `POST /admin/v1/api-keys/{key_id}/revoke`: the revoked key's view. Idempotent.
pub async fn revoke_api_key(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    require_admin(&server, &headers)?;
    let now = unix_now();
    let record = server
        .api_keys
        .revoke(&id, now)
        .await
        .map_err(api_key_problem)?;
    tracing::info!(key_id = %record.key_id, "API key revoked");
    Ok(super::no_store_json(ApiKeyView::new(&record, now)))
}

/// `DELETE /admin/v1/api-keys/{key_id}`: 204.
pub async fn delete_api_key(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    require_admin(&server, &headers)?;
    server.api_keys.delete(&id).await.map_err(api_key_problem)?;
    tracing::info!(key_id = %id, "API key deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
