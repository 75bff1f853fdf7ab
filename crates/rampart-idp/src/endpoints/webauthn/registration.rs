//! Registering a passkey: `POST /webauthn/register/start` and `/finish`.

use super::*;

/// `POST /webauthn/register/start` `{request?}` → `CreationChallengeResponse`.
pub async fn register_start(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (csrf_token, webauthn, start) = match start_call(&server, &headers, &body) {
        Ok(checked) => checked,
        Err(r) => return r,
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
            if !crate::endpoints::account::recently_authenticated(server, &session, unix_now()) {
                return Err(error(
                    StatusCode::FORBIDDEN,
                    "For your security, confirm your password on your account page first.",
                ));
            }
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
    let (csrf_token, webauthn) = match checked_call(&server, headers) {
        Ok(checked) => checked,
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
    if let Err(r) = throttled(&server, &account, ip).await {
        return r;
    }
    let refuse = || {
        failure(
            &server,
            None,
            Some(&user_id),
            client_id.as_deref(),
            ip,
            "The passkey could not be registered. Please try again.",
        )
    };
    let Some(credential) = parse::<RegisterPublicKeyCredential>(&body) else {
        return refuse().await;
    };
    let passkey = match webauthn.finish_passkey_registration(&credential, &state) {
        Ok(p) => p,
        Err(e) => {
            log_rejection("passkey registration", &e);
            return refuse().await;
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
    people.throttle.record_success(&account, ip).await;
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
