//! Idle keep-alive connections (`gateway.limits.idle_timeout`), enforced per connection by the
//! listener, for HTTP/1.1 and HTTP/2 alike.
//!
//! hyper has no idle timeout of its own: for HTTP/1.1 its `header_read_timeout` starts as soon
//! as the connection waits for the next request, so it bounds idle time and slow request heads
//! together; for HTTP/2 it has none (its keep-alive pings detect dead peers, not idle ones).
//! And hyper-util's auto builder first reads a few bytes to tell HTTP/1.1 from HTTP/2 with no
//! timer at all, so a client that completes the TLS handshake and then sends nothing is held
//! forever. With an idle timeout the listener turns hyper's header timer off and runs both
//! timers here, from the end of the handshake:
//!
//! - **idle**: from the end of the last response (the response body finished or dropped) until
//!   the first byte of the next request; past `idle`, the connection is closed. For HTTP/2, from
//!   the end of the last stream until the next stream starts (bytes such as pings do not
//!   count).
//! - **header read** (HTTP/1.1 only): from the first byte of a request (for the first request:
//!   from the end of the TLS handshake) until its head is complete; past `header_read`, the
//!   connection is cut (slowloris).
//!
//! How: [`IdleIo`] wraps the connection's byte stream and sees every read, [`TrackActivity`]
//! wraps the connection's service and sees every request start and end; both share one
//! [`ConnectionActivity`] of atomics. While hyper waits for bytes, `IdleIo`'s read also waits
//! on one timer armed at the next deadline: an idle deadline ends the read with end-of-file (hyper
//! then closes the connection as a client that went away: TLS `close_notify`, then FIN), a header
//! deadline with a `TimedOut` error. Per request this costs two atomic updates and no
//! allocation; per connection one `Arc` and one timer.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tower::Service;

/// The HTTP/2 connection preface (what a client without ALPN starts with).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// The shared state of one connection (see the module docs). Times are milliseconds since
/// the connection started, plus one (0 = unset).
#[derive(Debug)]
pub struct ConnectionActivity {
    start: Instant,
    idle: Duration,
    header_read: Duration,
    h2: AtomicBool,
    in_flight: AtomicUsize,
    idle_since: AtomicU64,
    head_started: AtomicU64,
}

/// What a deadline does when it passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// Close the connection (end of file to hyper).
    Idle,
    /// Cut the connection (an error to hyper).
    HeaderRead,
    /// Requests are in progress: look again then.
    Recheck,
}

impl ConnectionActivity {
    /// The state of a connection whose TLS handshake just ended; `h2` when ALPN chose HTTP/2.
    pub fn new(idle: Duration, header_read: Duration, h2: bool) -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            idle,
            header_read,
            h2: AtomicBool::new(h2),
            in_flight: AtomicUsize::new(0),
            // The connection counts as idle since its start (HTTP/2), and the first request
            // head as started with it (HTTP/1.1).
            idle_since: AtomicU64::new(1),
            head_started: AtomicU64::new(1),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn at(&self, stamp: u64) -> Instant {
        self.start + Duration::from_millis(stamp.saturating_sub(1))
    }

