//! An HTTPS listener: TLS via rustls, HTTP/1.1 and HTTP/2 by ALPN, with explicit bounds on
//! connections, handshake time, header read time, request head size and request time.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rampart_gateway::idle::{ConnectionActivity, IdleIo, TrackActivity};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::util::Oneshot;
use tower::{Service, ServiceBuilder, ServiceExt};

use crate::settings::LimitSettings;

/// What a listener serves each connection with: a service of hyper requests that never
/// fails, called in place when ready and cloned only to wait for readiness (see
/// `InPlaceService`), movable to the connection's task.
pub trait ConnectionService<B>:
    Service<Request<Incoming>, Response = Response<B>, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + 'static
{
}

impl<S, B> ConnectionService<B> for S where
    S: Service<
            Request<Incoming>,
            Response = Response<B>,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// A response body a listener can send.
pub trait ResponseBody:
    http_body::Body<Data = bytes::Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + 'static
{
}

impl<B> ResponseBody for B where
    B: http_body::Body<Data = bytes::Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static
{
}

/// The server TLS configuration a listener uses for each new connection, replaceable while
/// serving: connections already open keep the configuration of their handshake.
#[derive(Clone, Debug)]
pub struct TlsSource(Arc<RwLock<Arc<rustls::ServerConfig>>>);

impl TlsSource {
    /// A source serving `config` until [`TlsSource::replace`].
    pub fn new(config: Arc<rustls::ServerConfig>) -> Self {
        Self(Arc::new(RwLock::new(config)))
    }

    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Makes `config` the one of every later handshake.
    pub fn replace(&self, config: Arc<rustls::ServerConfig>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = config;
    }
}

/// Serves over TLS on `listener` until `shutdown` resolves, then lets open connections
/// finish for up to 10 seconds. `make_service` builds the service of one connection, once
/// its handshake is done, from the peer address and the identity of the client certificate
/// (see [`client_cert_identity`]).
pub async fn serve_tls<F, S, B>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    make_service: F,
    limits: &LimitSettings,
    shutdown: impl std::future::Future<Output = ()>,
) where
    F: Fn(SocketAddr, Option<String>) -> S + Clone + Send + 'static,
    S: ConnectionService<B>,
    B: ResponseBody,
{
    // The idle timer also closes a client that finishes the handshake and then sends
    // nothing (hyper's protocol detection reads the first bytes without a timer).
    let idle = Some(Duration::from_secs(limits.header_read_timeout));
    serve_tls_with_idle_timeout(listener, tls, make_service, limits, idle, shutdown).await;
}

/// [`serve_tls`] with an idle timeout for keep-alive connections: with `Some(idle)`, a
/// connection with no request in progress for `idle` is closed, and hyper's HTTP/1.1 header
/// timer (which would otherwise also bound idle time) is replaced by one that runs from the
/// first byte of each request head (see [`rampart_gateway::idle`]).
pub async fn serve_tls_with_idle_timeout<F, S, B>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    make_service: F,
    limits: &LimitSettings,
    idle_timeout: Option<Duration>,
    shutdown: impl std::future::Future<Output = ()>,
) where
    F: Fn(SocketAddr, Option<String>) -> S + Clone + Send + 'static,
    S: ConnectionService<B>,
    B: ResponseBody,
{
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    serve_counted(
        listener,
        Some(TlsSource::new(tls)),
        make_service,
        limits,
        idle_timeout,
        connections,
        shutdown,
    )
    .await;
}

/// Serves like [`serve_tls_with_idle_timeout`] on one thread per listener in `listeners` (the
/// same address, bound with `SO_REUSEPORT` so the kernel spreads connections over them), each
/// thread running a single-threaded Tokio runtime that accepts from its listener and serves
/// the connections it accepted, start to end (the model of Envoy's workers and nginx's worker
/// processes). A request and its upstream call then run on one thread: no task moves between
/// threads and no thread wakes another, which on a busy machine costs more than the request
/// itself. `limits.max_connections` bounds the connections of all workers together. The
/// workers stop accepting when `stop` turns `true`, then drain as
/// [`serve_tls_with_idle_timeout`] does. Returns the threads; fails when a thread or a runtime
/// cannot be started.
pub fn serve_tls_on_workers<F, S, B>(
    listeners: Vec<std::net::TcpListener>,
    tls: TlsSource,
    make_service: F,
    limits: &LimitSettings,
    idle_timeout: Option<Duration>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>>
where
    F: Fn(SocketAddr, Option<String>) -> S + Clone + Send + 'static,
    S: ConnectionService<B>,
    B: ResponseBody,
{
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let mut threads = Vec::with_capacity(listeners.len());
    for (n, listener) in listeners.into_iter().enumerate() {
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (tls, make_service, limits) = (tls.clone(), make_service.clone(), limits.clone());
        let mut stop = stop.clone();
        let shared_connections = Arc::clone(&connections);
        let thread = std::thread::Builder::new()
            // Within the 15 bytes Linux keeps of a thread name (`top -H`, /proc).
            .name(format!("gw-worker-{n}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(error = %e, "gateway worker cannot use the listener");
                            return;
                        }
                    };
                    let shutdown = async move {
                        let _ = stop.wait_for(|s| *s).await;
                    };
                    serve_counted(
                        listener,
                        Some(tls),
                        make_service,
                        &limits,
                        idle_timeout,
                        shared_connections,
                        shutdown,
                    )
                    .await;
                });
            })?;
        threads.push(thread);
    }
    Ok(threads)
}

