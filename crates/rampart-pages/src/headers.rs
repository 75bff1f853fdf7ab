//! Security headers and the Content-Security-Policy of the pages.

use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderName, HeaderValue, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, Response, StatusCode};
use std::net::Ipv6Addr;

const CSP_HEAD: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                        script-src 'self'; connect-src 'self'; form-action 'self'";
const CSP_TAIL: &str = "; frame-ancestors 'none'; base-uri 'none'";

/// The page CSP when no extra form-action origin is allowed.
const CSP_DEFAULT: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                           script-src 'self'; connect-src 'self'; form-action 'self'; \
                           frame-ancestors 'none'; base-uri 'none'";

const CROSS_ORIGIN_RESOURCE_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-resource-policy");

/// The `Content-Security-Policy` value for a page whose form may be redirected to
/// `form_action_origin`.
///
/// The origin is added to `form-action` only when [`valid_origin`] accepts it; otherwise the
/// policy is the default one (`form-action 'self'`).
pub fn content_security_policy(form_action_origin: Option<&str>) -> String {
    match form_action_origin.and_then(valid_origin) {
        Some(origin) => format!("{CSP_HEAD} {origin}{CSP_TAIL}"),
        None => CSP_DEFAULT.to_owned(),
    }
}

/// Checks that `origin` is exactly `scheme://host[:port]` with scheme `http` or `https`, and
/// returns it normalised (lower case, without a trailing `/`), ready for a CSP source list.
///
/// Rejected: other schemes, user info, paths, queries, fragments, wildcards, spaces,
/// semicolons, commas, quotes and anything else that could change the meaning of the policy.
pub fn valid_origin(origin: &str) -> Option<String> {
    let lower = origin.to_ascii_lowercase();
    let origin = lower.strip_suffix('/').unwrap_or(&lower);
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))?;
    let port = if let Some(bracketed) = authority.strip_prefix('[') {
        let (addr, after) = bracketed.split_once(']')?;
        addr.parse::<Ipv6Addr>().ok()?;
        after
    } else {
        let (host, port) = authority.split_at(authority.find(':').unwrap_or(authority.len()));
        if !valid_host(host) {
            return None;
        }
        port
    };
    if !port.is_empty() && !valid_port(port.strip_prefix(':')?) {
        return None;
    }
    Some(origin.to_owned())
}

/// A DNS name or IPv4 address: dot-separated labels of letters, digits and inner hyphens.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A decimal port number in 1..=65535.
fn valid_port(digits: &str) -> bool {
    !digits.is_empty()
        && digits.len() <= 5
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(digits.parse::<u32>(), Ok(1..=65535))
}

/// The origin (`scheme://host[:port]`) of an absolute `http`/`https` URI, e.g. a client's
/// redirect URI, suitable for `form_action_origin`. Internationalised host names come out in
/// their ASCII (punycode) form and default ports are dropped.
pub fn origin_of(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let origin = url.origin();
    if !origin.is_tuple() {
        return None;
    }
    valid_origin(&origin.ascii_serialization())
}

/// Builds an HTML page response with every security header.
pub(crate) fn html_response(
    status: StatusCode,
    body: String,
    form_action_origin: Option<&str>,
) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    common_headers(headers);
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // `same-origin`, not `no-referrer`: with `no-referrer` Chromium sends `Origin: null` on
    // same-origin form posts, which the origin check must then special-case.
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    let csp = HeaderValue::from_str(&content_security_policy(form_action_origin))
        .unwrap_or_else(|_| HeaderValue::from_static(CSP_DEFAULT));
    headers.insert(CONTENT_SECURITY_POLICY, csp);
    response
}

/// Builds a static asset response, cached for a year (URLs carry a content version).
pub(crate) fn asset_response(
    content_type: &'static str,
    body: &'static str,
) -> Response<&'static str> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    common_headers(headers);
    response
}

fn common_headers(headers: &mut HeaderMap) {
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        CROSS_ORIGIN_RESOURCE_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}
