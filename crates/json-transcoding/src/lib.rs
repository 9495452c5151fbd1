//! HTTP/JSON for gRPC services, following Google's HTTP mapping: each RPC's `google.api.http`
//! rule becomes a route; a request is assembled from the path, the query string and the JSON
//! body by the proto3 JSON mapping (camelCase names, enums as strings, timestamps as RFC 3339),
//! sent as a gRPC call through whatever service stack the caller hands in (the server's own,
//! so authentication, limits, audit and metrics are the gRPC ones), and the answer is written
//! back as JSON, or as a `google.rpc.Status` with the matching HTTP status.
//!
//! Nothing here knows the services: everything comes from the descriptor pool, which is also
//! what the OpenAPI document ([`openapi`]) is built from, so the routes and the document
//! cannot drift apart.

mod codec;
pub mod openapi;
mod request;
mod rules;
mod status;
mod template;

pub use codec::RawCodec;
pub use request::{BadRequest, request_message};
pub use rules::{BodyRule, Route, routes};
pub use status::{http_status, status_json};
pub use template::PathTemplate;

use bytes::Bytes;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, ReflectMessage as _, SerializeOptions, Value,
};

/// Why the rules of the protos cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The pool lacks `google/api/annotations.proto`.
    #[error("the descriptor pool does not define the google.api.http extension")]
    NoHttpExtension,
    /// A service asked for is not in the pool.
    #[error("no service {0} in the descriptor pool")]
    UnknownService(String),
    /// An RPC has no HTTP binding.
    #[error("{0} has no google.api.http binding")]
    Unbound(String),
    /// A streaming RPC, which this mapping does not serve.
    #[error("{0} streams, which the HTTP mapping does not serve")]
    Streaming(String),
    /// A template outside the supported forms.
    #[error("path template {template}: {reason}")]
    Template {
        /// The template.
        template: String,
        /// What is not supported.
        reason: String,
    },
    /// A rule names a field the message lacks.
    #[error("{rpc}: the rule names the field {field}, which the message lacks")]
    UnknownField {
        /// The RPC.
        rpc: String,
        /// The field.
        field: String,
    },
    /// `response_body`, which this mapping does not serve.
    #[error("{0}: response_body is not supported")]
    ResponseBody(String),
    /// The descriptor set does not decode.
    #[error("the descriptor set does not decode: {0}")]
    Descriptors(String),
}

/// What a request's method and path find.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// This route, with the path's bindings.
    Found(&'a Route, Vec<(String, String)>),
    /// The path exists for these other methods.
    WrongMethod(Vec<http::Method>),
    /// No route has this path.
    Missing,
}

/// The routes of some services, and how to answer them.
#[derive(Debug, Clone)]
pub struct Transcoder {
    pool: DescriptorPool,
    routes: Vec<Route>,
}

/// The headers passed on to the RPC as metadata: who calls, and which request this is.
const FORWARDED: [&str; 2] = ["authorization", "x-request-id"];

impl Transcoder {
    /// The routes of `services` in the encoded descriptor set `descriptors`.
    pub fn new(descriptors: &[u8], services: &[&str]) -> Result<Self, RuleError> {
        let pool = DescriptorPool::decode(descriptors)
            .map_err(|e| RuleError::Descriptors(e.to_string()))?;
        let routes = routes(&pool, services)?;
        Ok(Self { pool, routes })
    }

