//! The HTTP/JSON edge, on its own port (`--http-listen`) beside the gRPC one. Three surfaces:
//! - the JSON mapping of every RPC, read from the protos' `google.api.http` rules
//!   (`/v1/workspaces/{workspace_id}/credentials`, ...), by `json-transcoding`;
//! - the product document's `/api/v1/credentials` surface ([`compat`]);
//! - `GET /openapi.json`, the OpenAPI 3.1 document of both ([`document`]).
//!
//! No request is answered here: each becomes a gRPC call sent through the gRPC port's own
//! stack (tracing, metrics, drain, deadline, authentication and permissions), in process, so
//! that HTTP and gRPC cannot differ in what they allow, audit or count. What this edge adds is
//! what only HTTP has: the body limit (413), the content type (415), the route (404/405), a
//! span and metrics labelled by route template, never by id.

mod compat;
mod document;

pub use document::openapi_document;

use bytes::Bytes;
use credentials_core::limits::MAX_REQUEST_BYTES;
use http_body_util::BodyExt as _;
use json_transcoding::{Lookup, Transcoder};
use service_kit::{
    HttpBody,
    metrics::{Counter, Histogram, LATENCY_BUCKETS, Registry},
};
use std::{convert::Infallible, sync::Arc, time::Instant};
use tonic::codegen::http;
use tracing::{Instrument as _, field::Empty};

/// The gRPC stack as a service, for calls made in process.
pub type Channel = tower::util::BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    Infallible,
>;

/// The services the JSON mapping serves.
pub const SERVICES: [&str; 3] = [
    "credentials.v1.CredentialsService",
    "credentials.v1.AccessService",
    "credentials.v1.AdminService",
];

/// The route label of requests that match no route: labels stay a closed set.
const UNMATCHED: &str = "unmatched";

/// The `http_server_*` metric families.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: Counter<2>,
    duration: Histogram<1>,
}

impl HttpMetrics {
    /// Registers `http_server_requests_total` and `http_server_request_duration_seconds`.
    pub fn register(registry: &Registry) -> Self {
        Self {
            requests: registry.counter(
                "http_server_requests_total",
                "HTTP/JSON requests, by route template (method and path template) and HTTP status.",
                ["route", "status"],
            ),
            duration: registry.histogram(
                "http_server_request_duration_seconds",
                "Time from request headers to the response, by route template.",
                ["route"],
                LATENCY_BUCKETS,
            ),
        }
    }
}

/// The HTTP port's service: routes a request, calls the RPC in process, answers JSON.
#[derive(Clone)]
pub struct HttpEdge(Arc<Inner>);

struct Inner {
    transcoder: Transcoder,
    channel: Channel,
    metrics: HttpMetrics,
    openapi: Bytes,
}

impl HttpEdge {
    /// The edge over `channel`, the gRPC stack; fails when the protos' HTTP rules cannot be
    /// served (a build mistake, caught by the tests).
    pub fn new(channel: Channel, metrics: HttpMetrics) -> Result<Self, String> {
        let transcoder = Transcoder::new(credentials_proto::FILE_DESCRIPTOR_SET, &SERVICES)
            .map_err(|e| format!("the HTTP mapping: {e}"))?;
        let openapi = Bytes::from(
            serde_json::to_vec_pretty(&openapi_document(&transcoder)).unwrap_or_default(),
        );
        Ok(Self(Arc::new(Inner {
            transcoder,
            channel,
            metrics,
            openapi,
        })))
    }

    /// Answers one request.
    pub async fn handle(
        self,
        request: http::Request<hyper::body::Incoming>,
    ) -> http::Response<HttpBody> {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let inner = &self.0;
        let (label, target) = route(&inner.transcoder, &parts);
        let span = tracing::info_span!(
            "http",
            otel.name = %label,
            otel.kind = "server",
            http.request.method = %parts.method,
            http.route = %label.split_once(' ').map_or(label.as_str(), |(_, template)| template),
            http.response.status_code = Empty,
        );
        service_kit::adopt_trace_context(&span, &parts.headers);
        let response = async {
            match target {
                Target::OpenApi => {
                    let mut response = http::Response::new(inner.openapi.clone());
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json"),
                    );
                    response
                }
                Target::Refused(status) => inner.transcoder.error(&status, false),
                Target::WrongMethod(allowed) => method_not_allowed(&inner.transcoder, &allowed),
                Target::Rpc(route, bindings) => {
                    match read_body(&inner.transcoder, &parts, body).await {
                        Ok(bytes) => {
                            inner
                                .transcoder
                                .call(inner.channel.clone(), route, &bindings, &parts, &bytes)
                                .await
                        }
                        Err(refusal) => refusal,
                    }
                }
                Target::Compat(op) => match read_body(&inner.transcoder, &parts, body).await {
                    Ok(bytes) => {
                        compat::answer(&inner.transcoder, inner.channel.clone(), op, &parts, &bytes)
                            .await
                    }
                    Err(refusal) => refusal,
                },
            }
        }
        .instrument(span.clone())
        .await;
        let status = response.status();
        span.record("http.response.status_code", i64::from(status.as_u16()));
        inner
            .metrics
            .requests
            .inc([label.as_str(), status.as_str()]);
        inner
            .metrics
            .duration
            .observe([label.as_str()], started.elapsed().as_secs_f64());
        response.map(HttpBody::new)
    }
}

