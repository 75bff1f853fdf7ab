//! `GET|POST /authorize` (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2) and
//! `POST /par` (RFC 9126, pushed authorization requests).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use rampart_crypto::random_token;
use rampart_store::AuthRequestRecord;

use crate::error::{ErrorCode, OAuthError};
use crate::form::Form;
use crate::people::flow::{self, expired, internal};
use crate::people::request::{
    AuthorizationParams, REQUEST_URI_PREFIX, RequestError, error_redirect, trusted_redirect,
    validate,
};
use crate::people::see_other;
use crate::{AuthServer, unix_now};

/// `GET /authorize`: parameters in the query.
pub async fn authorize_get(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    authorize(&server, &headers, query.unwrap_or_default().as_bytes()).await
}

/// `POST /authorize`: parameters in a form body (OpenID Connect Core §3.1.2.1).
pub async fn authorize_post(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return server.people.error_page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in request",
            "The request is not a form submission.",
        );
    }
    authorize(&server, &headers, &body).await
}

async fn authorize(server: &AuthServer, headers: &HeaderMap, raw: &[u8]) -> Response {
    let show = |msg: &str| {
        server
            .people
            .error_page(StatusCode::BAD_REQUEST, "Invalid sign-in request", msg)
    };
    let form = match Form::parse_body(raw) {
        Ok(f) => f,
        Err(e) => return show(e.description().unwrap_or("The request is malformed.")),
    };
    let Some(client_id) = form.get("client_id") else {
        return show("The request does not name an application (client_id).");
    };
    let client = match server.clients.lookup(client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return show("The application is not registered."),
        Err(e) => {
            tracing::error!(error = %e, "client lookup failed");
            return internal(server);
        }
    };
    let now = unix_now();
    let request = if let Some(request_uri) = form.get("request_uri") {
        // RFC 9126 §4: the pushed parameters are the request; front-channel ones are ignored.
        match pushed_request(server, client_id, request_uri, now).await {
            Ok(r) => r,
            Err(r) => return r,
        }
    } else {
        let redirect_uri = match trusted_redirect(&client, &form) {
            Ok(uri) => uri,
            Err(RequestError::Show(msg)) => return show(&msg),
            Err(RequestError::Redirect { .. }) => return internal(server),
        };
        if client.record.require_par {
            let error = OAuthError::new(
                ErrorCode::InvalidRequest,
                "this client must push its authorization requests (PAR)",
            );
            return match error_redirect(
                &redirect_uri,
                form.get("state"),
                &error,
                &server.config.issuer,
            ) {
                Some(url) => see_other(&url),
                None => internal(server),
            };
        }
        let params = match validate(&client, redirect_uri, &form) {
            Ok(p) => p,
            Err(RequestError::Show(msg)) => return show(&msg),
            Err(RequestError::Redirect {
                redirect_uri,
                state,
                error,
            }) => {
                return match error_redirect(
                    &redirect_uri,
                    state.as_deref(),
                    &error,
                    &server.config.issuer,
                ) {
                    Some(url) => see_other(&url),
                    None => internal(server),
                };
            }
        };
        match store_request(
            server,
            &params,
            false,
            server.config.people.auth_request_ttl_secs,
            now,
        )
        .await
        {
            Ok(r) => r,
            Err(_) => return internal(server),
        }
    };
    let Some(params) = flow::params_of(&request) else {
        return internal(server);
    };
    let session = server.people.current_session(headers, now).await;
    flow::proceed(server, &request, &params, session.as_ref(), false).await
}

/// Swaps a pushed request (one use, short-lived) for an ordinary stored request.
async fn pushed_request(
    server: &AuthServer,
    client_id: &str,
    request_uri: &str,
    now: i64,
) -> Result<AuthRequestRecord, Response> {
    let Some(id) = request_uri.strip_prefix(REQUEST_URI_PREFIX) else {
        return Err(expired(server));
    };
    let Some((pushed, params)) = flow::load_request(server, id).await? else {
        return Err(expired(server));
    };
    if !pushed.pushed || pushed.client_id != client_id {
        return Err(expired(server));
    }
    if let Err(e) = server.people.flows.delete_auth_request(id).await {
        tracing::error!(error = %e, "pushed request not consumed");
        return Err(internal(server));
    }
    store_request(
        server,
        &params,
        false,
        server.config.people.auth_request_ttl_secs,
        now,
    )
    .await
    .map_err(|_| internal(server))
}

async fn store_request(
    server: &AuthServer,
    params: &AuthorizationParams,
    pushed: bool,
    ttl: i64,
    now: i64,
) -> Result<AuthRequestRecord, ()> {
    let request_id = random_token(24).map_err(|_| ())?;
    let params_json = serde_json::to_string(params).map_err(|_| ())?;
    let record = AuthRequestRecord {
        request_id,
        client_id: params.client_id.clone(),
        params_json,
        pushed,
        pending_user_id: None,
        pending_binding: None,
        created_at: now,
        expires_at: now + ttl,
    };
    server
        .people
        .flows
        .create_auth_request(&record)
        .await
        .map_err(|e| tracing::error!(error = %e, "authorization request not stored"))?;
    Ok(record)
}

/// `POST /par`: the client pushes its request and gets a `request_uri` (RFC 9126 §2).
pub async fn par(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let (form, client) = super::client_request(&server, &headers, &body, "/par").await?;
    if form.get("request_uri").is_some() {
        return Err(OAuthError::invalid_request(
            "request_uri is not allowed in a pushed request",
        ));
    }
    let redirect_uri = trusted_redirect(&client, &form).map_err(|e| match e {
        RequestError::Show(msg) => OAuthError::invalid_request(msg),
        RequestError::Redirect { error, .. } => error,
    })?;
    let params = validate(&client, redirect_uri, &form).map_err(|e| match e {
        RequestError::Show(msg) => OAuthError::invalid_request(msg),
        RequestError::Redirect { error, .. } => error,
    })?;
    let ttl = server.config.people.par_ttl_secs;
    let record = store_request(&server, &params, true, ttl, unix_now())
        .await
        .map_err(|_| OAuthError::server_error())?;
    let mut response = super::no_store_json(serde_json::json!({
        "request_uri": format!("{REQUEST_URI_PREFIX}{}", record.request_id),
        "expires_in": ttl,
    }));
    *response.status_mut() = StatusCode::CREATED;
    Ok(response.into_response())
}
