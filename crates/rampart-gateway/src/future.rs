//! The futures the layers return, as named types instead of boxes.
//!
//! Most layers decide before the inner service is called (a denial, or pass on) and some
//! touch the response on its way out. With a boxed future per layer, every request paid an
//! allocation, a free and a dynamic poll per layer, about sixteen of each. These types nest
//! instead: the pipeline's future is one value whose size the compiler knows, and a layer
//! that passes a request on adds no allocation. Only work that really waits (authentication,
//! a shared rate limiter, the upstream call) is boxed.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use crate::context::{BoxBody, BoxFuture};

/// What every pipeline service's future yields.
pub type Answer = Result<Response<BoxBody>, Infallible>;

pin_project! {
    /// A layer's future: its own answer (a denial), or the inner service's.
    pub struct OrInner<F> {
        #[pin]
        state: OrInnerState<F>,
    }
}

pin_project! {
    #[project = OrInnerProj]
    enum OrInnerState<F> {
        Answered { response: Option<Response<BoxBody>> },
        Inner { #[pin] future: F },
    }
}

impl<F> OrInner<F> {
    /// The layer's own answer.
    pub fn answer(response: Response<BoxBody>) -> Self {
        OrInner {
            state: OrInnerState::Answered {
                response: Some(response),
            },
        }
    }

    /// The inner service's future.
    pub fn inner(future: F) -> Self {
        OrInner {
            state: OrInnerState::Inner { future },
        }
    }
}

impl<F: Future<Output = Answer>> Future for OrInner<F> {
    type Output = Answer;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        match self.project().state.project() {
            OrInnerProj::Answered { response } => Poll::Ready(Ok(take_answer(response))),
            OrInnerProj::Inner { future } => future.poll(cx),
        }
    }
}

/// The answer, once. Polled again after completion (a caller's bug): 500 rather than a panic.
fn take_answer(response: &mut Option<Response<BoxBody>>) -> Response<BoxBody> {
    response
        .take()
        .unwrap_or_else(|| crate::error::internal("polled_after_completion"))
}

/// What a layer does to the response on its way out, once.
pub trait OnResponse {
    /// Changes or observes `response`.
    fn on_response(self, response: &mut Response<BoxBody>);
}

/// Inserts a value into the response's extensions (for the layers outside: audit, metrics).
#[derive(Debug)]
pub struct InsertExtension<T>(pub Option<T>);

impl<T: Clone + Send + Sync + 'static> OnResponse for InsertExtension<T> {
    fn on_response(self, response: &mut Response<BoxBody>) {
        if let Some(value) = self.0 {
            response.extensions_mut().insert(value);
        }
    }
}

pin_project! {
    /// The inner service's future, then `action` applied to its response.
    pub struct Then<F, A> {
        #[pin]
        future: F,
        action: Option<A>,
    }
}

impl<F, A> Then<F, A> {
    /// `future`, then `action` on its response.
    pub fn new(future: F, action: A) -> Self {
        Then {
            future,
            action: Some(action),
        }
    }
}

impl<F: Future<Output = Answer>, A: OnResponse> Future for Then<F, A> {
    type Output = Answer;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        let this = self.project();
        let Ok(mut response) = ready!(this.future.poll(cx));
        if let Some(action) = this.action.take() {
            action.on_response(&mut response);
        }
        Poll::Ready(Ok(response))
    }
}

pin_project! {
    /// A layer's future when it may have to wait before deciding: its own answer, the inner
    /// service's future (possibly with an action on the response), or a boxed future for the
    /// path that waits.
    pub struct Decide<F, A> {
        #[pin]
        state: DecideState<F, A>,
    }
}

pin_project! {
    #[project = DecideProj]
    enum DecideState<F, A> {
        Answered { response: Option<Response<BoxBody>> },
        Inner { #[pin] future: F },
        Then { #[pin] future: Then<F, A> },
        Waiting { future: BoxFuture },
    }
}

impl<F, A> Decide<F, A> {
    fn with(state: DecideState<F, A>) -> Self {
        Decide { state }
    }

    /// The layer's own answer.
    pub fn answer(response: Response<BoxBody>) -> Self {
        Self::with(DecideState::Answered {
            response: Some(response),
        })
    }

    /// The inner service's future.
    pub fn inner(future: F) -> Self {
        Self::with(DecideState::Inner { future })
    }

    /// The inner service's future, then `action`.
    pub fn then(future: F, action: A) -> Self {
        Self::with(DecideState::Then {
            future: Then::new(future, action),
        })
    }

    /// A future that waits before deciding.
    pub fn waiting(future: BoxFuture) -> Self {
        Self::with(DecideState::Waiting { future })
    }
}

impl<F: Future<Output = Answer>, A: OnResponse> Future for Decide<F, A> {
    type Output = Answer;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        match self.project().state.project() {
            DecideProj::Answered { response } => Poll::Ready(Ok(take_answer(response))),
            DecideProj::Inner { future } => future.poll(cx),
            DecideProj::Then { future } => future.poll(cx),
            DecideProj::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::full;

    struct Stamp(&'static str);

    impl OnResponse for Stamp {
        fn on_response(self, response: &mut Response<BoxBody>) {
            response
                .headers_mut()
                .insert("x-stamp", http::HeaderValue::from_static(self.0));
        }
    }

    fn ok(body: &'static str) -> std::future::Ready<Answer> {
        std::future::ready(Ok(Response::new(full(body))))
    }

    fn poll_once<F: Future<Output = Answer>>(f: F) -> Response<BoxBody> {
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(r)) => r,
            Poll::Pending => panic!("pending"),
        }
    }

    #[test]
    fn an_answer_does_not_poll_the_inner_future() {
        let resp = {
            let mut r = Response::new(full("denied"));
            *r.status_mut() = http::StatusCode::FORBIDDEN;
            r
        };
        let f: OrInner<std::future::Pending<Answer>> = OrInner::answer(resp);
        assert_eq!(poll_once(f).status(), http::StatusCode::FORBIDDEN);
    }

    #[test]
    fn then_applies_its_action_to_the_inner_response() {
        let r = poll_once(Then::new(ok("x"), Stamp("then")));
        assert_eq!(r.headers()["x-stamp"], "then");
        let r = poll_once(Decide::<_, Stamp>::inner(ok("x")));
        assert!(r.headers().get("x-stamp").is_none());
        let r = poll_once(Decide::then(ok("x"), Stamp("decide")));
        assert_eq!(r.headers()["x-stamp"], "decide");
        let waiting: Decide<std::future::Ready<Answer>, Stamp> =
            Decide::waiting(Box::pin(ok("boxed")));
        assert_eq!(poll_once(waiting).status(), http::StatusCode::OK);
    }

    #[test]
    fn polling_an_answer_twice_gives_500_not_a_panic() {
        let mut f = std::pin::pin!(OrInner::<std::future::Pending<Answer>>::answer(
            Response::new(full("x"))
        ));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(matches!(f.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(r)) => {
                assert_eq!(r.status(), http::StatusCode::INTERNAL_SERVER_ERROR)
            }
            _ => panic!("expected a 500"),
        }
    }
}
