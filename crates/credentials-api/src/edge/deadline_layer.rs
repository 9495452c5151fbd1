//! The server's own deadline for each request: the client's `grpc-timeout` (less a small
//! margin, so that the answer reaches the client before its own timer fires) or the
//! configured maximum, whichever is shorter. Without it a request against a hung Postgres
//! waits for ever; and tonic's own handling of `grpc-timeout` (drop the handler when the
//! timeout passes, answer CANCELLED) says nothing true about what was written.
//!
//! When the deadline passes, the handler is dropped where it stands. The store makes that
//! safe (`credentials_store::RequestScope`): a write whose COMMIT was not sent cannot commit
//! any more, so the answer is `DEADLINE_EXCEEDED` and nothing changed; once a COMMIT (or a
//! write that commits by itself, or an audit event taken into a group commit) was sent, the
//! answer is `UNAVAILABLE` saying the outcome is unknown. The caller is never told of a
//! failure for a change that commits later.

use crate::service::ServiceError;
use credentials_store::RequestScope;
use std::{
    task::{Context, Poll},
    time::Duration,
};
use tonic::{Status, codegen::http};
use tower::{Layer, Service};

/// The RPCs whose own time limits are longer (a discovery may take up to 120 s).
const PROBES: [&str; 3] = [
    "/credentials.v1.CredentialsService/ValidateCredential",
    "/credentials.v1.CredentialsService/TestCredential",
    "/credentials.v1.CredentialsService/DiscoverSchema",
];

/// The least deadline a probe RPC gets from the configured maximum: above the longest
/// discovery timeout the API accepts.
pub const PROBE_MINIMUM: Duration = Duration::from_secs(125);

/// Most of the client's timeout that is kept back so that the server answers first.
const MAX_MARGIN: Duration = Duration::from_millis(250);

/// Parses `grpc-timeout` (gRPC over HTTP/2: up to 8 digits and a unit, H M S m u n).
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The server-side budget of a request to `path` with `headers`.
fn budget(path: &str, headers: &http::HeaderMap, max: Duration) -> Duration {
    let max = if PROBES.contains(&path) {
        max.max(PROBE_MINIMUM)
    } else {
        max
    };
    match grpc_timeout(headers) {
        Some(client) => {
            let margin = (client / 10).min(MAX_MARGIN);
            (client - margin).min(max)
        }
        None => max,
    }
}

/// Builds [`DeadlineService`]s.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    max: Duration,
}

impl DeadlineLayer {
    /// Requests get at most `max` (probes at least [`PROBE_MINIMUM`]).
    pub fn new(max: Duration) -> Self {
        Self { max }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            max: self.max,
        }
    }
}

/// Runs one request under its deadline and answers for it when the deadline passes.
#[derive(Debug, Clone)]
pub struct DeadlineService<S> {
    inner: S,
    max: Duration,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for DeadlineService<S>
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

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let budget = budget(request.uri().path(), request.headers(), self.max);
        let scope = RequestScope::new();
        let watched = scope.clone();
        let mut work = Box::pin(scope.run(inner.call(request)));
        Box::pin(async move {
            if let Ok(answered) = tokio::time::timeout(budget, &mut work).await {
                return answered;
            }
            // Dropped first, so that whatever it held (a queued audit event, a connection in
            // the middle of a write) has settled what it reports to the scope.
            drop(work);
            let err = if watched.commit_sent() {
                ServiceError::OutcomeUnknown
            } else {
                ServiceError::RequestDeadline
            };
            Ok(Status::from(err).into_http::<ResBody>())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(timeout: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("grpc-timeout", timeout.parse().unwrap());
        h
    }

    #[test]
    fn the_shorter_of_the_clients_timeout_and_the_maximum() {
        let get = "/credentials.v1.CredentialsService/GetCredential";
        let discover = "/credentials.v1.CredentialsService/DiscoverSchema";
        let max = Duration::from_secs(30);
        assert_eq!(budget(get, &http::HeaderMap::new(), max), max);
        assert_eq!(budget(get, &headers("1S"), max), Duration::from_millis(900));
        assert_eq!(
            budget(get, &headers("10S"), max),
            Duration::from_millis(9750)
        );
        assert_eq!(budget(get, &headers("2M"), max), max);
        assert_eq!(
            budget(get, &headers("500m"), max),
            Duration::from_millis(450)
        );
        assert_eq!(
            budget(discover, &http::HeaderMap::new(), max),
            PROBE_MINIMUM
        );
        assert_eq!(
            budget(discover, &headers("5S"), max),
            Duration::from_millis(4750)
        );
        // Malformed: ignored, the maximum holds.
        for bad in ["", "S", "123456789S", "10x", "-1S"] {
            let mut h = http::HeaderMap::new();
            if let Ok(v) = bad.parse() {
                h.insert("grpc-timeout", v);
            }
            assert_eq!(budget(get, &h, max), max, "{bad:?}");
        }
    }
}
