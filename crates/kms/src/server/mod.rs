//! The kms server: configuration, transports, health, keyring reload and shutdown. Only the
//! `kms` binary compiles this; the library others link holds none of it.

pub mod cli;
mod envelope;
mod keyring;
mod metrics;
mod service;
mod transport;

use crate::server::keyring::Keyring;
use clap::Args;
use kms::pb::key_management_service_server::KeyManagementServiceServer;
use metrics::KmsMetrics;
use service::{KeyringHandle, KmsService};
use service_kit::Lifecycle;
use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};
use tokio::signal::unix::{SignalKind, signal};

/// Largest request the kms decodes; its messages are a few hundred bytes.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// The health service name that reports whether the keyring is loaded.
const SERVICE_NAME: &str = "kms.v1.KeyManagementService";

/// `kms serve`: configuration of the server.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// The keyring file (JSON, mode 0600). Reloaded on SIGHUP.
    #[arg(long, env = "KMS_KEYRING")]
    pub keyring: PathBuf,

    /// Unix socket to serve on (created owner-only). The default transport.
    #[arg(long, env = "KMS_SOCKET", default_value = "/run/kms/kms.sock")]
    pub socket: PathBuf,

    /// Serve TCP on this address instead of the socket, with mutual TLS (needs --tls-cert,
    /// --tls-key and --tls-client-ca; SIGHUP reloads all three).
    #[arg(long, env = "KMS_TCP_ADDR")]
    pub tcp: Option<SocketAddr>,

    /// PEM certificate chain the kms presents on TCP.
    #[arg(long, env = "KMS_TLS_CERT", requires = "tcp")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "KMS_TLS_KEY", requires = "tcp")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA that client certificates must chain to; clients without one are refused.
    #[arg(long, env = "KMS_TLS_CLIENT_CA", requires = "tcp")]
    pub tls_client_ca: Option<PathBuf>,

    /// DEVELOPMENT ONLY: serve --tcp in plaintext, without TLS or client authentication.
    #[arg(long, env = "KMS_INSECURE_PLAINTEXT_TCP", requires = "tcp")]
    pub insecure_plaintext_tcp: bool,

    /// Also serve grpc.health.v1 alone, in plaintext, on this TCP address (for kubelet probes
    /// of a socket-only kms).
    #[arg(long, env = "KMS_HEALTH_ADDR")]
    pub health_addr: Option<SocketAddr>,

    /// Serve Prometheus metrics on GET /metrics on this plaintext TCP address (off when unset).
    #[arg(long, env = "KMS_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,

    /// DEVELOPMENT ONLY: accept a keyring file that group or others can read (logs a warning).
    #[arg(long, env = "KMS_ALLOW_INSECURE_KEYRING_PERMISSIONS")]
    pub allow_insecure_keyring_permissions: bool,

    /// Let a SIGHUP reload drop a key version the running kms holds, or change a version's
    /// material (refused by default: whatever is wrapped under it would become unreadable).
    /// Set it only for the deliberate reload, then remove it again.
    #[arg(long, env = "KMS_ALLOW_KEYRING_SHRINK")]
    pub allow_keyring_shrink: bool,

    /// How long in-flight requests may take to finish after SIGTERM.
    #[arg(long, env = "KMS_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
}