    /// The descriptor pool the routes come from.
    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    /// Every route, in proto order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route of `method` and `path` (still percent-encoded).
    pub fn lookup(&self, method: &http::Method, path: &str) -> Lookup<'_> {
        let mut allowed = Vec::new();
        for route in &self.routes {
            if let Some(bindings) = route.template.matches(path) {
                if route.method == method {
                    return Lookup::Found(route, bindings);
                }
                allowed.push(route.method.clone());
            }
        }
        if allowed.is_empty() {
            Lookup::Missing
        } else {
            Lookup::WrongMethod(allowed)
        }
    }

    /// Answers one request of `route`: assembles the message, calls the RPC through `channel`,
    /// and writes the answer (or the error) as JSON.
    pub async fn call<S>(
        &self,
        channel: S,
        route: &Route,
        bindings: &[(String, String)],
        parts: &http::request::Parts,
        body: &[u8],
    ) -> http::Response<Bytes>
    where
        S: tonic::client::GrpcService<tonic::body::Body>,
        S::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
        <S::ResponseBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let if_match = parts
            .headers
            .get(http::header::IF_MATCH)
            .and_then(|v| v.to_str().ok());
        let message = match request_message(route, bindings, parts.uri.query(), if_match, body) {
            Ok(message) => message,
            Err(bad) => return self.error(&bad_request(&bad), false),
        };
        let mut request = tonic::Request::new(Bytes::from(message.encode_to_vec()));
        for name in FORWARDED {
            if let Some(value) = parts.headers.get(name)
                && let Ok(value) = tonic::metadata::MetadataValue::try_from(value.as_bytes())
            {
                request.metadata_mut().insert(name, value);
            }
        }
        let Ok(path) = http::uri::PathAndQuery::from_maybe_shared(route.grpc_path.clone()) else {
            return self.error(
                &tonic::Status::internal("the route's gRPC path is malformed"),
                false,
            );
        };
        let mut grpc = tonic::client::Grpc::new(channel);
        if let Err(e) = grpc.ready().await {
            let e: Box<dyn std::error::Error + Send + Sync> = e.into();
            return self.error(
                &tonic::Status::unavailable(format!("the service is not ready: {e}")),
                false,
            );
        }
        match grpc.unary(request, path, RawCodec).await {
            Ok(response) => {
                let (metadata, bytes, _) = response.into_parts();
                let mut answer = match self.response(route, &bytes) {
                    Ok(json) => json_response(http::StatusCode::OK, json),
                    Err(e) => self.error(&tonic::Status::internal(e), false),
                };
                copy_request_id(
                    metadata.get("x-request-id").map(|v| v.as_bytes()),
                    &mut answer,
                );
                answer
            }
            Err(status) => {
                let mut answer = self.error(&status, if_match.is_some());
                copy_request_id(
                    status.metadata().get("x-request-id").map(|v| v.as_bytes()),
                    &mut answer,
                );
                answer
            }
        }
    }

    /// The JSON of a response message, defaults included (a client should not have to know
    /// that an absent `isDefault` means false), and its `ETag` when it carries a resource
    /// with one.
    fn response(&self, route: &Route, bytes: &[u8]) -> Result<(Vec<u8>, Option<String>), String> {
        let message = DynamicMessage::decode(route.output(), bytes)
            .map_err(|e| format!("the service's answer does not decode: {e}"))?;
        let mut out = serde_json::Serializer::new(Vec::new());
        message
            .serialize_with_options(
                &mut out,
                &SerializeOptions::new().skip_default_fields(false),
            )
            .map_err(|e| format!("the service's answer cannot be written as JSON: {e}"))?;
        Ok((out.into_inner(), resource_etag(&message)))
    }

    /// The HTTP answer of an error: its mapped status (412 for a stale etag the caller sent
    /// as `If-Match`), `WWW-Authenticate` with a 401, and the `google.rpc.Status` JSON.
    pub fn error(&self, status: &tonic::Status, conditional: bool) -> http::Response<Bytes> {
        let code = match status.code() {
            tonic::Code::Aborted if conditional => http::StatusCode::PRECONDITION_FAILED,
            code => http_status(code),
        };
        let mut response = json_response(code, (status_json(&self.pool, status), None));
        if status.code() == tonic::Code::Unauthenticated {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
        }
        // A RetryInfo delay is what HTTP clients know as Retry-After (whole seconds, rounded up).
        if let Some(delay) =
            tonic_types::StatusExt::get_details_retry_info(status).and_then(|r| r.retry_delay)
        {
            let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(seconds.max(1)),
            );
        }
        response
    }
}

/// `INVALID_ARGUMENT` naming the field, with a `BadRequest` detail, as the services answer.
pub fn bad_request(bad: &BadRequest) -> tonic::Status {
    let message = if bad.field.is_empty() {
        bad.description.clone()
    } else {
        format!("{}: {}", bad.field, bad.description)
    };
    let details = tonic_types::ErrorDetails::with_bad_request_violation(
        bad.field.clone(),
        bad.description.clone(),
    );
    <tonic::Status as tonic_types::StatusExt>::with_error_details(
        tonic::Code::InvalidArgument,
        message,
        details,
    )
}

/// An answer with a JSON body and, when given, an `ETag`.
pub fn json_response(
    status: http::StatusCode,
    (body, etag): (Vec<u8>, Option<String>),
) -> http::Response<Bytes> {
    let mut response = http::Response::new(Bytes::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Some(etag) = etag
        && let Ok(value) = http::HeaderValue::from_str(&format!("\"{etag}\""))
    {
        response.headers_mut().insert(http::header::ETAG, value);
    }
    response
}

fn copy_request_id(id: Option<&[u8]>, response: &mut http::Response<Bytes>) {
    if let Some(value) = id.and_then(|id| http::HeaderValue::from_bytes(id).ok()) {
        response.headers_mut().insert("x-request-id", value);
    }
}

/// The `etag` of the first singular message field that has one (`credential.etag`).
fn resource_etag(message: &DynamicMessage) -> Option<String> {
    message.descriptor().fields().find_map(|field| {
        if field.is_list()
            || !matches!(field.kind(), Kind::Message(_))
            || !message.has_field(&field)
        {
            return None;
        }
        match message.get_field(&field).as_ref() {
            Value::Message(inner) => match inner.get_field_by_name("etag")?.as_ref() {
                Value::String(etag) if !etag.is_empty() => Some(etag.clone()),
                _ => None,
            },
            _ => None,
        }
    })
}
