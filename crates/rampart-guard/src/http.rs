//! HTTP plumbing shared by key fetching and introspection: client construction (per-issuer CA
//! pinning, no redirects, timeouts) and bounded response bodies.

use std::time::Duration;

use reqwest::{Certificate, Client, Response, StatusCode, redirect};

use crate::config::GuardError;

/// Why a request to an issuer failed. Never carries response bodies or credentials.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// Connection, TLS or protocol failure.
    #[error("network error")]
    Network,
    /// The request did not finish in time.
    #[error("timeout")]
    Timeout,
    /// Unexpected HTTP status.
    #[error("unexpected HTTP status {0}")]
    Status(StatusCode),
    /// The body is larger than allowed.
    #[error("response too large")]
    TooLarge,
    /// The body cannot be parsed.
    #[error("malformed response")]
    Malformed,
}

impl From<reqwest::Error> for FetchError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            FetchError::Timeout
        } else {
            FetchError::Network
        }
    }
}

/// Builds the HTTP client for one issuer: only `ca_pem` as trust roots when given, otherwise
/// the platform roots; no redirects (no downgrade to another host or to http); no proxy;
/// `timeout` for connecting and for the whole request.
pub(crate) fn build_client(
    issuer: &str,
    ca_pem: Option<&str>,
    timeout: Duration,
) -> Result<Client, GuardError> {
    let mut builder = Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(redirect::Policy::none())
        .no_proxy();
    if let Some(pem) = ca_pem {
        let bad = || GuardError::BadCaPem {
            issuer: issuer.to_owned(),
        };
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(bad());
        }
        let certs = Certificate::from_pem_bundle(pem.as_bytes()).map_err(|_| bad())?;
        if certs.is_empty() {
            return Err(bad());
        }
        builder = builder.tls_certs_only(certs);
    }
    builder.build().map_err(|e| GuardError::Http(e.to_string()))
}

/// Reads the body of a `200 OK` response, failing as soon as it exceeds `max` bytes.
pub(crate) async fn read_ok_body(mut resp: Response, max: usize) -> Result<Vec<u8>, FetchError> {
    if resp.status() != StatusCode::OK {
        return Err(FetchError::Status(resp.status()));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX))
    {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len().saturating_add(chunk.len()) > max {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
