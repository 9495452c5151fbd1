//! The `grpc_server_*` metrics: every call counted by service, method and final status code,
//! and timed from its request headers to the end of its response.

use super::status::{OnStatus, StatusBody, code_name, watch};
use super::{BoxFuture, labels};
use crate::metrics::{Counter, Histogram, LATENCY_BUCKETS, Registry};
use std::{
    task::{Context, Poll},
    time::Instant,
};
use tonic::Code;
use tower::{Layer, Service};

/// The `grpc_server_*` metric families.
#[derive(Debug, Clone)]
pub struct RpcMetrics {
    pub(super) requests: Counter<3>,
    pub(super) duration: Histogram<2>,
}

impl RpcMetrics {
    /// Registers `grpc_server_requests_total` and `grpc_server_request_duration_seconds`.
    pub fn register(registry: &Registry) -> Self {
        Self {
            requests: registry.counter(
                "grpc_server_requests_total",
                "gRPC requests handled, by service, method and status code.",
                ["service", "method", "code"],
            ),
            duration: registry.histogram(
                "grpc_server_request_duration_seconds",
                "Time from request headers to the end of the response, by service and method.",
                ["service", "method"],
                LATENCY_BUCKETS,
            ),
        }
    }
}

/// Records one call's outcome when its status is known.
#[derive(Debug)]
pub struct Measurement {
    metrics: RpcMetrics,
    service: &'static str,
    method: &'static str,
    start: Instant,
}

impl OnStatus for Measurement {
    fn on_status(self, code: Code) {
        self.metrics
            .requests
            .inc([self.service, self.method, code_name(code)]);
        self.metrics.duration.observe(
            [self.service, self.method],
            self.start.elapsed().as_secs_f64(),
        );
    }
}

/// Wraps services in [`MetricsService`]s recording into one [`RpcMetrics`].
#[derive(Debug, Clone)]
pub struct MetricsLayer {
    metrics: RpcMetrics,
}

impl MetricsLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: RpcMetrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// Counts and times each request it passes to the inner service.
#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: RpcMetrics,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for MetricsService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = http::Response<StatusBody<ResBody, Measurement>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // The ready service is the one to call; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (service, method) = labels(request.uri().path());
        let measurement = Measurement {
            metrics: self.metrics.clone(),
            service,
            method,
            start: Instant::now(),
        };
        let future = inner.call(request);
        Box::pin(async move { watch(future.await, measurement) })
    }
}
