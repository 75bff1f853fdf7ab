//! Access-token and client-assertion claims, and their JWT / PASETO payload
//! encodings.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::TokenError;

/// Maximum number of audiences accepted in a token.
pub(crate) const MAX_AUDIENCES: usize = 64;
/// Maximum length of an RFC 3339 date string.
const MAX_DATE_LEN: usize = 64;

/// Claims of an access token (RFC 9068 profile).
///
/// In JWTs the dates are numeric (seconds since the epoch); in PASETO
/// payloads they are RFC 3339 strings, as the PASETO registered claims
/// require. `aud` is serialized as a string when it has exactly one element,
/// as an array otherwise; both forms are accepted when deserializing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject (user id, or client id for client-credentials tokens).
    pub sub: String,
    /// Audiences (resource servers).
    #[serde(serialize_with = "ser_aud", deserialize_with = "de_aud")]
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued-at, seconds since the epoch.
    pub iat: i64,
    /// Not-before, seconds since the epoch.
    pub nbf: i64,
    /// Unique token id.
    pub jti: String,
    /// OAuth client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes; omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The user's roles (RFC 9068 §7.2.1.1, from SCIM); omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The user's groups (RFC 9068 §7.2.1.1, from SCIM); omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// Most `roles` or `groups` accepted in a token (and, by the guard, in an introspection
/// response).
pub const MAX_LABELS: usize = 64;

/// Claims of a client authentication assertion (RFC 7523 `private_key_jwt`).
#[derive(Clone, Debug, Deserialize)]
pub struct AssertionClaims {
    /// Issuer (must be the client id).
    pub iss: String,
    /// Subject (must be the client id).
    pub sub: String,
    /// Audiences (string or array in the token).
    #[serde(deserialize_with = "de_aud")]
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Unique assertion id (for replay detection by the caller).
    pub jti: String,
    /// Issued-at, if present.
    #[serde(default)]
    pub iat: Option<i64>,
    /// Not-before, if present.
    #[serde(default)]
    pub nbf: Option<i64>,
}

fn ser_aud<S: Serializer>(aud: &[String], s: S) -> Result<S::Ok, S::Error> {
    match aud {
        [one] => s.serialize_str(one),
        many => many.serialize(s),
    }
}

struct AudVisitor;

impl<'de> Visitor<'de> for AudVisitor {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string or an array of strings")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(vec![v.to_owned()])
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<String>()? {
            if out.len() >= MAX_AUDIENCES {
                return Err(de::Error::custom("too many audiences"));
            }
            out.push(item);
        }
        Ok(out)
    }
}

fn de_aud<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(AudVisitor)
}

fn de_aud_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    d.deserialize_any(AudVisitor).map(Some)
}

/// Formats unix seconds as RFC 3339 UTC with an explicit `+00:00` offset.
pub(crate) fn format_rfc3339(ts: i64) -> Result<String, TokenError> {
    let dt = OffsetDateTime::from_unix_timestamp(ts).map_err(|_| TokenError::Malformed)?;
    let year = dt.year();
    if !(0..=9999).contains(&year) {
        return Err(TokenError::Malformed);
    }
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        year,
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    ))
}

/// Parses an RFC 3339 date into unix seconds (fractions truncated).
pub(crate) fn parse_rfc3339(s: &str) -> Result<i64, TokenError> {
    if s.len() > MAX_DATE_LEN {
        return Err(TokenError::Malformed);
    }
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|dt| dt.unix_timestamp())
        .map_err(|_| TokenError::Malformed)
}

/// PASETO payload form of [`AccessClaims`] (RFC 3339 dates).
#[derive(Serialize)]
struct PasetoAccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    #[serde(serialize_with = "ser_aud")]
    aud: &'a [String],
    exp: String,
    iat: String,
    nbf: String,
    jti: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    roles: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    groups: &'a [String],
}

