//! Live reconfiguration: a pipeline that can be replaced while serving.
//!
//! [`GatewayHandle`] holds the current pipeline (normally [`Gateway::service`]) behind a
//! lock, with a generation number that every replacement raises. Every connection serves
//! through a [`ReloadingService`], which keeps its own copy of the pipeline and compares
//! generations before each request (one atomic load; the lock is taken, and the pipeline
//! cloned, only when the generation changed), so after [`GatewayHandle::replace`]:
//!
//! - new requests, including those on keep-alive and HTTP/2 connections opened before the
//!   replacement, use the new pipeline;
//! - requests already in flight finish on the pipeline they started with (they own a clone
//!   of it); nothing is cancelled and no connection is closed.
//!
//! State owned by a pipeline goes with it: a rebuilt [`Gateway`] starts with fresh local rate
//! limiter buckets (rate limits may briefly admit more than their burst across a reload;
//! buckets in Redis are kept) and fresh upstream health unless it takes the old one over
//! ([`Gateway::inherit_upstream_health`]).
//!
//! [`Gateway::inherit_upstream_health`]: crate::Gateway::inherit_upstream_health
//!
//! [`Gateway`]: crate::Gateway
//! [`Gateway::service`]: crate::Gateway::service

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};

use tower::Service;

/// The current pipeline of a gateway, replaceable at any time. Cloning shares it.
pub struct GatewayHandle<S> {
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    /// The pipeline and its generation, always replaced together.
    current: RwLock<(u64, S)>,
    /// The generation in `current`, readable without the lock.
    generation: AtomicU64,
}

impl<S> Clone for GatewayHandle<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S> std::fmt::Debug for GatewayHandle<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayHandle").finish_non_exhaustive()
    }
}

impl<S: Clone> GatewayHandle<S> {
    /// A handle serving `pipeline` until it is replaced.
    pub fn new(pipeline: S) -> Self {
        Self {
            shared: Arc::new(Shared {
                current: RwLock::new((0, pipeline)),
                generation: AtomicU64::new(0),
            }),
        }
    }

    /// A clone of the current pipeline, with its generation.
    fn current_with_generation(&self) -> (u64, S) {
        self.shared
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Atomically makes `pipeline` the one every following request uses; requests in flight
    /// finish on the previous one.
    pub fn replace(&self, pipeline: S) {
        let old = {
            let mut current = self
                .shared
                .current
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let generation = current.0 + 1;
            let old = std::mem::replace(&mut *current, (generation, pipeline));
            self.shared.generation.store(generation, Ordering::Release);
            old
        };
        // Dropped outside the lock.
        drop(old);
    }

    /// The service of one connection: each request goes to the pipeline current when it
    /// arrives.
    pub fn service(&self) -> ReloadingService<S> {
        let (generation, pipeline) = self.current_with_generation();
        ReloadingService {
            handle: self.clone(),
            generation,
            pipeline,
        }
    }
}

/// A service that sends each request to the current pipeline of a [`GatewayHandle`].
///
/// Keeps a copy of the pipeline, renewed from the handle when a replacement raised the
/// generation; readiness is that of the copy.
pub struct ReloadingService<S> {
    handle: GatewayHandle<S>,
    generation: u64,
    pipeline: S,
}

impl<S: Clone> Clone for ReloadingService<S> {
    fn clone(&self) -> Self {
        Self {
            handle: self.handle.clone(),
            generation: self.generation,
            pipeline: self.pipeline.clone(),
        }
    }
}

impl<S> std::fmt::Debug for ReloadingService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingService")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl<S, R> Service<R> for ReloadingService<S>
where
    S: Service<R> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.handle.shared.generation.load(Ordering::Acquire) != self.generation {
            (self.generation, self.pipeline) = self.handle.current_with_generation();
        }
        self.pipeline.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.pipeline.call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::ServiceExt;

    use super::*;

    /// A pipeline that answers its number.
    #[derive(Clone)]
    struct Answer(u32);

    impl Service<()> for Answer {
        type Response = u32;
        type Error = Infallible;
        type Future = std::future::Ready<Result<u32, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, (): ()) -> Self::Future {
            std::future::ready(Ok(self.0))
        }
    }

    #[tokio::test]
    async fn replacement_applies_to_existing_services_and_spares_in_flight_calls() {
        let handle = GatewayHandle::new(Answer(1));
        let mut connection = handle.service();
        let in_flight = connection.call(());
        assert_eq!(connection.ready().await.unwrap().call(()).await.unwrap(), 1);
        handle.replace(Answer(2));
        // A service created before the replacement sees the new pipeline.
        assert_eq!(connection.ready().await.unwrap().call(()).await.unwrap(), 2);
        assert_eq!(handle.service().call(()).await.unwrap(), 2);
        // A call started before the replacement finishes on the old pipeline.
        assert_eq!(in_flight.await.unwrap(), 1);
        // Every replacement is seen, also by a clone made before it.
        let mut cloned = connection.clone();
        handle.replace(Answer(3));
        assert_eq!(connection.ready().await.unwrap().call(()).await.unwrap(), 3);
        assert_eq!(cloned.ready().await.unwrap().call(()).await.unwrap(), 3);
    }
}
