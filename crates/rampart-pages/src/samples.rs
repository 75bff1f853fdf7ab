//! Sample views: used by [`crate::Pages::new`] to render every template once at start-up, and
//! by the tests and page previews.

use crate::Pages;
use crate::views::{
    AccountView, ConfirmView, ConsentView, ErrorView, LoggedOutView, LoginView, LogoutView,
    MfaView, RecoveryCodesView, ScopeView, SessionView, TotpEnrollView,
};

const CSRF: &str = "csrf-sample-token";
const REQUEST: &str = "req-sample-id";

/// A small, style-free SVG standing in for a QR code.
pub(crate) const SAMPLE_QR_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 29 29" shape-rendering="crispEdges"><rect width="29" height="29" fill="#ffffff"/><path d="M4 4h7v7h-7zM18 4h7v7h-7zM4 18h7v7h-7zM13 13h3v3h-3zM18 18h2v2h-2zM22 20h3v2h-3zM14 5h2v4h-2zM5 14h4v2h-4z" fill="#000000"/></svg>"##;

pub(crate) fn login(full: bool) -> LoginView {
    LoginView {
        request_id: REQUEST.to_owned(),
        csrf_token: CSRF.to_owned(),
        client_name: full.then(|| "Acme Dashboard".to_owned()),
        username: if full {
            "alice".to_owned()
        } else {
            String::new()
        },
        error: full.then(|| "Incorrect username or password.".to_owned()),
        form_action_origin: full.then(|| "https://dashboard.acme.example".to_owned()),
        passkey_available: full,
    }
}

pub(crate) fn mfa(full: bool) -> MfaView {
    MfaView {
        request_id: REQUEST.to_owned(),
        csrf_token: CSRF.to_owned(),
        client_name: full.then(|| "Acme Dashboard".to_owned()),
        error: full.then(|| "That code is not valid. Try again.".to_owned()),
        has_totp: full,
        has_webauthn: full,
        form_action_origin: full.then(|| "https://dashboard.acme.example".to_owned()),
    }
}

pub(crate) fn totp_enroll(full: bool) -> TotpEnrollView {
    TotpEnrollView {
        request_id: full.then(|| REQUEST.to_owned()),
        csrf_token: CSRF.to_owned(),
        qr_svg: SAMPLE_QR_SVG.to_owned(),
        secret_base32: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".to_owned(),
        error: full.then(|| "That code is not valid. Check the time on your phone.".to_owned()),
        form_action: if full { "/login/totp" } else { "/account/totp" }.to_owned(),
        form_action_origin: full.then(|| "https://dashboard.acme.example".to_owned()),
    }
}

pub(crate) fn recovery_codes(full: bool) -> RecoveryCodesView {
    RecoveryCodesView {
        codes: [
            "7KQ2-MZ4P",
            "R9XW-3HTD",
            "C6VN-8JLB",
            "P2FG-Y7SK",
            "W4MA-Q9ER",
            "H8TB-5NCZ",
            "L3DJ-K6UX",
            "V5PR-2GWM",
            "B7YE-F4QN",
            "N9CS-T3HA",
        ]
        .map(str::to_owned)
        .to_vec(),
        continue_url: if full { "/login/continue" } else { "/account" }.to_owned(),
        request_id: full.then(|| REQUEST.to_owned()),
        csrf_token: CSRF.to_owned(),
        form_action_origin: full.then(|| "https://dashboard.acme.example".to_owned()),
    }
}

pub(crate) fn consent(full: bool) -> ConsentView {
    let scopes = [
        ("openid", "Confirm who you are"),
        ("profile", "See your name and username"),
        ("email", "See your email address"),
        ("offline_access", "Keep access while you are away"),
    ];
    ConsentView {
        request_id: REQUEST.to_owned(),
        csrf_token: CSRF.to_owned(),
        client_name: "Acme Dashboard".to_owned(),
        scopes: if full {
            scopes
                .iter()
                .map(|(name, description)| ScopeView {
                    name: (*name).to_owned(),
                    description: (*description).to_owned(),
                })
                .collect()
        } else {
            Vec::new()
        },
        form_action_origin: full.then(|| "https://dashboard.acme.example".to_owned()),
    }
}

