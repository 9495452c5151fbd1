//! One tracing span per RPC, a child of the caller's span when the request carries
//! `traceparent`, with its gRPC status recorded when the call ends. Inner layers and handlers
//! run inside it and fill in the [`span_fields`](crate::span_fields) they know.

use super::status::{OnStatus, StatusBody, code_name, watch};
use super::{BoxFuture, UNKNOWN, is_health, labels};
use crate::span_fields::{
    CODE, CREDENTIAL_ID, GRPC_STATUS_CODE, OTEL_STATUS_CODE, REQUEST_ID, SUBJECT, WORKSPACE_ID,
};
use std::task::{Context, Poll};
use tonic::Code;
use tower::{Layer, Service};
use tracing::{Instrument, field::Empty};

/// Codes that mean the server failed, as OpenTelemetry's gRPC conventions mark server spans;
/// the others are the caller's problem and leave the span's status unset.
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// Creates the RPC span at `$level`: probes and discovery (health, reflection) at DEBUG, so
/// the kubelet's checks every few seconds neither fill the logs nor become traces.
macro_rules! rpc_span {
    ($span:ident, $name:expr, $path:expr, $service:expr, $method:expr) => {
        tracing::$span!(
            "rpc",
            otel.name = %$name,
            otel.kind = "server",
            { OTEL_STATUS_CODE } = Empty,
            rpc.system = "grpc",
            rpc.service = $service,
            rpc.method = $method,
            { GRPC_STATUS_CODE } = Empty,
            method = %$path,
            { CODE } = Empty,
            { REQUEST_ID } = Empty,
            { SUBJECT } = Empty,
            { WORKSPACE_ID } = Empty,
            { CREDENTIAL_ID } = Empty,
        )
    };
}

/// The span of a request to `path`.
pub(super) fn rpc_span(path: &str) -> tracing::Span {
    let (service, method) = labels(path);
    // Logs may show what a client sent, within reason; metrics only ever see `labels`.
    let path: String = path.chars().take(200).collect();
    let name = if service == UNKNOWN {
        UNKNOWN.to_owned()
    } else {
        format!("{service}/{method}")
    };
    if is_health(&path) || service.starts_with("grpc.reflection.") {
        rpc_span!(debug_span, name, path, service, method)
    } else {
        rpc_span!(info_span, name, path, service, method)
    }
}

/// Records a call's status on its span.
#[derive(Debug)]
pub struct SpanStatus(tracing::Span);

impl OnStatus for SpanStatus {
    fn on_status(self, code: Code) {
        self.0.record(CODE, code_name(code));
        self.0.record(GRPC_STATUS_CODE, code as i64);
        if is_server_error(code) {
            self.0.record(OTEL_STATUS_CODE, "ERROR");
        }
    }
}

/// Wraps services in [`TraceService`]s.
#[derive(Debug, Clone, Default)]
pub struct TraceLayer;

impl TraceLayer {
    /// The layer (it has no configuration: the subscriber decides where spans go).
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceService { inner }
    }
}

/// Runs each request inside its RPC span.
#[derive(Debug, Clone)]
pub struct TraceService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for TraceService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = http::Response<StatusBody<ResBody, SpanStatus>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // The ready service is the one to call; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let span = rpc_span(request.uri().path());
        crate::propagation::adopt_trace_context(&span, request.headers());
        // Inner layers (authentication) record into this span as the current one.
        let future = span.in_scope(|| inner.call(request));
        let status = SpanStatus(span.clone());
        Box::pin(async move { watch(future.await, status) }.instrument(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_span_declares_every_recorded_field() {
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            for path in [
                "/credentials.v1.CredentialsService/CreateCredential",
                "/grpc.health.v1.Health/Check",
                "/made.up/Path",
            ] {
                let span = rpc_span(path);
                for field in crate::span_fields::ALL {
                    assert!(span.field(field).is_some(), "{path}: {field}");
                }
            }
        });
    }
}
