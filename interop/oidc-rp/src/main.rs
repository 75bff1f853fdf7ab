//! Interop check with the `openidconnect` crate, a relying party nobody on Rampart wrote.
//!
//! Two modes:
//!
//! - client credentials (the default): discovery and JWKS are accepted, a client-credentials
//!   token is obtained with the crate's own token request, and the JWT access token's signature
//!   verifies with the crate's own JWK implementation (and fails once tampered).
//!
//!   `oidc-rp ISSUER CA_PEM CLIENT_ID CLIENT_SECRET SCOPE`
//!
//! - `code-flow`: the OpenID Connect authorization code flow for a public client with PKCE.
//!   The crate does discovery, builds the authorization URL (state, nonce, S256 challenge),
//!   exchanges the code, validates the ID token strictly with its own `IdTokenVerifier` (and
//!   `at_hash`), calls userinfo and refreshes (rotation checked). A plain HTTP client with a
//!   cookie jar plays the browser: it follows every redirect by hand and submits the sign-in
//!   (and, if shown, consent) form. Forged ID tokens (flipped signature, edited payload,
//!   `alg: none`, another nonce, another audience) must be rejected by the same verifier.
//!
//!   `oidc-rp code-flow ISSUER CA_PEM CLIENT_ID REDIRECT_URI USERNAME`
//!
//!   The password comes from `OIDC_RP_PASSWORD` or, if unset, the first line of stdin (never
//!   from argv). On success stdout is one JSON line: `{"sub", "email", "amr", "acr", "alg",
//!   ...}`; progress goes to stderr. Any failure exits 1 with `oidc-rp: FAIL: ...`.
//!
//! EdDSA: the crate's core types verify Ed25519 ID tokens (`CoreJwsSigningAlgorithm::EdDsa`,
//! `crv: Ed25519`) and hash `at_hash` with SHA-512 for them, as Rampart does, so Rampart's
//! default key needs no rotation to ES256 for this check.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreIdToken,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::url::Url;
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, JsonWebKey,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, TokenResponse,
};

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("oidc-rp: FAIL: {msg}");
    std::process::exit(1)
}

fn note(msg: impl std::fmt::Display) {
    eprintln!("oidc-rp: {msg}");
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The HTTP client the relying party uses for its back-channel calls: trusts only the CA,
/// follows no redirects (the crate's advice against SSRF), keeps no cookies.
fn rp_http(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap_or_else(|e| fail(e)))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap_or_else(|e| fail(e))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("code-flow") => code_flow(&args[2..]).await,
        _ => client_credentials(&args).await,
    }
}

async fn client_credentials(args: &[String]) {
    if args.len() != 6 {
        fail(
            "usage: oidc-rp ISSUER CA_PEM CLIENT_ID CLIENT_SECRET SCOPE\n       \
             oidc-rp code-flow ISSUER CA_PEM CLIENT_ID REDIRECT_URI USERNAME  \
             (password: OIDC_RP_PASSWORD or stdin)",
        );
    }
    let (issuer, ca, client_id, secret, scope) = (&args[1], &args[2], &args[3], &args[4], &args[5]);
    let ca_pem = std::fs::read(ca).unwrap_or_else(|e| fail(format!("read CA: {e}")));
    let http = rp_http(&ca_pem);

    let issuer_url = IssuerUrl::new(issuer.clone()).unwrap_or_else(|e| fail(e));
    let metadata = CoreProviderMetadata::discover_async(issuer_url, &http)
        .await
        .unwrap_or_else(|e| fail(format!("discovery rejected: {e:?}")));
    if metadata.issuer().as_str() != issuer {
        fail("issuer mismatch");
    }
    let jwks = metadata.jwks().clone();
    if jwks.keys().is_empty() {
        fail("empty JWKS");
    }
    println!("discovery ok: {} keys in JWKS", jwks.keys().len());

    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.clone()),
        Some(ClientSecret::new(secret.clone())),
    );
    let token_request = client
        .exchange_client_credentials()
        .unwrap_or_else(|e| fail(format!("no token endpoint: {e:?}")));
    let response = token_request
        .add_scope(Scope::new(scope.clone()))
        .request_async(&http)
        .await
        .unwrap_or_else(|e| fail(format!("token request failed: {e:?}")));
    let token = openidconnect::OAuth2TokenResponse::access_token(&response)
        .secret()
        .clone();

    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        fail("access token is not a JWS");
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[0]).unwrap_or_else(|e| fail(e)))
            .unwrap_or_else(|e| fail(e));
    let kid = header["kid"].as_str().unwrap_or_else(|| fail("no kid"));
    let alg: CoreJwsSigningAlgorithm =
        serde_json::from_value(header["alg"].clone()).unwrap_or_else(|e| fail(format!("alg: {e}")));
    let key = jwks
        .keys()
        .iter()
        .find(|k| k.key_id().map(|id| id.as_str()) == Some(kid))
        .unwrap_or_else(|| fail("kid not in JWKS"));
    let message = format!("{}.{}", parts[0], parts[1]);
    let signature = b64.decode(parts[2]).unwrap_or_else(|e| fail(e));
    key.verify_signature(&alg, message.as_bytes(), &signature)
        .unwrap_or_else(|e| fail(format!("signature rejected: {e:?}")));

    let mut payload = b64.decode(parts[1]).unwrap_or_else(|e| fail(e));
    if let Some(byte) = payload.iter_mut().find(|b| **b == b'"') {
        *byte = b'\'';
    }
    let tampered = format!("{}.{}", parts[0], b64.encode(&payload));
    if key
        .verify_signature(&alg, tampered.as_bytes(), &signature)
        .is_ok()
    {
        fail("tampered token verified");
    }
    println!(
        "OK token verified by openidconnect: kid={kid} alg={}",
        header["alg"]
    );
}

