//! Signing in with a passkey: `POST /webauthn/login/start` and `/finish`.

use super::*;

/// The challenge of a started authentication, or (logged) an internal error.
fn started<T>(result: Result<T, WebauthnError>) -> Result<T, Response> {
    result.map_err(|e| {
        tracing::error!(error = %e, "passkey authentication not started");
        internal()
    })
}

/// `POST /webauthn/login/start` `{request}` → `RequestChallengeResponse`.
pub async fn login_start(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (csrf_token, webauthn, start) = match start_call(&server, &headers, &body) {
        Ok(checked) => checked,
        Err(r) => return r,
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
            let (options, state) = match started(webauthn.start_passkey_authentication(&passkeys)) {
                Ok(started) => started,
                Err(r) => return r,
            };
            let ceremony = Ceremony::SignIn {
                request_id,
                mode: SignInMode::SecondFactor { user_id, state },
            };
            return begin(&server, &csrf_token, ceremony, options);
        }
    }
    let (options, state) = match started(webauthn.start_discoverable_authentication()) {
        Ok(started) => started,
        Err(r) => return r,
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
    let (csrf_token, webauthn) = match checked_call(&server, headers) {
        Ok(checked) => checked,
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
            if let Err(r) = throttled(&server, &throttle_key(identified.as_deref()), ip).await {
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
                )
                .await;
            };
            let fail = || {
                failure(
                    &server,
                    Some(EventKind::LoginFailed),
                    Some(&user_id),
                    Some(client_id),
                    ip,
                    NOT_RECOGNIZED,
                )
            };
            match active_user(&server, &user_id).await {
                Ok(Some(_)) => {}
                Ok(None) => return fail().await,
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
                return fail().await;
            };
            match webauthn.finish_discoverable_authentication_v2(&credential, state, &passkey) {
                Ok(result) => (user_id, result, vec!["hwk".into(), "user".into()]),
                Err(e) => {
                    log_rejection("passkey sign-in", &e);
                    return fail().await;
                }
            }
        }
        SignInMode::SecondFactor { user_id, state } => {
            if pending_user(&server, &request, &csrf_token) != Some(user_id.as_str()) {
                return finished(error(StatusCode::FORBIDDEN, EXPIRED_SIGN_IN));
            }
            if let Err(r) = throttled(&server, &throttle_key(Some(&user_id)), ip).await {
                return r;
            }
            let fail = || {
                failure(
                    &server,
                    Some(EventKind::MfaFailed),
                    Some(&user_id),
                    Some(client_id),
                    ip,
                    NOT_RECOGNIZED,
                )
            };
            let Some(credential) = credential else {
                return fail().await;
            };
            match webauthn.finish_passkey_authentication(&credential, &state) {
                Ok(result) => (user_id, result, vec!["pwd".into(), "hwk".into()]),
                Err(e) => {
                    log_rejection("passkey second factor", &e);
                    return fail().await;
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
        .record_success(&throttle_key(Some(&user_id)), ip)
        .await;
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
