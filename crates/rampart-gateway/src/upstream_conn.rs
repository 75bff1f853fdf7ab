//! Pooled HTTP/1.1 connections to one upstream (TCP, or TLS with rustls), an idle list per
//! thread.
//!
//! A request takes the newest idle connection of its thread, or opens one; its response body
//! puts the connection back when it ends, so the connection is reused only once its previous
//! exchange is complete, and a connection whose response body is dropped unfinished is
//! closed. A request that a pooled connection could not send (the upstream closed it while
//! it was idle) is sent on another connection. Each connection is driven by a task on the
//! runtime that opened it, normally the worker thread that uses it.
//!
//! This replaces hyper-util's pooled client on the request path, which per request hashed
//! the upstream's authority byte by byte three times, cloned its connector, raced the pool
//! checkout against a lazy connect and spawned a task to return the connection
//! (docs/benchmarks.md, "Hot path by instruction count").

use std::cell::RefCell;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, Uri, header};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use thread_local::ThreadLocal;
use tower::ServiceExt;

use crate::context::{BoxError, ReqBody};

/// Idle connections kept per upstream and thread.
const MAX_IDLE: usize = 64;

/// A connection idle for longer is closed instead of reused (upstreams close idle
/// connections too; nginx after 75 s by default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// No connection could be opened (refused, unreachable, TLS handshake failed, timeout).
    #[error("connecting to the upstream failed: {0}")]
    Connect(BoxError),
    /// The connection failed while the request was sent or the response head read.
    #[error("the upstream request failed: {0}")]
    Request(#[from] hyper::Error),
}

struct Idle {
    sender: SendRequest<ReqBody>,
    since: Instant,
}

/// The connections of one upstream.
pub(crate) struct UpstreamConnections {
    /// `scheme://authority/` of the upstream, what the connector connects to.
    target: Uri,
    /// The `Host` of requests that have none (HTTP/2 clients send `:authority` instead).
    host: HeaderValue,
    connector: HttpsConnector<HttpConnector>,
    idle: ThreadLocal<RefCell<Vec<Idle>>>,
}

impl std::fmt::Debug for UpstreamConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConnections")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl UpstreamConnections {
    /// Connections to `target` (`scheme://authority/`) opened by `connector`; `host` is the
    /// `Host` header for requests without one.
    pub(crate) fn new(
        target: Uri,
        host: HeaderValue,
        connector: HttpsConnector<HttpConnector>,
    ) -> Self {
        Self {
            target,
            host,
            connector,
            idle: ThreadLocal::new(),
        }
    }

    /// Sends `request` (target in origin form) and returns the response head; the body gives
    /// the connection back when it ends.
    pub(crate) async fn send(
        self: &Arc<Self>,
        mut request: Request<ReqBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        request
            .headers_mut()
            .entry(header::HOST)
            .or_insert_with(|| self.host.clone());
        while let Some(mut sender) = self.checkout() {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.pooled(response, sender)),
                Err(mut e) => match e.take_message() {
                    // Not sent: the connection closed before it took the request.
                    Some(back) => request = back,
                    None => return Err(SendError::Request(e.into_error())),
                },
            }
        }
        let mut sender = self.connect().await?;
        let response = sender.send_request(request).await?;
        Ok(self.pooled(response, sender))
    }

    /// The newest open idle connection of this thread; older ones over the idle time and
    /// closed ones are dropped on the way.
    fn checkout(&self) -> Option<SendRequest<ReqBody>> {
        // Never borrowed twice: nothing here calls back into the pool.
        let mut idle = self.idle.get()?.try_borrow_mut().ok()?;
        let now = Instant::now();
        while let Some(entry) = idle.pop() {
            if !entry.sender.is_closed() && now.duration_since(entry.since) < IDLE_TIMEOUT {
                return Some(entry.sender);
            }
        }
        None
    }

    fn check_in(&self, sender: SendRequest<ReqBody>) {
        if sender.is_closed() {
            return;
        }
        let Ok(mut idle) = self.idle.get_or_default().try_borrow_mut() else {
            return;
        };
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<SendRequest<ReqBody>, SendError> {
        let io = self
            .connector
            .clone()
            .oneshot(self.target.clone())
            .await
            .map_err(SendError::Connect)?;
        let (sender, connection) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| SendError::Connect(Box::new(e)))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    fn pooled(
        self: &Arc<Self>,
        response: Response<Incoming>,
        sender: SendRequest<ReqBody>,
    ) -> Response<PooledBody> {
        response.map(|body| {
            if body.is_end_stream() {
                // No body (HEAD, 204, 304): the connection is free now.
                self.check_in(sender);
                PooledBody { body, slot: None }
            } else {
                PooledBody {
                    body,
                    slot: Some((sender, Arc::clone(self))),
                }
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// An upstream response body that returns its connection to the pool when it ends.
    pub(crate) struct PooledBody {
        #[pin]
        body: Incoming,
        slot: Option<(SendRequest<ReqBody>, Arc<UpstreamConnections>)>,
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.body.as_mut().poll_frame(cx));
        let ended = match &frame {
            None => true,
            Some(Ok(_)) => this.body.is_end_stream(),
            Some(Err(_)) => {
                // The connection is broken: close it.
                this.slot.take();
                false
            }
        };
        if ended && let Some((sender, connections)) = this.slot.take() {
            connections.check_in(sender);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
