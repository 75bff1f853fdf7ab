//! `GET|POST /consent`: a third-party client asks for the user's permission.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use rampart_pages::{ConsentView, ScopeView};

use super::login::RequestQuery;
use crate::browser;
use crate::error::ErrorCode;
use crate::people::flow::{self, expired, internal, redirect_error};
use crate::people::page;
use crate::{AuthServer, unix_now};

fn describe(scope: &str) -> String {
    match scope {
        "openid" => "Know who you are (your user id)".into(),
        "profile" => "See your name and username".into(),
        "email" => "See your e-mail address".into(),
        other => format!("Access: {other}"),
    }
}

/// `GET /consent?request=`.
pub async fn consent_page(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Query(q): Query<RequestQuery>,
) -> Response {
    let Ok(Some((request, params))) = flow::load_request(&server, &q.request).await else {
        return expired(&server);
    };
    let session = server.people.current_session(&headers, unix_now()).await;
    if session.is_none() {
        return flow::proceed(&server, &request, &params, None, false).await;
    }
    let Some(csrf) = server.people.csrf.binding(&headers) else {
        return internal(&server);
    };
    let client_name = match server.clients.lookup(&params.client_id).await {
        Ok(Some(c)) => c.record.name.clone(),
        _ => return expired(&server),
    };
    let view = ConsentView {
        request_id: request.request_id.clone(),
        csrf_token: csrf.token,
        client_name,
        scopes: params
            .scope
            .iter()
            .map(|s| ScopeView {
                name: s.clone(),
                description: describe(s),
            })
            .collect(),
        form_action_origin: browser::issuer_origin(&params.redirect_uri),
    };
    crate::people::with_cookies(page(server.people.pages.consent(&view)), csrf.set_cookie)
}

/// `POST /consent`: `decision=allow` records the grant and continues; `deny` answers the
/// client with `access_denied`.
pub async fn consent_submit(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match crate::people::checked_form(&server, &headers, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Ok(Some((request, params))) =
        flow::load_request(&server, form.get("request").unwrap_or_default()).await
    else {
        return expired(&server);
    };
    let now = unix_now();
    let Some(session) = server.people.current_session(&headers, now).await else {
        return flow::proceed(&server, &request, &params, None, false).await;
    };
    if form.get("decision") != Some("allow") {
        if let Err(e) = server
            .people
            .flows
            .delete_auth_request(&request.request_id)
            .await
        {
            tracing::warn!(error = %e, "denied request not deleted");
        }
        return redirect_error(
            &server,
            &params,
            ErrorCode::AccessDenied,
            "the user denied the request",
        );
    }
    if let Err(e) = server
        .people
        .flows
        .put_consent(&session.user_id, &params.client_id, &params.scope, now)
        .await
    {
        tracing::error!(error = %e, "consent not stored");
        return internal(&server);
    }
    flow::proceed(&server, &request, &params, Some(&session), true).await
}
