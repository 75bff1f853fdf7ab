//! The signed-in user's own page: `/account` lists their sessions (each revocable) and
//! second factors, and `/account/totp` enrolls an authenticator app outside of a sign-in.
//!
//! Every route needs a valid session; every POST the origin check and the CSRF token.
//! Adding a second factor (here or a passkey) also needs a recent sign-in: within
//! `reauth_window_secs` of the session's last authentication, else the password again at
//! `/account/confirm` (throttled like the sign-in). A stolen session cookie alone then
//! cannot add the thief's own factor to the account.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use rampart_pages::{AccountView, ConfirmView, RecoveryCodesView, SessionView};
use rampart_store::SessionRecord;

use super::login::{confirm_totp, enrollment_view};
use crate::browser::{SESSION_COOKIE, set_cookie};
use crate::people::events::{EventKind, event};
use crate::people::flow::internal;
use crate::people::request::ACR_MFA;
use crate::people::{page, see_other, with_cookies};
use crate::{AuthServer, unix_now};

async fn session(server: &AuthServer, headers: &HeaderMap) -> Result<SessionRecord, Response> {
    server
        .people
        .current_session(headers, unix_now())
        .await
        .ok_or_else(|| {
            server.people.error_page(
                StatusCode::UNAUTHORIZED,
                "You are not signed in",
                "Sign in through one of your applications, then come back to this page.",
            )
        })
}

/// Whether the session's user authenticated recently enough to add a second factor.
pub(crate) fn recently_authenticated(
    server: &AuthServer,
    session: &SessionRecord,
    now: i64,
) -> bool {
    now.saturating_sub(session.auth_time) <= server.config.people.reauth_window_secs
}

/// Where `/account/confirm` may send the user afterwards (local pages only).
const CONFIRM_NEXT: [&str; 2] = ["/account", "/account/totp"];

fn confirm_next(requested: Option<&str>) -> &'static str {
    requested
        .and_then(|n| CONFIRM_NEXT.into_iter().find(|allowed| *allowed == n))
        .unwrap_or("/account")
}

fn describe_amr(amr: &[String]) -> String {
    let names: Vec<&str> = amr
        .iter()
        .map(|m| match m.as_str() {
            "pwd" => "password",
            "otp" => "authenticator app",
            "hwk" => "passkey",
            "mfa" => "recovery code",
            // RFC 8176 "user": the passkey verified the user; implied by "passkey" here.
            "user" => "",
            other => other,
        })
        .filter(|n| !n.is_empty())
        .collect();
    names.join(" and ")
}

fn format_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// `GET /account`.
pub async fn account_page(State(server): State<Arc<AuthServer>>, headers: HeaderMap) -> Response {
    let current = match session(&server, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(csrf) = server.people.csrf.binding(&headers) else {
        return internal(&server);
    };
    let people = &server.people;
    let user = match people.users.get(&current.user_id).await {
        Ok(u) => u,
        Err(_) => return internal(&server),
    };
    let (sessions, totp, left, passkeys) = match tokio::try_join!(
        people.sessions.list_sessions(&current.user_id),
        people.mfa.get_totp(&current.user_id),
        people.mfa.remaining_recovery_codes(&current.user_id),
        people.mfa.list_webauthn_credentials(&current.user_id),
    ) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "account page lookups failed");
            return internal(&server);
        }
    };
    let now = unix_now();
    let view = AccountView {
        csrf_token: csrf.token,
        username: user.record.username.clone(),
        display_name: user.profile.name.clone(),
        sessions: sessions
            .iter()
            .filter(|s| s.expires_at > now)
            .map(|s| SessionView {
                session_id: s.session_id.clone(),
                created_at: format_time(s.created_at),
                last_seen_at: format_time(s.last_seen_at),
                current: s.session_id == current.session_id,
                amr: describe_amr(&s.amr),
            })
            .collect(),
        totp_enabled: totp.is_some_and(|t| t.confirmed),
        recovery_codes_left: left,
        passkeys: passkeys.into_iter().map(|p| p.name).collect(),
        confirm_first: !recently_authenticated(&server, &current, now),
    };
    with_cookies(page(people.pages.account(&view)), csrf.set_cookie)
}

