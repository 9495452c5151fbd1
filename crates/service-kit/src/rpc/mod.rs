//! The per-RPC tower layers both servers share, each with one job:
//! - [`TraceLayer`]: a span per RPC, joined to the caller's trace, with its status;
//! - [`MetricsLayer`]: the `grpc_server_*` counters and latencies;
//! - [`DrainLayer`]: admission while a shutdown drains;
//! - [`FramingLayer`]: a request whose gRPC framing is cut short is the client's mistake.
//!
//! All three need to know when a call ends and with which status, which for a streamed
//! response is only in its trailers; [`status`] reads it once for each. [`layers`] stacks
//! them in their order; a server adds its own layers (authentication) inside.

mod drain;
mod framing;
mod metrics;
pub mod status;
mod trace;

pub use drain::{Drain, DrainLayer, DrainService, InFlight};
pub use framing::{FramedBody, FramingLayer, FramingService};
pub use metrics::{Measurement, MetricsLayer, MetricsService, RpcMetrics};
pub use status::code_name;
pub use trace::{SpanStatus, TraceLayer, TraceService};

use prost::Message as _;
use std::{collections::HashMap, pin::Pin, sync::OnceLock};
use tower::{
    ServiceBuilder,
    layer::util::{Identity, Stack},
};

/// The label of a path that no served proto defines: a client may send any path, and labels
/// must stay bounded.
const UNKNOWN: &str = "unknown";

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Every `/package.Service/Method` path of the protos these servers can serve, so metric labels
/// come from this closed set and never from what a client made up; with whether the method
/// takes a stream of requests (client streaming) rather than exactly one.
fn known_methods() -> &'static HashMap<String, bool> {
    static KNOWN: OnceLock<HashMap<String, bool>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let sets: [&[u8]; 4] = [
            credentials_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ];
        let mut known = HashMap::new();
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
                        known.insert(
                            format!("/{qualified}/{}", method.name()),
                            method.client_streaming(),
                        );
                    }
                }
            }
        }
        known
    })
}

/// Every `/package.Service/Method` path the servers' protos define (the vault's own, health
/// and both reflection versions), in no particular order: what a per-RPC table must cover.
pub fn known_paths() -> impl Iterator<Item = &'static str> {
    known_methods().keys().map(String::as_str)
}

/// Whether `path` is a method that takes exactly one request message.
fn takes_one_request(path: &str) -> bool {
    known_methods().get(path) == Some(&false)
}

/// `(service, method)` labels of a request path; `unknown` for paths no proto defines.
fn labels(path: &str) -> (&'static str, &'static str) {
    known_methods()
        .get_key_value(path)
        .and_then(|(known, _)| known[1..].split_once('/'))
        .unwrap_or((UNKNOWN, UNKNOWN))
}

/// Whether `path` is a health check: never refused by a drain, and traced at DEBUG.
fn is_health(path: &str) -> bool {
    labels(path).0.starts_with("grpc.health.")
}

/// The shared part of a server's stack, outermost first.
pub type RpcLayers = ServiceBuilder<
    Stack<FramingLayer, Stack<DrainLayer, Stack<MetricsLayer, Stack<TraceLayer, Identity>>>>,
>;

/// A tonic router whose only layers are [`layers`]: `Server::builder().layer(layers(..))`.
pub type ObservedRouter = tonic::transport::server::Router<Stack<RpcLayers, Identity>>;

/// The layers every server puts in front of its services, outermost first.
pub fn layers(metrics: RpcMetrics, drain: Drain) -> RpcLayers {
    ServiceBuilder::new()
        // Tracing outermost: everything below, down to the handler, runs inside the RPC's
        // span (the auth layer and handlers record ids on it as the current span), and the
        // span's time covers the whole call, refusals included.
        .layer(TraceLayer::new())
        // Metrics next: every call is counted with its final code, including the ones the
        // drain refuses and the ones authentication rejects.
        .layer(MetricsLayer::new(metrics))
        // Drain admission before any work a server adds inside (token checks, handlers): a
        // refused call costs nothing, and an admitted one is waited for until its status.
        .layer(DrainLayer::new(drain))
        // Innermost: tonic answers INTERNAL for a request body that ends inside a message (or
        // without the one message a method takes); this turns that client mistake into
        // INVALID_ARGUMENT before tonic decodes.
        .layer(FramingLayer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Registry;
    use http_body::Body as _;
    use std::{
        convert::Infallible,
        sync::Arc,
        task::{Context, Poll},
    };
    use tower::Service as _;

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
            layers(metrics.clone(), Drain::new()).service(tower::service_fn(
                move |_: http::Request<tonic::body::Body>| async move {
                    Ok::<_, Infallible>(response(headers, trailers))
                },
            ))
        };
        let request = |path: &str| {
            http::Request::builder()
                .uri(format!("http://x{path}"))
                .body(tonic::body::Body::empty())
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
        let mut service = layers(metrics.clone(), drain.clone()).service(tower::service_fn(
            move |_: http::Request<tonic::body::Body>| {
                let released = released.clone();
                async move {
                    drop(released.acquire().await);
                    Ok::<_, Infallible>(response(&[], Some("0")))
                }
            },
        ));
        let request = |path: &str| {
            http::Request::builder()
                .uri(format!("http://x{path}"))
                .body(tonic::body::Body::empty())
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
