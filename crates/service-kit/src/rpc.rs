//! The outermost tower layer of both servers: one tracing span per RPC (a child of the caller's
//! span when the request carries `traceparent`), its gRPC status code, and the
//! `grpc_server_*` metrics.
//!
//! The status of a unary error is in the response headers (a trailers-only response); every
//! other status arrives in the trailers at the end of the body, so the body is wrapped to read
//! them. A body dropped before its end means the client went away: `CANCELLED`.
//!
//! With a [`Drain`], the layer also counts the calls in flight and, once draining, answers new
//! ones `UNAVAILABLE` without running them, so a shutdown can wait for exactly the accepted
//! calls before it closes connections.

use crate::metrics::{Counter, Histogram, LATENCY_BUCKETS, Registry};
use prost::Message as _;
use std::{
    collections::HashSet,
    pin::Pin,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Instant,
};
use tonic::{Code, Status};
use tower::{Layer, Service};
use tracing::{Instrument, field::Empty};

/// The label of a path that no served proto defines: a client may send any path, and labels
/// must stay bounded.
const UNKNOWN: &str = "unknown";

/// The `grpc_server_*` metric families.
#[derive(Debug, Clone)]
pub struct RpcMetrics {
    requests: Counter<3>,
    duration: Histogram<2>,
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

/// Every `/package.Service/Method` path of the protos these servers can serve, so metric labels
/// come from this closed set and never from what a client made up.
fn known_methods() -> &'static HashSet<String> {
    static KNOWN: OnceLock<HashSet<String>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let sets: [&[u8]; 4] = [
            credentials_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ];
        let mut known = HashSet::new();
        for bytes in sets {
            // Generated at build time; a set that does not parse only costs its labels.
            let Ok(set) = prost_types::FileDescriptorSet::decode(bytes) else {
                continue;
            };
            for file in set.file {
                for service in &file.service {
                    let qualified = match file.package() {
                        "" => service.name().to_owned(),
                        package => format!("{package}.{}", service.name()),
                    };
                    for method in &service.method {
                        known.insert(format!("/{qualified}/{}", method.name()));
                    }
                }
            }
        }
        known
    })
}

/// `(service, method)` labels of a request path; `unknown` for paths no proto defines.
fn labels(path: &str) -> (&'static str, &'static str) {
    known_methods()
        .get(path)
        .and_then(|known| known[1..].split_once('/'))
        .unwrap_or((UNKNOWN, UNKNOWN))
}

/// The canonical name of a status code, as in the gRPC spec and metric labels.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

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

fn status_in(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|v| Code::from_bytes(v.as_bytes()))
}

/// What a non-200 HTTP status means in gRPC (the spec's mapping for responses without
/// `grpc-status`).
fn code_of_http(status: http::StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502..=504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

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
struct InFlight(Drain);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.0.idle.notify_waiters();
        }
    }
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

/// A tonic router whose only layer is [`RpcLayer`]: `Server::builder().layer(RpcLayer::new(..))`.
pub type ObservedRouter = tonic::transport::server::Router<
    tower::layer::util::Stack<RpcLayer, tower::layer::util::Identity>,
>;

/// Wraps a server's services in [`RpcService`]s.
#[derive(Debug, Clone)]
pub struct RpcLayer {
    metrics: RpcMetrics,
    drain: Option<Drain>,
}

impl RpcLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: RpcMetrics) -> Self {
        Self {
            metrics,
            drain: None,
        }
    }

    /// Counts calls in `drain` and refuses new ones once it has started.
    pub fn with_drain(mut self, drain: Drain) -> Self {
        self.drain = Some(drain);
        self
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            metrics: self.metrics.clone(),
            drain: self.drain.clone(),
        }
    }
}

