//! Validating an authorization request (RFC 6749 §4.1.1, RFC 7636, OpenID Connect Core
//! §3.1.2.1, RFC 9126) into [`AuthorizationParams`].
//!
//! Order matters: until the client and its redirect URI are known good, errors are shown
//! to the user and never redirected (RFC 6749 §4.1.2.1, open redirector); after that they
//! go back to the client.

use serde::{Deserialize, Serialize};

use crate::clients::{RegisteredClient, is_scope_token, is_valid_audience};
use crate::error::{ErrorCode, OAuthError};
use crate::form::Form;

/// Scopes every client with the code flow may request besides its registered ones.
pub const STANDARD_SCOPES: [&str; 3] = ["openid", "profile", "email"];
/// The `acr` of a password-only sign-in.
pub const ACR_PASSWORD: &str = "urn:rampart:acr:pwd";
/// The `acr` of a sign-in with a second factor.
pub const ACR_MFA: &str = "urn:rampart:acr:mfa";
/// PAR `request_uri` prefix (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// Longest `state` or `nonce`.
const MAX_STATE_LEN: usize = 512;
/// Longest `login_hint`.
const MAX_HINT_LEN: usize = 256;

/// A validated authorization request, stored while the user signs in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationParams {
    /// The client.
    pub client_id: String,
    /// The exact registered redirect URI to answer to.
    pub redirect_uri: String,
    /// Requested scopes, de-duplicated.
    pub scope: Vec<String>,
    /// Opaque client state, echoed.
    pub state: Option<String>,
    /// Replay protection for the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// `prompt` values (`none`, `login`, `consent`).
    pub prompt: Vec<String>,
    /// `max_age` in seconds.
    pub max_age: Option<i64>,
    /// A second factor was asked for (`acr_values` containing [`ACR_MFA`]).
    pub require_mfa: bool,
    /// Resource indicators (RFC 8707).
    pub resources: Vec<String>,
    /// A username to prefill.
    pub login_hint: Option<String>,
    /// The session created by a sign-in during this request: it satisfies `prompt=login`
    /// and `max_age` for this request, whatever the clock's resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_in_session: Option<String>,
}

impl AuthorizationParams {
    /// Whether `prompt` contains `value`.
    pub fn prompts(&self, value: &str) -> bool {
        self.prompt.iter().any(|p| p == value)
    }
}

/// Why a request failed, and where the error may go.
#[derive(Debug)]
pub enum RequestError {
    /// Shown to the user: the client or redirect URI cannot be trusted.
    Show(String),
    /// Sent back to the redirect URI (with `state`).
    Redirect {
        /// Where to.
        redirect_uri: String,
        /// The client's `state`.
        state: Option<String>,
        /// The error.
        error: OAuthError,
    },
}

/// The client id and the exact redirect URI of a request, checked against the registration.
pub fn trusted_redirect(client: &RegisteredClient, form: &Form) -> Result<String, RequestError> {
    let record = &client.record;
    if !record.grant_types.iter().any(|g| g == "authorization_code") {
        return Err(RequestError::Show(
            "This application is not allowed to sign people in.".into(),
        ));
    }
    match form.get("redirect_uri") {
        Some(uri) if record.redirect_uris.iter().any(|r| r == uri) => Ok(uri.to_owned()),
        Some(_) => Err(RequestError::Show(
            "The redirect URI does not match any URI registered for this application.".into(),
        )),
        // OpenID Connect requests must name it (Core §3.1.2.1); plain OAuth may omit it when
        // only one is registered (RFC 6749 §3.1.2.3).
        None if record.redirect_uris.len() == 1 && !requests_openid(form) => {
            Ok(record.redirect_uris[0].clone())
        }
        None => Err(RequestError::Show(
            "The request has no redirect URI.".into(),
        )),
    }
}

fn requests_openid(form: &Form) -> bool {
    form.get("scope")
        .is_some_and(|s| s.split(' ').any(|x| x == "openid"))
}