/// Serves plain HTTP/1.1 (no TLS, no HTTP/2) on `listener` until `shutdown` resolves, with
/// the same bounds as [`serve_tls_with_idle_timeout`] (connections, header read time, idle
/// time, head size). For the gateway's redirect listener and its loopback-only plain
/// listener; the service sees no client certificate.
pub async fn serve_plain_http<F, S, B>(
    listener: TcpListener,
    make_service: F,
    limits: &LimitSettings,
    idle_timeout: Option<Duration>,
    shutdown: impl std::future::Future<Output = ()>,
) where
    F: Fn(SocketAddr, Option<String>) -> S + Clone + Send + 'static,
    S: ConnectionService<B>,
    B: ResponseBody,
{
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    serve_counted(
        listener,
        None,
        make_service,
        limits,
        idle_timeout,
        connections,
        shutdown,
    )
    .await;
}

/// Serves TLS connections (with `tls`) or plain HTTP/1.1 ones (without), taking a permit of
/// `connections` for each connection.
async fn serve_counted<F, S, B>(
    listener: TcpListener,
    tls: Option<TlsSource>,
    make_service: F,
    limits: &LimitSettings,
    idle_timeout: Option<Duration>,
    connections: Arc<Semaphore>,
    shutdown: impl std::future::Future<Output = ()>,
) where
    F: Fn(SocketAddr, Option<String>) -> S + Clone + Send + 'static,
    S: ConnectionService<B>,
    B: ResponseBody,
{
    let handshake_timeout = Duration::from_secs(limits.handshake_timeout);
    let bounds = ConnectionBounds {
        idle_timeout,
        header_timeout: Duration::from_secs(limits.header_read_timeout),
        max_header_bytes: limits.max_header_bytes,
    };
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!("connection limit reached; connection refused");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = tls.as_ref().map(|t| TlsAcceptor::from(t.current()));
        let make_service = make_service.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                let service = make_service(peer, None);
                serve_http1(tcp, service, bounds, watcher).await;
                drop(permit);
                return;
            };
            let tls_stream =
                match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake timed out");
                        return;
                    }
                };
            // The protocol is known before the first byte: ALPN's choice over TLS (HTTP/2
            // over TLS only with ALPN, RFC 9113 section 3.2), HTTP/1.1 in plain text (no
            // h2c). Nothing is sniffed from the connection, so a client cannot switch to the
            // other protocol.
            let session = tls_stream.get_ref().1;
            let h2 = session.alpn_protocol() == Some(b"h2".as_slice());
            let service = make_service(peer, client_cert_identity(session));
            if h2 {
                // An HTTP/2 connection's state is several times an HTTP/1.1 one's: served by a
                // task of its own, so that the task of every HTTP/1.1 connection is not sized
                // for it.
                tokio::spawn(async move {
                    serve_http2(tls_stream, service, bounds, watcher).await;
                    drop(permit);
                });
            } else {
                serve_http1(tls_stream, service, bounds, watcher).await;
                drop(permit);
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("connections still open after 10 s; closing");
        }
    }
}

/// Time and size bounds of one connection.
#[derive(Clone, Copy)]
struct ConnectionBounds {
    idle_timeout: Option<Duration>,
    header_timeout: Duration,
    max_header_bytes: usize,
}

/// A connection's IO and service as hyper takes them, both reporting activity to the idle
/// timer when there is an idle timeout (that timer then also runs the header timeout).
fn tracked<IO, S>(
    io: IO,
    service: S,
    bounds: ConnectionBounds,
    h2: bool,
) -> (TokioIo<IdleIo<IO>>, InPlaceService<TrackActivity<S>>) {
    let activity = bounds
        .idle_timeout
        .map(|idle| ConnectionActivity::new(idle, bounds.header_timeout, h2));
    let service = TrackActivity::new(service, activity.clone());
    let io = IdleIo::new(io, activity);
    (TokioIo::new(io), InPlaceService::new(service))
}

