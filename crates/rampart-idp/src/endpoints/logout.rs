//! `GET|POST /logout`: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
//!
//! A request without our CSRF token (a client's redirect, a link) shows a confirmation
//! page; its form posts back with the token and signs the browser out: the session is
//! deleted with the refresh tokens that came from it, the cookie is cleared, and the
//! browser goes to `post_logout_redirect_uri` if it is registered for the client (one of its
//! redirect URIs), else to a signed-out page.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use rampart_pages::{LoggedOutView, LogoutView};

use crate::browser::{self, SESSION_COOKIE, set_cookie};
use crate::form::Form;
use crate::people::events::{EventKind, event};
use crate::people::flow::internal;
use crate::people::request::redirect_with;
use crate::people::{page, see_other, with_cookies};
use crate::{AuthServer, unix_now};

/// `GET /logout`.
pub async fn logout_get(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match Form::parse_body(query.unwrap_or_default().as_bytes()) {
        Ok(form) => confirm(&server, &headers, &form).await,
        Err(_) => bad_request(&server),
    }
}

/// `POST /logout`: with our CSRF token it signs out, otherwise it asks first.
pub async fn logout_post(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = Form::parse(&headers, &body) else {
        return bad_request(&server);
    };
    if form.get("csrf_token").is_none() {
        return confirm(&server, &headers, &form).await;
    }
    if !browser::same_origin(&headers, &server.config.issuer)
        || !server.people.csrf.verify(&headers, form.get("csrf_token"))
    {
        return server.people.error_page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Go back and try signing out again.",
        );
    }
    let target = post_logout_target(&server, &form).await;
    let now = unix_now();
    if let Some(session) = server.people.current_session(&headers, now).await {
        if let Err(e) = server
            .people
            .sessions
            .delete_session(&session.session_id, now)
            .await
        {
            tracing::error!(error = %e, "session not deleted");
            return internal(&server);
        }
        server.people.events.emit(event(
            EventKind::Logout,
            Some(&session.user_id),
            target.as_ref().map(|t| t.0.as_str()),
            Some(&session.session_id),
        ));
    }
    let clear = set_cookie(SESSION_COOKIE, "", Some(0));
    let response = match target {
        Some((_, uri)) => {
            let mut params: Vec<(&str, &str)> = Vec::new();
            if let Some(state) = form.get("state") {
                params.push(("state", state));
            }
            match redirect_with(&uri, &params, &server.config.issuer) {
                Some(url) => see_other(&url),
                None => internal(&server),
            }
        }
        None => page(server.people.pages.logged_out(&LoggedOutView {
            message: "You have been signed out.".into(),
        })),
    };
    with_cookies(response, [clear])
}

async fn confirm(server: &AuthServer, headers: &HeaderMap, form: &Form) -> Response {
    let Some(csrf) = server.people.csrf.binding(headers) else {
        return internal(server);
    };
    let target = post_logout_target(server, form).await;
    let client_name = match &target {
        Some((client_id, _)) => server
            .clients
            .lookup(client_id)
            .await
            .ok()
            .flatten()
            .map(|c| c.record.name.clone()),
        None => None,
    };
    let view = LogoutView {
        csrf_token: csrf.token,
        client_name,
        id_token_hint: form.get("id_token_hint").map(str::to_owned),
        post_logout_redirect_uri: target.as_ref().map(|t| t.1.clone()),
        state: form
            .get("state")
            .filter(|s| s.len() <= 512)
            .map(str::to_owned),
        client_id: target.as_ref().map(|t| t.0.clone()),
        form_action_origin: target.as_ref().and_then(|t| browser::issuer_origin(&t.1)),
    };
    let mut response = page(server.people.pages.logout_confirm(&view));
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    with_cookies(response, csrf.set_cookie)
}

/// The client and the registered URI to return to, if the request names a valid one.
async fn post_logout_target(server: &AuthServer, form: &Form) -> Option<(String, String)> {
    let uri = form.get("post_logout_redirect_uri")?;
    let client_id = match form.get("id_token_hint") {
        Some(hint) => {
            let keys = server.keys.snapshot();
            let claims = rampart_token::read_id_token_hint(
                hint,
                keys.verification_keys(),
                &server.config.issuer,
            )
            .ok()?;
            if form.get("client_id").is_some_and(|c| c != claims.aud) {
                return None;
            }
            claims.aud
        }
        None => form.get("client_id")?.to_owned(),
    };
    let client = server.clients.lookup(&client_id).await.ok().flatten()?;
    client
        .record
        .redirect_uris
        .iter()
        .any(|r| r == uri)
        .then(|| (client_id, uri.to_owned()))
}

fn bad_request(server: &AuthServer) -> Response {
    server.people.error_page(
        StatusCode::BAD_REQUEST,
        "Invalid sign-out request",
        "The request is malformed.",
    )
}
