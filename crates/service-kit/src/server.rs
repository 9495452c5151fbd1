//! The life of a gRPC server, the same for both binaries; each brings only what is its own
//! (its services and resources, where it binds, and its rule for being ready).
//!
//! Start-up:
//! 1. [`Lifecycle::begin`]: health reports every service NOT_SERVING, so nothing looks ready
//!    before the binary's resources answer (tonic-health would say SERVING for `""`).
//! 2. The binary checks its configuration, opens its resources and binds, failing before
//!    anything is served; [`Lifecycle::adopt`] takes its background tasks.
//! 3. [`Lifecycle::serve`]: the router, behind [`Lifecycle::layers`], serves until shutdown.
//! 4. The binary's readiness rule turns health SERVING ([`Health::set_serving`]).
//!
//! Shutdown ([`Serving::shutdown`]), all within the grace period:
//! 1. Background tasks stop, so a readiness check cannot report SERVING again.
//! 2. Health NOT_SERVING: load balancers and probes stop sending.
//! 3. The drain: new calls get a retryable UNAVAILABLE while the accepted ones finish.
//! 4. The settle pause (see [`DRAIN_SETTLE`]).
//! 5. Close: stop accepting, end the health watches, wait for the connections to close.
//!
//! Then the binary closes its resources.