/// Runs `connection` until it ends, or ends it gracefully on shutdown.
async fn watched<C>(connection: C, watcher: hyper_util::server::graceful::Watcher)
where
    C: hyper_util::server::graceful::GracefulConnection,
    C::Error: std::fmt::Display,
{
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Serves one HTTP/1.1 connection (plain, or TLS where ALPN did not choose h2).
async fn serve_http1<IO, S, B>(
    io: IO,
    service: S,
    bounds: ConnectionBounds,
    watcher: hyper_util::server::graceful::Watcher,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: ConnectionService<B>,
    B: ResponseBody,
{
    let (io, service) = tracked(io, service, bounds, false);
    // With an idle timeout, IdleIo runs the header timer (hyper's would also end idle
    // keep-alive connections after header_read_timeout).
    let hyper_header_timeout = bounds
        .idle_timeout
        .is_none()
        .then_some(bounds.header_timeout);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(hyper_header_timeout)
        .max_buf_size(bounds.max_header_bytes.max(8192));
    watched(builder.serve_connection(io, service), watcher).await;
}

/// Serves one HTTP/2 connection (TLS, ALPN h2).
async fn serve_http2<IO, S, B>(
    io: IO,
    service: S,
    bounds: ConnectionBounds,
    watcher: hyper_util::server::graceful::Watcher,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: ConnectionService<B>,
    B: ResponseBody,
{
    let (io, service) = tracked(io, service, bounds, true);
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(bounds.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(128)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    watched(builder.serve_connection(io, service), watcher).await;
}

/// hyper's view of a connection's tower service.
///
/// hyper_util's `TowerToHyperService` clones the service for every request; for the gateway,
/// whose service is its whole pipeline, that clone (dozens of reference counts shared with
/// the other worker threads) was a measurable part of each request. This adapter calls the
/// connection's own service in place when it is ready at once, which the gateway's pipeline
/// always is, and otherwise waits for readiness on a clone, as `oneshot` does.
struct InPlaceService<S> {
    service: Mutex<S>,
}

impl<S> InPlaceService<S> {
    fn new(service: S) -> Self {
        Self {
            service: Mutex::new(service),
        }
    }
}

impl<S> hyper::service::Service<Request<Incoming>> for InPlaceService<S>
where
    S: Service<Request<Incoming>, Error = Infallible> + Clone,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = InPlaceFuture<S>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        // Poisoning cannot leave the service half-updated: `call` only starts a request.
        let mut service = self.service.lock().unwrap_or_else(PoisonError::into_inner);
        // A service that is not ready at once registers this no-op waker and is then
        // polled again, with the task's waker, through the `Oneshot` of a clone.
        match service.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => InPlaceFuture::Called {
                future: service.call(request),
            },
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => InPlaceFuture::Waiting {
                oneshot: service.clone().oneshot(request),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`InPlaceService`].
    #[project = InPlaceFutureProjection]
    enum InPlaceFuture<S: Service<Request<Incoming>>> {
        Called { #[pin] future: S::Future },
        Waiting { #[pin] oneshot: Oneshot<S, Request<Incoming>> },
    }
}

impl<S> std::future::Future for InPlaceFuture<S>
where
    S: Service<Request<Incoming>>,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            InPlaceFutureProjection::Called { future } => future.poll(cx),
            InPlaceFutureProjection::Waiting { oneshot } => oneshot.poll(cx),
        }
    }
}

/// The identity of the client certificate of a finished handshake: present only when the
/// server configuration verifies client certificates (rustls reports peer certificates only
/// after its verifier accepted them), derived by [`rampart_pki::client_identity`].
pub fn client_cert_identity(connection: &rustls::ServerConnection) -> Option<String> {
    connection
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|leaf| rampart_pki::client_identity(leaf.as_ref()))
}

/// The per-connection service of an axum router with the request timeout.
pub fn router_service(
    router: axum::Router,
    limits: &LimitSettings,
) -> impl Fn(
    SocketAddr,
    Option<String>,
) -> tower::util::BoxCloneService<Request<Incoming>, Response<Body>, Infallible>
+ Clone
+ Send
+ 'static {
    let timeout = Duration::from_secs(limits.request_timeout);
    let service = ServiceBuilder::new()
        .map_request(|req: Request<Incoming>| req.map(Body::new))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .service(router);
    move |peer, _client_cert| {
        // The peer address reaches handlers as `ConnectInfo` (login throttling by address).
        let service = service
            .clone()
            .map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            });
        tower::util::BoxCloneService::new(service)
    }
}
