//! RFC 7662 introspection client (`client_secret_basic`, bounded response, timeout).

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rampart_token::MAX_LABELS;
use reqwest::Client;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::http::{FetchError, read_ok_body};

/// Largest accepted introspection response, in bytes.
pub const MAX_INTROSPECTION_BYTES: usize = 64 * 1024;
/// Largest accepted number of audiences in an introspection response.
const MAX_AUDIENCES: usize = 64;

/// Claims of an active token, as the issuer reported them (all optional per RFC 7662).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ActiveToken {
    pub(crate) sub: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) aud: Vec<String>,
    pub(crate) iss: Option<String>,
    pub(crate) exp: Option<i64>,
    pub(crate) nbf: Option<i64>,
    pub(crate) jti: Option<String>,
    /// `token_type` (RFC 7662 §2.2): `api_key` for API keys.
    pub(crate) token_type: Option<String>,
    /// `roles` (RFC 9068 §7.2.1.1).
    pub(crate) roles: Vec<String>,
    /// `groups` (RFC 9068 §7.2.1.1).
    pub(crate) groups: Vec<String>,
}

/// What the issuer said about a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Introspected {
    /// `active: true`.
    Active(Box<ActiveToken>),
    /// `active: false`.
    Inactive,
}

#[derive(Deserialize)]
struct Response {
    active: bool,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
}

/// Parses an introspection response body.
pub(crate) fn parse_response(body: &[u8]) -> Result<Introspected, FetchError> {
    let r: Response = serde_json::from_slice(body).map_err(|_| FetchError::Malformed)?;
    if !r.active {
        return Ok(Introspected::Inactive);
    }
    let aud = match r.aud {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(s)) => vec![s],
        Some(serde_json::Value::Array(items)) => {
            if items.len() > MAX_AUDIENCES {
                return Err(FetchError::TooLarge);
            }
            items
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => Ok(s),
                    _ => Err(FetchError::Malformed),
                })
                .collect::<Result<_, _>>()?
        }
        Some(_) => return Err(FetchError::Malformed),
    };
    if r.roles.len() > MAX_LABELS || r.groups.len() > MAX_LABELS {
        return Err(FetchError::TooLarge);
    }
    Ok(Introspected::Active(Box::new(ActiveToken {
        sub: r.sub,
        client_id: r.client_id,
        scope: r.scope,
        aud,
        iss: r.iss,
        exp: r.exp,
        nbf: r.nbf,
        jti: r.jti,
        token_type: r.token_type,
        roles: r.roles,
        groups: r.groups,
    })))
}

/// The introspection endpoint of one issuer, with the guard's client credentials.
pub(crate) struct Introspector {
    pub(crate) issuer: String,
    url: Url,
    client: Client,
    credentials: Option<(String, SecretString)>,
    timeout: Duration,
}

impl fmt::Debug for Introspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspector")
            .field("issuer", &self.issuer)
            .field("url", &self.url.as_str())
            .field("client_id", &self.credentials.as_ref().map(|(id, _)| id))
            .finish_non_exhaustive()
    }
}

impl Introspector {
    /// An introspection client for `url`.
    pub(crate) fn new(
        issuer: String,
        url: Url,
        client: Client,
        credentials: Option<(String, SecretString)>,
        timeout: Duration,
    ) -> Self {
        Introspector {
            issuer,
            url,
            client,
            credentials,
            timeout,
        }
    }

    /// `Authorization: Basic` with the form-urlencoded id and secret (RFC 6749 §2.3.1).
    fn authorization(&self) -> Option<HeaderValue> {
        let (id, secret) = self.credentials.as_ref()?;
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", enc(id), enc(secret.expose_secret()));
        let mut value = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(pair))).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// Asks the issuer about `token`. Any transport, status or parsing problem is an error.
    pub(crate) async fn introspect(&self, token: &str) -> Result<Introspected, FetchError> {
        let mut req = self
            .client
            .post(self.url.clone())
            .header(ACCEPT, "application/json")
            .form(&[("token", token)]);
        if let Some(auth) = self.authorization() {
            req = req.header(AUTHORIZATION, auth);
        }
        let call = async {
            let resp = req.send().await?;
            let body = read_ok_body(resp, MAX_INTROSPECTION_BYTES).await?;
            parse_response(&body)
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| FetchError::Timeout)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_responses() {
        assert_eq!(
            parse_response(br#"{"active":false}"#).ok(),
            Some(Introspected::Inactive)
        );
        let Ok(Introspected::Active(a)) =
            parse_response(br#"{"active":true,"sub":"u","aud":"api","exp":5}"#)
        else {
            panic!("expected active");
        };
        assert_eq!(a.aud, vec!["api".to_owned()]);
        assert_eq!(a.exp, Some(5));
        let Ok(Introspected::Active(a)) =
            parse_response(br#"{"active":true,"aud":["a","b"],"extra":{"x":1}}"#)
        else {
            panic!("expected active");
        };
        assert_eq!(a.aud.len(), 2);
        assert!(parse_response(br#"{"active":"true"}"#).is_err());
        assert!(parse_response(br#"{"sub":"u"}"#).is_err());
        assert!(parse_response(br#"{"active":true,"aud":[1]}"#).is_err());
        assert!(parse_response(b"not json").is_err());
    }

    #[test]
    fn roles_and_groups_are_read_and_bounded() {
        let Ok(Introspected::Active(a)) = parse_response(
            br#"{"active":true,"sub":"u","roles":["admin"],"groups":["eng","ops"]}"#,
        ) else {
            panic!("expected active");
        };
        assert_eq!(a.roles, ["admin"]);
        assert_eq!(a.groups, ["eng", "ops"]);
        let many = format!(
            r#"{{"active":true,"roles":[{}]}}"#,
            vec![r#""r""#; MAX_LABELS + 1].join(",")
        );
        assert!(parse_response(many.as_bytes()).is_err());
        assert!(parse_response(br#"{"active":true,"groups":"eng"}"#).is_err());
    }
}
