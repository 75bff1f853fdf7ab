//! The sign-in pages: password (`/login`), second factor (`/login/mfa`), TOTP enrollment
//! when a client requires a second factor the user does not have yet (`/login/totp`), and
//! the step after the recovery codes were shown (`/login/continue`).
//!
//! Every POST checks the origin and the CSRF token first. The password step is throttled
//! per account and per client address, answers unknown users and wrong passwords the same
//! way after the same work, and answers 503 at once when the hashing pool is full.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use rampart_authn::{
    ThrottleDecision, TotpSecret, generate_recovery_codes, normalize_recovery_code,
    normalize_username, provisioning_uri, verify_code,
};
use rampart_crypto::{ExposeSecret, SecretString};
use rampart_pages::{LoginView, MfaView, RecoveryCodesView, TotpEnrollView};
use rampart_store::{AuthRequestRecord, TotpRecord};
use serde::Deserialize;

use crate::browser::{self, client_ip};
use crate::form::Form;
use crate::people::events::{EventKind, event};
use crate::people::flow::{self, expired, internal};
use crate::people::request::AuthorizationParams;
use crate::people::{page, see_other, with_cookies};
use crate::users::UserError;
use crate::{AuthServer, unix_now};

/// The `?request=` of the sign-in pages.
#[derive(Debug, Deserialize)]
pub struct RequestQuery {
    /// The authorization request id.
    #[serde(default)]
    pub request: String,
}

/// What every sign-in POST starts with: origin and CSRF checks, the form, the request.
struct Submission {
    form: Form,
    request: AuthRequestRecord,
    params: AuthorizationParams,
    csrf_token: String,
}

async fn submission(
    server: &AuthServer,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Submission, Response> {
    let form = crate::people::checked_form(server, headers, body)?;
    let csrf_token = form.get("csrf_token").unwrap_or_default().to_owned();
    let request_id = form.get("request").unwrap_or_default().to_owned();
    let Some((request, params)) = flow::load_request(server, &request_id).await? else {
        return Err(expired(server));
    };
    Ok(Submission {
        form,
        request,
        params,
        csrf_token,
    })
}

/// Ties the user who passed the password step to this browser (a keyed hash of its CSRF
/// binding), so that the request id alone does not let another browser finish the sign-in.
fn browser_binding(server: &AuthServer, csrf_token: &str) -> Vec<u8> {
    browser::secret_hash(&server.people.hasher, "pending-login", csrf_token)
}

pub(crate) fn pending_user<'r>(
    server: &AuthServer,
    request: &'r AuthRequestRecord,
    csrf_token: &str,
) -> Option<&'r str> {
    let user_id = request.pending_user_id.as_deref()?;
    let binding = request.pending_binding.as_deref()?;
    rampart_crypto::constant_time_eq(binding, &browser_binding(server, csrf_token))
        .then_some(user_id)
}

async fn client_name(server: &AuthServer, client_id: &str) -> Option<String> {
    server
        .clients
        .lookup(client_id)
        .await
        .ok()
        .flatten()
        .map(|c| c.record.name.clone())
}

fn form_action_origin(params: &AuthorizationParams) -> Option<String> {
    browser::issuer_origin(&params.redirect_uri)
}

fn with_csrf_cookie(response: Response, set_cookie: Option<HeaderValue>) -> Response {
    with_cookies(response, set_cookie)
}

/// `GET /login`.
pub async fn login_page(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Query(q): Query<RequestQuery>,
) -> Response {
    let Ok(Some((request, params))) = flow::load_request(&server, &q.request).await else {
        return expired(&server);
    };
    let Some(csrf) = server.people.csrf.binding(&headers) else {
        return internal(&server);
    };
    let view = LoginView {
        request_id: request.request_id.clone(),
        csrf_token: csrf.token,
        client_name: client_name(&server, &params.client_id).await,
        username: params.login_hint.clone().unwrap_or_default(),
        error: None,
        form_action_origin: form_action_origin(&params),
        passkey_available: server.people.passkeys.enabled(),
    };
    with_csrf_cookie(page(server.people.pages.login(&view)), csrf.set_cookie)
}

