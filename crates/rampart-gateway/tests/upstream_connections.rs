//! The gateway's pooled upstream connections, seen from a raw HTTP/1.1 upstream that counts
//! the connections it accepts: reused after a complete exchange, replaced when the upstream
//! closed them while idle, closed when a response body is abandoned.

mod support;

use support::NO_AUTH;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use rampart_gateway::{AuditSink, BoxBody, ConnectionInfo, Gateway, GatewayConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// How the upstream treats a connection after each response.
#[derive(Clone, Copy)]
enum AfterResponse {
    /// Waits for the next request.
    KeepAlive,
    /// Closes the connection 30 ms later, without saying so in the response.
    CloseSoon,
}

/// An upstream answering `GET /big` with a 1 MiB body, `HEAD` with headers only and anything
/// else with `ok`; returns its address and the number of connections accepted so far.
async fn upstream(after: AfterResponse) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream, after));
        }
    });
    (addr, accepted)
}

async fn serve(mut stream: TcpStream, after: AfterResponse) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let response = if head.starts_with("HEAD ") {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n".to_vec()
        } else if head.starts_with("GET /svc/big ") {
            let mut r = b"HTTP/1.1 200 OK\r\ncontent-length: 1048576\r\n\r\n".to_vec();
            r.resize(r.len() + 1_048_576, b'x');
            r
        } else {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec()
        };
        if stream.write_all(&response).await.is_err() {
            return;
        }
        if let AfterResponse::CloseSoon = after {
            tokio::time::sleep(Duration::from_millis(30)).await;
            return;
        }
    }
}

fn gateway(upstream: SocketAddr) -> Gateway {
    let config: GatewayConfig = toml::from_str(&format!(
        r#"
[[routes]]
id = "svc"
match = {{ path_prefix = "/svc" }}
upstreams = ["http://{upstream}"]
auth = ["public"]
"#
    ))
    .expect("config");
    Gateway::new(&config, Arc::new(NO_AUTH), AuditSink::discard()).expect("gateway")
}

/// Sends `method path` through the gateway's pipeline; the response body is left unread.
async fn call(gw: &Gateway, method: Method, path: &str) -> http::Response<BoxBody> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "api.local")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("peer");
    req.extensions_mut()
        .insert(ConnectionInfo::new(peer, false));
    gw.service().oneshot(req).await.expect("infallible")
}

async fn get_ok(gw: &Gateway, path: &str) -> Bytes {
    let resp = call(gw, Method::GET, path).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.into_body().collect().await.expect("body").to_bytes()
}

#[tokio::test]
async fn finished_exchanges_reuse_one_connection() {
    let (addr, accepted) = upstream(AfterResponse::KeepAlive).await;
    let gw = gateway(addr);
    for _ in 0..5 {
        assert_eq!(get_ok(&gw, "/svc/a").await, "ok");
    }
    // A response without a body frees its connection at once.
    let head = call(&gw, Method::HEAD, "/svc/a").await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(get_ok(&gw, "/svc/a").await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_replaced() {
    let (addr, accepted) = upstream(AfterResponse::CloseSoon).await;
    let gw = gateway(addr);
    for round in 1..=3 {
        assert_eq!(get_ok(&gw, "/svc/a").await, "ok");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(accepted.load(Ordering::SeqCst), round);
    }
}

#[tokio::test]
async fn an_abandoned_response_body_closes_its_connection() {
    let (addr, accepted) = upstream(AfterResponse::KeepAlive).await;
    let gw = gateway(addr);
    let big = call(&gw, Method::GET, "/svc/big").await;
    assert_eq!(big.status(), StatusCode::OK);
    drop(big);
    // The next request cannot reuse a connection with 1 MiB of unread body on it.
    assert_eq!(get_ok(&gw, "/svc/a").await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    // A body read to its end gives its connection back.
    assert_eq!(get_ok(&gw, "/svc/big").await.len(), 1_048_576);
    assert_eq!(get_ok(&gw, "/svc/a").await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}