impl AccessClaims {
    /// JSON payload for a JWT (numeric dates).
    pub(crate) fn to_jwt_payload(&self) -> Result<Vec<u8>, TokenError> {
        serde_json::to_vec(self).map_err(|_| TokenError::Malformed)
    }

    /// JSON payload for a PASETO token (RFC 3339 dates).
    pub(crate) fn to_paseto_payload(&self) -> Result<Vec<u8>, TokenError> {
        let p = PasetoAccessClaims {
            iss: &self.iss,
            sub: &self.sub,
            aud: &self.aud,
            exp: format_rfc3339(self.exp)?,
            iat: format_rfc3339(self.iat)?,
            nbf: format_rfc3339(self.nbf)?,
            jti: &self.jti,
            client_id: &self.client_id,
            scope: self.scope.as_deref(),
            roles: &self.roles,
            groups: &self.groups,
        };
        serde_json::to_vec(&p).map_err(|_| TokenError::Malformed)
    }

    /// Parses a verified JWT payload, reporting missing claims precisely.
    pub(crate) fn from_jwt_payload(payload: &[u8]) -> Result<AccessClaims, TokenError> {
        let raw: RawAccessClaims<i64> =
            serde_json::from_slice(payload).map_err(|_| TokenError::Malformed)?;
        raw.into_claims(Ok)
    }

    /// Parses a verified PASETO payload (RFC 3339 dates).
    pub(crate) fn from_paseto_payload(payload: &[u8]) -> Result<AccessClaims, TokenError> {
        let raw: RawAccessClaims<String> =
            serde_json::from_slice(payload).map_err(|_| TokenError::Malformed)?;
        raw.into_claims(|s| parse_rfc3339(&s))
    }
}

#[derive(Deserialize)]
struct RawAccessClaims<D> {
    iss: Option<String>,
    sub: Option<String>,
    #[serde(default, deserialize_with = "de_aud_opt")]
    aud: Option<Vec<String>>,
    exp: Option<D>,
    iat: Option<D>,
    nbf: Option<D>,
    jti: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    roles: Option<Vec<String>>,
    groups: Option<Vec<String>>,
}

/// At most [`MAX_LABELS`] labels.
fn bounded_labels(labels: Option<Vec<String>>) -> Result<Vec<String>, TokenError> {
    let labels = labels.unwrap_or_default();
    if labels.len() > MAX_LABELS {
        return Err(TokenError::Malformed);
    }
    Ok(labels)
}

fn required(v: Option<String>, name: &'static str) -> Result<String, TokenError> {
    match v {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(TokenError::MissingClaim(name)),
    }
}

