//! Server-rendered HTML pages of Rampart sign-in: login, second factor, authenticator-app
//! enrolment, recovery codes, consent, sign-out, account and error pages.
//!
//! [`Pages`] is built once at start-up ([`Pages::new`] parses every embedded template and
//! renders each page once with sample data, so template mistakes fail the start, not a
//! request) and shared between requests (it is `Send + Sync`).
//!
//! Each page method returns an [`http::Response<String>`] that carries its own status and
//! security headers:
//!
//! * `Content-Type: text/html; charset=utf-8`, `Cache-Control: no-store`,
//!   `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`,
//!   `Referrer-Policy: same-origin`, `Cross-Origin-Resource-Policy: same-origin`;
//! * a strict `Content-Security-Policy` (see [`content_security_policy`]): no inline styles or
//!   scripts anywhere, the only stylesheet and script are [`STYLESHEET_PATH`] and
//!   [`WEBAUTHN_SCRIPT_PATH`], served by [`Pages::stylesheet`] and [`Pages::webauthn_script`].
//!
//! Pages are rendered with 200 OK (the error page with the status of its view); a caller that
//! wants another status (say 401 after a failed login) sets it with `status_mut()`.
//!
//! With axum, `http::Response<String>` is already an `IntoResponse`; the assets need
//! `response.map(axum::body::Body::from)`.
//!
//! Every template is HTML auto-escaped, whatever its name. The only value rendered raw is
//! [`TotpEnrollView::qr_svg`], which the server generates.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod headers;
mod samples;
mod views;

#[cfg(test)]
mod tests;

use std::fmt;

use http::{Response, StatusCode};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;

pub use headers::{content_security_policy, origin_of, valid_origin};
pub use views::{
    AccountView, ConfirmView, ConsentView, ErrorView, LoggedOutView, LoginView, LogoutView,
    MfaView, RecoveryCodesView, ScopeView, SessionView, TotpEnrollView,
};

/// URL path the pages load their stylesheet from (with a `?v=` content version appended).
/// Route it to [`Pages::stylesheet`].
pub const STYLESHEET_PATH: &str = "/assets/rampart.css";

/// URL path the pages load the passkey script from (with a `?v=` content version appended).
/// Route it to [`Pages::webauthn_script`].
pub const WEBAUTHN_SCRIPT_PATH: &str = "/assets/webauthn.js";

const STYLESHEET: &str = include_str!("../assets/rampart.css");
const WEBAUTHN_SCRIPT: &str = include_str!("../assets/webauthn.js");

/// The embedded templates, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("mfa.html", include_str!("../templates/mfa.html")),
    (
        "totp_enroll.html",
        include_str!("../templates/totp_enroll.html"),
    ),
    (
        "recovery_codes.html",
        include_str!("../templates/recovery_codes.html"),
    ),
    ("consent.html", include_str!("../templates/consent.html")),
    ("confirm.html", include_str!("../templates/confirm.html")),
    (
        "logout_confirm.html",
        include_str!("../templates/logout_confirm.html"),
    ),
    (
        "logged_out.html",
        include_str!("../templates/logged_out.html"),
    ),
    ("account.html", include_str!("../templates/account.html")),
    ("error.html", include_str!("../templates/error.html")),
];

/// Last-resort body if even the error template cannot be rendered (never expected).
const FALLBACK_ERROR_HTML: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Error</title></head><body><main><h1>Something went wrong</h1>\
<p>Please try again later.</p></main></body></html>\n";

/// Errors building [`Pages`].
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// A template failed to parse, or failed to render with sample data.
    #[error("template {name}: {source:#}")]
    Template {
        /// Name of the template (or page) at fault.
        name: String,
        /// The template engine's error, with line information.
        #[source]
        source: minijinja::Error,
    },
}

/// The page renderer. Build it once with [`Pages::new`] and share it (`Send + Sync`).
pub struct Pages {
    env: Environment<'static>,
}

impl fmt::Debug for Pages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages").finish_non_exhaustive()
    }
}

impl Pages {
    /// Parses every embedded template and renders each page once with sample data.
    ///
    /// `product_name` is shown in the header and the page titles (escaped).
    ///
    /// # Errors
    ///
    /// [`PageError::Template`] when a template does not parse or does not render.
    pub fn new(product_name: &str) -> Result<Self, PageError> {
        let pages = Self::from_templates(product_name, TEMPLATES)?;
        pages.self_check()?;
        Ok(pages)
    }