pub(crate) fn logout(full: bool) -> LogoutView {
    LogoutView {
        csrf_token: CSRF.to_owned(),
        client_name: full.then(|| "Acme Dashboard".to_owned()),
        id_token_hint: full.then(|| "eyJhbGciOiJFUzI1NiJ9.e30.sig".to_owned()),
        post_logout_redirect_uri: full
            .then(|| "https://dashboard.acme.example/signed-out".to_owned()),
        state: full.then(|| "xyz-state".to_owned()),
        client_id: full.then(|| "acme-dashboard".to_owned()),
        form_action_origin: full.then(|| "https://dashboard.acme.example".to_owned()),
    }
}

pub(crate) fn logged_out() -> LoggedOutView {
    LoggedOutView {
        message: "You have been signed out of every application. You can close this window."
            .to_owned(),
    }
}

pub(crate) fn account(full: bool) -> AccountView {
    let sessions = vec![
        SessionView {
            session_id: "s-current".to_owned(),
            created_at: "12 May 2025, 09:14".to_owned(),
            last_seen_at: "just now".to_owned(),
            current: true,
            amr: "password and authenticator app".to_owned(),
        },
        SessionView {
            session_id: "s-other".to_owned(),
            created_at: "3 May 2025, 18:40".to_owned(),
            last_seen_at: "2 days ago".to_owned(),
            current: false,
            amr: "passkey".to_owned(),
        },
    ];
    AccountView {
        csrf_token: CSRF.to_owned(),
        username: "alice".to_owned(),
        display_name: full.then(|| "Alice Liddell".to_owned()),
        sessions: if full { sessions } else { Vec::new() },
        totp_enabled: full,
        recovery_codes_left: if full { 2 } else { 0 },
        passkeys: if full {
            vec!["MacBook Touch ID".to_owned(), "YubiKey 5C".to_owned()]
        } else {
            Vec::new()
        },
        confirm_first: !full,
    }
}

pub(crate) fn confirm(full: bool) -> ConfirmView {
    ConfirmView {
        csrf_token: CSRF.to_owned(),
        username: "alice".to_owned(),
        next: "/account/totp".to_owned(),
        error: full.then(|| "That password is not correct.".to_owned()),
    }
}

pub(crate) fn error() -> ErrorView {
    ErrorView {
        status: 400,
        title: "This sign-in link is not valid".to_owned(),
        message:
            "The application sent an invalid request. Go back to the application and try again."
                .to_owned(),
    }
}

/// Every page in every variant, rendered by `Pages` itself (with headers): `(name, response)`.
#[cfg(test)]
pub(crate) fn all_responses(pages: &Pages) -> Vec<(String, http::Response<String>)> {
    let mut out = Vec::new();
    for (full, suffix) in [(true, ""), (false, "-minimal")] {
        out.push((format!("login{suffix}"), pages.login(&login(full))));
        out.push((format!("mfa{suffix}"), pages.mfa(&mfa(full))));
        out.push((
            format!("totp_enroll{suffix}"),
            pages.totp_enroll(&totp_enroll(full)),
        ));
        out.push((
            format!("recovery_codes{suffix}"),
            pages.recovery_codes(&recovery_codes(full)),
        ));
        out.push((format!("consent{suffix}"), pages.consent(&consent(full))));
        out.push((
            format!("logout_confirm{suffix}"),
            pages.logout_confirm(&logout(full)),
        ));
        out.push((format!("account{suffix}"), pages.account(&account(full))));
    }
    out.push(("logged_out".to_owned(), pages.logged_out(&logged_out())));
    out.push(("error".to_owned(), pages.error(&error())));
    out
}

/// Renders every template with every sample variant (no headers, errors kept).
pub(crate) fn render_all(pages: &Pages) -> Vec<(&'static str, Result<String, minijinja::Error>)> {
    let mut out = Vec::new();
    for full in [true, false] {
        out.push(("login.html", pages.render("login.html", &login(full))));
        out.push(("mfa.html", pages.render("mfa.html", &mfa(full))));
        out.push((
            "totp_enroll.html",
            pages.render("totp_enroll.html", &totp_enroll(full)),
        ));
        out.push((
            "recovery_codes.html",
            pages.render("recovery_codes.html", &recovery_codes(full)),
        ));
        out.push(("consent.html", pages.render("consent.html", &consent(full))));
        out.push((
            "logout_confirm.html",
            pages.render("logout_confirm.html", &logout(full)),
        ));
        out.push(("account.html", pages.render("account.html", &account(full))));
        out.push(("confirm.html", pages.render("confirm.html", &confirm(full))));
    }
    out.push((
        "logged_out.html",
        pages.render("logged_out.html", &logged_out()),
    ));
    out.push(("error.html", pages.render("error.html", &error())));
    out
}
