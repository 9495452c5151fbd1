//! Drain admission: counts the calls in flight and, once draining, answers new ones
//! `UNAVAILABLE` without running them, so a shutdown can wait for exactly the accepted calls
//! before it closes connections.

use super::status::{OnStatus, StatusBody, watch};
use super::{BoxFuture, is_health};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};
use tonic::{Code, Status};
use tower::{Layer, Service};

/// Graceful shutdown's view of the calls: how many are in flight, and whether new ones are
/// still accepted. Health checks are neither counted nor refused (probes must keep working,
/// and a health watch never ends by itself).
#[derive(Debug, Clone, Default)]
pub struct Drain(Arc<DrainState>);

#[derive(Debug, Default)]
struct DrainState {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// One accepted call; dropping it (when the call's status is known) ends it.
#[derive(Debug)]
pub struct InFlight(Drain);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.0.idle.notify_waiters();
        }
    }
}

impl OnStatus for InFlight {
    fn on_status(self, _: Code) {}
}

impl Drain {
    /// A drain that accepts calls until [`Drain::start`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Admits a call, or `None` once draining.
    fn enter(&self) -> Option<InFlight> {
        // Count first, then check: with `start` storing first and `idle` counting after, a
        // call is either refused or waited for, never neither.
        self.0.in_flight.fetch_add(1, Ordering::SeqCst);
        let call = InFlight(self.clone());
        (!self.0.draining.load(Ordering::SeqCst)).then_some(call)
    }

    /// Refuses every later call with `UNAVAILABLE` (retryable: the client goes elsewhere).
    pub fn start(&self) {
        self.0.draining.store(true, Ordering::SeqCst);
    }

    /// Calls accepted and not finished.
    pub fn in_flight(&self) -> usize {
        self.0.in_flight.load(Ordering::SeqCst)
    }

    /// Resolves once no accepted call is in flight.
    pub async fn idle(&self) {
        loop {
            let notified = self.0.idle.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check, so a call ending in between still wakes us.
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Wraps services in [`DrainService`]s that admit calls through one [`Drain`].
#[derive(Debug, Clone)]
pub struct DrainLayer {
    drain: Drain,
}

impl DrainLayer {
    /// Admits calls through `drain`.
    pub fn new(drain: Drain) -> Self {
        Self { drain }
    }
}

impl<S> Layer<S> for DrainLayer {
    type Service = DrainService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DrainService {
            inner,
            drain: self.drain.clone(),
        }
    }
}

/// Admits or refuses each call, and holds an admitted one in the drain until its status.
#[derive(Debug, Clone)]
pub struct DrainService<S> {
    inner: S,
    drain: Drain,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for DrainService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<StatusBody<ResBody, InFlight>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // The ready service is the one to call; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if is_health(request.uri().path()) {
            let future = inner.call(request);
            return Box::pin(async move { Ok(future.await?.map(StatusBody::settled)) });
        }
        let Some(call) = self.drain.enter() else {
            let refused = Status::unavailable("the server is shutting down; retry")
                .into_http::<ResBody>()
                .map(StatusBody::settled);
            return Box::pin(std::future::ready(Ok(refused)));
        };
        let future = inner.call(request);
        Box::pin(async move { watch(future.await, call) })
    }
}
