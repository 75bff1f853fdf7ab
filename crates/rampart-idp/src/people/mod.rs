//! OpenID Connect for people: the authorization code flow with PKCE, pushed authorization
//! requests, sign-in with a password and a second factor, consent, sessions and logout.
//!
//! An authorization request is validated ([`request`]), stored, and then moved forward by
//! [`flow::proceed`] each time the user finishes a step (login, MFA, consent) until a code
//! is issued. The pages themselves come from `rampart-pages`.

pub mod claims;
pub mod events;
pub mod flow;
pub mod passkeys;
pub mod request;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_authn::SharedLoginThrottle;
use rampart_crypto::SecretHasher;
use rampart_pages::{ErrorView, Pages};
use rampart_store::{AuthCodeStore, MfaStore, SessionRecord, SessionStore};

use crate::AuthServer;
use crate::browser::{self, Csrf, SESSION_COOKIE};
use crate::form::Form;
use crate::users::UserDirectory;

pub use events::{SecurityEvent, SecurityEvents};

/// Everything the flows for people share.
pub struct People {
    /// The user directory.
    pub users: UserDirectory,
    /// Browser sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Authorization requests, codes, refresh tokens, consents.
    pub flows: Arc<dyn AuthCodeStore>,
    /// Second factors.
    pub mfa: Arc<dyn MfaStore>,
    /// The HTML pages.
    pub pages: Pages,
    /// Login throttling.
    pub throttle: SharedLoginThrottle,
    /// CSRF tokens.
    pub csrf: Csrf,
    /// Keyed hashes of session cookies, codes, refresh tokens and recovery codes.
    pub hasher: SecretHasher,
    /// Security events (audit log and webhook).
    pub events: SecurityEvents,
    /// Passkeys (WebAuthn): the relying party and the ceremonies in flight.
    pub passkeys: passkeys::Passkeys,
    /// A browser session ends after this much inactivity, seconds.
    pub session_idle_secs: i64,
}

impl People {
    /// The session of this browser if it is still valid (idle and absolute lifetimes);
    /// `last_seen_at` is refreshed at most once a minute.
    pub async fn current_session(&self, headers: &HeaderMap, now: i64) -> Option<SessionRecord> {
        let value = browser::cookie(headers, SESSION_COOKIE)?;
        let hash = browser::secret_hash(&self.hasher, "session", value);
        let session = match self.sessions.get_session_by_cookie(&hash).await {
            Ok(s) => s?,
            Err(e) => {
                tracing::error!(error = %e, "session lookup failed");
                return None;
            }
        };
        if session.expires_at <= now || session.last_seen_at + self.session_idle_secs <= now {
            return None;
        }
        if now - session.last_seen_at >= 60
            && let Err(e) = self.sessions.touch_session(&session.session_id, now).await
        {
            tracing::warn!(error = %e, "session touch failed");
        }
        Some(session)
    }

    /// An HTML error page.
    pub fn error_page(&self, status: StatusCode, title: &str, message: &str) -> Response {
        page(self.pages.error(&ErrorView {
            status: status.as_u16(),
            title: title.to_owned(),
            message: message.to_owned(),
        }))
    }
}

/// The form of a state-changing POST from one of our pages: it must come from our origin
/// (Fetch Metadata / `Origin`) and carry this browser's CSRF token; otherwise the answer is
/// the "form has expired" page (403).
pub fn checked_form(
    server: &AuthServer,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Form, Response> {
    let forbidden = || {
        server.people.error_page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The page was open too long or came from another site. Go back and try again.",
        )
    };
    if !browser::same_origin(headers, &server.config.issuer) {
        return Err(forbidden());
    }
    let form = Form::parse(headers, body).map_err(|_| forbidden())?;
    if !server.people.csrf.verify(headers, form.get("csrf_token")) {
        tracing::info!(reason = "csrf", "form refused");
        return Err(forbidden());
    }
    Ok(form)
}

/// Converts a rendered page into an axum response.
pub fn page(rendered: http::Response<String>) -> Response {
    rendered.map(Body::from).into_response()
}

/// A `303 See Other` to `location` (after a form POST the browser then GETs).
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut().insert(header::LOCATION, value);
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Adds `Set-Cookie` headers to a response.
pub fn with_cookies(
    mut response: Response,
    cookies: impl IntoIterator<Item = HeaderValue>,
) -> Response {
    for c in cookies {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// Converts a static asset response into an axum response.
pub fn page_static(rendered: http::Response<&'static str>) -> Response {
    rendered.map(Body::from).into_response()
}