/// Traces and measures each request it passes to the inner service.
#[derive(Debug, Clone)]
pub struct RpcService<S> {
    inner: S,
    metrics: RpcMetrics,
    drain: Option<Drain>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Creates the RPC span at `$level`: probes and discovery (health, reflection) at DEBUG, so
/// the kubelet's checks every few seconds neither fill the logs nor become traces.
macro_rules! rpc_span {
    ($span:ident, $name:expr, $path:expr, $service:expr, $method:expr) => {
        tracing::$span!(
            "rpc",
            otel.name = %$name,
            otel.kind = "server",
            otel.status_code = Empty,
            rpc.system = "grpc",
            rpc.service = $service,
            rpc.method = $method,
            rpc.grpc.status_code = Empty,
            method = %$path,
            code = Empty,
            request_id = Empty,
            subject = Empty,
            workspace_id = Empty,
            credential_id = Empty,
        )
    };
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RpcService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: http_body::Body + Default + Send + 'static,
{
    type Response = http::Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // The ready service is the one to call; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let start = Instant::now();
        let full_path = request.uri().path();
        let (service, method) = labels(full_path);
        // Logs may show what a client sent, within reason; metrics only ever see `labels`.
        let path: String = full_path.chars().take(200).collect();
        let name = if service == UNKNOWN {
            UNKNOWN.to_owned()
        } else {
            format!("{service}/{method}")
        };
        let health = service.starts_with("grpc.health.");
        let span = if health || service.starts_with("grpc.reflection.") {
            rpc_span!(debug_span, name, path, service, method)
        } else {
            rpc_span!(info_span, name, path, service, method)
        };
        crate::propagation::adopt_trace_context(&span, request.headers());
        let mut recorder = Recorder {
            metrics: self.metrics.clone(),
            service,
            method,
            start,
            span: span.clone(),
            call: None,
        };
        if let Some(drain) = self.drain.as_ref().filter(|_| !health) {
            match drain.enter() {
                Some(call) => recorder.call = Some(call),
                None => {
                    recorder.finish(Code::Unavailable);
                    let refused = Status::unavailable("the server is shutting down; retry")
                        .into_http::<ResBody>()
                        .map(|body| ObservedBody {
                            inner: Box::pin(body),
                            recorder: None,
                            ended: false,
                        });
                    return Box::pin(std::future::ready(Ok(refused)));
                }
            }
        }
        // Inner layers (authentication) record into this span as the current one.
        let future = span.in_scope(|| inner.call(request));
        Box::pin(
            async move {
                let response = match future.await {
                    Ok(response) => response,
                    Err(e) => {
                        recorder.finish(Code::Unknown);
                        return Err(e);
                    }
                };
                let code = status_in(response.headers()).or_else(|| {
                    (response.status() != http::StatusCode::OK)
                        .then(|| code_of_http(response.status()))
                });
                let recorder = match code {
                    Some(code) => {
                        recorder.finish(code);
                        None
                    }
                    None => Some(recorder),
                };
                Ok(response.map(|body| ObservedBody {
                    inner: Box::pin(body),
                    recorder,
                    ended: false,
                }))
            }
            .instrument(span),
        )
    }
}

/// Records an RPC's outcome once, when its status is known.
struct Recorder {
    metrics: RpcMetrics,
    service: &'static str,
    method: &'static str,
    start: Instant,
    span: tracing::Span,
    /// Ends the call for the drain when the recorder goes.
    call: Option<InFlight>,
}

impl Recorder {
    fn finish(self, code: Code) {
        let name = code_name(code);
        self.metrics.requests.inc([self.service, self.method, name]);
        self.metrics.duration.observe(
            [self.service, self.method],
            self.start.elapsed().as_secs_f64(),
        );
        self.span.record("code", name);
        self.span.record("rpc.grpc.status_code", code as i64);
        if is_server_error(code) {
            self.span.record("otel.status_code", "ERROR");
        }
    }
}

/// A response body that reports the gRPC status in its trailers when they pass by.
pub struct ObservedBody<B> {
    inner: Pin<Box<B>>,
    recorder: Option<Recorder>,
    ended: bool,
}

impl<B> std::fmt::Debug for ObservedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedBody")
            .field("pending", &self.recorder.is_some())
            .finish_non_exhaustive()
    }
}

