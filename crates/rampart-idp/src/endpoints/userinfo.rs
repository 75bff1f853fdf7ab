//! `GET|POST /userinfo` (OpenID Connect Core §5.3): claims about the user of an access
//! token that carries the `openid` scope. Errors per RFC 6750 §3.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_token::AudienceCheck;
use serde_json::json;

use crate::AuthServer;
use crate::people::claims::user_claims;

fn bearer_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    let challenge =
        format!("Bearer realm=\"rampart\", error=\"{error}\", error_description=\"{description}\"");
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The userinfo handler (GET and POST; the token only in the `Authorization` header).
pub async fn userinfo(State(server): State<Arc<AuthServer>>, headers: HeaderMap) -> Response {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let token = match (values.next(), values.next()) {
        (Some(v), None) => v
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_owned()),
        _ => None,
    };
    let Some(token) = token else {
        let mut r = StatusCode::UNAUTHORIZED.into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"rampart\""),
        );
        return r;
    };
    let Some(verified) = server.verify_own_token(&token, AudienceCheck::Any) else {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token is invalid",
        );
    };
    let claims = verified.claims();
    let scopes: Vec<String> = claims
        .scope
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        return bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the token lacks the openid scope",
        );
    }
    let user = match server.people.users.get(&claims.sub).await {
        Ok(u) if !u.record.disabled => u,
        Ok(_) | Err(crate::users::UserError::NotFound) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the access token is invalid",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "user lookup failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut body = user_claims(&user, &scopes);
    body.insert("sub".into(), json!(user.record.user_id));
    super::no_store_json(serde_json::Value::Object(body))
}