    fn from_templates(
        product_name: &str,
        templates: &[(&'static str, &'static str)],
    ) -> Result<Self, PageError> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_filter("group4", group4);
        env.add_global("product_name", product_name.to_owned());
        // Our own constant paths and hex digits: marked safe so they are not entity-encoded.
        env.add_global(
            "css_url",
            Value::from_safe_string(format!(
                "{STYLESHEET_PATH}?v={:016x}",
                fnv1a(STYLESHEET.as_bytes())
            )),
        );
        env.add_global(
            "js_url",
            Value::from_safe_string(format!(
                "{WEBAUTHN_SCRIPT_PATH}?v={:016x}",
                fnv1a(WEBAUTHN_SCRIPT.as_bytes())
            )),
        );
        for (name, source) in templates {
            env.add_template(name, source)
                .map_err(|source| PageError::Template {
                    name: (*name).to_owned(),
                    source,
                })?;
        }
        Ok(Self { env })
    }

    /// Renders every page with every sample variant, so a broken template fails at start-up.
    fn self_check(&self) -> Result<(), PageError> {
        for (name, result) in samples::render_all(self) {
            result.map_err(|source| PageError::Template {
                name: name.to_owned(),
                source,
            })?;
        }
        Ok(())
    }

    fn render<S: Serialize>(&self, name: &str, context: &S) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(context)
    }

    fn page<S: Serialize>(
        &self,
        name: &str,
        context: &S,
        status: StatusCode,
        form_action_origin: Option<&str>,
    ) -> Response<String> {
        match self.render(name, context) {
            Ok(body) => headers::html_response(status, body, form_action_origin),
            Err(error) => {
                tracing::error!(template = name, error = %format!("{error:#}"), "page rendering failed");
                self.internal_error()
            }
        }
    }

    fn internal_error(&self) -> Response<String> {
        let view = ErrorView {
            status: 500,
            title: "Something went wrong".to_owned(),
            message: "We could not show this page. Please try again later.".to_owned(),
        };
        let body = self
            .render("error.html", &view)
            .unwrap_or_else(|_| FALLBACK_ERROR_HTML.to_owned());
        headers::html_response(StatusCode::INTERNAL_SERVER_ERROR, body, None)
    }

    /// The sign-in page: `POST /login` with `username`, `password`, `csrf_token`, `request`,
    /// and, when [`LoginView::passkey_available`], a "Sign in with a passkey" button.
    pub fn login(&self, v: &LoginView) -> Response<String> {
        self.page(
            "login.html",
            v,
            StatusCode::OK,
            v.form_action_origin.as_deref(),
        )
    }

    /// The second-factor page: `POST /login/mfa` with `code` (TOTP or recovery code),
    /// `csrf_token`, `request`, and a passkey button when [`MfaView::has_webauthn`].
    pub fn mfa(&self, v: &MfaView) -> Response<String> {
        self.page(
            "mfa.html",
            v,
            StatusCode::OK,
            v.form_action_origin.as_deref(),
        )
    }

    /// Authenticator-app enrolment: QR code, setup key, and `POST {form_action}` with `code`,
    /// `csrf_token` and `request` (when present). A `form_action` that is not a local path
    /// gives a 500 page.
    pub fn totp_enroll(&self, v: &TotpEnrollView) -> Response<String> {
        if !is_local_path(&v.form_action) {
            tracing::error!(form_action = %v.form_action, "totp_enroll: form_action is not a local path");
            return self.internal_error();
        }
        self.page(
            "totp_enroll.html",
            v,
            StatusCode::OK,
            v.form_action_origin.as_deref(),
        )
    }

    /// The recovery codes, shown once, and `POST {continue_url}` with `csrf_token` and
    /// `request` (when present). A `continue_url` that is not a local path gives a 500 page.
    pub fn recovery_codes(&self, v: &RecoveryCodesView) -> Response<String> {
        if !is_local_path(&v.continue_url) {
            tracing::error!(continue_url = %v.continue_url, "recovery_codes: continue_url is not a local path");
            return self.internal_error();
        }
        self.page(
            "recovery_codes.html",
            v,
            StatusCode::OK,
            v.form_action_origin.as_deref(),
        )
    }

    /// The consent page: `POST /consent` with `decision=allow|deny`, `csrf_token`, `request`.
    /// The "Deny" button comes first in the form, so pressing Enter never grants access.
    pub fn consent(&self, v: &ConsentView) -> Response<String> {
        self.page(
            "consent.html",
            v,
            StatusCode::OK,
            v.form_action_origin.as_deref(),
        )
    }

    /// The sign-out confirmation: `POST /logout` with `csrf_token` and the RP-initiated logout
    /// parameters present in the view; "Cancel" links to `/account`.
    pub fn logout_confirm(&self, v: &LogoutView) -> Response<String> {
        self.page(
            "logout_confirm.html",
            v,
            StatusCode::OK,
            v.form_action_origin.as_deref(),
        )
    }

    /// "You are signed out".
    pub fn logged_out(&self, v: &LoggedOutView) -> Response<String> {
        self.page("logged_out.html", v, StatusCode::OK, None)
    }

    /// The account page: MFA status with a link to `/account/totp`, passkeys with a
    /// "Register a passkey" button, sessions each with a `POST /account/sessions/revoke`
    /// form (`session_id`), and a `POST /logout` form.
    pub fn account(&self, v: &AccountView) -> Response<String> {
        self.page("account.html", v, StatusCode::OK, None)
    }

    /// "Confirm it is you": the password form of `POST /account/confirm` (401 with an error).
    pub fn confirm(&self, v: &ConfirmView) -> Response<String> {
        let status = if v.error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        self.page("confirm.html", v, status, None)
    }

    /// An error page with the status of the view (500 when it is not a 4xx or 5xx status).
    pub fn error(&self, v: &ErrorView) -> Response<String> {
        let status = StatusCode::from_u16(v.status)
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let view = ErrorView {
            status: status.as_u16(),
            ..v.clone()
        };
        self.page("error.html", &view, status, None)
    }

    /// The stylesheet, for [`STYLESHEET_PATH`]: `text/css`, cached for a year (the pages
    /// link it with a content version), `nosniff`.
    pub fn stylesheet() -> Response<&'static str> {
        headers::asset_response("text/css; charset=utf-8", STYLESHEET)
    }

    /// The passkey (WebAuthn) script, for [`WEBAUTHN_SCRIPT_PATH`]: `text/javascript`,
    /// cached for a year (the pages link it with a content version), `nosniff`.
    pub fn webauthn_script() -> Response<&'static str> {
        headers::asset_response("text/javascript; charset=utf-8", WEBAUTHN_SCRIPT)
    }
}

/// A path on this server: starts with one `/` (not `//` or `/\`), no whitespace or controls.
fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Template filter: a base32 secret in groups of four characters, without padding.
fn group4(value: &str) -> String {
    let chars: Vec<char> = value
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .collect();
    chars
        .chunks(4)
        .map(|chunk| chunk.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// FNV-1a, for the content version in asset URLs (not security relevant).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
