//! A strict `application/x-www-form-urlencoded` parser for the OAuth endpoints.
//!
//! RFC 6749 §3.1/§3.2: parameters must not be included more than once. The only exception is
//! `resource` (RFC 8707 §2), which a client may repeat to ask for several audiences.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};

use crate::error::OAuthError;

/// Most parameters a single request may carry; more is an attack or a bug.
const MAX_PARAMS: usize = 32;
/// Most `resource` values in one request.
const MAX_RESOURCES: usize = 8;

/// Parameters that may be repeated.
const REPEATABLE: &[&str] = &["resource"];

/// The parsed parameters of a form body.
#[derive(Debug, Default)]
pub struct Form {
    single: HashMap<String, String>,
    resources: Vec<String>,
}

impl Form {
    /// Parses a form body, requiring the form content type. Empty values count as absent
    /// (RFC 6749 §3.1: "Parameters sent without a value MUST be treated as if they were
    /// omitted from the request").
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "the request body must be application/x-www-form-urlencoded",
            ));
        }
        Self::parse_body(body)
    }

    /// Parses a body without checking headers.
    pub fn parse_body(body: &[u8]) -> Result<Self, OAuthError> {
        let mut form = Form::default();
        let mut count = 0usize;
        for (name, value) in form_urlencoded::parse(body) {
            count += 1;
            if count > MAX_PARAMS {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            if value.is_empty() {
                continue;
            }
            if REPEATABLE.contains(&name.as_ref()) {
                if form.resources.len() >= MAX_RESOURCES {
                    return Err(OAuthError::invalid_request("too many resource parameters"));
                }
                form.resources.push(value.into_owned());
                continue;
            }
            if form.single.contains_key(name.as_ref()) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter '{}' is repeated",
                    printable(&name)
                )));
            }
            form.single.insert(name.into_owned(), value.into_owned());
        }
        Ok(form)
    }

    /// A single-valued parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.single.get(name).map(String::as_str)
    }

    /// A required single-valued parameter.
    pub fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter '{name}'")))
    }

    /// The `resource` values, in request order.
    pub fn resources(&self) -> &[String] {
        &self.resources
    }
}

/// A parameter name made safe to echo in an error description.
fn printable(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_repeated_parameters() {
        let err = Form::parse_body(b"grant_type=client_credentials&grant_type=x").unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::InvalidRequest);
    }

    #[test]
    fn allows_repeated_resource() {
        let form = Form::parse_body(b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb").unwrap();
        assert_eq!(form.resources(), ["https://a", "https://b"]);
    }

    #[test]
    fn empty_values_are_absent() {
        let form = Form::parse_body(b"scope=&grant_type=client_credentials").unwrap();
        assert_eq!(form.get("scope"), None);
        assert_eq!(form.get("grant_type"), Some("client_credentials"));
    }

    #[test]
    fn bounds_parameter_count() {
        let body: String = (0..40).map(|i| format!("p{i}=v&")).collect();
        assert!(Form::parse_body(body.as_bytes()).is_err());
    }
}
