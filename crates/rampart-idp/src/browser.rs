//! What the sign-in pages need from the browser: the session cookie, the CSRF binding,
//! the client address, and cross-site request checks.
//!
//! Cookies are `__Host-` prefixed (Secure, Path=/, no Domain), HttpOnly and SameSite=Lax.
//! The session cookie holds a random value; the store keeps only its keyed hash. CSRF
//! tokens are a keyed hash of a separate random browser cookie (the synchronizer token
//! bound to the browser): a page from another site can neither read the cookie nor compute
//! the token.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::http::{HeaderMap, HeaderValue, header, request::Parts};
use base64::Engine;
use rampart_crypto::{SecretHasher, constant_time_eq, random_token};

/// The session cookie.
pub const SESSION_COOKIE: &str = "__Host-rampart-session";
/// The CSRF binding cookie.
pub const CSRF_COOKIE: &str = "__Host-rampart-csrf";
/// The device cookie: this browser signed in to an account before (OWASP "device cookies").
pub const DEVICE_COOKIE: &str = "__Host-rampart-device";
/// How long a device stays trusted, seconds.
pub const DEVICE_TTL_SECS: i64 = 90 * 86_400;
/// Largest cookie value we read.
const MAX_COOKIE_VALUE: usize = 128;

/// Reads one cookie from the request (the first if repeated).
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if k == name && !v.is_empty() && v.len() <= MAX_COOKIE_VALUE {
                return Some(v);
            }
        }
    }
    None
}

/// A `Set-Cookie` value for a `__Host-` cookie; `max_age: None` makes a browser-session
/// cookie, `Some(0)` deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut s = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    // Names and values are ours: base64url and fixed names, always valid header bytes.
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A fresh random cookie value (256 bits).
pub fn new_cookie_value() -> Option<String> {
    random_token(32).ok()
}

/// Issues and checks CSRF tokens.
pub struct Csrf {
    hasher: SecretHasher,
}

/// The CSRF state of one request: the browser binding (new or existing) and its token.
pub struct CsrfBinding {
    /// The token to put into forms.
    pub token: String,
    /// `Set-Cookie` to send when the binding is new.
    pub set_cookie: Option<HeaderValue>,
}

impl Csrf {
    /// A CSRF checker with its own key.
    pub fn new(hasher: SecretHasher) -> Self {
        Self { hasher }
    }

    fn token_for(&self, binding: &str) -> String {
        let mut input = b"csrf-v1:".to_vec();
        input.extend_from_slice(binding.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.hasher.hash(&input))
    }

    /// The token for this browser, creating the binding cookie when missing. `None` only if
    /// randomness fails.
    pub fn binding(&self, headers: &HeaderMap) -> Option<CsrfBinding> {
        if let Some(existing) = cookie(headers, CSRF_COOKIE) {
            return Some(CsrfBinding {
                token: self.token_for(existing),
                set_cookie: None,
            });
        }
        let value = new_cookie_value()?;
        Some(CsrfBinding {
            token: self.token_for(&value),
            set_cookie: Some(set_cookie(CSRF_COOKIE, &value, None)),
        })
    }

    /// Whether a submitted token belongs to this browser's binding cookie.
    pub fn verify(&self, headers: &HeaderMap, submitted: Option<&str>) -> bool {
        let (Some(binding), Some(submitted)) = (cookie(headers, CSRF_COOKIE), submitted) else {
            return false;
        };
        constant_time_eq(self.token_for(binding).as_bytes(), submitted.as_bytes())
    }
}

/// Rejects a state-changing request that a browser marks as cross-site (Fetch Metadata)
/// or whose `Origin` is not ours. A missing header passes: the CSRF token still guards.
pub fn same_origin(headers: &HeaderMap, issuer: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site.eq_ignore_ascii_case("cross-site")
    {
        return false;
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => issuer_origin(issuer).is_some_and(|o| o.eq_ignore_ascii_case(origin)),
    }
}