/// Validates the rest of the request once the redirect URI is trusted.
pub fn validate(
    client: &RegisteredClient,
    redirect_uri: String,
    form: &Form,
) -> Result<AuthorizationParams, RequestError> {
    let state = form.get("state").map(str::to_owned);
    let fail = |code: ErrorCode, msg: &str| RequestError::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone().filter(|s| s.len() <= MAX_STATE_LEN),
        error: OAuthError::new(code, msg),
    };
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(fail(ErrorCode::InvalidRequest, "state is too long"));
    }
    if form.get("request").is_some() {
        return Err(fail(
            ErrorCode::RequestNotSupported,
            "request objects are not supported; use pushed authorization requests",
        ));
    }
    match form.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
        None => return Err(fail(ErrorCode::InvalidRequest, "response_type is required")),
    }
    if let Some(mode) = form.get("response_mode")
        && mode != "query"
    {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "only response_mode=query is supported",
        ));
    }
    let Some(challenge) = form.get("code_challenge") else {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "PKCE is required: code_challenge with code_challenge_method=S256",
        ));
    };
    if form.get("code_challenge_method") != Some("S256") {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "code_challenge_method must be S256 (plain is not accepted)",
        ));
    }
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
        ));
    }
    let mut scope: Vec<String> = Vec::new();
    for s in form
        .get("scope")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
    {
        if !is_scope_token(s) {
            return Err(fail(ErrorCode::InvalidScope, "malformed scope"));
        }
        let allowed = STANDARD_SCOPES.contains(&s) || client.record.scopes.iter().any(|a| a == s);
        if !allowed {
            return Err(fail(
                ErrorCode::InvalidScope,
                "the requested scope exceeds what the client may request",
            ));
        }
        if !scope.iter().any(|x| x == s) {
            scope.push(s.to_owned());
        }
    }
    let nonce = form.get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_STATE_LEN) {
        return Err(fail(ErrorCode::InvalidRequest, "nonce is too long"));
    }
    let mut prompt: Vec<String> = Vec::new();
    for p in form
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
    {
        if !["none", "login", "consent"].contains(&p) {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "prompt must be among none, login, consent",
            ));
        }
        prompt.push(p.to_owned());
    }
    if prompt.len() > 1 && prompt.iter().any(|p| p == "none") {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = match form.get("max_age") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (0..=10 * 365 * 86_400).contains(&n) => Some(n),
            _ => {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    "max_age must be a number of seconds",
                ));
            }
        },
    };
    let require_mfa = form
        .get("acr_values")
        .is_some_and(|v| v.split(' ').any(|a| a == ACR_MFA));
    let mut resources = Vec::new();
    for r in form.resources() {
        if !is_valid_audience(r) {
            return Err(fail(
                ErrorCode::InvalidTarget,
                "a resource must be an absolute URI without fragment",
            ));
        }
        if !client.record.audiences.iter().any(|a| a == r) {
            return Err(fail(
                ErrorCode::InvalidTarget,
                "the requested resource is not allowed for this client",
            ));
        }
        resources.push(r.clone());
    }
    let login_hint = form
        .get("login_hint")
        .filter(|h| h.len() <= MAX_HINT_LEN && !h.chars().any(char::is_control))
        .map(str::to_owned);
    Ok(AuthorizationParams {
        client_id: client.record.client_id.clone(),
        redirect_uri,
        scope,
        state,
        nonce,
        code_challenge: challenge.to_owned(),
        prompt,
        max_age,
        require_mfa,
        resources,
        login_hint,
        signed_in_session: None,
    })
}

/// `redirect_uri` with the given parameters appended to its query, plus `iss` (RFC 9207).
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)], issuer: &str) -> Option<String> {
    let mut url = url::Url::parse(redirect_uri).ok()?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        q.append_pair("iss", issuer);
    }
    Some(url.into())
}

