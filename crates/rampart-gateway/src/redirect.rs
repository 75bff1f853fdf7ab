//! The answer of the plain-HTTP redirect listener (`http_redirect_listen`): every request gets
//! `308 Permanent Redirect` to the same host, path and query on the gateway's HTTPS port. No
//! request is routed or proxied over plain HTTP, and no HSTS header is sent (RFC 6797 §7.2:
//! only over HTTPS).
//!
//! The host comes from the request (`Host`, or the authority of an absolute-form target) and
//! must be a plain DNS name, IPv4 address or bracketed IPv6 address: anything else (user
//! info, odd characters, an empty or over-long name) gets 400, so the `Location` never
//! carries what a client smuggled in. The port is always the gateway's own.

use http::{HeaderValue, Request, Response, StatusCode, header};

use crate::context::BoxBody;
use crate::error::{error_response, full};

/// Longest host name accepted, bytes (RFC 1035's limit for a DNS name).
pub const MAX_HOST_LEN: usize = 253;

/// The redirect for `req` to the HTTPS listener on `https_port`: 308 with `Location`, or 400
/// when the request names no usable host or has no origin-form path.
pub fn https_redirect<B>(req: &Request<B>, https_port: u16) -> Response<BoxBody> {
    let Some(host) = request_host(req) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "a valid Host is required",
            "bad_host",
        );
    };
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    if !path.starts_with('/') {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request target must be a path",
            "bad_target",
        );
    }
    let location = if https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    };
    let Ok(location) = HeaderValue::from_str(&location) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request target cannot be redirected",
            "bad_target",
        );
    };
    let mut resp = Response::new(full(""));
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    resp.headers_mut().insert(header::LOCATION, location);
    resp
}

/// The host of the request without its port, if it is a plain DNS name, IPv4 address or
/// bracketed IPv6 address.
fn request_host<B>(req: &Request<B>) -> Option<String> {
    let authority = match req.uri().authority() {
        Some(a) => a.clone(),
        None => req
            .headers()
            .get(header::HOST)?
            .to_str()
            .ok()?
            .parse::<http::uri::Authority>()
            .ok()?,
    };
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host();
    let valid = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.len() <= MAX_HOST_LEN
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            && !host.starts_with(['.', '-'])
    };
    valid.then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(target: &str, host: Option<&str>, port: u16) -> (u16, Option<String>) {
        let mut req = Request::get(target);
        if let Some(h) = host {
            req = req.header(header::HOST, h);
        }
        let resp = https_redirect(&req.body(()).expect("request"), port);
        let location = resp
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().expect("ascii").to_owned());
        (resp.status().as_u16(), location)
    }

    #[test]
    fn same_host_path_and_query_on_the_https_port() {
        assert_eq!(
            redirect("/orders/1?x=1&y=%2F", Some("API.example:8080"), 9443),
            (
                308,
                Some("https://api.example:9443/orders/1?x=1&y=%2F".into())
            )
        );
        assert_eq!(
            redirect("/", Some("api.example"), 443),
            (308, Some("https://api.example/".into()))
        );
        assert_eq!(
            redirect("/a", Some("[::1]:80"), 8443),
            (308, Some("https://[::1]:8443/a".into()))
        );
        assert_eq!(
            redirect("http://api.example/a", None, 443),
            (308, Some("https://api.example/a".into()))
        );
    }

    #[test]
    fn hosts_that_could_smuggle_anything_are_refused() {
        for host in [
            None,
            Some(""),
            Some("evil.example@api.example"),
            Some("a b"),
            Some("api.example/x"),
            Some("-api.example"),
            Some("[not-v6]"),
        ] {
            assert_eq!(redirect("/a", host, 443).0, 400, "{host:?}");
        }
        let long = "a".repeat(MAX_HOST_LEN + 1);
        assert_eq!(redirect("/a", Some(&long), 443).0, 400);
    }
}
