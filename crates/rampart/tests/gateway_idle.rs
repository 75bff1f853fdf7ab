//! `gateway.limits.idle_timeout` end to end: the real binary, raw TLS connections (HTTP/1.1)
//! and an HTTP/2 connection; idle keep-alive connections are closed after the idle timeout,
//! slow request heads after the (shorter) header read timeout, long requests never; and the
//! protocol of a connection is the one ALPN chose.

mod gateway_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_support::{GatewayProcess, connect, read_response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::client::TlsStream;

const HEADER_READ: Duration = Duration::from_secs(1);
const IDLE: Duration = Duration::from_secs(3);

/// An upstream answering "ok", after 4 s (longer than the idle timeout) on `/slow`.
async fn upstream() -> std::net::SocketAddr {
    let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
        if uri.path().ends_with("/slow") {
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
        "ok"
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

async fn gateway() -> GatewayProcess {
    let up = upstream().await;
    GatewayProcess::start(&format!(
        r#"
[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[gateway.limits]
header_read_timeout = {}
idle_timeout = {}

[[gateway.routes]]
id = "svc"
match = {{ path_prefix = "/svc" }}
upstreams = ["http://{up}"]
auth = ["public"]
"#,
        HEADER_READ.as_secs(),
        IDLE.as_secs()
    ))
}

/// Waits (at most 10 s) for the server to close the connection; returns the time it took.
async fn closed_after(tls: &mut TlsStream<tokio::net::TcpStream>) -> Duration {
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "connection still open after 10 s");
    assert!(
        rest.is_empty() || !String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 2"),
        "no response expected: {}",
        String::from_utf8_lossy(&rest)
    );
    started.elapsed()
}

const REQUEST: &[u8] = b"GET /svc/x HTTP/1.1\r\nHost: gw\r\n\r\n";

#[tokio::test]
async fn idle_keep_alive_connection_outlives_the_header_timeout_and_closes_after_idle() {
    let mut gw = gateway().await;
    let mut tls = connect(&gw, &[b"http/1.1"]).await;
    tls.write_all(REQUEST).await.unwrap();
    assert_eq!(read_response(&mut tls).await, 200);
    // Idle for twice the header read timeout: still open, still serving.
    tokio::time::sleep(HEADER_READ * 2).await;
    tls.write_all(REQUEST).await.unwrap();
    assert_eq!(read_response(&mut tls).await, 200);
    // Then closed once idle for idle_timeout.
    let took = closed_after(&mut tls).await;
    assert!(
        took >= IDLE - Duration::from_millis(300) && took <= IDLE + Duration::from_millis(1500),
        "closed after {took:?}, idle_timeout is {IDLE:?}"
    );
    gw.assert_running();
}

#[tokio::test]
async fn slow_heads_are_cut_after_the_header_timeout_not_the_idle_timeout() {
    let gw = gateway().await;
    // The first request of a connection.
    let mut tls = connect(&gw, &[b"http/1.1"]).await;
    tls.write_all(b"GET /svc/x HTTP/1.1\r\nHost: gw\r\n")
        .await
        .unwrap();
    let took = closed_after(&mut tls).await;
    assert!(
        took >= HEADER_READ - Duration::from_millis(300) && took < IDLE,
        "first head: cut after {took:?}"
    );

    // The next request on a kept-alive connection, after some idle time.
    let mut tls = connect(&gw, &[b"http/1.1"]).await;
    tls.write_all(REQUEST).await.unwrap();
    assert_eq!(read_response(&mut tls).await, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tls.write_all(b"GET /svc/x HTTP/1.1\r\n").await.unwrap();
    let took = closed_after(&mut tls).await;
    assert!(
        took >= HEADER_READ - Duration::from_millis(300) && took < Duration::from_millis(2500),
        "next head: cut {took:?} after its first byte (header_read_timeout {HEADER_READ:?})"
    );

    // A connection that never sends anything: the header timer too.
    let mut tls = connect(&gw, &[b"http/1.1"]).await;
    let took = closed_after(&mut tls).await;
    assert!(took < Duration::from_millis(2500), "silent: {took:?}");
}

#[tokio::test]
async fn requests_longer_than_the_idle_timeout_are_not_cut() {
    let gw = gateway().await;
    let mut tls = connect(&gw, &[b"http/1.1"]).await;
    tls.write_all(b"GET /svc/slow HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(read_response(&mut tls).await, 200);
    assert!(started.elapsed() >= Duration::from_secs(4));
    tls.write_all(REQUEST).await.unwrap();
    assert_eq!(read_response(&mut tls).await, 200, "connection kept");
}

#[tokio::test]
async fn idle_http2_connection_is_closed_after_idle_timeout() {
    let gw = gateway().await;
    let tls = connect(&gw, &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .expect("h2 handshake");
    let done = Arc::new(tokio::sync::Notify::new());
    let notify = done.clone();
    tokio::spawn(async move {
        let _ = connection.await;
        notify.notify_one();
    });
    for _ in 0..2 {
        let req = axum::http::Request::get(format!("{}/svc/x", gw.url))
            .body(String::new())
            .unwrap();
        let resp = sender.send_request(req).await.expect("h2 request");
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        while let Some(frame) = std::future::poll_fn(|cx| {
            http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx)
        })
        .await
        {
            frame.expect("response body");
        }
        // Streams restart the idle time; header_read_timeout does not apply to HTTP/2.
        tokio::time::sleep(HEADER_READ * 2).await;
    }
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), done.notified())
        .await
        .expect("h2 connection closed within 10 s");
    let took = started.elapsed() + HEADER_READ * 2;
    assert!(
        took >= IDLE - Duration::from_millis(300) && took <= IDLE + Duration::from_millis(1500),
        "idle h2 connection closed after {took:?}"
    );
}

#[tokio::test]
async fn without_idle_timeout_idle_and_silent_connections_end_after_the_header_timeout() {
    let up = upstream().await;
    let gw = GatewayProcess::start(&format!(
        r#"
[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[gateway.limits]
header_read_timeout = 1

[[gateway.routes]]
id = "svc"
match = {{ path_prefix = "/svc" }}
upstreams = ["http://{up}"]
auth = ["public"]
"#
    ));
    // Idle keep-alive: closed after header_read_timeout, as before idle_timeout existed.
    let mut tls = connect(&gw, &[b"http/1.1"]).await;
    tls.write_all(REQUEST).await.unwrap();
    assert_eq!(read_response(&mut tls).await, 200);
    let took = closed_after(&mut tls).await;
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(2500),
        "idle: {took:?}"
    );
    // A client that completes the handshake and sends nothing (hyper alone would wait forever
    // for its first bytes).
    let mut tls = connect(&gw, &[b"http/1.1"]).await;
    let took = closed_after(&mut tls).await;
    assert!(took < Duration::from_millis(2500), "silent: {took:?}");
    let mut tls = connect(&gw, &[b"h2"]).await;
    let took = closed_after(&mut tls).await;
    assert!(took < Duration::from_millis(2500), "silent h2: {took:?}");
}

#[tokio::test]
async fn the_protocol_is_the_one_alpn_chose() {
    let gw = gateway().await;
    // ALPN chose HTTP/1.1: an HTTP/2 preface is refused (the connection is closed, or a 4xx),
    // never answered with HTTP/2 frames.
    let mut tls = connect(&gw, &[b"http/1.1"]).await;
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "connection left open");
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"),
        "answered {answer:?}"
    );
    // No ALPN at all: HTTP/1.1 (HTTP/2 over TLS needs ALPN, RFC 9113 section 3.2).
    let mut tls = connect(&gw, &[]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
    tls.write_all(REQUEST).await.unwrap();
    assert_eq!(read_response(&mut tls).await, 200);
}
