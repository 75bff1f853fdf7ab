//! Moving an authorization request forward: sign-in, second factor, consent, code.
//!
//! [`proceed`] is called after every step the user completes. It looks at the stored
//! request and the browser's session and either sends the browser to the next page or
//! issues the code and redirects to the client.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rampart_crypto::{random_identifier, random_token};
use rampart_store::{AuthCodeRecord, AuthRequestRecord, SessionRecord};

use super::request::{ACR_MFA, AuthorizationParams, error_redirect, redirect_with};
use super::{see_other, with_cookies};
use crate::browser::{self, SESSION_COOKIE, set_cookie};
use crate::error::{ErrorCode, OAuthError};
use crate::people::events::{EventKind, event};
use crate::{AuthServer, unix_now};

/// Methods (RFC 8176) that count as a second factor.
pub const SECOND_FACTORS: [&str; 3] = ["otp", "hwk", "mfa"];

/// The parameters of a stored request.
pub fn params_of(request: &AuthRequestRecord) -> Option<AuthorizationParams> {
    serde_json::from_str(&request.params_json).ok()
}

/// Loads an unexpired authorization request by id.
pub async fn load_request(
    server: &AuthServer,
    request_id: &str,
) -> Result<Option<(AuthRequestRecord, AuthorizationParams)>, Response> {
    if request_id.is_empty() || request_id.len() > 64 {
        return Ok(None);
    }
    let found = server
        .people
        .flows
        .get_auth_request(request_id, unix_now())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "authorization request lookup failed");
            internal(server)
        })?;
    Ok(found.and_then(|r| params_of(&r).map(|p| (r, p))))
}

/// The page for an expired or unknown sign-in request.
pub fn expired(server: &AuthServer) -> Response {
    server.people.error_page(
        StatusCode::BAD_REQUEST,
        "This sign-in has expired",
        "Go back to the application and start signing in again.",
    )
}

/// The page for an internal failure (details are logged, never shown).
pub fn internal(server: &AuthServer) -> Response {
    server.people.error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again in a moment.",
    )
}

/// Redirects an error to the client.
pub fn redirect_error(
    server: &AuthServer,
    params: &AuthorizationParams,
    code: ErrorCode,
    msg: &str,
) -> Response {
    match error_redirect(
        &params.redirect_uri,
        params.state.as_deref(),
        &OAuthError::new(code, msg),
        &server.config.issuer,
    ) {
        Some(url) => see_other(&url),
        None => internal(server),
    }
}

/// Whether this sign-in needs a second factor: the client or the request asks for one, or
/// the user has one.
pub async fn needs_second_factor(
    server: &AuthServer,
    params: &AuthorizationParams,
    client_requires: bool,
    user_id: &str,
) -> Result<bool, Response> {
    if params.require_mfa || client_requires {
        return Ok(true);
    }
    has_second_factor(server, user_id).await
}

/// Whether the user has a confirmed second factor.
pub async fn has_second_factor(server: &AuthServer, user_id: &str) -> Result<bool, Response> {
    let mfa = &server.people.mfa;
    let totp = mfa.get_totp(user_id).await.map_err(|e| {
        tracing::error!(error = %e, "TOTP lookup failed");
        internal(server)
    })?;
    if totp.is_some_and(|t| t.confirmed) {
        return Ok(true);
    }
    let keys = mfa.list_webauthn_credentials(user_id).await.map_err(|e| {
        tracing::error!(error = %e, "passkey lookup failed");
        internal(server)
    })?;
    Ok(!keys.is_empty())
}

/// Creates a session for `user_id` and returns it with its `Set-Cookie`. An existing
/// session of this browser is ended first (no session fixation).
pub async fn start_session(
    server: &AuthServer,
    headers: &HeaderMap,
    user_id: &str,
    amr: Vec<String>,
) -> Result<(SessionRecord, axum::http::HeaderValue), Response> {
    let people = &server.people;
    let now = unix_now();
    if let Some(old) = people.current_session(headers, now).await
        && let Err(e) = people.sessions.delete_session(&old.session_id, now).await
    {
        tracing::warn!(error = %e, "old session not deleted");
    }
    let (Some(cookie_value), Ok(session_id)) = (browser::new_cookie_value(), random_identifier(16))
    else {
        return Err(internal(server));
    };
    let acr = if amr.iter().any(|m| SECOND_FACTORS.contains(&m.as_str())) {
        ACR_MFA
    } else {
        super::request::ACR_PASSWORD
    };
    let max = server.config.people.session_max_secs;
    let session = SessionRecord {
        session_id,
        cookie_hash: browser::secret_hash(&people.hasher, "session", &cookie_value),
        user_id: user_id.to_owned(),
        auth_time: now,
        amr,
        acr: acr.to_owned(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + max,
    };
    people
        .sessions
        .create_session(&session)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "session not stored");
            internal(server)
        })?;
    Ok((
        session,
        set_cookie(SESSION_COOKIE, &cookie_value, Some(max)),
    ))
}