/// The error redirect of RFC 6749 §4.1.2.1.
pub fn error_redirect(
    redirect_uri: &str,
    state: Option<&str>,
    error: &OAuthError,
    issuer: &str,
) -> Option<String> {
    let mut params: Vec<(&str, &str)> = vec![("error", error.code().as_str())];
    if let Some(d) = error.description() {
        params.push(("error_description", d));
    }
    if let Some(s) = state {
        params.push(("state", s));
    }
    redirect_with(redirect_uri, &params, issuer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_store::{ClientAuthMethod, ClientRecord, ClientTokenFormat};

    fn client() -> RegisteredClient {
        RegisteredClient {
            record: ClientRecord {
                client_id: "web".into(),
                name: "Web".into(),
                secret_hash: None,
                auth_method: ClientAuthMethod::None,
                jwks: None,
                scopes: vec!["orders:read".into()],
                audiences: vec!["api://orders".into()],
                token_format: ClientTokenFormat::Jwt,
                access_token_ttl_secs: 600,
                grant_types: vec!["authorization_code".into()],
                redirect_uris: vec!["https://app.example/cb".into()],
                first_party: false,
                require_mfa: false,
                require_par: false,
                created_at: 0,
                updated_at: 0,
            },
            assertion_keys: None,
        }
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn form(q: &str) -> Form {
        Form::parse_body(q.as_bytes()).unwrap()
    }

    #[test]
    fn a_good_request_validates() {
        let f = form(&format!(
            "response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid+orders:read&state=s&nonce=n&code_challenge={CHALLENGE}&code_challenge_method=S256"
        ));
        let c = client();
        let uri = trusted_redirect(&c, &f).unwrap();
        let p = validate(&c, uri, &f).unwrap();
        assert_eq!(p.scope, ["openid", "orders:read"]);
        assert_eq!(p.nonce.as_deref(), Some("n"));
    }

    #[test]
    fn a_redirect_uri_mismatch_is_shown_not_redirected() {
        let f =
            form("response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fevil.example%2Fcb");
        assert!(matches!(
            trusted_redirect(&client(), &f),
            Err(RequestError::Show(_))
        ));
        // Prefix and case variations are mismatches too.
        let f = form("redirect_uri=https%3A%2F%2Fapp.example%2Fcb%2Fextra");
        assert!(matches!(
            trusted_redirect(&client(), &f),
            Err(RequestError::Show(_))
        ));
    }

    #[test]
    fn pkce_plain_or_missing_is_refused() {
        let c = client();
        for q in [
            "response_type=code".to_owned(),
            format!("response_type=code&code_challenge={CHALLENGE}"),
            format!("response_type=code&code_challenge={CHALLENGE}&code_challenge_method=plain"),
        ] {
            let f = form(&q);
            match validate(&c, "https://app.example/cb".into(), &f) {
                Err(RequestError::Redirect { error, .. }) => {
                    assert_eq!(error.code(), ErrorCode::InvalidRequest)
                }
                other => panic!("{q}: {other:?}"),
            }
        }
    }

    #[test]
    fn implicit_and_unknown_scopes_are_refused() {
        let c = client();
        let f = form("response_type=token");
        assert!(matches!(
            validate(&c, "https://app.example/cb".into(), &f),
            Err(RequestError::Redirect { error, .. }) if error.code() == ErrorCode::UnsupportedResponseType
        ));
        let f = form(&format!(
            "response_type=code&code_challenge={CHALLENGE}&code_challenge_method=S256&scope=admin"
        ));
        assert!(matches!(
            validate(&c, "https://app.example/cb".into(), &f),
            Err(RequestError::Redirect { error, .. }) if error.code() == ErrorCode::InvalidScope
        ));
    }

    #[test]
    fn error_redirect_keeps_the_query_and_adds_iss() {
        let url = error_redirect(
            "https://app.example/cb?x=1",
            Some("st"),
            &OAuthError::new(ErrorCode::AccessDenied, "no"),
            "https://idp",
        )
        .unwrap();
        assert_eq!(
            url,
            "https://app.example/cb?x=1&error=access_denied&error_description=no&state=st&iss=https%3A%2F%2Fidp"
        );
    }
}