/// Runs the server until SIGTERM or SIGINT. Errors are startup failures, reported by `main`.
pub async fn run(config: ServeConfig) -> Result<(), String> {
    // 1. Health first, NOT_SERVING, so nothing reports ready before the keyring is in.
    let mut lifecycle = Lifecycle::begin(&[SERVICE_NAME], config.shutdown_grace).await;

    // 2. The keyring: a kms without one has nothing to serve, so a bad file is fatal here.
    let keyring = Keyring::load(&config.keyring, config.allow_insecure_keyring_permissions)
        .map_err(|e| e.to_string())?;
    tracing::info!(
        path = %config.keyring.display(),
        keys = keyring.keys().count(),
        default_key = keyring.default_key(),
        "keyring loaded"
    );
    let metrics = KmsMetrics::new();
    metrics.keyring_loaded(&keyring);
    let handle = Arc::new(KeyringHandle::new(keyring));
    let reload = spawn_reload_on_sighup(config.clone(), handle.clone(), metrics.clone())?;

    // 3. The optional plaintext health port, for probes: health alone, no RPC layers, and it
    //    keeps answering (NOT_SERVING) while the main port drains.
    let health_port = match config.health_addr {
        Some(addr) => Some(lifecycle.health().serve_probe_port(addr).await?),
        None => None,
    };

    // 3b. The optional admin port (metrics).
    if let Some(addr) = config.admin_addr {
        service_kit::serve_admin(addr, metrics.registry.clone())
            .await
            .map_err(|e| e.to_string())?;
    }

    // 4. Bind the transport, then the stack: the shared RPC layers (span, metrics, drain),
    //    then health, reflection and the key service (with its request size limit).
    let kms = KeyManagementServiceServer::new(KmsService::new(handle))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let (listener, tls) = transport::bind(&config).await?;
    // SIGHUP also reloads the TLS certificate: new handshakes use it, live connections stay.
    if let Some(tls) = tls {
        lifecycle.adopt(service_kit::reload_tls_on_sighup(tls)?);
    }
    let router = service_kit::ConnectionLimits::default()
        .server()
        .layer(lifecycle.layers(metrics.rpc.clone()))
        .add_service(lifecycle.health().service())
        .add_service(service_kit::reflection_v1(&[SERVICE_NAME]))
        .add_service(service_kit::reflection_v1alpha(&[SERVICE_NAME]))
        .add_service(kms);
    let serving = lifecycle.serve(|stop| listener.serve(router, stop));

    // 5. Serving: the keyring is in and the transport bound, so ready now.
    serving.health().set_serving(true).await;

    // 6. Shutdown on SIGTERM: NOT_SERVING, drain with a time limit, close.
    serving.until_signal().await;
    // 7. What is the kms's own: keyring reloads, the probe port, the socket file.
    reload.abort();
    if let Some(task) = health_port {
        task.abort();
    }
    transport::cleanup(&config);
    Ok(())
}

/// On SIGHUP, loads the keyring file again; a bad file, or one that loses or changes a version
/// the running keyring holds, keeps the old keyring and says why.
fn spawn_reload_on_sighup(
    config: ServeConfig,
    handle: Arc<KeyringHandle>,
    metrics: KmsMetrics,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let mut hup =
        signal(SignalKind::hangup()).map_err(|e| format!("cannot watch for SIGHUP: {e}"))?;
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let loaded = Keyring::load(&config.keyring, config.allow_insecure_keyring_permissions);
            let unsafe_change = loaded
                .as_ref()
                .ok()
                .and_then(|next| handle.current().unsafe_replacement(next));
            if let Some(problem) = unsafe_change {
                if !config.allow_keyring_shrink {
                    metrics.reload_refused();
                    tracing::error!(
                        problem = %problem,
                        "keyring reload refused: credentials wrapped under these versions would become unreadable; still serving the previous keyring (restore the versions, or reload with --allow-keyring-shrink if this is deliberate)"
                    );
                    continue;
                }
                tracing::warn!(
                    problem = %problem,
                    "keyring reload drops or changes key versions; allowed by --allow-keyring-shrink"
                );
            }
            match loaded {
                Ok(keyring) => {
                    let summary: Vec<String> = keyring
                        .keys()
                        .map(|k| format!("{}@v{}", k.id, k.primary))
                        .collect();
                    metrics.keyring_loaded(&keyring);
                    metrics.reloaded(true);
                    handle.replace(keyring);
                    tracing::info!(primaries = ?summary, "keyring reloaded");
                }
                Err(e) => {
                    metrics.reloaded(false);
                    tracing::error!(
                        error = %e,
                        "keyring reload failed; still serving the previous keyring"
                    )
                }
            }
        }
    }))
}