// ---------------------------------------------------------------------------------------
// The browser: a cookie jar, no automatic redirects, forms parsed from the HTML.
// ---------------------------------------------------------------------------------------

struct Browser {
    http: reqwest::Client,
    /// The issuer's origin, sent as `Origin` on form posts as a browser does.
    origin: String,
}

struct Page {
    url: Url,
    status: u16,
    location: Option<Url>,
    body: String,
}

impl Browser {
    fn new(ca_pem: &[u8], issuer: &Url) -> Browser {
        let http = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(ca_pem).unwrap_or_else(|e| fail(e)),
            )
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap_or_else(|e| fail(e));
        Browser {
            http,
            origin: issuer.origin().ascii_serialization(),
        }
    }

    async fn finish(url: Url, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let location = response.headers().get(reqwest::header::LOCATION).map(|v| {
            let v = v.to_str().unwrap_or_else(|_| fail("Location is not ASCII"));
            url.join(v)
                .unwrap_or_else(|e| fail(format!("bad Location {v:?}: {e}")))
        });
        let body = response
            .text()
            .await
            .unwrap_or_else(|e| fail(format!("read body of {url}: {e}")));
        Page {
            url,
            status,
            location,
            body,
        }
    }

    async fn get(&self, url: &Url) -> Page {
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .unwrap_or_else(|e| fail(format!("GET {url}: {e}")));
        Self::finish(url.clone(), response).await
    }

    async fn post(&self, url: &Url, fields: &[(String, String)]) -> Page {
        let response = self
            .http
            .post(url.clone())
            .header(reqwest::header::ORIGIN, &self.origin)
            .form(fields)
            .send()
            .await
            .unwrap_or_else(|e| fail(format!("POST {url}: {e}")));
        Self::finish(url.clone(), response).await
    }
}

/// One `<form>` of a page: where it posts and its named controls.
struct HtmlForm {
    action: Option<String>,
    method: String,
    /// `(name, type, value)` of every `<input>`, in order.
    inputs: Vec<(String, String, String)>,
    /// `(name, value)` of every named submit `<button>`.
    buttons: Vec<(String, String)>,
}

impl HtmlForm {
    fn hidden(&self) -> Vec<(String, String)> {
        self.inputs
            .iter()
            .filter(|(_, kind, _)| kind == "hidden")
            .map(|(name, _, value)| (name.clone(), value.clone()))
            .collect()
    }

    fn has_input(&self, name: &str) -> bool {
        self.inputs.iter().any(|(n, _, _)| n == name)
    }
}