impl tower::Service<http::Request<hyper::body::Incoming>> for HttpEdge {
    type Response = http::Response<HttpBody>;
    type Error = Infallible;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<hyper::body::Incoming>) -> Self::Future {
        let edge = self.clone();
        Box::pin(async move { Ok(edge.handle(request).await) })
    }
}

/// Where a request goes.
enum Target<'a> {
    OpenApi,
    Rpc(&'a json_transcoding::Route, Vec<(String, String)>),
    Compat(compat::Operation),
    WrongMethod(Vec<http::Method>),
    Refused(tonic::Status),
}

/// The request's route label (a template, never a path with ids in it) and target.
fn route<'a>(transcoder: &'a Transcoder, parts: &http::request::Parts) -> (String, Target<'a>) {
    let path = parts.uri.path();
    if path == "/openapi.json" {
        return match parts.method {
            http::Method::GET | http::Method::HEAD => ("GET /openapi.json".into(), Target::OpenApi),
            _ => (
                UNMATCHED.into(),
                Target::WrongMethod(vec![http::Method::GET]),
            ),
        };
    }
    if let Some(found) = compat::route(&parts.method, path) {
        return match found {
            Ok(op) => (op.label().to_owned(), Target::Compat(op)),
            Err(allowed) => (UNMATCHED.into(), Target::WrongMethod(allowed)),
        };
    }
    match transcoder.lookup(&parts.method, path) {
        Lookup::Found(route, bindings) => (route.label(), Target::Rpc(route, bindings)),
        Lookup::WrongMethod(allowed) => (UNMATCHED.into(), Target::WrongMethod(allowed)),
        Lookup::Missing => (
            UNMATCHED.into(),
            Target::Refused(tonic::Status::not_found(
                "no such route: see GET /openapi.json for the routes",
            )),
        ),
    }
}

/// 405 with `Allow`.
fn method_not_allowed(transcoder: &Transcoder, allowed: &[http::Method]) -> http::Response<Bytes> {
    let list: Vec<&str> = allowed.iter().map(http::Method::as_str).collect();
    let status = tonic::Status::unimplemented(format!("this path takes {}", list.join(", ")));
    let mut response = transcoder.error(&status, false);
    *response.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
    if let Ok(value) = http::HeaderValue::from_str(&list.join(", ")) {
        response.headers_mut().insert(http::header::ALLOW, value);
    }
    response
}

/// The body, within the limit (413 past it) and, when there is one, JSON (415 otherwise).
async fn read_body(
    transcoder: &Transcoder,
    parts: &http::request::Parts,
    body: hyper::body::Incoming,
) -> Result<Bytes, http::Response<Bytes>> {
    let too_large = || {
        let status = tonic::Status::resource_exhausted(format!(
            "the request body is larger than the limit of {MAX_REQUEST_BYTES} bytes"
        ));
        let mut response = transcoder.error(&status, false);
        *response.status_mut() = http::StatusCode::PAYLOAD_TOO_LARGE;
        response
    };
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES as u64) {
        return Err(too_large());
    }
    let bytes = match http_body_util::Limited::new(body, MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(_) => {
            return Err(transcoder.error(
                &tonic::Status::invalid_argument("the request body ended early"),
                false,
            ));
        }
    };
    let json = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    if !bytes.is_empty() && json.as_deref().is_some_and(|t| t != "application/json") {
        let status = tonic::Status::invalid_argument(
            "the body must be JSON: send Content-Type: application/json",
        );
        let mut response = transcoder.error(&status, false);
        *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return Err(response);
    }
    Ok(bytes)
}
