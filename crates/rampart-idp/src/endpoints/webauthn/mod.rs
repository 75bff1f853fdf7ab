//! Passkeys (WebAuthn) over JSON, for `/assets/webauthn.js`:
//!
//! - `POST /webauthn/register/start` `{request?}` and `POST /webauthn/register/finish`:
//!   a new passkey for the signed-in user (the account page), or, with `request`, for the
//!   user who passed the password step of that authorization request and has no second
//!   factor yet (enrollment during sign-in; the answer then continues the sign-in).
//! - `POST /webauthn/login/start` `{request}` and `POST /webauthn/login/finish`: on the login
//!   page, a usernameless sign-in with a discoverable passkey (`amr` `hwk`, `user`: the
//!   authenticator verified the user, so it is phishing-resistant multi-factor by itself);
//!   after the password step (the MFA page), one of the pending user's passkeys as the
//!   second factor (`amr` `pwd`, `hwk`). A `username` sent by the script is ignored: asking
//!   for a user's credential ids by name would tell anyone which accounts have passkeys.
//!
//! Every call checks Fetch Metadata / `Origin`, a JSON content type and the CSRF token in
//! `X-CSRF-Token`; the finish calls also need the ceremony cookie of the same browser
//! (see [`crate::people::passkeys`]). Failures of a finish call are throttled per account
//! (`passkey:<user id>`) and per address, and answer `{"error": "..."}` for the user.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use rampart_authn::ThrottleDecision;
use rampart_store::{AuthRequestRecord, StoreError, WebauthnCredentialRecord};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use webauthn_rs::prelude::{
    AuthenticationResult, Passkey, PublicKeyCredential, RegisterPublicKeyCredential, Webauthn,
    WebauthnError,
};

use super::login::pending_user;
use crate::browser::{self, client_ip};
use crate::people::events::{EventKind, event};
use crate::people::flow;
use crate::people::passkeys::{
    CEREMONY_COOKIE, Ceremony, MAX_PASSKEYS_PER_USER, Registrant, SignInMode, ceremony_cookie,
    require_discoverable, user_handle, user_id_of,
};
use crate::people::request::AuthorizationParams;
use crate::people::with_cookies;
use crate::users::UserError;
use crate::{AuthServer, unix_now};

/// The header the script sends the page's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

const EXPIRED_PAGE: &str = "This page has expired. Reload it and try again.";
const EXPIRED_SIGN_IN: &str =
    "This sign-in has expired. Go back to the application and start again.";
const EXPIRED_CEREMONY: &str = "The passkey request has expired. Please try again.";
const INTERNAL: &str = "Something went wrong. Please try again in a moment.";
const NOT_RECOGNIZED: &str =
    "This passkey was not recognized. Try another one or sign in with your password.";

/// The body of the start calls.
#[derive(Debug, Default, Deserialize)]
struct StartBody {
    /// The authorization request id, when on a sign-in page.
    #[serde(default)]
    request: Option<String>,
}

/// A JSON answer that is never cached.
fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({ "error": message }))
}

fn internal() -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL)
}

/// Also forgets the ceremony cookie.
fn finished(response: Response) -> Response {
    with_cookies(response, [ceremony_cookie(None)])
}

fn too_many(retry_after: std::time::Duration) -> Response {
    let secs = retry_after.as_secs().max(1);
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("Too many attempts. Try again in {secs} seconds."),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// Origin, content type and CSRF token; returns the token.
fn checked(server: &AuthServer, headers: &HeaderMap) -> Result<String, Response> {
    if !browser::same_origin(headers, &server.config.issuer) {
        return Err(error(StatusCode::FORBIDDEN, EXPIRED_PAGE));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The request must be JSON.",
        ));
    }
    let token = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !server.people.csrf.verify(headers, Some(token)) {
        tracing::info!(reason = "csrf", "passkey request refused");
        return Err(error(StatusCode::FORBIDDEN, EXPIRED_PAGE));
    }
    Ok(token.to_owned())
}

fn relying_party(server: &AuthServer) -> Result<&Webauthn, Response> {
    server.people.passkeys.webauthn().ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "Passkeys are not available on this server.",
        )
    })
}

/// What ties a ceremony to the browser that started it.
fn browser_tag(server: &AuthServer, csrf_token: &str) -> Vec<u8> {
    browser::secret_hash(&server.people.hasher, "webauthn-ceremony", csrf_token)
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_json::from_slice(body).ok()
}

/// The checks every call makes first: Fetch Metadata / `Origin` and the CSRF token
/// (returned), and a configured relying party.
fn checked_call<'a>(
    server: &'a AuthServer,
    headers: &HeaderMap,
) -> Result<(String, &'a Webauthn), Response> {
    Ok((checked(server, headers)?, relying_party(server)?))
}

/// The checks of [`checked_call`], and a well-formed body of a start call.
fn start_call<'a>(
    server: &'a AuthServer,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, &'a Webauthn, StartBody), Response> {
    let (csrf_token, webauthn) = checked_call(server, headers)?;
    let start = parse::<StartBody>(body)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "The request is malformed."))?;
    Ok((csrf_token, webauthn, start))
}

/// Keeps the ceremony and answers `options` with its cookie.
fn begin(
    server: &AuthServer,
    csrf_token: &str,
    ceremony: Ceremony,
    options: impl serde::Serialize,
) -> Response {
    let Ok(options) = serde_json::to_value(options) else {
        return internal();
    };
    let id = match server.people.passkeys.begin(
        ceremony,
        browser_tag(server, csrf_token),
        Instant::now(),
    ) {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "passkey ceremony not started");
            return internal();
        }
    };
    with_cookies(
        json_response(StatusCode::OK, options),
        [ceremony_cookie(Some(&id))],
    )
}

