//! Metadata: RFC 8414 authorization server metadata, OpenID Connect discovery, the JWKS
//! and the PASERK set. Everything listed here is something the server really does.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AuthServer;
use crate::client_auth::JWT_BEARER_ASSERTION;

const AUTH_METHODS: [&str; 3] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];
const ASSERTION_ALGS: [&str; 3] = ["EdDSA", "ES256", "RS256"];

fn cacheable_json(value: Value, max_age: u32) -> Response {
    let mut response = axum::Json(value).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    response
}

fn base_metadata(server: &AuthServer) -> Value {
    let c = &server.config;
    let keys = server.keys.snapshot();
    let mut jwt_algs: Vec<&'static str> = keys
        .published()
        .filter_map(|k| k.public_jwk())
        .filter_map(|jwk| match jwk.get("alg").and_then(Value::as_str) {
            Some("EdDSA") => Some("EdDSA"),
            Some("ES256") => Some("ES256"),
            Some("RS256") => Some("RS256"),
            _ => None,
        })
        .collect();
    jwt_algs.sort_unstable();
    jwt_algs.dedup();
    json!({
        "issuer": c.issuer,
        "token_endpoint": c.token_endpoint(),
        "jwks_uri": c.endpoint("/jwks.json"),
        "paserk_uri": c.endpoint("/paserk.json"),
        "introspection_endpoint": c.endpoint("/introspect"),
        "revocation_endpoint": c.endpoint("/revoke"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "client_assertion_types_supported": [JWT_BEARER_ASSERTION],
        "response_types_supported": [],
        "access_token_signing_alg_values_supported": jwt_algs,
        "access_token_formats_supported": ["jwt", "paseto-v4.public", "paseto-v4.local"],
    })
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
pub async fn oauth_metadata(State(server): State<Arc<AuthServer>>) -> Response {
    cacheable_json(base_metadata(&server), 300)
}

/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0).
///
/// The fields OpenID requires are present. Until the authorization code flow exists,
/// `response_types_supported` is empty and the authorization endpoint answers every request
/// with `unsupported_response_type`.
pub async fn openid_configuration(State(server): State<Arc<AuthServer>>) -> Response {
    let mut metadata = base_metadata(&server);
    if let Some(map) = metadata.as_object_mut() {
        map.insert(
            "authorization_endpoint".into(),
            json!(server.config.endpoint("/authorize")),
        );
        map.insert("subject_types_supported".into(), json!(["public"]));
        map.insert(
            "id_token_signing_alg_values_supported".into(),
            map.get("access_token_signing_alg_values_supported")
                .cloned()
                .unwrap_or_else(|| json!([])),
        );
        map.insert("scopes_supported".into(), json!([]));
    }
    cacheable_json(metadata, 300)
}

/// `GET /authorize`: no interactive flow is enabled yet.
pub async fn authorize() -> Response {
    let mut response = (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "error": "unsupported_response_type",
            "error_description": "this server supports no authorization response types yet",
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /jwks.json`: next, active and retired JWT verification keys with kid, alg and use.
pub async fn jwks(State(server): State<Arc<AuthServer>>) -> Response {
    let keys = server.keys.snapshot();
    cacheable_json(rampart_token::jwks_document(keys.published()), 60)
}

/// `GET /paserk.json`: the PASETO v4.public verification keys as PASERK.
pub async fn paserk(State(server): State<Arc<AuthServer>>) -> Response {
    let keys = server.keys.snapshot();
    cacheable_json(rampart_token::paserk_document(keys.published()), 60)
}