/// Decodes the character references an HTML serializer emits in attribute values.
fn html_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The attributes of a start tag, given the text after its name up to `>`.
fn attributes(tag: &str) -> HashMap<String, String> {
    let mut attrs = HashMap::new();
    let bytes = tag.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !b"=/>".contains(&bytes[i]) {
            i += 1;
        }
        if start == i {
            break;
        }
        let name = tag[start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                let vstart = i + 1;
                let vend = tag[vstart..]
                    .bytes()
                    .position(|b| b == quote)
                    .map(|p| vstart + p)
                    .unwrap_or(tag.len());
                value = html_unescape(&tag[vstart..vend]);
                i = (vend + 1).min(tag.len());
            } else {
                let vstart = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
                value = html_unescape(&tag[vstart..i]);
            }
        }
        attrs.entry(name).or_insert(value);
    }
    attrs
}

/// Every `<form>` of a page with its inputs and submit buttons.
fn parse_forms(html: &str) -> Vec<HtmlForm> {
    let lower = html.to_ascii_lowercase();
    let mut forms = Vec::new();
    let mut pos = 0;
    while let Some(start) = lower[pos..].find("<form").map(|p| p + pos) {
        let head_end = lower[start..]
            .find('>')
            .map(|p| p + start)
            .unwrap_or_else(|| fail("unterminated <form> tag"));
        let end = lower[head_end..]
            .find("</form")
            .map(|p| p + head_end)
            .unwrap_or(html.len());
        let attrs = attributes(&html[start + 5..head_end]);
        let mut form = HtmlForm {
            action: attrs.get("action").cloned(),
            method: attrs
                .get("method")
                .map(|m| m.to_ascii_lowercase())
                .unwrap_or_else(|| "get".into()),
            inputs: Vec::new(),
            buttons: Vec::new(),
        };
        let mut p = head_end;
        while let Some(tag_start) = lower[p..end].find('<').map(|q| q + p) {
            let tag_end = lower[tag_start..end]
                .find('>')
                .map(|q| q + tag_start)
                .unwrap_or(end);
            let tag = &lower[tag_start + 1..tag_end];
            let name_len = tag
                .find(|c: char| c.is_ascii_whitespace() || c == '/')
                .unwrap_or(tag.len());
            let attrs = || attributes(&html[tag_start + 1 + name_len..tag_end]);
            match &tag[..name_len] {
                "input" => {
                    let a = attrs();
                    if let Some(name) = a.get("name") {
                        form.inputs.push((
                            name.clone(),
                            a.get("type")
                                .map(|t| t.to_ascii_lowercase())
                                .unwrap_or_else(|| "text".into()),
                            a.get("value").cloned().unwrap_or_default(),
                        ));
                    }
                }
                "button" => {
                    let a = attrs();
                    let submit = a
                        .get("type")
                        .is_none_or(|t| t.eq_ignore_ascii_case("submit"));
                    if let (true, Some(name)) = (submit, a.get("name")) {
                        form.buttons
                            .push((name.clone(), a.get("value").cloned().unwrap_or_default()));
                    }
                }
                _ => {}
            }
            p = tag_end.max(tag_start + 1);
        }
        forms.push(form);
        pos = end.max(start + 5);
    }
    forms
}

/// The one POST form of `page` that has a field named `marker`.
fn form_with<'a>(forms: &'a [HtmlForm], marker: &str, page: &Page) -> &'a HtmlForm {
    let found: Vec<&HtmlForm> = forms
        .iter()
        .filter(|f| f.method == "post" && f.has_input(marker))
        .collect();
    match found.as_slice() {
        [one] => one,
        _ => fail(format!(
            "expected one POST form with '{marker}' on {} ({} found); page:\n{}",
            page.url,
            found.len(),
            page.body
        )),
    }
}

fn form_target(page: &Page, form: &HtmlForm) -> Url {
    match &form.action {
        Some(a) if !a.is_empty() => page
            .url
            .join(a)
            .unwrap_or_else(|e| fail(format!("form action {a:?}: {e}"))),
        _ => page.url.clone(),
    }
}