/// Takes this browser's ceremony out of the store.
fn take(server: &AuthServer, headers: &HeaderMap, csrf_token: &str) -> Result<Ceremony, Response> {
    browser::cookie(headers, CEREMONY_COOKIE)
        .and_then(|id| {
            server
                .people
                .passkeys
                .take(id, &browser_tag(server, csrf_token), Instant::now())
        })
        .ok_or_else(|| finished(error(StatusCode::BAD_REQUEST, EXPIRED_CEREMONY)))
}

/// The flow's answer (a redirect to the next step, with cookies) as `{"redirect": ...}`
/// for the script; an error page becomes `{"error": ...}`.
fn as_json(response: Response) -> Response {
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let cookies: Vec<HeaderValue> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    let answer = match location {
        Some(to) if status.is_redirection() => {
            json_response(StatusCode::OK, json!({ "redirect": to }))
        }
        _ if status == StatusCode::BAD_REQUEST => error(status, EXPIRED_SIGN_IN),
        _ if status.is_client_error() => error(status, INTERNAL),
        _ => internal(),
    };
    with_cookies(answer, cookies)
}

async fn load_request(
    server: &AuthServer,
    request_id: &str,
) -> Result<(AuthRequestRecord, AuthorizationParams), Response> {
    match flow::load_request(server, request_id).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(error(StatusCode::BAD_REQUEST, EXPIRED_SIGN_IN)),
        Err(_) => Err(internal()),
    }
}

async fn credentials(
    server: &AuthServer,
    user_id: &str,
) -> Result<Vec<WebauthnCredentialRecord>, Response> {
    server
        .people
        .mfa
        .list_webauthn_credentials(user_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "passkey lookup failed");
            internal()
        })
}

fn open_passkey(record: &WebauthnCredentialRecord) -> Option<Passkey> {
    match serde_json::from_str(&record.credential_json) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(user_id = %record.user_id, error = %e, "stored passkey unreadable");
            None
        }
    }
}

/// Whether the user exists and may sign in.
async fn active_user(server: &AuthServer, user_id: &str) -> Result<Option<String>, Response> {
    match server.people.users.get(user_id).await {
        Ok(u) if !u.record.disabled => Ok(Some(u.record.username)),
        Ok(_) | Err(UserError::NotFound) => Ok(None),
        Err(e) => {
            tracing::error!(error = %e, "user lookup failed");
            Err(internal())
        }
    }
}

fn throttle_key(user_id: Option<&str>) -> String {
    format!("passkey:{}", user_id.unwrap_or("-"))
}

async fn throttled(server: &AuthServer, account: &str, ip: IpAddr) -> Result<(), Response> {
    match server.people.throttle.check(account, ip).await {
        ThrottleDecision::Allow => Ok(()),
        ThrottleDecision::Wait { retry_after } | ThrottleDecision::Locked { retry_after } => {
            Err(finished(too_many(retry_after)))
        }
    }
}

/// Records a failed finish: throttle, security event (`kind`, and `LockedOut` when this
/// failure locks); answers `message`.
async fn failure(
    server: &AuthServer,
    kind: Option<EventKind>,
    user_id: Option<&str>,
    client_id: Option<&str>,
    ip: IpAddr,
    message: &str,
) -> Response {
    let people = &server.people;
    let decision = people
        .throttle
        .record_failure(&throttle_key(user_id), ip)
        .await;
    if let Some(kind) = kind {
        people.events.emit(event(kind, user_id, client_id, None));
    }
    if let ThrottleDecision::Locked { .. } = decision {
        people
            .events
            .emit(event(EventKind::LockedOut, user_id, client_id, None));
    }
    finished(error(StatusCode::UNAUTHORIZED, message))
}

fn log_rejection(what: &str, e: &WebauthnError) {
    if matches!(e, WebauthnError::CredentialPossibleCompromise) {
        // The signature counter went backwards: the authenticator may have been cloned.
        tracing::warn!(target: "rampart::security", error = %e, "{what}: possible cloned passkey");
    } else {
        tracing::info!(error = %e, "{what} refused");
    }
}

mod registration;
mod sign_in;

pub use registration::{register_finish, register_start};
pub use sign_in::{login_finish, login_start};

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(to: &str, cookie: &'static str) -> Response {
        let mut r = crate::people::see_other(to);
        r.headers_mut()
            .append(header::SET_COOKIE, HeaderValue::from_static(cookie));
        r
    }

    async fn body_json(r: Response) -> serde_json::Value {
        let bytes = http_body_util::BodyExt::collect(r.into_body())
            .await
            .unwrap()
            .to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn flow_redirects_become_json_with_their_cookies() {
        let r = as_json(redirect("https://rp.example/cb?code=x", "a=b"));
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::SET_COOKIE], "a=b");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(
            body_json(r).await,
            json!({ "redirect": "https://rp.example/cb?code=x" })
        );
    }

    #[tokio::test]
    async fn flow_error_pages_become_json_errors() {
        let page = (StatusCode::BAD_REQUEST, "<html>expired</html>").into_response();
        let r = as_json(page);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_json(r).await["error"], EXPIRED_SIGN_IN);
        let page = (StatusCode::INTERNAL_SERVER_ERROR, "<html>boom</html>").into_response();
        let r = as_json(page);
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body_json(r).await["error"], INTERNAL);
    }

    #[test]
    fn throttle_keys_are_per_user() {
        assert_eq!(throttle_key(Some("u1")), "passkey:u1");
        assert_eq!(throttle_key(None), "passkey:-");
    }
}