/// `POST /login`: fields `request`, `csrf_token`, `username`, `password`.
pub async fn login_submit(
    State(server): State<Arc<AuthServer>>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let headers = &parts.headers;
    let sub = match submission(&server, headers, &body).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let people = &server.people;
    let login = sub
        .form
        .get("username")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let password = SecretString::from(sub.form.get("password").unwrap_or_default().to_owned());
    let account = normalize_username(&login)
        .unwrap_or_else(|| login.to_lowercase().chars().take(256).collect());
    let ip = client_ip(&parts);
    // A browser that signed in to this account before has its own throttling bucket (an
    // attacker's failures do not lock the owner out) and the hashing pool's reserve queue.
    let now = unix_now();
    let device = browser::cookie(headers, browser::DEVICE_COOKIE)
        .and_then(|c| browser::trusted_device(&people.hasher, c, &account, now));
    let throttle_key = match device {
        Some(id) => format!("device:{id}"),
        None => account.clone(),
    };
    let render_error = |status: StatusCode, message: String, retry_after: Option<u64>| {
        let server = server.clone();
        let sub_request = sub.request.request_id.clone();
        let csrf_token = sub.csrf_token.clone();
        let params = sub.params.clone();
        let login = login.clone();
        async move {
            let view = LoginView {
                request_id: sub_request,
                csrf_token,
                client_name: client_name(&server, &params.client_id).await,
                username: login,
                error: Some(message),
                form_action_origin: form_action_origin(&params),
                passkey_available: server.people.passkeys.enabled(),
            };
            let mut r = page(server.people.pages.login(&view));
            *r.status_mut() = status;
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            }
            r
        }
    };
    match people.throttle.check(&throttle_key, ip).await {
        ThrottleDecision::Allow => {}
        ThrottleDecision::Wait { retry_after } | ThrottleDecision::Locked { retry_after } => {
            let secs = retry_after.as_secs().max(1);
            return render_error(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many attempts. Try again in {secs} seconds."),
                Some(secs),
            )
            .await;
        }
    }

    let user = match people
        .users
        .authenticate_from(&login, &password, now, device.is_some())
        .await
    {
        Ok(u) => u,
        Err(UserError::Busy) => {
            return render_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is busy. Try again in a moment.".into(),
                Some(1),
            )
            .await;
        }
        Err(e) => {
            tracing::error!(error = %e, "password check failed");
            return internal(&server);
        }
    };
    let Some(user) = user else {
        let decision = people.throttle.record_failure(&throttle_key, ip).await;
        people.events.emit(event(
            EventKind::LoginFailed,
            None,
            Some(&sub.params.client_id),
            None,
        ));
        if let ThrottleDecision::Locked { .. } = decision {
            people.events.emit(event(
                EventKind::LockedOut,
                None,
                Some(&sub.params.client_id),
                None,
            ));
        }
        return render_error(
            StatusCode::UNAUTHORIZED,
            "The username or password is incorrect.".into(),
            None,
        )
        .await;
    };
    people.throttle.record_success(&throttle_key, ip).await;
    // Remember this browser for this account (only when it is not remembered already).
    let device_cookie = match device {
        Some(_) => None,
        None => browser::device_cookie(&people.hasher, &account, now).map(|v| {
            browser::set_cookie(browser::DEVICE_COOKIE, &v, Some(browser::DEVICE_TTL_SECS))
        }),
    };
    let user_id = user.record.user_id.clone();
    let client_requires = match server.clients.lookup(&sub.params.client_id).await {
        Ok(Some(c)) => c.record.require_mfa,
        _ => return expired(&server),
    };
    let needs =
        match flow::needs_second_factor(&server, &sub.params, client_requires, &user_id).await {
            Ok(n) => n,
            Err(r) => return r,
        };
    if needs {
        let binding = browser_binding(&server, &sub.csrf_token);
        if let Err(e) = people
            .flows
            .set_auth_request_pending_user(&sub.request.request_id, Some((&user_id, &binding)))
            .await
        {
            tracing::error!(error = %e, "pending user not stored");
            return internal(&server);
        }
        return with_cookies(
            see_other(&format!("/login/mfa?request={}", sub.request.request_id)),
            device_cookie,
        );
    }
    let response = flow::signed_in(
        &server,
        headers,
        &sub.request,
        &sub.params,
        &user_id,
        vec!["pwd".into()],
    )
    .await;
    with_cookies(response, device_cookie)
}