/// Takes the request one step further for the browser with `session`.
pub async fn proceed(
    server: &AuthServer,
    request: &AuthRequestRecord,
    params: &AuthorizationParams,
    session: Option<&SessionRecord>,
    consented_now: bool,
) -> Response {
    let now = unix_now();
    let client = match server.clients.lookup(&params.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return expired(server),
        Err(e) => {
            tracing::error!(error = %e, "client lookup failed");
            return internal(server);
        }
    };
    let login = format!("/login?request={}", request.request_id);
    // A sign-in during this request satisfies prompt=login and max_age; an older session
    // satisfies max_age only if younger than it, and never prompt=login.
    let fresh_enough = |s: &SessionRecord| {
        if params.signed_in_session.as_deref() == Some(s.session_id.as_str()) {
            return true;
        }
        let too_old = params.max_age.is_some_and(|m| s.auth_time + m <= now);
        !params.prompts("login") && !too_old
    };
    let Some(session) = session.filter(|s| fresh_enough(s)) else {
        if params.prompts("none") {
            return redirect_error(
                server,
                params,
                ErrorCode::LoginRequired,
                "the user must sign in",
            );
        }
        return see_other(&login);
    };
    let user = match server.people.users.get(&session.user_id).await {
        Ok(u) if !u.record.disabled => u,
        Ok(_) | Err(crate::users::UserError::NotFound) => {
            return redirect_error(
                server,
                params,
                ErrorCode::AccessDenied,
                "the user cannot sign in",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "user lookup failed");
            return internal(server);
        }
    };
    let has_second = session
        .amr
        .iter()
        .any(|m| SECOND_FACTORS.contains(&m.as_str()));
    if !has_second {
        let needed = match needs_second_factor(
            server,
            params,
            client.record.require_mfa,
            &user.record.user_id,
        )
        .await
        {
            Ok(n) => n,
            Err(r) => return r,
        };
        if needed {
            if params.prompts("none") {
                return redirect_error(
                    server,
                    params,
                    ErrorCode::InteractionRequired,
                    "a second factor is required",
                );
            }
            // Step-up: the user re-authenticates with the password and then the factor.
            return see_other(&login);
        }
    }
    if !client.record.first_party && !consented_now {
        let granted = match server
            .people
            .flows
            .get_consent(&user.record.user_id, &client.record.client_id)
            .await
        {
            Ok(g) => g.unwrap_or_default(),
            Err(e) => {
                tracing::error!(error = %e, "consent lookup failed");
                return internal(server);
            }
        };
        let covered = params.scope.iter().all(|s| granted.contains(s));
        if !covered || params.prompts("consent") {
            if params.prompts("none") {
                return redirect_error(
                    server,
                    params,
                    ErrorCode::ConsentRequired,
                    "consent is required",
                );
            }
            return see_other(&format!("/consent?request={}", request.request_id));
        }
    }
    issue_code(server, request, params, session).await
}

async fn issue_code(
    server: &AuthServer,
    request: &AuthRequestRecord,
    params: &AuthorizationParams,
    session: &SessionRecord,
) -> Response {
    let now = unix_now();
    let people = &server.people;
    let Ok(code) = random_token(32) else {
        return internal(server);
    };
    let record = AuthCodeRecord {
        code_hash: browser::secret_hash(&people.hasher, "code", &code),
        client_id: params.client_id.clone(),
        user_id: session.user_id.clone(),
        session_id: session.session_id.clone(),
        redirect_uri: params.redirect_uri.clone(),
        scope: params.scope.join(" "),
        nonce: params.nonce.clone(),
        code_challenge: params.code_challenge.clone(),
        auth_time: session.auth_time,
        amr: session.amr.clone(),
        acr: session.acr.clone(),
        created_at: now,
        expires_at: now + server.config.people.code_ttl_secs,
    };
    if let Err(e) = people.flows.create_code(&record).await {
        tracing::error!(error = %e, "authorization code not stored");
        return internal(server);
    }
    if let Err(e) = people.flows.delete_auth_request(&request.request_id).await {
        tracing::warn!(error = %e, "finished authorization request not deleted");
    }
    let mut query: Vec<(&str, &str)> = vec![("code", &code)];
    if let Some(state) = &params.state {
        query.push(("state", state));
    }
    match redirect_with(&params.redirect_uri, &query, &server.config.issuer) {
        Some(url) => see_other(&url),
        None => internal(server),
    }
}

/// Finishes a successful sign-in step: a session with `amr` for the user, a security
/// event, and the next step of the request.
pub async fn signed_in(
    server: &AuthServer,
    headers: &HeaderMap,
    request: &AuthRequestRecord,
    params: &AuthorizationParams,
    user_id: &str,
    amr: Vec<String>,
) -> Response {
    let (session, cookie) = match start_session(server, headers, user_id, amr).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(e) = server
        .people
        .flows
        .set_auth_request_pending_user(&request.request_id, None)
        .await
    {
        tracing::warn!(error = %e, "pending user not cleared");
    }
    server.people.events.emit(event(
        EventKind::LoginSucceeded,
        Some(user_id),
        Some(&params.client_id),
        Some(&session.session_id),
    ));
    let params = match remember_sign_in(server, request, params, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let next = proceed(server, request, &params, Some(&session), false).await;
    with_cookies(next, [cookie])
}

/// Records in the stored request that `session` signed in during it.
pub async fn remember_sign_in(
    server: &AuthServer,
    request: &AuthRequestRecord,
    params: &AuthorizationParams,
    session: &SessionRecord,
) -> Result<AuthorizationParams, Response> {
    let mut params = params.clone();
    params.signed_in_session = Some(session.session_id.clone());
    let json = serde_json::to_string(&params).map_err(|_| internal(server))?;
    server
        .people
        .flows
        .set_auth_request_params(&request.request_id, &json)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "authorization request not updated");
            internal(server)
        })?;
    Ok(params)
}
