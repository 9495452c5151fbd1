//! One tower layer in front of every service: gives each request an id, authenticates its
//! bearer token (health and reflection excepted), checks the permission its RPC declares in
//! [`permissions`](super::permissions), and hands the handlers a [`Caller`]. Handlers never
//! see a token. It runs inside service-kit's tracing layer and records the request id and the
//! token's subject on that layer's per-RPC span.

use super::permissions::{self, Rule};
use crate::service::Caller;
use auth::Verifier;
use service_kit::span_fields;
use std::{
    sync::Arc,
    task::{Context, Poll},
    time::SystemTime,
};
use tonic::{Status, codegen::http};
use tower::{Layer, Service};

/// The request id: the caller's `x-request-id` when it is sane, else a fresh random one.
pub(crate) fn request_id(headers: &http::HeaderMap) -> String {
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
        let rule = permissions::rule(request.uri().path());
        let request_id = request_id(request.headers());
        // The tracing layer outside entered its span around this call.
        let span = tracing::Span::current();
        span.record(span_fields::REQUEST_ID, request_id.as_str());
        let header_value = http::HeaderValue::from_str(&request_id).ok();
        let refuse = |status: Status| {
            let mut response = status.into_http::<ResBody>();
            if let Some(v) = header_value.clone() {
                response.headers_mut().insert("x-request-id", v);
            }
            Box::pin(std::future::ready(Ok(response)))
        };

        if rule != Some(Rule::Public) {
            let token = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                });
            let verified = match token {
                None => Err(
                    "missing bearer token: send the metadata 'authorization: Bearer <token>'"
                        .to_owned(),
                ),
                // Refused by length before any parsing; the transport lets headers up to
                // service-kit's MAX_HEADER_LIST_BYTES through so that this answer, naming the
                // limit, is what a client sees instead of HTTP 431.
                Some(token) if token.trim().len() > auth::MAX_TOKEN_LEN => {
                    tracing::info!(bytes = token.len(), "token refused: too long");
                    Err(format!(
                        "the token is longer than the limit of {} bytes",
                        auth::MAX_TOKEN_LEN
                    ))
                }
                Some(token) => self
                    .verifier
                    .verify(token.trim(), SystemTime::now())
                    .map_err(|e| {
                        tracing::info!(reason = %e, "token refused");
                        e.client_message().to_owned()
                    }),
            };
            let principal = match verified {
                Ok(principal) => principal,
                Err(message) => return refuse(Status::unauthenticated(message)),
            };
            span.record(span_fields::SUBJECT, principal.subject.as_str());
            let caller = Caller {
                principal,
                request_id,
            };
            // The same refusal, word for word, as the operations gave when they checked.
            let checked = match rule {
                Some(Rule::Requires(permission)) => caller.require(permission),
                Some(Rule::PlatformAdmin) => caller.require_platform_admin(),
                _ => Ok(()),
            };
            if let Err(denied) = checked {
                return refuse(denied.into());
            }
            request.extensions_mut().insert(caller);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tonic::Code;

    const SECRET: &[u8] = b"an-hs256-secret-for-the-layer-tests-0123";

    fn verifier() -> Arc<Verifier> {
        let config = auth::VerifierConfig {
            issuer: "iss".into(),
            audience: "aud".into(),
            leeway: std::time::Duration::ZERO,
        };
        Arc::new(Verifier::new(config).with_hs256_secret(SECRET).unwrap())
    }

    fn token(permissions: &[&str]) -> String {
        token_of(permissions, false)
    }

    fn token_of(permissions: &[&str], platform_admin: bool) -> String {
        let exp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600;
        auth::SigningKey::Hs256(zeroize::Zeroizing::new(SECRET.to_vec()))
            .mint(&auth::Claims {
                sub: "layer-test".into(),
                iss: "iss".into(),
                aud: "aud".into(),
                exp,
                nbf: None,
                iat: None,
                workspaces: vec!["ws".into()],
                permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                platform_admin,
            })
            .unwrap()
    }

    /// Calls `path` through the layer; returns the status it answered with (if it did) and
    /// the permissions of the caller the handler saw (if it ran).
    async fn call(path: &str, token: Option<&str>) -> (Option<Status>, Option<Vec<String>>) {
        let seen = Arc::new(Mutex::new(None));
        let inner = {
            let seen = seen.clone();
            tower::service_fn(move |request: http::Request<()>| {
                let caller = request.extensions().get::<Caller>().map(|c| {
                    c.principal
                        .permissions
                        .iter()
                        .map(|p| p.as_str().to_owned())
                        .collect()
                });
                *seen.lock().unwrap() = Some(caller);
                async { Ok::<_, std::convert::Infallible>(http::Response::new(())) }
            })
        };
        let mut request = http::Request::builder().uri(format!("http://x{path}"));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = AuthLayer::new(verifier())
            .layer(inner)
            .call(request.body(()).unwrap())
            .await
            .unwrap();
        assert!(response.headers().contains_key("x-request-id"));
        let status = Status::from_header_map(response.headers());
        let ran = seen.lock().unwrap().take();
        match ran {
            Some(caller) => (status, Some(caller.unwrap_or_default())),
            None => (status, None),
        }
    }

    #[tokio::test]
    async fn a_missing_permission_is_refused_before_the_handler() {
        let create = "/credentials.v1.CredentialsService/CreateCredential";
        let (status, ran) = call(create, Some(&token(&["read"]))).await;
        let status = status.expect("refused");
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(status.message(), "this call needs the 'write' permission");
        assert_eq!(ran, None);

        let admin = "/credentials.v1.AdminService/GetRewrapStatus";
        let (status, ran) = call(admin, Some(&token(&["read", "write", "access"]))).await;
        assert_eq!(
            status.map(|s| s.message().to_owned()).as_deref(),
            Some("this call needs the 'admin' permission")
        );
        assert_eq!(ran, None);

        let (status, ran) = call(create, Some(&token(&["write"]))).await;
        assert!(status.is_none());
        assert_eq!(ran, Some(vec!["write".to_owned()]));
    }

    #[tokio::test]
    async fn cross_tenant_admin_calls_need_the_platform_grant() {
        let sweep = "/credentials.v1.AdminService/StartRewrap";
        let (status, ran) = call(sweep, Some(&token(&["admin"]))).await;
        let status = status.expect("refused");
        assert_eq!(status.code(), Code::PermissionDenied);
        assert!(status.message().contains("platform_admin"), "{status:?}");
        assert_eq!(ran, None);
        // The grant alone is no permission.
        let (status, ran) = call(sweep, Some(&token_of(&["read"], true))).await;
        assert_eq!(status.map(|s| s.code()), Some(Code::PermissionDenied));
        assert_eq!(ran, None);
        let (status, ran) = call(sweep, Some(&token_of(&["admin"], true))).await;
        assert!(status.is_none());
        assert_eq!(ran, Some(vec!["admin".to_owned()]));
        // A workspace's key is the operation's to scope.
        let key = "/credentials.v1.AdminService/SetWorkspaceKey";
        let (status, _) = call(key, Some(&token(&["admin"]))).await;
        assert!(status.is_none());
    }

    #[tokio::test]
    async fn access_is_left_to_the_operation_that_audits_a_refusal() {
        let access = "/credentials.v1.AccessService/AccessCredential";
        let (status, ran) = call(access, Some(&token(&["read"]))).await;
        assert!(status.is_none());
        assert_eq!(ran, Some(vec!["read".to_owned()]));
    }

    #[tokio::test]
    async fn tokens_are_needed_except_for_public_rpcs() {
        let (status, ran) = call("/grpc.health.v1.Health/Check", None).await;
        assert!(status.is_none());
        assert_eq!(ran, Some(vec![]));

        let types = "/credentials.v1.CredentialsService/ListCredentialTypes";
        let (status, ran) = call(types, Some(&token(&[]))).await;
        assert!(status.is_none());
        assert_eq!(ran, Some(vec![]));

        for path in [types, "/made.up/Path"] {
            let (status, ran) = call(path, None).await;
            assert_eq!(status.map(|s| s.code()), Some(Code::Unauthenticated));
            assert_eq!(ran, None);
        }
    }
}
