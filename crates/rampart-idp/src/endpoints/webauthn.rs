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

fn throttled(server: &AuthServer, account: &str, ip: IpAddr) -> Result<(), Response> {
    match server.people.throttle.check(account, ip, Instant::now()) {
        ThrottleDecision::Allow => Ok(()),
        ThrottleDecision::Wait { retry_after } | ThrottleDecision::Locked { retry_after } => {
            Err(finished(too_many(retry_after)))
        }
    }
}

/// Records a failed finish: throttle, security event (`kind`, and `LockedOut` when this
/// failure locks); answers `message`.
fn failure(
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
        .record_failure(&throttle_key(user_id), ip, Instant::now());
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

// ---------------------------------------------------------------------------------------------
// Registration

/// `POST /webauthn/register/start` `{request?}` → `CreationChallengeResponse`.
pub async fn register_start(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let csrf_token = match checked(&server, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let webauthn = match relying_party(&server) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Some(start) = parse::<StartBody>(&body) else {
        return error(StatusCode::BAD_REQUEST, "The request is malformed.");
    };
    let (user_id, via) = match registrant(&server, &headers, &csrf_token, start.request).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let people = &server.people;
    let user = match people.users.get(&user_id).await {
        Ok(u) if !u.record.disabled => u,
        Ok(_) | Err(UserError::NotFound) => {
            return error(StatusCode::FORBIDDEN, "This account cannot add passkeys.");
        }
        Err(e) => {
            tracing::error!(error = %e, "user lookup failed");
            return internal();
        }
    };
    let existing = match credentials(&server, &user_id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if existing.len() >= MAX_PASSKEYS_PER_USER {
        return error(
            StatusCode::CONFLICT,
            &format!("You already have {MAX_PASSKEYS_PER_USER} passkeys, the most allowed."),
        );
    }
    let Some(handle) = user_handle(&user_id) else {
        tracing::error!(%user_id, "user id is not a 16-byte id: no WebAuthn user handle");
        return internal();
    };
    let username = &user.record.username;
    let display_name = user.profile.name.as_deref().unwrap_or(username);
    let exclude = existing.into_iter().map(|c| c.credential_id).collect();
    let (mut options, state) =
        match webauthn.start_passkey_registration(handle, username, display_name, Some(exclude)) {
            Ok(started) => started,
            Err(e) => {
                tracing::error!(error = %e, "passkey registration not started");
                return internal();
            }
        };
    require_discoverable(&mut options);
    let ceremony = Ceremony::Register {
        user_id,
        via,
        state,
    };
    begin(&server, &csrf_token, ceremony, options)
}

/// Who registers: the pending user of `request` (bound to this browser, without a second
/// factor yet), or the signed-in user.
async fn registrant(
    server: &AuthServer,
    headers: &HeaderMap,
    csrf_token: &str,
    request: Option<String>,
) -> Result<(String, Registrant), Response> {
    match request.filter(|r| !r.is_empty()) {
        Some(request_id) => {
            let (request, _) = load_request(server, &request_id).await?;
            let Some(user_id) = pending_user(server, &request, csrf_token).map(str::to_owned)
            else {
                return Err(error(StatusCode::FORBIDDEN, EXPIRED_SIGN_IN));
            };
            // Otherwise a password alone would add a factor and skip the one the user has.
            if flow::has_second_factor(server, &user_id)
                .await
                .map_err(|_| internal())?
            {
                return Err(error(
                    StatusCode::FORBIDDEN,
                    "Verify with your second factor first; you can add passkeys on your account page.",
                ));
            }
            Ok((user_id, Registrant::Request(request_id)))
        }
        None => {
            let session = server
                .people
                .current_session(headers, unix_now())
                .await
                .ok_or_else(|| {
                    error(
                        StatusCode::UNAUTHORIZED,
                        "You are not signed in. Sign in again, then add the passkey.",
                    )
                })?;
            Ok((session.user_id, Registrant::Session(session.session_id)))
        }
    }
}

/// `POST /webauthn/register/finish` `RegisterPublicKeyCredential` → `{redirect}`.
pub async fn register_finish(
    State(server): State<Arc<AuthServer>>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let headers = &parts.headers;
    let csrf_token = match checked(&server, headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let webauthn = match relying_party(&server) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Ok(Ceremony::Register {
        user_id,
        via,
        state,
    }) = take(&server, headers, &csrf_token)
    else {
        return finished(error(StatusCode::BAD_REQUEST, EXPIRED_CEREMONY));
    };
    let ip = client_ip(&parts);
    let people = &server.people;
    // The registrant must still be who it was at the start.
    let mut session_id = None;
    let mut sign_in = None;
    match &via {
        Registrant::Session(expected) => {
            let current = people.current_session(headers, unix_now()).await;
            match current {
                Some(s) if &s.session_id == expected && s.user_id == user_id => {
                    session_id = Some(s.session_id);
                }
                _ => {
                    return finished(error(
                        StatusCode::UNAUTHORIZED,
                        "You are not signed in any more. Sign in again, then add the passkey.",
                    ));
                }
            }
        }
        Registrant::Request(request_id) => {
            let (request, params) = match load_request(&server, request_id).await {
                Ok(found) => found,
                Err(r) => return finished(r),
            };
            if pending_user(&server, &request, &csrf_token) != Some(user_id.as_str()) {
                return finished(error(StatusCode::FORBIDDEN, EXPIRED_SIGN_IN));
            }
            match flow::has_second_factor(&server, &user_id).await {
                Ok(false) => {}
                Ok(true) => return finished(error(StatusCode::CONFLICT, EXPIRED_SIGN_IN)),
                Err(_) => return finished(internal()),
            }
            sign_in = Some((request, params));
        }
    }
    let client_id = sign_in.as_ref().map(|(_, p)| p.client_id.clone());
    let account = throttle_key(Some(&user_id));
    if let Err(r) = throttled(&server, &account, ip) {
        return r;
    }
    let refused = "The passkey could not be registered. Please try again.";
    let Some(credential) = parse::<RegisterPublicKeyCredential>(&body) else {
        return failure(
            &server,
            None,
            Some(&user_id),
            client_id.as_deref(),
            ip,
            refused,
        );
    };
    let passkey = match webauthn.finish_passkey_registration(&credential, &state) {
        Ok(p) => p,
        Err(e) => {
            log_rejection("passkey registration", &e);
            return failure(
                &server,
                None,
                Some(&user_id),
                client_id.as_deref(),
                ip,
                refused,
            );
        }
    };
    let existing = match credentials(&server, &user_id).await {
        Ok(c) => c.len(),
        Err(r) => return finished(r),
    };
    let Ok(credential_json) = serde_json::to_string(&passkey) else {
        return finished(internal());
    };
    let now = unix_now();
    let record = WebauthnCredentialRecord {
        credential_id: passkey.cred_id().to_vec(),
        user_id: user_id.clone(),
        name: format!("Passkey {}", existing + 1),
        credential_json,
        created_at: now,
        last_used_at: None,
    };
    match people.mfa.add_webauthn_credential(&record).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return finished(error(
                StatusCode::CONFLICT,
                "This passkey is already registered.",
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "passkey not stored");
            return finished(internal());
        }
    }
    people.throttle.record_success(&account, ip);
    people.events.emit(event(
        EventKind::MfaEnrolled,
        Some(&user_id),
        client_id.as_deref(),
        session_id.as_deref(),
    ));
    tracing::info!(%user_id, "passkey registered");
    match sign_in {
        // Enrollment during sign-in: on with the authorization request, like TOTP
        // enrollment (the new factor is the second one).
        Some((request, params)) => finished(as_json(
            flow::signed_in(
                &server,
                headers,
                &request,
                &params,
                &user_id,
                vec!["pwd".into(), "hwk".into()],
            )
            .await,
        )),
        None => finished(json_response(
            StatusCode::OK,
            json!({ "redirect": "/account" }),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Sign-in

/// `POST /webauthn/login/start` `{request}` → `RequestChallengeResponse`.
pub async fn login_start(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let csrf_token = match checked(&server, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let webauthn = match relying_party(&server) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Some(start) = parse::<StartBody>(&body) else {
        return error(StatusCode::BAD_REQUEST, "The request is malformed.");
    };
    let request_id = start.request.unwrap_or_default();
    let (request, _) = match load_request(&server, &request_id).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    // After the password step: the pending user's passkeys, as the second factor.
    if let Some(user_id) = pending_user(&server, &request, &csrf_token).map(str::to_owned) {
        let records = match credentials(&server, &user_id).await {
            Ok(c) => c,
            Err(r) => return r,
        };
        let passkeys: Vec<Passkey> = records.iter().filter_map(open_passkey).collect();
        if !passkeys.is_empty() {
            let (options, state) = match webauthn.start_passkey_authentication(&passkeys) {
                Ok(started) => started,
                Err(e) => {
                    tracing::error!(error = %e, "passkey authentication not started");
                    return internal();
                }
            };
            let ceremony = Ceremony::SignIn {
                request_id,
                mode: SignInMode::SecondFactor { user_id, state },
            };
            return begin(&server, &csrf_token, ceremony, options);
        }
    }
    let (options, state) = match webauthn.start_discoverable_authentication() {
        Ok(started) => started,
        Err(e) => {
            tracing::error!(error = %e, "passkey authentication not started");
            return internal();
        }
    };
    let ceremony = Ceremony::SignIn {
        request_id,
        mode: SignInMode::Discoverable(state),
    };
    begin(&server, &csrf_token, ceremony, options)
}

/// `POST /webauthn/login/finish` `PublicKeyCredential` → `{redirect}`.
pub async fn login_finish(
    State(server): State<Arc<AuthServer>>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let headers = &parts.headers;
    let csrf_token = match checked(&server, headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let webauthn = match relying_party(&server) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Ok(Ceremony::SignIn { request_id, mode }) = take(&server, headers, &csrf_token) else {
        return finished(error(StatusCode::BAD_REQUEST, EXPIRED_CEREMONY));
    };
    let (request, params) = match load_request(&server, &request_id).await {
        Ok(found) => found,
        Err(r) => return finished(r),
    };
    let ip = client_ip(&parts);
    let client_id = params.client_id.as_str();
    let credential = parse::<PublicKeyCredential>(&body);
    let (user_id, result, amr) = match mode {
        SignInMode::Discoverable(state) => {
            let identified = credential.as_ref().and_then(|c| {
                webauthn
                    .identify_discoverable_authentication(c)
                    .ok()
                    .map(|(handle, _)| user_id_of(handle))
            });
            if let Err(r) = throttled(&server, &throttle_key(identified.as_deref()), ip) {
                return r;
            }
            let (Some(credential), Some(user_id)) = (credential, identified) else {
                return failure(
                    &server,
                    Some(EventKind::LoginFailed),
                    None,
                    Some(client_id),
                    ip,
                    NOT_RECOGNIZED,
                );
            };
            let fail = |server: &AuthServer| {
                failure(
                    server,
                    Some(EventKind::LoginFailed),
                    Some(&user_id),
                    Some(client_id),
                    ip,
                    NOT_RECOGNIZED,
                )
            };
            match active_user(&server, &user_id).await {
                Ok(Some(_)) => {}
                Ok(None) => return fail(&server),
                Err(r) => return finished(r),
            }
            let records = match credentials(&server, &user_id).await {
                Ok(c) => c,
                Err(r) => return finished(r),
            };
            let used = credential.get_credential_id();
            let Some(passkey) = records
                .iter()
                .find(|r| r.credential_id == used)
                .and_then(open_passkey)
            else {
                return fail(&server);
            };
            match webauthn.finish_discoverable_authentication_v2(&credential, state, &passkey) {
                Ok(result) => (user_id, result, vec!["hwk".into(), "user".into()]),
                Err(e) => {
                    log_rejection("passkey sign-in", &e);
                    return fail(&server);
                }
            }
        }
        SignInMode::SecondFactor { user_id, state } => {
            if pending_user(&server, &request, &csrf_token) != Some(user_id.as_str()) {
                return finished(error(StatusCode::FORBIDDEN, EXPIRED_SIGN_IN));
            }
            if let Err(r) = throttled(&server, &throttle_key(Some(&user_id)), ip) {
                return r;
            }
            let fail = |server: &AuthServer| {
                failure(
                    server,
                    Some(EventKind::MfaFailed),
                    Some(&user_id),
                    Some(client_id),
                    ip,
                    NOT_RECOGNIZED,
                )
            };
            let Some(credential) = credential else {
                return fail(&server);
            };
            match webauthn.finish_passkey_authentication(&credential, &state) {
                Ok(result) => (user_id, result, vec!["pwd".into(), "hwk".into()]),
                Err(e) => {
                    log_rejection("passkey second factor", &e);
                    return fail(&server);
                }
            }
        }
    };
    if let Err(r) = record_use(&server, &user_id, &result).await {
        return finished(r);
    }
    server
        .people
        .throttle
        .record_success(&throttle_key(Some(&user_id)), ip);
    finished(as_json(
        flow::signed_in(&server, headers, &request, &params, &user_id, amr).await,
    ))
}

/// Stores the new signature counter (and backup state) and the time of use. Fails closed:
/// a counter that cannot be stored would weaken the detection of cloned authenticators.
async fn record_use(
    server: &AuthServer,
    user_id: &str,
    result: &AuthenticationResult,
) -> Result<(), Response> {
    let records = credentials(server, user_id).await?;
    let Some(record) = records
        .iter()
        .find(|r| r.credential_id.as_slice() == result.cred_id().as_slice())
    else {
        tracing::error!(%user_id, "used passkey vanished");
        return Err(internal());
    };
    let Some(mut passkey) = open_passkey(record) else {
        return Err(internal());
    };
    let json = match passkey.update_credential(result) {
        Some(true) => serde_json::to_string(&passkey).map_err(|_| internal())?,
        _ => record.credential_json.clone(),
    };
    server
        .people
        .mfa
        .update_webauthn_credential(&record.credential_id, &json, unix_now())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "passkey use not stored");
            internal()
        })
}

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