/// Plays the user: from the authorization URL to the redirect back to the client, signing in
/// and (for a third-party client) allowing access on the way. Returns the final redirect.
async fn sign_in(
    browser: &Browser,
    authorize: &Url,
    redirect_uri: &Url,
    username: &str,
    password: &str,
) -> (Url, Vec<String>) {
    let mut trail = Vec::new();
    let mut page = browser.get(authorize).await;
    for _ in 0..10 {
        trail.push(format!("{} {}", page.status, page.url.path()));
        match page.status {
            302 | 303 => {
                let next = page.location.clone().unwrap_or_else(|| {
                    fail(format!(
                        "{} from {} without Location",
                        page.status, page.url
                    ))
                });
                if page.status == 302 {
                    note(format!("302 (not 303) from {}", page.url));
                }
                if next.origin() == redirect_uri.origin() && next.path() == redirect_uri.path() {
                    return (next, trail);
                }
                if next.origin().ascii_serialization() != browser.origin {
                    fail(format!("redirected off the issuer to {next}"));
                }
                page = browser.get(&next).await;
            }
            200 => {
                let forms = parse_forms(&page.body);
                if forms.iter().any(|f| f.has_input("password")) {
                    let form = form_with(&forms, "password", &page);
                    let mut fields = form.hidden();
                    for needed in ["request", "csrf_token"] {
                        if !fields.iter().any(|(n, v)| n == needed && !v.is_empty()) {
                            fail(format!("login form has no hidden {needed}:\n{}", page.body));
                        }
                    }
                    fields.push(("username".into(), username.into()));
                    fields.push(("password".into(), password.into()));
                    let target = form_target(&page, form);
                    page = browser.post(&target, &fields).await;
                } else if forms.iter().any(|f| {
                    f.buttons
                        .iter()
                        .any(|(n, v)| n == "decision" && v == "allow")
                }) {
                    let form = forms
                        .iter()
                        .find(|f| {
                            f.buttons
                                .iter()
                                .any(|(n, v)| n == "decision" && v == "allow")
                        })
                        .unwrap_or_else(|| fail("consent form vanished"));
                    let mut fields = form.hidden();
                    fields.push(("decision".into(), "allow".into()));
                    let target = form_target(&page, form);
                    page = browser.post(&target, &fields).await;
                } else {
                    fail(format!(
                        "page at {} has neither a sign-in nor a consent form:\n{}",
                        page.url, page.body
                    ));
                }
            }
            other => fail(format!(
                "unexpected {other} at {} (after {trail:?}):\n{}",
                page.url, page.body
            )),
        }
    }
    fail(format!("too many steps: {trail:?}"))
}