/// `GET /login/mfa`: the code page, or enrollment when the user has no factor yet.
pub async fn mfa_page(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Query(q): Query<RequestQuery>,
) -> Response {
    let Ok(Some((request, params))) = flow::load_request(&server, &q.request).await else {
        return expired(&server);
    };
    let Some(csrf) = server.people.csrf.binding(&headers) else {
        return internal(&server);
    };
    let Some(user_id) = pending_user(&server, &request, &csrf.token) else {
        return see_other(&format!("/login?request={}", request.request_id));
    };
    let totp = match server.people.mfa.get_totp(user_id).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "TOTP lookup failed");
            return internal(&server);
        }
    };
    let has_totp = totp.as_ref().is_some_and(|t| t.confirmed);
    let has_webauthn = match server.people.mfa.list_webauthn_credentials(user_id).await {
        Ok(keys) => !keys.is_empty(),
        Err(e) => {
            tracing::error!(error = %e, "passkey lookup failed");
            return internal(&server);
        }
    };
    if !has_totp && !has_webauthn {
        return see_other(&format!("/login/totp?request={}", request.request_id));
    }
    let view = MfaView {
        request_id: request.request_id.clone(),
        csrf_token: csrf.token,
        client_name: client_name(&server, &params.client_id).await,
        error: None,
        has_totp,
        has_webauthn: has_webauthn && server.people.passkeys.enabled(),
        form_action_origin: form_action_origin(&params),
    };
    with_csrf_cookie(page(server.people.pages.mfa(&view)), csrf.set_cookie)
}

/// `POST /login/mfa`: field `code`, a TOTP code or a recovery code.
pub async fn mfa_submit(
    State(server): State<Arc<AuthServer>>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let headers = &parts.headers;
    let sub = match submission(&server, headers, &body).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let people = &server.people;
    let Some(user_id) = pending_user(&server, &sub.request, &sub.csrf_token).map(str::to_owned)
    else {
        return see_other(&format!("/login?request={}", sub.request.request_id));
    };
    let ip = client_ip(&parts);
    let account = format!("mfa:{user_id}");
    let code = sub.form.get("code").unwrap_or_default().to_owned();
    let now = unix_now();
    let render_error = |status: StatusCode, message: &str| {
        let view = MfaView {
            request_id: sub.request.request_id.clone(),
            csrf_token: sub.csrf_token.clone(),
            client_name: None,
            error: Some(message.to_owned()),
            has_totp: true,
            has_webauthn: false,
            form_action_origin: form_action_origin(&sub.params),
        };
        let mut r = page(people.pages.mfa(&view));
        *r.status_mut() = status;
        r
    };
    if let ThrottleDecision::Wait { retry_after } | ThrottleDecision::Locked { retry_after } =
        people.throttle.check(&account, ip).await
    {
        let mut r = render_error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many attempts. Try again in {} seconds.",
                retry_after.as_secs().max(1)
            ),
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after.as_secs().max(1)),
        );
        return r;
    }
    let accepted = match check_second_factor(&server, &user_id, &code, now).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(method) = accepted else {
        let decision = people.throttle.record_failure(&account, ip).await;
        people.events.emit(event(
            EventKind::MfaFailed,
            Some(&user_id),
            Some(&sub.params.client_id),
            None,
        ));
        if let ThrottleDecision::Locked { .. } = decision {
            people.events.emit(event(
                EventKind::LockedOut,
                Some(&user_id),
                Some(&sub.params.client_id),
                None,
            ));
        }
        return render_error(
            StatusCode::UNAUTHORIZED,
            "That code is not valid. Codes can be used only once.",
        );
    };
    people.throttle.record_success(&account, ip).await;
    flow::signed_in(
        &server,
        headers,
        &sub.request,
        &sub.params,
        &user_id,
        vec!["pwd".into(), method.into()],
    )
    .await
}