use crate::rpc::{self, Drain, RpcLayers, RpcMetrics};
use credentials_proto::health::HealthServer;
use std::{
    fmt::Display,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::{sync::oneshot, task::JoinHandle, time::Instant};
use tonic_health::{
    ServingStatus,
    pb::{HealthCheckRequest, HealthCheckResponse, health_server::Health as _},
    server::{HealthReporter, HealthService},
};

/// After the last accepted call ends, how long new calls still get UNAVAILABLE before the
/// connections close: clients that just got an answer then see a retryable refusal instead of
/// a request dropped with the closing connection (tonic reports that as CANCELLED).
pub const DRAIN_SETTLE: Duration = Duration::from_millis(100);

/// A server's `grpc.health.v1` statuses: `""` and each of its services, all the same.
#[derive(Debug, Clone)]
pub struct Health {
    reporter: HealthReporter,
    names: Arc<[String]>,
}

impl Health {
    /// Reports every name SERVING or NOT_SERVING.
    pub async fn set_serving(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in self.names.iter() {
            self.reporter.set_service_status(name, status).await;
        }
    }

    /// Ends every `Health/Watch` stream (each has seen NOT_SERVING first). Watchers, such as
    /// client-side load balancers, otherwise hold a stream open for ever and the close would
    /// always wait out the whole grace period.
    async fn end_watches(&mut self) {
        for name in self.names.iter() {
            self.reporter.clear_service_status(name).await;
        }
    }

    /// The `grpc.health.v1.Health` service answering from these statuses; several servers
    /// (a main port and a probe port) may serve it. tonic-health answers, behind the server
    /// credentials-proto generates, so a malformed check is INVALID_ARGUMENT like any request.
    pub fn service(&self) -> HealthServer<HealthChecks> {
        HealthServer::new(HealthChecks(HealthService::from_health_reporter(
            self.reporter.clone(),
        )))
        .max_decoding_message_size(crate::reflection::MAX_PLUMBING_MESSAGE_BYTES)
    }

    /// Serves this health alone, in plaintext, on `addr`, and logs "health listening": for
    /// kubelet gRPC probes, which speak neither TLS nor Unix sockets. No RPC layers, and it is
    /// not part of the drain: it keeps answering (NOT_SERVING) while the main port drains, until
    /// the binary aborts the returned task.
    pub async fn serve_probe_port(&self, addr: SocketAddr) -> Result<JoinHandle<()>, String> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot bind health address {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(address = %local, "health listening");
        // The default connection limits: probes connect, check and leave; a connection that
        // stays silent is closed like on the main port.
        let limits = crate::ConnectionLimits::default();
        let health_only = limits
            .server()
            .add_service(self.service())
            .serve_with_incoming(
                limits.guard(tonic::transport::server::TcpIncoming::from(listener)),
            );
        Ok(tokio::spawn(async move {
            if let Err(e) = health_only.await {
                tracing::error!(error = %e, "health server failed");
            }
        }))
    }
}

/// tonic-health's service, answering for the generated [`HealthServer`].
#[derive(Debug)]
pub struct HealthChecks(HealthService);

#[tonic::async_trait]
impl credentials_proto::health::Health for HealthChecks {
    type WatchStream = <HealthService as tonic_health::pb::health_server::Health>::WatchStream;

    async fn check(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        self.0.check(request).await
    }

    async fn watch(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        self.0.watch(request).await
    }
}

/// A server before it serves: health NOT_SERVING, the drain, the background tasks.
#[derive(Debug)]
pub struct Lifecycle {
    health: Health,
    drain: Drain,
    grace: Duration,
    background: Vec<JoinHandle<()>>,
}

impl Lifecycle {
    /// Step 1: health for `""` and `services` (fully qualified names), all NOT_SERVING;
    /// `grace` bounds the whole shutdown.
    pub async fn begin(services: &[&str], grace: Duration) -> Self {
        let names: Vec<String> = std::iter::once("")
            .chain(services.iter().copied())
            .map(str::to_owned)
            .collect();
        let health = Health {
            reporter: HealthReporter::new(),
            names: names.into(),
        };
        health.set_serving(false).await;
        Self {
            health,
            drain: Drain::new(),
            grace,
            background: Vec::new(),
        }
    }

    /// The health statuses, for the binary's readiness rule.
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// The shared layers ([`rpc::layers`]) around this server's drain, recording into
    /// `metrics`.
    pub fn layers(&self, metrics: RpcMetrics) -> RpcLayers {
        rpc::layers(metrics, self.drain.clone())
    }

    /// A background task that lives while the server serves and stops first at shutdown.
    pub fn adopt(&mut self, task: JoinHandle<()>) {
        self.background.push(task);
    }

    /// Step 3: spawns `serve`, which must serve the router until the [`StopSignal`] it is
    /// given resolves (`router.serve_with_incoming_shutdown(incoming, stop)`).
    pub fn serve<F>(self, serve: impl FnOnce(StopSignal) -> F) -> Serving
    where
        F: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
    {
        let (stop, stop_rx) = oneshot::channel();
        let server = tokio::spawn(serve(StopSignal(stop_rx)));
        Serving {
            health: self.health,
            drain: self.drain,
            grace: self.grace,
            background: self.background,
            stop,
            server,
        }
    }
}

/// Resolves when the server should stop accepting and close its connections.
#[derive(Debug)]
pub struct StopSignal(oneshot::Receiver<()>);

impl Future for StopSignal {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A dropped sender (the `Serving` went away) stops the server too.
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// A serving server, until [`Serving::shutdown`].
#[derive(Debug)]
pub struct Serving {
    health: Health,
    drain: Drain,
    grace: Duration,
    background: Vec<JoinHandle<()>>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Serving {
    /// The health statuses, for the binary's readiness rule.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Serves until SIGTERM or SIGINT, then shuts down.
    pub async fn until_signal(self) {
        crate::shutdown_signal().await;
        self.shutdown().await;
    }

    /// Shuts down in the module's five steps, within the grace period.
    pub async fn shutdown(self) {
        let Serving {
            mut health,
            drain,
            grace,
            background,
            stop,
            server,
        } = self;
        let deadline = Instant::now() + grace;
        // 1. Nothing in the background may report SERVING again.
        for task in background {
            task.abort();
        }
        // 2. NOT_SERVING first, so load balancers stop sending.
        health.set_serving(false).await;
        // 3. Refuse new calls; wait for the accepted ones.
        drain.start();
        tracing::info!(
            in_flight = drain.in_flight(),
            "draining: new calls are refused"
        );
        if tokio::time::timeout_at(deadline, drain.idle())
            .await
            .is_ok()
        {
            // 4. The settle pause.
            tokio::time::sleep_until(deadline.min(Instant::now() + DRAIN_SETTLE)).await;
        }
        // 5. Close: stop accepting, end the watches, wait for the connections.
        let _ = stop.send(());
        health.end_watches().await;
        await_close(server, deadline, grace).await;
    }
}

/// Waits for a closing server task until `deadline` and logs how the close ended; `grace` is
/// only reported.
async fn await_close<E: Display>(
    server: JoinHandle<Result<(), E>>,
    deadline: Instant,
    grace: Duration,
) {
    match tokio::time::timeout_at(deadline, server).await {
        Ok(Ok(Ok(()))) => tracing::info!("drained; exiting"),
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "server failed while draining"),
        Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
        Err(_) => tracing::warn!(
            ?grace,
            "requests still in flight after the grace period; exiting anyway"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Registry;
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus as Status,
        health_client::HealthClient,
    };

    const SERVICE: &str = "test.v1.Service";

    #[tokio::test]
    async fn health_follows_the_lifecycle_and_shutdown_ends_the_watches() {
        let lifecycle = Lifecycle::begin(&[SERVICE], Duration::from_secs(10)).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = tonic::transport::Server::builder()
            .layer(lifecycle.layers(RpcMetrics::register(&Registry::new())))
            .add_service(lifecycle.health().service());
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let serving = lifecycle.serve(|stop| router.serve_with_incoming_shutdown(incoming, stop));

        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = HealthClient::new(channel);
        let check = |service: &str| HealthCheckRequest {
            service: service.into(),
        };
        for name in ["", SERVICE] {
            let status = health.check(check(name)).await.unwrap().into_inner();
            assert_eq!(status.status(), Status::NotServing, "{name:?} before ready");
        }
        serving.health().set_serving(true).await;
        let status = health.check(check(SERVICE)).await.unwrap().into_inner();
        assert_eq!(status.status(), Status::Serving);

        // A watcher, as a client-side load balancer keeps open: it hears NOT_SERVING, and
        // its stream ends instead of holding the close for the whole grace period.
        let mut watch = health.watch(check(SERVICE)).await.unwrap().into_inner();
        assert_eq!(
            watch.message().await.unwrap().unwrap().status(),
            Status::Serving
        );
        let watcher = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Ok(Some(message)) = watch.message().await {
                seen.push(message.status());
            }
            seen
        });
        let started = std::time::Instant::now();
        serving.shutdown().await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let seen = tokio::time::timeout(Duration::from_secs(5), watcher)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen, [Status::NotServing]);
        // Closed: nothing answers any more.
        assert!(health.check(check("")).await.is_err());
    }
}