fn read_password() -> String {
    if let Ok(p) = std::env::var("OIDC_RP_PASSWORD") {
        return p;
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .unwrap_or_else(|e| fail(format!("read password from stdin: {e}")));
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    if p.is_empty() {
        fail("no password: set OIDC_RP_PASSWORD or pipe it on stdin");
    }
    p
}

/// Re-encodes a compact JWS with one part changed.
fn rebuild(parts: &[&str], index: usize, new: String) -> String {
    let mut p: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
    p[index] = new;
    p.join(".")
}

async fn code_flow(args: &[String]) {
    if args.len() != 5 {
        fail(
            "usage: oidc-rp code-flow ISSUER CA_PEM CLIENT_ID REDIRECT_URI USERNAME \
             (password: OIDC_RP_PASSWORD or stdin)",
        );
    }
    let (issuer, ca, client_id, redirect, username) =
        (&args[0], &args[1], &args[2], &args[3], &args[4]);
    let password = read_password();
    let ca_pem = std::fs::read(ca).unwrap_or_else(|e| fail(format!("read CA: {e}")));
    let http = rp_http(&ca_pem);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;

    // Discovery, with the crate's own checks (issuer equality, JWKS fetched).
    let issuer_url = IssuerUrl::new(issuer.clone()).unwrap_or_else(|e| fail(e));
    let metadata = CoreProviderMetadata::discover_async(issuer_url, &http)
        .await
        .unwrap_or_else(|e| fail(format!("discovery rejected: {e:?}")));
    if metadata.issuer().as_str() != issuer {
        fail("issuer mismatch in discovery");
    }
    if metadata.userinfo_endpoint().is_none() {
        fail("discovery has no userinfo_endpoint");
    }
    let algs = metadata.id_token_signing_alg_values_supported().clone();
    note(format!("discovery ok; ID token algs {algs:?}"));

    let redirect_url = RedirectUrl::new(redirect.clone()).unwrap_or_else(|e| fail(e));
    // Public client: no secret, so the crate sends client_id in the body and verifies
    // ID tokens as a public client (no HMAC algorithms).
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new(client_id.clone()), None)
            .set_redirect_uri(redirect_url);

    let (pkce_challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf_state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(pkce_challenge)
        .url();
    let started = now_secs();

    // The browser.
    let issuer_parsed = Url::parse(issuer).unwrap_or_else(|e| fail(e));
    let browser = Browser::new(&ca_pem, &issuer_parsed);
    let redirect_parsed = Url::parse(redirect).unwrap_or_else(|e| fail(e));
    let (back, trail) = sign_in(&browser, &auth_url, &redirect_parsed, username, &password).await;
    note(format!("browser: {trail:?} -> {back}"));
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in back.query_pairs() {
        query
            .entry(k.into_owned())
            .or_default()
            .push(v.into_owned());
    }
    let one = |name: &str| -> String {
        match query.get(name).map(Vec::as_slice) {
            Some([v]) => v.clone(),
            Some(_) => fail(format!("{name} repeated in {back}")),
            None => fail(format!("no {name} in the redirect {back}")),
        }
    };
    if query.contains_key("error") {
        fail(format!("authorization error: {back}"));
    }
    if back.as_str().split('?').next()
        != Some(
            redirect_parsed
                .as_str()
                .split('?')
                .next()
                .unwrap_or_default(),
        )
    {
        fail(format!("redirected to {back}, registered {redirect}"));
    }
    if one("state") != *csrf_state.secret() {
        fail("state in the redirect is not the CsrfToken sent");
    }
    if one("iss") != *issuer {
        fail(format!(
            "iss in the redirect is {:?}, expected {issuer} (RFC 9207)",
            one("iss")
        ));
    }
    let code = AuthorizationCode::new(one("code"));
    let verifier_copy = pkce_verifier.secret().clone();

    // The code exchange, PKCE verifier attached.
    let token = client
        .exchange_code(code.clone())
        .unwrap_or_else(|e| fail(format!("no token endpoint: {e:?}")))
        .set_pkce_verifier(pkce_verifier)
        .request_async(&http)
        .await
        .unwrap_or_else(|e| fail(format!("code exchange failed: {e:?}")));
    if token.token_type().as_ref() != "bearer" && token.token_type().as_ref() != "Bearer" {
        fail(format!("token_type {:?}", token.token_type()));
    }
    if token.expires_in().is_none() {
        fail("no expires_in in the token response");
    }

    // The ID token, strictly: the crate checks signature (alg among those discovered, key from
    // the JWKS), iss, aud (only this client), azp, exp and nonce; we add iat, auth_time and acr.
    let id_token = token
        .id_token()
        .unwrap_or_else(|| fail("no id_token in the token response"));
    let now = now_secs();
    let verifier = client
        .id_token_verifier()
        .set_issue_time_verifier_fn(move |iat| {
            let iat = iat.timestamp();
            if (iat - now).abs() > 120 {
                Err(format!("iat {iat} is not near now ({now})"))
            } else {
                Ok(())
            }
        })
        .set_auth_time_verifier_fn(move |auth_time| match auth_time {
            None => Err("no auth_time".into()),
            Some(t) if t.timestamp() < started - 5 || t.timestamp() > now_secs() + 5 => {
                Err(format!(
                    "auth_time {} is not the sign-in just done ({started}..)",
                    t.timestamp()
                ))
            }
            Some(_) => Ok(()),
        })
        .set_auth_context_verifier_fn(|acr| match acr {
            Some(_) => Ok(()),
            None => Err("no acr".into()),
        });
    let claims = id_token
        .claims(&verifier, &nonce)
        .unwrap_or_else(|e| fail(format!("ID token rejected by openidconnect: {e:?}")));
    let alg = id_token
        .signing_alg()
        .unwrap_or_else(|e| fail(format!("ID token alg: {e:?}")))
        .clone();
    let key = id_token
        .signing_key(&verifier)
        .unwrap_or_else(|e| fail(format!("ID token key: {e:?}")));
    let expected_hash = AccessTokenHash::from_token(token.access_token(), &alg, key)
        .unwrap_or_else(|e| fail(format!("at_hash cannot be computed: {e:?}")));
    match claims.access_token_hash() {
        Some(h) if *h == expected_hash => {}
        Some(h) => fail(format!(
            "at_hash {} does not match the access token ({})",
            h.as_str(),
            expected_hash.as_str()
        )),
        None => fail("no at_hash in the ID token"),
    }
    if claims
        .authorized_party()
        .is_some_and(|azp| azp.as_str() != client_id)
    {
        fail("azp is not this client");
    }
    let sub = claims.subject().as_str().to_owned();
    let email = claims
        .email()
        .map(|e| e.as_str().to_owned())
        .unwrap_or_else(|| fail("no email claim in the ID token (scope email)"));
    let amr: Vec<String> = claims
        .auth_method_refs()
        .map(|v| v.iter().map(|a| a.as_str().to_owned()).collect())
        .unwrap_or_else(|| fail("no amr in the ID token"));
    let acr = claims
        .auth_context_ref()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let auth_time = claims.auth_time().map(|t| t.timestamp());
    let alg_name = serde_json::to_value(&alg)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    note(format!(
        "ID token verified: sub={sub} alg={alg_name} amr={amr:?}"
    ));

    // Forgeries must fail the same verifier.
    let raw = id_token.to_string();
    let parts: Vec<&str> = raw.split('.').collect();
    if parts.len() != 3 {
        fail("ID token is not a compact JWS");
    }
    let mut rejected = Vec::new();
    let parse = |s: &str| -> Option<CoreIdToken> { s.parse::<CoreIdToken>().ok() };
    let mut expect_rejected = |what: &str, forged: String| {
        let why = match parse(&forged) {
            None => "unparsable".to_owned(),
            Some(t) => match t.claims(&verifier, &nonce) {
                Ok(c) => fail(format!(
                    "forged ID token accepted ({what}): sub={}",
                    c.subject().as_str()
                )),
                Err(e) => format!("{e:?}"),
            },
        };
        note(format!("forged ID token ({what}) rejected: {why}"));
        rejected.push(what.to_owned());
    };
    let mut sig = b64.decode(parts[2]).unwrap_or_else(|e| fail(e));
    sig[0] ^= 0x01;
    expect_rejected(
        "flipped signature bit",
        rebuild(&parts, 2, b64.encode(&sig)),
    );
    let mut payload: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap_or_else(|e| fail(e)))
            .unwrap_or_else(|e| fail(e));
    payload["sub"] = serde_json::Value::String(format!("{sub}-x"));
    expect_rejected(
        "edited sub",
        rebuild(&parts, 1, b64.encode(payload.to_string())),
    );
    let mut header: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[0]).unwrap_or_else(|e| fail(e)))
            .unwrap_or_else(|e| fail(e));
    header["alg"] = serde_json::Value::String("none".into());
    expect_rejected(
        "alg none",
        format!("{}.{}.", b64.encode(header.to_string()), parts[1]),
    );
    header["alg"] = serde_json::Value::String("HS256".into());
    expect_rejected(
        "HS256 with the public key",
        format!(
            "{}.{}.{}",
            b64.encode(header.to_string()),
            parts[1],
            parts[2]
        ),
    );
    if id_token
        .claims(&verifier, &Nonce::new("another-nonce".into()))
        .is_ok()
    {
        fail("ID token accepted with another nonce");
    }
    rejected.push("another nonce".into());
    let other = CoreClient::from_provider_metadata(
        CoreProviderMetadata::discover_async(
            IssuerUrl::new(issuer.clone()).unwrap_or_else(|e| fail(e)),
            &http,
        )
        .await
        .unwrap_or_else(|e| fail(format!("discovery: {e:?}"))),
        ClientId::new(format!("{client_id}-other")),
        None,
    );
    if id_token.claims(&other.id_token_verifier(), &nonce).is_ok() {
        fail("ID token accepted by another client (aud)");
    }
    rejected.push("another audience".into());

    // userinfo through the crate, which checks that sub is the ID token's.
    let info: CoreUserInfoClaims = client
        .user_info(token.access_token().clone(), Some(claims.subject().clone()))
        .unwrap_or_else(|e| fail(format!("no userinfo endpoint: {e:?}")))
        .request_async(&http)
        .await
        .unwrap_or_else(|e| fail(format!("userinfo failed: {e:?}")));
    if info.subject().as_str() != sub {
        fail("userinfo sub differs from the ID token's");
    }
    let info_email = info
        .email()
        .map(|e| e.as_str().to_owned())
        .unwrap_or_else(|| fail("no email from userinfo"));
    if info_email != email {
        fail(format!(
            "userinfo email {info_email} != ID token email {email}"
        ));
    }

    // Refresh: rotation, and the old refresh token is refused afterwards.
    let r1 = token
        .refresh_token()
        .cloned()
        .unwrap_or_else(|| fail("no refresh_token in the token response"));
    let refreshed = client
        .exchange_refresh_token(&r1)
        .unwrap_or_else(|e| fail(format!("{e:?}")))
        .request_async(&http)
        .await
        .unwrap_or_else(|e| fail(format!("refresh failed: {e:?}")));
    let r2 = refreshed
        .refresh_token()
        .cloned()
        .unwrap_or_else(|| fail("no new refresh_token from the refresh (no rotation)"));
    if r2.secret() == r1.secret() {
        fail("the refresh token did not rotate");
    }
    if refreshed.access_token().secret() == token.access_token().secret() {
        fail("the refresh returned the same access token");
    }
    // An ID token from a refresh (OIDC Core 12.2): same iss, sub, aud, auth_time; a new iat.
    let mut refreshed_id_token = false;
    if let Some(new_id) = refreshed.id_token() {
        let original_nonce = nonce.clone();
        let new_claims = new_id
            .claims(
                &client.id_token_verifier(),
                move |n: Option<&Nonce>| match n {
                    None => Ok(()),
                    Some(n) if n.secret() == original_nonce.secret() => Ok(()),
                    Some(_) => Err("refreshed ID token has another nonce".to_string()),
                },
            )
            .unwrap_or_else(|e| fail(format!("refreshed ID token rejected: {e:?}")));
        if new_claims.subject().as_str() != sub {
            fail("refreshed ID token has another sub");
        }
        if new_claims.auth_time().map(|t| t.timestamp()) != auth_time {
            fail("refreshed ID token has another auth_time (OIDC Core 12.2)");
        }
        refreshed_id_token = true;
    }
    match client
        .exchange_refresh_token(&r1)
        .unwrap_or_else(|e| fail(format!("{e:?}")))
        .request_async(&http)
        .await
    {
        Err(RequestTokenError::ServerResponse(e))
            if *e.error() == CoreErrorResponseType::InvalidGrant => {}
        Ok(_) => fail("the old refresh token still works after rotation"),
        Err(e) => fail(format!(
            "the old refresh token: expected invalid_grant, got {e:?}"
        )),
    }

    // The code is single use (last: Rampart revokes what a replayed code issued).
    match client
        .exchange_code(code)
        .unwrap_or_else(|e| fail(format!("{e:?}")))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier_copy))
        .request_async(&http)
        .await
    {
        Err(RequestTokenError::ServerResponse(e))
            if *e.error() == CoreErrorResponseType::InvalidGrant => {}
        other => fail(format!(
            "a used code was not refused with invalid_grant: {other:?}"
        )),
    }

    let summary = serde_json::json!({
        "ok": true,
        "sub": sub,
        "email": email,
        "amr": amr,
        "acr": acr,
        "alg": alg_name,
        "auth_time": auth_time,
        "at_hash": "verified",
        "userinfo_email": info_email,
        "refresh_rotated": true,
        "refreshed_id_token": refreshed_id_token,
        "forgeries_rejected": rejected,
        "browser": trail,
    });
    println!("{summary}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_read_with_escaped_values_and_any_attribute_order() {
        let html = r#"<html><form method="get" action="/search"><input name="q"></form>
<form method="POST" action="/login" class="form">
  <input type="hidden" name="csrf_token" value="a&amp;b&#x27;c&quot;">
  <input value='r-1' name=request type=hidden>
  <input id="username" name="username" type="text" value="" required>
  <input name="password" type="password">
  <button type="submit" name="decision" value="allow">Allow</button>
  <button type="button" name="other" value="x">No</button>
</form>"#;
        let forms = parse_forms(html);
        assert_eq!(forms.len(), 2);
        let login = &forms[1];
        assert_eq!(login.method, "post");
        assert_eq!(login.action.as_deref(), Some("/login"));
        assert_eq!(
            login.hidden(),
            [
                ("csrf_token".to_owned(), "a&b'c\"".to_owned()),
                ("request".to_owned(), "r-1".to_owned()),
            ]
        );
        assert!(login.has_input("password"));
        assert_eq!(login.buttons, [("decision".to_owned(), "allow".to_owned())]);
    }

    #[test]
    fn unknown_or_broken_references_are_kept() {
        assert_eq!(html_unescape("a&b &zz; &#65;&#x42;"), "a&b &zz; AB");
    }
}