/// `scheme://host[:port]` of a URL.
pub fn issuer_origin(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let origin = parsed.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// The address of the connected peer (set by the listener), or unspecified.
pub fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// A device cookie value for `account` (the normalized login name): `issued.nonce.mac`.
pub fn device_cookie(hasher: &SecretHasher, account: &str, now: i64) -> Option<String> {
    let nonce = random_token(12).ok()?;
    let mac = device_mac(hasher, account, now, &nonce);
    Some(format!("{now}.{nonce}.{mac}"))
}

/// The device id (nonce) of a valid, unexpired device cookie for `account`.
pub fn trusted_device<'c>(
    hasher: &SecretHasher,
    cookie_value: &'c str,
    account: &str,
    now: i64,
) -> Option<&'c str> {
    let mut parts = cookie_value.splitn(3, '.');
    let (issued, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?);
    let issued: i64 = issued.parse().ok()?;
    if issued > now || now - issued > DEVICE_TTL_SECS {
        return None;
    }
    let expected = device_mac(hasher, account, issued, nonce);
    constant_time_eq(expected.as_bytes(), mac.as_bytes()).then_some(nonce)
}

fn device_mac(hasher: &SecretHasher, account: &str, issued: i64, nonce: &str) -> String {
    let input = format!("device-v1:{account}:{issued}:{nonce}");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hasher.hash(input.as_bytes()))
}

/// The keyed hash under which the store keeps a cookie, code or refresh token.
pub fn secret_hash(hasher: &SecretHasher, kind: &str, value: &str) -> Vec<u8> {
    let mut input = Vec::with_capacity(kind.len() + 1 + value.len());
    input.extend_from_slice(kind.as_bytes());
    input.push(b':');
    input.extend_from_slice(value.as_bytes());
    hasher.hash(&input).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_crypto::MasterKey;

    fn headers_with_cookie(cookie_header: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(cookie_header).unwrap(),
        );
        h
    }

    #[test]
    fn csrf_token_is_bound_to_the_browser_cookie() {
        let csrf = Csrf::new(MasterKey::generate().unwrap().keyed_hasher("csrf"));
        let fresh = csrf.binding(&HeaderMap::new()).unwrap();
        let set = fresh.set_cookie.unwrap();
        let set = set.to_str().unwrap();
        assert!(set.starts_with("__Host-rampart-csrf="));
        assert!(set.contains("Secure") && set.contains("HttpOnly") && set.contains("SameSite=Lax"));
        let value = set.split(';').next().unwrap().split_once('=').unwrap().1;
        let headers = headers_with_cookie(&format!("a=b; {CSRF_COOKIE}={value}"));
        assert!(csrf.verify(&headers, Some(&fresh.token)));
        // Another browser's token, a missing token, a missing cookie: all refused.
        let other = csrf.binding(&HeaderMap::new()).unwrap();
        assert!(!csrf.verify(&headers, Some(&other.token)));
        assert!(!csrf.verify(&headers, None));
        assert!(!csrf.verify(&HeaderMap::new(), Some(&fresh.token)));
    }

    #[test]
    fn device_cookies_are_bound_to_the_account_and_expire() {
        let hasher = MasterKey::generate().unwrap().keyed_hasher("people");
        let value = device_cookie(&hasher, "ada", 1000).unwrap();
        assert!(trusted_device(&hasher, &value, "ada", 1000 + 60).is_some());
        assert!(trusted_device(&hasher, &value, "bob", 1000 + 60).is_none());
        assert!(trusted_device(&hasher, &value, "ada", 1000 + DEVICE_TTL_SECS + 1).is_none());
        let forged = value.replacen("1000", "2000", 1);
        assert!(trusted_device(&hasher, &forged, "ada", 2001).is_none());
        let other = MasterKey::generate().unwrap().keyed_hasher("people");
        assert!(trusted_device(&other, &value, "ada", 1060).is_none());
    }

    #[test]
    fn cross_site_requests_are_refused() {
        let issuer = "https://127.0.0.1:8443";
        let mut h = HeaderMap::new();
        assert!(same_origin(&h, issuer));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://127.0.0.1:8443"),
        );
        assert!(same_origin(&h, issuer));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h, issuer));
        let mut h = HeaderMap::new();
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h, issuer));
    }
}