/// Checks a TOTP code (replays refused: a time step is accepted once) or a recovery code
/// (single use). `Some(amr)` when accepted.
async fn check_second_factor(
    server: &AuthServer,
    user_id: &str,
    code: &str,
    now: i64,
) -> Result<Option<&'static str>, Response> {
    let people = &server.people;
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() == 6 && compact.bytes().all(|b| b.is_ascii_digit()) {
        let totp = people.mfa.get_totp(user_id).await.map_err(|e| {
            tracing::error!(error = %e, "TOTP lookup failed");
            internal(server)
        })?;
        let Some(totp) = totp.filter(|t| t.confirmed) else {
            return Ok(None);
        };
        let secret = open_totp(server, &totp)?;
        let Some(step) = verify_code(&secret, &compact, now.max(0) as u64) else {
            return Ok(None);
        };
        let fresh = people
            .mfa
            .accept_totp_step(user_id, step)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "TOTP step not stored");
                internal(server)
            })?;
        return Ok(fresh.then_some("otp"));
    }
    let Some(normalized) = normalize_recovery_code(code) else {
        return Ok(None);
    };
    let hash = browser::secret_hash(&people.hasher, "recovery", &normalized);
    let used = people
        .mfa
        .use_recovery_code(user_id, &hash, now)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "recovery code check failed");
            internal(server)
        })?;
    if used {
        people.events.emit(event(
            EventKind::RecoveryCodeUsed,
            Some(user_id),
            None,
            None,
        ));
    }
    Ok(used.then_some("mfa"))
}

fn open_totp(server: &AuthServer, totp: &TotpRecord) -> Result<TotpSecret, Response> {
    let bytes = server
        .people
        .users
        .vault()
        .open_secret("totp", &totp.user_id, &totp.sealed_secret)
        .map_err(|_| {
            tracing::error!(user_id = %totp.user_id, "TOTP secret could not be opened");
            internal(server)
        })?;
    TotpSecret::from_bytes(&bytes).map_err(|_| internal(server))
}

/// `GET /login/totp`: a new secret and its QR code for a user who must enroll.
pub async fn totp_page(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Query(q): Query<RequestQuery>,
) -> Response {
    let Ok(Some((request, params))) = flow::load_request(&server, &q.request).await else {
        return expired(&server);
    };
    let Some(csrf) = server.people.csrf.binding(&headers) else {
        return internal(&server);
    };
    let Some(user_id) = pending_user(&server, &request, &csrf.token).map(str::to_owned) else {
        return see_other(&format!("/login?request={}", request.request_id));
    };
    // Enrollment only for a user without any second factor (TOTP or passkey).
    match flow::has_second_factor(&server, &user_id).await {
        Ok(true) => return see_other(&format!("/login/mfa?request={}", request.request_id)),
        Ok(false) => {}
        Err(r) => return r,
    }
    let response = match enrollment_view(
        &server,
        &user_id,
        &csrf.token,
        Some(request.request_id.clone()),
        form_action_origin(&params),
    )
    .await
    {
        Ok(view) => page(server.people.pages.totp_enroll(&view)),
        Err(r) => r,
    };
    with_csrf_cookie(response, csrf.set_cookie)
}

/// Creates (or replaces) the user's unconfirmed TOTP secret and the page that shows it.
pub async fn enrollment_view(
    server: &AuthServer,
    user_id: &str,
    csrf_token: &str,
    request_id: Option<String>,
    form_action_origin: Option<String>,
) -> Result<TotpEnrollView, Response> {
    let people = &server.people;
    let user = people
        .users
        .get(user_id)
        .await
        .map_err(|_| internal(server))?;
    let secret = TotpSecret::generate().map_err(|_| internal(server))?;
    let sealed = people
        .users
        .vault()
        .seal_secret("totp", user_id, secret.as_bytes())
        .map_err(|_| internal(server))?;
    let record = TotpRecord {
        user_id: user_id.to_owned(),
        sealed_secret: sealed,
        confirmed: false,
        last_step: None,
        created_at: unix_now(),
    };
    people.mfa.put_pending_totp(&record).await.map_err(|e| {
        tracing::error!(error = %e, "pending TOTP not stored");
        internal(server)
    })?;
    let label = totp_issuer_label(&server.config.issuer);
    let uri = provisioning_uri(&secret, &label, &user.record.username);
    let qr_svg = rampart_authn::qr::svg(&uri).map_err(|_| internal(server))?;
    let form_action = if request_id.is_some() {
        "/login/totp"
    } else {
        "/account/totp"
    };
    Ok(TotpEnrollView {
        request_id,
        csrf_token: csrf_token.to_owned(),
        qr_svg,
        secret_base32: secret.to_base32(),
        error: None,
        form_action: form_action.to_owned(),
        form_action_origin,
    })
}