impl<B: http_body::Body> http_body::Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(recorder) = this.recorder.take()
                {
                    recorder.finish(status_in(trailers).unwrap_or(Code::Unknown));
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(recorder) = this.recorder.take() {
                    recorder.finish(Code::Internal);
                }
            }
            Poll::Ready(None) => this.ended = true,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        if let Some(recorder) = self.recorder.take() {
            // Ended without a grpc-status anywhere is a broken response; dropped before the
            // end, the client stopped waiting.
            let ended = self.ended;
            recorder.finish(if ended {
                Code::Unknown
            } else {
                Code::Cancelled
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use std::convert::Infallible;

    #[test]
    fn labels_come_only_from_the_protos() {
        assert_eq!(
            labels("/credentials.v1.CredentialsService/CreateCredential"),
            ("credentials.v1.CredentialsService", "CreateCredential")
        );
        assert_eq!(
            labels("/kms.v1.KeyManagementService/UnwrapDataKey"),
            ("kms.v1.KeyManagementService", "UnwrapDataKey")
        );
        assert_eq!(
            labels("/grpc.health.v1.Health/Check"),
            ("grpc.health.v1.Health", "Check")
        );
        assert_eq!(
            labels("/credentials.v1.CredentialsService/3f2c1a9e-made-up"),
            (UNKNOWN, UNKNOWN)
        );
        assert_eq!(labels("/"), (UNKNOWN, UNKNOWN));
    }

    /// A body of a data frame and then, when given, trailers.
    #[derive(Default)]
    struct TestBody {
        frames: Vec<http_body::Frame<std::io::Cursor<Vec<u8>>>>,
    }

    impl http_body::Body for TestBody {
        type Data = std::io::Cursor<Vec<u8>>;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            if self.frames.is_empty() {
                Poll::Ready(None)
            } else {
                Poll::Ready(Some(Ok(self.frames.remove(0))))
            }
        }
    }

    fn response(
        headers: &[(&'static str, &'static str)],
        trailers: Option<&'static str>,
    ) -> http::Response<TestBody> {
        let mut frames = vec![http_body::Frame::data(std::io::Cursor::new(b"x".to_vec()))];
        if let Some(code) = trailers {
            let mut map = http::HeaderMap::new();
            map.insert("grpc-status", http::HeaderValue::from_static(code));
            frames.push(http_body::Frame::trailers(map));
        }
        let mut response = http::Response::new(TestBody { frames });
        for (k, v) in headers {
            response
                .headers_mut()
                .insert(*k, http::HeaderValue::from_static(v));
        }
        response
    }

    async fn read_all<B: http_body::Body + Unpin>(mut body: B) {
        while std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
            .await
            .is_some()
        {}
    }

    #[tokio::test]
    async fn codes_from_headers_trailers_and_drops() {
        let registry = Registry::new();
        let metrics = RpcMetrics::register(&registry);
        let make = |headers: &'static [(&'static str, &'static str)],
                    trailers: Option<&'static str>| {
            RpcLayer::new(metrics.clone()).layer(tower::service_fn(
                move |_: http::Request<()>| async move {
                    Ok::<_, Infallible>(response(headers, trailers))
                },
            ))
        };
        let request = |path: &str| {
            http::Request::builder()
                .uri(format!("http://x{path}"))
                .body(())
                .unwrap()
        };
        let path = "/credentials.v1.CredentialsService/GetCredential";
        let get = ["credentials.v1.CredentialsService", "GetCredential"];

        // Trailers-only error.
        let r = make(&[("grpc-status", "5")], None)
            .call(request(path))
            .await
            .unwrap();
        drop(r);
        // Success in the trailers.
        let r = make(&[], Some("0")).call(request(path)).await.unwrap();
        read_all(r.into_body()).await;
        // An error status in the trailers after data.
        let r = make(&[], Some("13")).call(request(path)).await.unwrap();
        assert!(!r.body().is_end_stream());
        read_all(r.into_body()).await;
        // The client went away before the end.
        let r = make(&[], Some("0")).call(request(path)).await.unwrap();
        drop(r);
        // A path no proto defines.
        let r = make(&[("grpc-status", "12")], None)
            .call(request("/made.up/Path"))
            .await
            .unwrap();
        drop(r);

        let c = |code| metrics.requests.get([get[0], get[1], code]);
        assert_eq!(
            (c("NOT_FOUND"), c("OK"), c("INTERNAL"), c("CANCELLED")),
            (1.0, 1.0, 1.0, 1.0)
        );
        assert_eq!(
            metrics.requests.get([UNKNOWN, UNKNOWN, "UNIMPLEMENTED"]),
            1.0
        );
        assert_eq!(metrics.duration.count(get), 4);
        let text = registry.render();
        assert!(text.contains("# TYPE grpc_server_requests_total counter\n"));
        assert!(text.contains("# TYPE grpc_server_request_duration_seconds histogram\n"));
    }

    #[tokio::test]
    async fn a_drain_waits_for_accepted_calls_and_refuses_new_ones() {
        let metrics = RpcMetrics::register(&Registry::new());
        let drain = Drain::new();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let released = gate.clone();
        let mut service = RpcLayer::new(metrics.clone())
            .with_drain(drain.clone())
            .layer(tower::service_fn(move |_: http::Request<()>| {
                let released = released.clone();
                async move {
                    drop(released.acquire().await);
                    Ok::<_, Infallible>(response(&[], Some("0")))
                }
            }));
        let request = |path: &str| {
            http::Request::builder()
                .uri(format!("http://x{path}"))
                .body(())
                .unwrap()
        };
        let path = "/credentials.v1.CredentialsService/CreateCredential";

        // Accepted before the drain: it runs to the end and is waited for.
        let accepted = tokio::spawn(service.call(request(path)));
        tokio::task::yield_now().await;
        assert_eq!(drain.in_flight(), 1);
        drain.start();
        let refused = service.call(request(path)).await.unwrap();
        assert_eq!(refused.headers()["grpc-status"], "14");
        // Health is neither refused nor counted.
        let health = tokio::spawn(service.call(request("/grpc.health.v1.Health/Check")));
        tokio::task::yield_now().await;
        assert_eq!(drain.in_flight(), 1);
        let idle = tokio::spawn({
            let drain = drain.clone();
            async move { drain.idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!idle.is_finished());
        gate.add_permits(10);
        read_all(accepted.await.unwrap().unwrap().into_body()).await;
        tokio::time::timeout(std::time::Duration::from_secs(5), idle)
            .await
            .unwrap()
            .unwrap();
        read_all(health.await.unwrap().unwrap().into_body()).await;
        let c = |code| {
            metrics.requests.get([
                "credentials.v1.CredentialsService",
                "CreateCredential",
                code,
            ])
        };
        assert_eq!((c("OK"), c("UNAVAILABLE")), (1.0, 1.0));
    }
}