    /// Bytes arrived: with no request in progress, a request head starts (HTTP/1.1).
    fn bytes_read(&self, first: &[u8], first_read: bool) {
        if first_read && first.starts_with(H2_PREFACE) {
            self.h2.store(true, Ordering::Relaxed);
        }
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == 0
        {
            self.head_started.store(self.now(), Ordering::Release);
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
    }

    fn request_ended(&self) {
        // Before the decrement, so that a reader seeing no request in progress also sees
        // when the last one ended.
        self.idle_since.store(self.now(), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// The next deadline and what it does.
    fn deadline(&self) -> (Instant, Expiry) {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return (Instant::now() + self.idle, Expiry::Recheck);
        }
        let head = self.head_started.load(Ordering::Acquire);
        if head != 0 && !self.h2.load(Ordering::Relaxed) {
            return (self.at(head) + self.header_read, Expiry::HeaderRead);
        }
        let since = self.idle_since.load(Ordering::Acquire);
        (self.at(since) + self.idle, Expiry::Idle)
    }
}

/// The connection's byte stream with the idle and header timers (see the module docs).
/// Without a [`ConnectionActivity`] it only passes bytes through.
#[derive(Debug)]
pub struct IdleIo<T> {
    inner: T,
    activity: Option<Arc<ConnectionActivity>>,
    timer: Option<Pin<Box<Sleep>>>,
    first_read: bool,
}

impl<T> IdleIo<T> {
    /// Wraps `inner`; `activity` is shared with the connection's [`TrackActivity`].
    pub fn new(inner: T, activity: Option<Arc<ConnectionActivity>>) -> Self {
        Self {
            inner,
            activity,
            timer: None,
            first_read: true,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Some(activity) = &this.activity
                    && buf.filled().len() > before
                {
                    activity.bytes_read(&buf.filled()[before..], this.first_read);
                    this.first_read = false;
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        let Some(activity) = &this.activity else {
            return Poll::Pending;
        };
        loop {
            let (when, expiry) = activity.deadline();
            let now = Instant::now();
            if now >= when {
                match expiry {
                    Expiry::Idle => {
                        tracing::debug!("idle keep-alive connection closed (idle_timeout)");
                        return Poll::Ready(Ok(()));
                    }
                    Expiry::HeaderRead => {
                        tracing::debug!("request head not received in time (header_read_timeout)");
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "request head not received within header_read_timeout",
                        )));
                    }
                    Expiry::Recheck => continue,
                }
            }
            match &mut this.timer {
                // A timer due earlier (but not yet) is kept: when it fires, the deadline is
                // computed again. So busy connections do not re-arm it on every read.
                Some(timer) => {
                    let armed = timer.deadline();
                    if armed <= now || armed > when {
                        timer.as_mut().reset(when);
                    }
                }
                None => this.timer = Some(Box::pin(tokio::time::sleep_until(when))),
            }
            if let Some(timer) = &mut this.timer
                && timer.as_mut().poll(cx).is_pending()
            {
                return Poll::Pending;
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// One request in progress; ends it when dropped (or when its response body ends).
#[derive(Debug)]
struct InFlight(Arc<ConnectionActivity>);

impl InFlight {
    fn start(activity: &Arc<ConnectionActivity>) -> Self {
        activity.request_started();
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// The connection's service, telling [`ConnectionActivity`] when requests start and end (a
/// request ends when its response body has been sent, or is dropped).
#[derive(Debug, Clone)]
pub struct TrackActivity<S> {
    inner: S,
    activity: Option<Arc<ConnectionActivity>>,
}

impl<S> TrackActivity<S> {
    /// Wraps the service of the connection whose [`IdleIo`] shares `activity`.
    pub fn new(inner: S, activity: Option<Arc<ConnectionActivity>>) -> Self {
        Self { inner, activity }
    }
}

impl<S, R, B> Service<R> for TrackActivity<S>
where
    S: Service<R, Response = http::Response<B>>,
{
    type Response = http::Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let guard = self.activity.as_ref().map(InFlight::start);
        TrackedFuture {
            inner: self.inner.call(request),
            guard,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`TrackActivity`].
    #[derive(Debug)]
    pub struct TrackedFuture<F> {
        #[pin]
        inner: F,
        guard: Option<InFlight>,
    }
}

impl<F, B, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<TrackedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let guard = this.guard.take();
        Poll::Ready(result.map(|response| response.map(|body| TrackedBody { inner: body, guard })))
    }
}

pin_project_lite::pin_project! {
    /// A response body that ends its request when it ends or is dropped.
    #[derive(Debug)]
    pub struct TrackedBody<B> {
        #[pin]
        inner: B,
        guard: Option<InFlight>,
    }
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        if frame.is_none() {
            this.guard.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_requests() {
        let a = ConnectionActivity::new(Duration::from_secs(30), Duration::from_secs(5), false);
        // First request: the header timer runs from the start.
        let (when, kind) = a.deadline();
        assert_eq!(kind, Expiry::HeaderRead);
        assert_eq!(when, a.start + Duration::from_secs(5));
        let req = InFlight::start(&a);
        assert_eq!(a.deadline().1, Expiry::Recheck);
        tokio::time::advance(Duration::from_secs(2)).await;
        drop(req);
        // Idle since the end of the request.
        let (when, kind) = a.deadline();
        assert_eq!(kind, Expiry::Idle);
        assert_eq!(when, a.start + Duration::from_secs(32));
        // A byte of the next request: the header timer runs from it.
        tokio::time::advance(Duration::from_secs(10)).await;
        a.bytes_read(b"G", false);
        let (when, kind) = a.deadline();
        assert_eq!(kind, Expiry::HeaderRead);
        assert_eq!(when, a.start + Duration::from_secs(17));
    }

    #[tokio::test(start_paused = true)]
    async fn h2_ignores_bytes_between_streams() {
        let a = ConnectionActivity::new(Duration::from_secs(30), Duration::from_secs(5), false);
        a.bytes_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", true);
        assert_eq!(a.deadline().1, Expiry::Idle);
        tokio::time::advance(Duration::from_secs(3)).await;
        a.bytes_read(b"ping", false);
        let (when, kind) = a.deadline();
        assert_eq!(kind, Expiry::Idle);
        assert_eq!(when, a.start + Duration::from_secs(30));
    }
}