/// `POST /login/totp`: the first code confirms the enrollment; the recovery codes are shown
/// once, and the user is signed in with two factors.
pub async fn totp_submit(
    State(server): State<Arc<AuthServer>>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let headers = &parts.headers;
    let sub = match submission(&server, headers, &body).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(user_id) = pending_user(&server, &sub.request, &sub.csrf_token).map(str::to_owned)
    else {
        return see_other(&format!("/login?request={}", sub.request.request_id));
    };
    match flow::has_second_factor(&server, &user_id).await {
        Ok(true) => return see_other(&format!("/login/mfa?request={}", sub.request.request_id)),
        Ok(false) => {}
        Err(r) => return r,
    }
    let code = sub.form.get("code").unwrap_or_default();
    let codes = match confirm_totp(&server, &user_id, code).await {
        Ok(Some(codes)) => codes,
        Ok(None) => {
            return match enrollment_view(
                &server,
                &user_id,
                &sub.csrf_token,
                Some(sub.request.request_id.clone()),
                form_action_origin(&sub.params),
            )
            .await
            {
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
    server.people.events.emit(event(
        EventKind::MfaEnrolled,
        Some(&user_id),
        Some(&sub.params.client_id),
        None,
    ));
    let (session, cookie) =
        match flow::start_session(&server, headers, &user_id, vec!["pwd".into(), "otp".into()])
            .await
        {
            Ok(s) => s,
            Err(r) => return r,
        };
    if let Err(e) = server
        .people
        .flows
        .set_auth_request_pending_user(&sub.request.request_id, None)
        .await
    {
        tracing::warn!(error = %e, "pending user not cleared");
    }
    if let Err(r) = flow::remember_sign_in(&server, &sub.request, &sub.params, &session).await {
        return r;
    }
    server.people.events.emit(event(
        EventKind::LoginSucceeded,
        Some(&user_id),
        Some(&sub.params.client_id),
        Some(&session.session_id),
    ));
    let view = RecoveryCodesView {
        codes,
        continue_url: "/login/continue".into(),
        request_id: Some(sub.request.request_id.clone()),
        csrf_token: sub.csrf_token.clone(),
        form_action_origin: form_action_origin(&sub.params),
    };
    with_cookies(page(server.people.pages.recovery_codes(&view)), [cookie])
}

/// Verifies the first code against the pending secret; on success confirms it and
/// replaces the recovery codes, returning them (shown once).
pub async fn confirm_totp(
    server: &AuthServer,
    user_id: &str,
    code: &str,
) -> Result<Option<Vec<String>>, Response> {
    let people = &server.people;
    let now = unix_now();
    let pending = people.mfa.get_totp(user_id).await.map_err(|e| {
        tracing::error!(error = %e, "TOTP lookup failed");
        internal(server)
    })?;
    let Some(pending) = pending.filter(|t| !t.confirmed) else {
        return Ok(None);
    };
    let secret = open_totp(server, &pending)?;
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(step) = verify_code(&secret, &compact, now.max(0) as u64) else {
        return Ok(None);
    };
    let accepted = people
        .mfa
        .accept_totp_step(user_id, step)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "TOTP confirmation not stored");
            internal(server)
        })?;
    if !accepted {
        return Ok(None);
    }
    let codes = generate_recovery_codes().map_err(|_| internal(server))?;
    let mut hashes = Vec::with_capacity(codes.len());
    let mut shown = Vec::with_capacity(codes.len());
    for c in &codes {
        let Some(normalized) = normalize_recovery_code(c.expose_secret()) else {
            return Err(internal(server));
        };
        hashes.push(browser::secret_hash(
            &people.hasher,
            "recovery",
            &normalized,
        ));
        shown.push(c.expose_secret().to_owned());
    }
    people
        .mfa
        .replace_recovery_codes(user_id, &hashes, now)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "recovery codes not stored");
            internal(server)
        })?;
    Ok(Some(shown))
}

/// `POST /login/continue`: after the recovery codes page, on with the request.
pub async fn continue_submit(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let sub = match submission(&server, &headers, &body).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let session = server.people.current_session(&headers, unix_now()).await;
    flow::proceed(&server, &sub.request, &sub.params, session.as_ref(), false).await
}

/// The issuer shown by authenticator apps: the product and the host of this server.
fn totp_issuer_label(issuer: &str) -> String {
    match url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
    {
        Some(host) => format!("Rampart ({host})"),
        None => "Rampart".to_owned(),
    }
}