/// `POST /account/sessions/revoke`: ends one of the user's own sessions.
pub async fn revoke_session(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let current = match session(&server, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let form = match crate::people::checked_form(&server, &headers, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let target = form.get("session_id").unwrap_or_default();
    let people = &server.people;
    let owned = match people.sessions.get_session(target).await {
        Ok(Some(s)) => s.user_id == current.user_id,
        Ok(None) => false,
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            return internal(&server);
        }
    };
    if !owned {
        return see_other("/account");
    }
    let now = unix_now();
    if let Err(e) = people.sessions.delete_session(target, now).await {
        tracing::error!(error = %e, "session not revoked");
        return internal(&server);
    }
    people.events.emit(event(
        EventKind::Logout,
        Some(&current.user_id),
        None,
        Some(target),
    ));
    if target == current.session_id {
        return with_cookies(
            see_other("/account"),
            [set_cookie(SESSION_COOKIE, "", Some(0))],
        );
    }
    see_other("/account")
}

/// `GET /account/totp`: enrollment for a signed-in user without an authenticator app.
pub async fn totp_page(State(server): State<Arc<AuthServer>>, headers: HeaderMap) -> Response {
    let current = match session(&server, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !recently_authenticated(&server, &current, unix_now()) {
        return see_other("/account/confirm?next=/account/totp");
    }
    match server.people.mfa.get_totp(&current.user_id).await {
        Ok(Some(t)) if t.confirmed => return see_other("/account"),
        Ok(_) => {}
        Err(_) => return internal(&server),
    }
    let Some(csrf) = server.people.csrf.binding(&headers) else {
        return internal(&server);
    };
    let response = match enrollment_view(&server, &current.user_id, &csrf.token, None, None).await {
        Ok(view) => page(server.people.pages.totp_enroll(&view)),
        Err(r) => r,
    };
    with_cookies(response, csrf.set_cookie)
}

/// `POST /account/totp`: confirms the enrollment, shows the recovery codes once, and
/// upgrades the current session to two factors.
pub async fn totp_submit(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let current = match session(&server, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let form = match crate::people::checked_form(&server, &headers, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !recently_authenticated(&server, &current, unix_now()) {
        return see_other("/account/confirm?next=/account/totp");
    }
    let csrf_token = form.get("csrf_token").unwrap_or_default().to_owned();
    let code = form.get("code").unwrap_or_default();
    let codes = match confirm_totp(&server, &current.user_id, code).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return match enrollment_view(&server, &current.user_id, &csrf_token, None, None).await {
                Ok(mut view) => {
                    view.error =
                        Some("That code did not match. Scan the new code and try again.".into());
                    let mut r = page(server.people.pages.totp_enroll(&view));
                    *r.status_mut() = StatusCode::UNAUTHORIZED;
                    r
                }
                Err(r) => r,
            };
        }
        Err(r) => return r,
    };
    let people = &server.people;
    let mut amr = current.amr.clone();
    if !amr.iter().any(|m| m == "otp") {
        amr.push("otp".into());
    }
    if let Err(e) = people
        .sessions
        .update_session_auth(&current.session_id, unix_now(), &amr, ACR_MFA)
        .await
    {
        tracing::warn!(error = %e, "session not upgraded");
    }
    people.events.emit(event(
        EventKind::MfaEnrolled,
        Some(&current.user_id),
        None,
        Some(&current.session_id),
    ));
    page(people.pages.recovery_codes(&RecoveryCodesView {
        codes,
        continue_url: "/account/done".into(),
        request_id: None,
        csrf_token,
        form_action_origin: None,
    }))
}

/// `GET /account/confirm?next=PATH`: the password form before a second factor is added.
pub async fn confirm_page(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    query: axum::extract::RawQuery,
) -> Response {
    let current = match session(&server, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let next = query
        .0
        .as_deref()
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "next")
                .map(|(_, v)| confirm_next(Some(&v)))
        })
        .unwrap_or("/account");
    let user = match server.people.users.get(&current.user_id).await {
        Ok(u) => u,
        Err(_) => return internal(&server),
    };
    let Some(csrf) = server.people.csrf.binding(&headers) else {
        return internal(&server);
    };
    let view = ConfirmView {
        csrf_token: csrf.token,
        username: user.record.username.clone(),
        next: next.to_owned(),
        error: None,
    };
    with_cookies(page(server.people.pages.confirm(&view)), csrf.set_cookie)
}

