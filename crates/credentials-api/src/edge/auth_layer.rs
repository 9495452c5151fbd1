//! One tower layer in front of every service: gives each request an id, authenticates its
//! bearer token (health and reflection excepted) and hands the handlers a [`Caller`]. Handlers
//! never see a token. It runs inside service-kit's RPC layer and records the request id and
//! the token's subject on that layer's per-RPC span.

use crate::service::Caller;
use auth::Verifier;
use std::{
    sync::Arc,
    task::{Context, Poll},
    time::SystemTime,
};
use tonic::{Status, codegen::http};
use tower::{Layer, Service};

/// Paths that answer without a token: probes and operators' discovery.
fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.")
}

/// The request id: the caller's `x-request-id` when it is sane, else a fresh random one.
fn request_id(headers: &http::HeaderMap) -> String {
    if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok())
        && !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return id.to_owned();
    }
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 12];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        return "unknown".into();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds [`AuthService`]s around the router.
#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<Verifier>,
}

impl AuthLayer {
    /// A layer that checks tokens with `verifier`.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self { verifier }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// Authenticates one request and passes it on with a [`Caller`] in its extensions.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for AuthService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The ready service is the one to call; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = request.uri().path().to_owned();
        let request_id = request_id(request.headers());
        // The RPC layer outside entered its span around this call.
        let span = tracing::Span::current();
        span.record("request_id", request_id.as_str());
        let header_value = http::HeaderValue::from_str(&request_id).ok();

        if !is_public(&path) {
            let token = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                });
            let verified = match token {
                None => {
                    Err("missing bearer token: send the metadata 'authorization: Bearer <token>'")
                }
                Some(token) => self
                    .verifier
                    .verify(token.trim(), SystemTime::now())
                    .map_err(|e| {
                        tracing::info!(reason = %e, "token refused");
                        e.client_message()
                    }),
            };
            match verified {
                Ok(principal) => {
                    span.record("subject", principal.subject.as_str());
                    request.extensions_mut().insert(Caller {
                        principal,
                        request_id,
                    });
                }
                Err(message) => {
                    let mut response = Status::unauthenticated(message).into_http::<ResBody>();
                    if let Some(v) = header_value {
                        response.headers_mut().insert("x-request-id", v);
                    }
                    return Box::pin(std::future::ready(Ok(response)));
                }
            }
        }

        let future = inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            if let Some(v) = header_value {
                response.headers_mut().insert("x-request-id", v);
            }
            Ok(response)
        })
    }
}
