//! Serving an HTTP service (HTTP/1.1 and h2, over TLS when the port has it) under the same
//! connection limits as the gRPC port, until a stop signal; then the open connections finish
//! what they are answering and close. Requests in flight are the service's to account for:
//! the HTTP/JSON edge sends each one through the gRPC stack, whose drain waits for it.

use crate::{ConnectionLimits, ServerTls};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use std::{convert::Infallible, sync::Arc};
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;

/// The body an HTTP service answers with.
pub type HttpBody = http_body_util::Full<bytes::Bytes>;

/// Serves `service` on `listener` until `stop` resolves, then lets open connections finish
/// their current exchanges (the caller bounds how long it waits for the returned future).
pub async fn serve_http<S>(
    listener: TcpListener,
    tls: Option<Arc<ServerTls>>,
    limits: ConnectionLimits,
    service: S,
    stop: impl Future<Output = ()>,
) where
    S: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<HttpBody>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let builder = {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.handshake_timeout);
        builder
            .http2()
            .max_header_list_size(crate::MAX_HEADER_LIST_BYTES)
            .keep_alive_interval(Some(limits.keepalive_interval))
            .keep_alive_timeout(limits.keepalive_timeout)
            .timer(hyper_util::rt::TokioTimer::new());
        builder
    };
    macro_rules! accept_loop {
        ($incoming:expr) => {{
            let mut incoming = limits.guard($incoming);
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    () = &mut stop => break,
                    next = incoming.next() => match next {
                        Some(Ok(io)) => {
                            let connection = builder
                                .serve_connection(TokioIo::new(io), TowerToHyperService::new(service.clone()))
                                .into_owned();
                            let watched = graceful.watch(connection);
                            tokio::spawn(async move {
                                // A client that goes away mid-request is not the server's error.
                                if let Err(e) = watched.await {
                                    tracing::debug!(error = %e, "HTTP connection ended");
                                }
                            });
                        }
                        Some(Err(e)) => tracing::debug!(error = %e, "HTTP connection not accepted"),
                        None => break,
                    },
                }
            }
        }};
    }
    match tls {
        Some(tls) => accept_loop!(tls.incoming_http(listener)),
        None => {
            let incoming = tonic::transport::server::TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .with_keepalive(Some(limits.keepalive_interval));
            accept_loop!(incoming)
        }
    }
    graceful.shutdown().await;
}
