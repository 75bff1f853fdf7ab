//! The floor of the gateway's stack, for `benches/gateway/run.sh` (setup (d), `BARE=1`).
//!
//! A TLS reverse proxy made of the parts the gateway is built on and nothing else: hyper 1's
//! HTTP/1.1 server on tokio-rustls (aws-lc-rs), hyper's HTTP/1.1 client to one upstream, one
//! current-thread Tokio runtime per worker thread on `SO_REUSEPORT` sockets, mimalloc. Each
//! downstream connection gets one upstream connection of its own, so there is no pool, no
//! channel between connections and no lock that is ever contended. It checks nothing and logs
//! nothing: no authentication, no limits, no timeouts, no header hygiene, no audit log, no
//! metrics. It is not part of Rampart and must not face a network; it exists to measure how
//! much of the gateway's cost per request is the stack itself (docs/benchmarks.md).
//!
//! Usage: `bare_proxy LISTEN UPSTREAM CERT_PEM KEY_PEM WORKERS`, e.g.
//! `bare_proxy 127.0.0.1:9443 127.0.0.1:7001 cert.pem key.pem 2`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Error = Box<dyn std::error::Error + Send + Sync>;
type ResponseBody = UnsyncBoxBody<Bytes, hyper::Error>;
/// The upstream connection of one downstream connection, free between its requests.
type UpstreamSlot = Arc<Mutex<Option<SendRequest<Incoming>>>>;

fn main() {
    if let Err(e) = run() {
        eprintln!("bare_proxy: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream, cert, key, workers] = args.as_slice() else {
        return Err("usage: bare_proxy LISTEN UPSTREAM CERT_PEM KEY_PEM WORKERS".into());
    };
    let listen: SocketAddr = listen.parse()?;
    let upstream: SocketAddr = upstream.parse()?;
    let workers: usize = workers.parse()?;
    let tls = rampart_pki::server_config(
        &std::fs::read_to_string(cert)?,
        &std::fs::read_to_string(key)?,
        &[b"http/1.1"],
    )?;
    let acceptor = TlsAcceptor::from(tls);
    let mut threads = Vec::new();
    let mut addr = listen;
    // Tokio registers a socket with the runtime it is made in: the sockets are made in this
    // one, then detached for the workers' runtimes, as the gateway does.
    let binding = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _entered = binding.enter();
    for _ in 0..workers.max(1) {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(1024)?;
        addr = listener.local_addr()?;
        let listener = listener.into_std()?;
        let acceptor = acceptor.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        threads.push(std::thread::spawn(move || {
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => accept_loop(listener, acceptor, upstream).await,
                    Err(e) => eprintln!("bare_proxy: {e}"),
                }
            })
        }));
    }
    println!("bare_proxy listening on {addr}");
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, upstream: SocketAddr) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let slot = UpstreamSlot::default();
            let service = service_fn(move |request| forward(request, Arc::clone(&slot), upstream));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// Sends `request` on the connection's upstream connection (opened on first use) and returns
/// the upstream's response; 502 when that fails.
async fn forward(
    mut request: Request<Incoming>,
    slot: UpstreamSlot,
    upstream: SocketAddr,
) -> Result<Response<ResponseBody>, Infallible> {
    let origin_form = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse::<Uri>();
    let Ok(origin_form) = origin_form else {
        return Ok(bad_gateway());
    };
    *request.uri_mut() = origin_form;
    let free = slot.lock().ok().and_then(|mut s| s.take());
    let sender = match free {
        Some(sender) => Ok(sender),
        None => connect(upstream).await,
    };
    let Ok(mut sender) = sender else {
        return Ok(bad_gateway());
    };
    if sender.ready().await.is_err() {
        return Ok(bad_gateway());
    }
    let response = sender.send_request(request).await;
    if let Ok(mut s) = slot.lock() {
        *s = Some(sender);
    }
    match response {
        Ok(response) => Ok(response.map(BodyExt::boxed_unsync)),
        Err(_) => Ok(bad_gateway()),
    }
}

async fn connect(upstream: SocketAddr) -> Result<SendRequest<Incoming>, Error> {
    let tcp = TcpStream::connect(upstream).await?;
    tcp.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

fn bad_gateway() -> Response<ResponseBody> {
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}