/// `POST /account/confirm`: checks the password of the session's user (throttled per
/// account and address like the sign-in, failures counting towards the same lockout) and
/// renews the session's authentication time.
pub async fn confirm_submit(
    State(server): State<Arc<AuthServer>>,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> Response {
    let headers = &parts.headers;
    let current = match session(&server, headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let form = match crate::people::checked_form(&server, headers, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let people = &server.people;
    let next = confirm_next(form.get("next"));
    let csrf_token = form.get("csrf_token").unwrap_or_default().to_owned();
    let user = match people.users.get(&current.user_id).await {
        Ok(u) if !u.record.disabled => u,
        Ok(_) => return see_other("/account"),
        Err(_) => return internal(&server),
    };
    let username = user.record.username.clone();
    // The same throttling buckets as the sign-in: the account (its stored, normalized
    // username) and the client address.
    let ip = crate::browser::client_ip(&parts);
    let again = |error: &str| {
        page(people.pages.confirm(&ConfirmView {
            csrf_token: csrf_token.clone(),
            username: username.clone(),
            next: next.to_owned(),
            error: Some(error.to_owned()),
        }))
    };
    if let rampart_authn::ThrottleDecision::Wait { retry_after }
    | rampart_authn::ThrottleDecision::Locked { retry_after } =
        people.throttle.check(&username, ip).await
    {
        let mut r = again(&format!(
            "Too many attempts. Try again in {} seconds.",
            retry_after.as_secs().max(1)
        ));
        *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        return r;
    }
    let password =
        rampart_crypto::SecretString::from(form.get("password").unwrap_or_default().to_owned());
    let now = unix_now();
    match people
        .users
        .authenticate_from(&username, &password, now, false)
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => {
            let decision = people.throttle.record_failure(&username, ip).await;
            people.events.emit(event(
                EventKind::LoginFailed,
                Some(&current.user_id),
                None,
                Some(&current.session_id),
            ));
            if let rampart_authn::ThrottleDecision::Locked { .. } = decision {
                people.events.emit(event(
                    EventKind::LockedOut,
                    Some(&current.user_id),
                    None,
                    Some(&current.session_id),
                ));
            }
            return again("That password is not correct.");
        }
        Err(crate::users::UserError::Busy) => {
            let mut r = again("The service is busy. Try again in a moment.");
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            return r;
        }
        Err(e) => {
            tracing::error!(error = %e, "password confirmation failed");
            return internal(&server);
        }
    }
    people.throttle.record_success(&username, ip).await;
    let mut amr = current.amr.clone();
    if !amr.iter().any(|m| m == "pwd") {
        amr.push("pwd".into());
    }
    if let Err(e) = people
        .sessions
        .update_session_auth(&current.session_id, now, &amr, &current.acr)
        .await
    {
        tracing::error!(error = %e, "session authentication time not renewed");
        return internal(&server);
    }
    see_other(next)
}

/// `POST /account/done`: back to the account page after the recovery codes.
pub async fn done(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match crate::people::checked_form(&server, &headers, &body) {
        Ok(_) => see_other("/account"),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::format_time;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_time(1_796_050_800), "2026-11-30 15:00 UTC");
    }
}