impl<D> RawAccessClaims<D> {
    fn into_claims(
        self,
        date: impl Fn(D) -> Result<i64, TokenError>,
    ) -> Result<AccessClaims, TokenError> {
        let exp = date(self.exp.ok_or(TokenError::MissingClaim("exp"))?)?;
        let iat = date(self.iat.ok_or(TokenError::MissingClaim("iat"))?)?;
        // RFC 9068 does not require `nbf`; when absent the token is valid
        // from its issuance.
        let nbf = match self.nbf {
            Some(v) => date(v)?,
            None => iat,
        };
        Ok(AccessClaims {
            iss: required(self.iss, "iss")?,
            sub: required(self.sub, "sub")?,
            aud: self.aud.ok_or(TokenError::MissingClaim("aud"))?,
            exp,
            iat,
            nbf,
            jti: required(self.jti, "jti")?,
            client_id: required(self.client_id, "client_id")?,
            scope: self.scope,
            roles: bounded_labels(self.roles)?,
            groups: bounded_labels(self.groups)?,
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct RawAssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    #[serde(default, deserialize_with = "de_aud_opt")]
    aud: Option<Vec<String>>,
    exp: Option<i64>,
    jti: Option<String>,
    iat: Option<i64>,
    nbf: Option<i64>,
}

impl AssertionClaims {
    /// Parses a verified assertion payload, reporting missing claims.
    pub(crate) fn from_payload(payload: &[u8]) -> Result<AssertionClaims, TokenError> {
        let raw: RawAssertionClaims =
            serde_json::from_slice(payload).map_err(|_| TokenError::Malformed)?;
        Ok(AssertionClaims {
            iss: required(raw.iss, "iss")?,
            sub: required(raw.sub, "sub")?,
            aud: raw.aud.ok_or(TokenError::MissingClaim("aud"))?,
            exp: raw.exp.ok_or(TokenError::MissingClaim("exp"))?,
            jti: required(raw.jti, "jti")?,
            iat: raw.iat,
            nbf: raw.nbf,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let s = format_rfc3339(1_795_618_800).unwrap();
        assert_eq!(s, "2026-11-25T15:00:00+00:00");
        assert_eq!(parse_rfc3339(&s).unwrap(), 1_795_618_800);
        assert_eq!(
            parse_rfc3339("2026-11-25T16:00:00+01:00").unwrap(),
            1_795_618_800
        );
        assert!(parse_rfc3339("2026-11-25 15:00:00").is_err());
    }

    #[test]
    fn roles_and_groups_round_trip_in_both_payloads_and_are_bounded() {
        let c = AccessClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: vec!["a".into()],
            exp: 1_795_618_900,
            iat: 1_795_618_800,
            nbf: 1_795_618_800,
            jti: "j".into(),
            client_id: "c".into(),
            scope: None,
            roles: vec!["admin".into()],
            groups: vec!["eng".into(), "ops".into()],
        };
        let jwt = c.to_jwt_payload().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&jwt).unwrap();
        assert_eq!(v["roles"], serde_json::json!(["admin"]));
        assert_eq!(AccessClaims::from_jwt_payload(&jwt).unwrap(), c);
        let paseto = c.to_paseto_payload().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&paseto).unwrap();
        assert_eq!(v["groups"], serde_json::json!(["eng", "ops"]));
        assert_eq!(AccessClaims::from_paseto_payload(&paseto).unwrap(), c);
        // Absent when empty; absent is empty.
        let plain = AccessClaims {
            roles: Vec::new(),
            groups: Vec::new(),
            ..c.clone()
        };
        let jwt = plain.to_jwt_payload().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&jwt).unwrap();
        assert!(v.get("roles").is_none() && v.get("groups").is_none());
        assert_eq!(AccessClaims::from_jwt_payload(&jwt).unwrap(), plain);
        // Over the bound, or not a list of strings: malformed.
        let mut v: serde_json::Value =
            serde_json::from_slice(&c.to_jwt_payload().unwrap()).unwrap();
        v["roles"] = serde_json::json!(vec!["r"; MAX_LABELS + 1]);
        let too_many = serde_json::to_vec(&v).unwrap();
        assert!(matches!(
            AccessClaims::from_jwt_payload(&too_many),
            Err(TokenError::Malformed)
        ));
        v["roles"] = serde_json::json!("admin");
        let not_a_list = serde_json::to_vec(&v).unwrap();
        assert!(AccessClaims::from_jwt_payload(&not_a_list).is_err());
    }

    #[test]
    fn aud_single_is_string() {
        let c = AccessClaims {
            roles: Vec::new(),
            groups: Vec::new(),
            iss: "i".into(),
            sub: "s".into(),
            aud: vec!["a".into()],
            exp: 2,
            iat: 1,
            nbf: 1,
            jti: "j".into(),
            client_id: "c".into(),
            scope: None,
        };
        let v: serde_json::Value = serde_json::from_slice(&c.to_jwt_payload().unwrap()).unwrap();
        assert_eq!(v["aud"], "a");
        assert!(v.get("scope").is_none());
        let back: AccessClaims = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
        let mut c2 = c.clone();
        c2.aud.push("b".into());
        let v: serde_json::Value = serde_json::from_slice(&c2.to_jwt_payload().unwrap()).unwrap();
        assert_eq!(v["aud"], serde_json::json!(["a", "b"]));
    }
}
