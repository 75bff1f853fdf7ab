//! Metadata: RFC 8414 authorization server metadata, OpenID Connect discovery, the JWKS
//! and the PASERK set. Everything listed here is something the server really does.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AuthServer;
use crate::client_auth::JWT_BEARER_ASSERTION;
use crate::keys::{KeyFamily, KeyringSnapshot};

const AUTH_METHODS: [&str; 3] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];
/// Token and revocation endpoints also serve public clients (PKCE, no secret).
const AUTH_METHODS_WITH_PUBLIC: [&str; 4] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];
const ASSERTION_ALGS: [&str; 3] = ["EdDSA", "ES256", "RS256"];

fn cacheable_json(value: Value, max_age: u32) -> Response {
    let mut response = axum::Json(value).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    response
}

/// The JWS algorithms of the published keys of `family`, sorted.
fn published_algs(keys: &KeyringSnapshot, family: KeyFamily) -> Vec<&'static str> {
    let mut algs: Vec<&'static str> = keys
        .entries()
        .iter()
        .filter(|e| e.family == family)
        .filter_map(|e| e.key.public_jwk())
        .filter_map(|jwk| match jwk.get("alg").and_then(Value::as_str) {
            Some("EdDSA") => Some("EdDSA"),
            Some("ES256") => Some("ES256"),
            Some("RS256") => Some("RS256"),
            _ => None,
        })
        .collect();
    algs.sort_unstable();
    algs.dedup();
    algs
}

fn base_metadata(server: &AuthServer, keys: &KeyringSnapshot) -> Value {
    let c = &server.config;
    let jwt_algs = published_algs(keys, KeyFamily::Jwt);
    json!({
        "issuer": c.issuer,
        "token_endpoint": c.token_endpoint(),
        "jwks_uri": c.endpoint("/jwks.json"),
        "paserk_uri": c.endpoint("/paserk.json"),
        "introspection_endpoint": c.endpoint("/introspect"),
        "revocation_endpoint": c.endpoint("/revoke"),
        "authorization_endpoint": c.endpoint("/authorize"),
        "pushed_authorization_request_endpoint": c.endpoint("/par"),
        "require_pushed_authorization_requests": false,
        "authorization_response_iss_parameter_supported": true,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS_WITH_PUBLIC,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS_WITH_PUBLIC,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "client_assertion_types_supported": [JWT_BEARER_ASSERTION],
        "access_token_signing_alg_values_supported": jwt_algs,
        "access_token_formats_supported": ["jwt", "paseto-v4.public", "paseto-v4.local"],
    })
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
pub async fn oauth_metadata(State(server): State<Arc<AuthServer>>) -> Response {
    cacheable_json(base_metadata(&server, &server.keys.snapshot()), 300)
}

/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0).
///
/// The RFC 8414 metadata plus the OpenID Connect fields: userinfo, end-session, subject
/// types, ID token algorithms, claims, ACR values and prompts.
pub async fn openid_configuration(State(server): State<Arc<AuthServer>>) -> Response {
    // One keyring view for both lists of algorithms.
    let keys = server.keys.snapshot();
    let mut metadata = base_metadata(&server, &keys);
    if let Some(map) = metadata.as_object_mut() {
        map.insert(
            "userinfo_endpoint".into(),
            json!(server.config.endpoint("/userinfo")),
        );
        map.insert(
            "end_session_endpoint".into(),
            json!(server.config.endpoint("/logout")),
        );
        map.insert("subject_types_supported".into(), json!(["public"]));
        map.insert(
            "claims_supported".into(),
            json!([
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "acr",
                "amr",
                "azp",
                "at_hash",
                "sid",
                "name",
                "preferred_username",
                "email",
                "email_verified",
                "updated_at",
                "roles",
                "groups"
            ]),
        );
        map.insert(
            "acr_values_supported".into(),
            json!([
                crate::people::request::ACR_PASSWORD,
                crate::people::request::ACR_MFA
            ]),
        );
        map.insert(
            "prompt_values_supported".into(),
            json!(["none", "login", "consent"]),
        );
        map.insert("claims_parameter_supported".into(), json!(false));
        map.insert("request_parameter_supported".into(), json!(false));
        map.insert("request_uri_parameter_supported".into(), json!(false));
        map.insert(
            "id_token_signing_alg_values_supported".into(),
            json!(published_algs(&keys, KeyFamily::IdToken)),
        );
    }
    cacheable_json(metadata, 300)
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

/// `GET /readyz`: 200 `{"ready":true}` when [`AuthServer::ready`], else 503 with the part
/// that is missing (`{"ready":false,"reason":"database"}`), never an internal error text.
pub async fn readyz(State(server): State<Arc<AuthServer>>) -> Response {
    let (status, body) = match server.ready().await {
        Ok(()) => (StatusCode::OK, json!({"ready": true})),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ready": false, "reason": reason}),
        ),
    };
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
