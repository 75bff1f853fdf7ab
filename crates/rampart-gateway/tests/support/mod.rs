//! What the gateway's integration tests share: authenticators (one refusing everything, one
//! answering from a table of test tokens), principals, an echo upstream, the gateway served on
//! loopback as the binary serves it (minus TLS), and the next audit record.
// Each test binary compiles this module; not all of them use every item.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rampart_gateway::{AuditRecord, ConnectionInfo, Gateway};
use rampart_guard::{Accepted, AuthError, AuthMethod, Authenticator, Principal};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tower::ServiceExt;

/// An authenticator that refuses every credential with one error.
pub struct Refuse(pub AuthError);

/// For routes that do not authenticate: every credential is invalid.
pub const NO_AUTH: Refuse = Refuse(AuthError::Invalid);

#[async_trait::async_trait]
impl Authenticator for Refuse {
    async fn authenticate(
        &self,
        _: &str,
        _: &str,
        _: Accepted,
    ) -> Result<Arc<Principal>, AuthError> {
        Err(self.0.clone())
    }
}

/// A principal of `subject` (through `client_id`, if any) with `scopes` for `audience`, issued
/// by `https://issuer.test` as a JWT that never expires, without roles or groups.
pub fn principal(
    subject: &str,
    client_id: Option<&str>,
    scopes: &[&str],
    audience: &str,
) -> Principal {
    Principal {
        subject: subject.into(),
        client_id: client_id.map(str::to_owned),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        roles: Vec::new(),
        groups: Vec::new(),
        audiences: vec![audience.into()],
        issuer: "https://issuer.test".into(),
        expires_at: i64::MAX,
        token_id: None,
        method: AuthMethod::Jwt,
    }
}

/// An authenticator that answers `(token, audience, accepted)` with the test's function, after
/// waiting (through `authenticate`, as for a token not verified before).
pub struct TokenTable<F>(pub F);

#[async_trait::async_trait]
impl<F> Authenticator for TokenTable<F>
where
    F: Fn(&str, &str, Accepted) -> Result<Principal, AuthError> + Send + Sync,
{
    async fn authenticate(
        &self,
        token: &str,
        audience: &str,
        accepted: Accepted,
    ) -> Result<Arc<Principal>, AuthError> {
        (self.0)(token, audience, accepted).map(Arc::new)
    }
}

/// Like [`TokenTable`], but answering without waiting (`authenticate_now`, as for a cached
/// token), so that the gateway never takes its waiting path.
#[allow(dead_code)] // Not every test file uses it.
pub struct TokenTableNow<F>(pub F);

#[async_trait::async_trait]
impl<F> Authenticator for TokenTableNow<F>
where
    F: Fn(&str, &str, Accepted) -> Result<Principal, AuthError> + Send + Sync,
{
    async fn authenticate(
        &self,
        _: &str,
        _: &str,
        _: Accepted,
    ) -> Result<Arc<Principal>, AuthError> {
        panic!("the gateway waited for an answer it had been given without waiting")
    }

    fn authenticate_now(
        &self,
        token: &str,
        audience: &str,
        accepted: Accepted,
    ) -> Option<Result<Arc<Principal>, AuthError>> {
        Some((self.0)(token, audience, accepted).map(Arc::new))
    }
}

/// An echo upstream: answers JSON `{method, path, headers, upstream}`, counts hits, sets
/// `Server` and `X-Powered-By`, sleeps 3 s on paths starting with `/slow`.
pub async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if req.uri().path().starts_with("/slow") {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                        }
                        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
                        for (k, v) in req.headers() {
                            headers
                                .entry(k.as_str().to_owned())
                                .or_default()
                                .push(v.to_str().unwrap_or("?").to_owned());
                        }
                        let body = serde_json::json!({
                            "method": req.method().as_str(),
                            "path": req.uri().to_string(),
                            "headers": headers,
                            "upstream": addr.to_string(),
                        });
                        let resp = Response::builder()
                            .header("server", "echo/1.0")
                            .header("x-powered-by", "tests")
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(body.to_string())))
                            .expect("response");
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, hits)
}

/// Serves `gateway` on a loopback port like the binary does (minus TLS): every request gets
/// the `ConnectionInfo` of its TCP peer.
pub async fn serve(gateway: Gateway) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let svc =
                gateway
                    .service::<Incoming>()
                    .map_request(move |mut req: Request<Incoming>| {
                        req.extensions_mut()
                            .insert(ConnectionInfo::new(peer, false));
                        req
                    });
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(
                        TokioIo::new(stream),
                        hyper_util::service::TowerToHyperService::new(svc),
                    )
                    .await;
            });
        }
    });
    addr
}

/// The next audit record, waiting at most 5 s.
pub async fn next_audit(audit: &mut mpsc::Receiver<AuditRecord>) -> AuditRecord {
    tokio::time::timeout(Duration::from_secs(5), audit.recv())
        .await
        .expect("audit record in time")
        .expect("audit record")
}
