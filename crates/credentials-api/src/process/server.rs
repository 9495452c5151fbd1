//! Startup, readiness and shutdown of `credentials-api serve`.

use crate::edge::http::{Channel, HttpEdge, HttpMetrics};
use crate::edge::{AccessService, AdminService, CredentialsService};
use crate::edge::{AuthLayer, DeadlineLayer};
use crate::process::config::{DatabaseArgs, JwtArgs, ServeConfig};
use crate::process::metrics::ApiMetrics;
use crate::service::Credentials;
use crate::service::{
    DataKeyCache, DataKeyCacheConfig, KeyLifecycle, RateLimiter, SeedConfig, SweepConfig,
};
use auth::{Verifier, VerifierConfig};
use credentials_core::limits::MAX_REQUEST_BYTES;
use credentials_proto::credentials::v1::{
    access_service_server::AccessServiceServer, admin_service_server::AdminServiceServer,
    credentials_service_server::CredentialsServiceServer,
};
use credentials_store::{Store, StoreConfig};
use kms::{ClientConfig, KmsClient, KmsEndpoint};
use service_kit::{Health, Lifecycle, ServerTls, Serving, TlsFiles};
use std::{fs, sync::Arc, time::Duration};
use tonic::transport::server::TcpIncoming;

const MANAGEMENT: &str = "credentials.v1.CredentialsService";
const ACCESS: &str = "credentials.v1.AccessService";
const ADMIN: &str = "credentials.v1.AdminService";
/// Builds the token verifier from the configured key sources; fails on none or a bad file.
pub fn verifier(args: &JwtArgs) -> Result<Verifier, String> {
    let mut verifier = Verifier::new(VerifierConfig {
        issuer: args.jwt_issuer.clone(),
        audience: args.jwt_audience.clone(),
        leeway: args.jwt_leeway,
    })
    .with_token_cache_capacity(args.jwt_token_cache_size);
    let read = |path: &std::path::Path| {
        fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    if let Some(path) = &args.jwt_hs256_secret_file {
        let secret = zeroize::Zeroizing::new(read(path)?);
        let trimmed = secret.trim_ascii_end();
        verifier = verifier
            .with_hs256_secret(trimmed)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        tracing::warn!("HS256 shared-secret tokens accepted: use public keys in production");
    }
    if let Some(path) = &args.jwt_public_keys_file {
        let pem = String::from_utf8(read(path)?)
            .map_err(|_| format!("{} is not text", path.display()))?;
        verifier = verifier
            .with_public_keys_pem(&pem)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.jwt_jwks_file {
        let json = String::from_utf8(read(path)?)
            .map_err(|_| format!("{} is not text", path.display()))?;
        verifier = verifier
            .with_jwks(&json)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if verifier.key_count() == 0 {
        return Err("no token keys: give --jwt-hs256-secret-file, --jwt-public-keys-file or --jwt-jwks-file".into());
    }
    Ok(verifier)
}

/// The pool, after waiting for Postgres (up to the startup timeout) and, unless told not to,
/// applying migrations.
pub async fn store(args: &DatabaseArgs, migrate: bool) -> Result<Store, String> {
    let store = Store::new(&StoreConfig {
        url: args.database_url.clone(),
        max_connections: args.db_max_connections,
        wait_timeout: args.db_wait_timeout,
        connect_timeout: Duration::from_secs(3),
        ca_pem: match &args.database_ca_file {
            Some(path) => {
                Some(fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?)
            }
            None => None,
        },
    })
    .map_err(|e| format!("database configuration: {e}"))?;
    let deadline = tokio::time::Instant::now() + args.startup_timeout;
    loop {
        let attempt = if migrate {
            store.migrate().await
        } else {
            store.ping().await
        };
        match attempt {
            Ok(()) => return Ok(store),
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "waiting for the database");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                let source = std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                return Err(format!("database: {e} {source}"));
            }
        }
    }
}

fn kms_client(config: &ServeConfig) -> Result<KmsClient, String> {
    let endpoint = if config.kms_endpoint.starts_with("https://") {
        let (Some(ca), Some(cert), Some(key)) = (
            &config.kms_tls_ca,
            &config.kms_tls_cert,
            &config.kms_tls_key,
        ) else {
            return Err(
                "an https kms endpoint needs --kms-tls-ca, --kms-tls-cert and --kms-tls-key".into(),
            );
        };
        let read = |p: &std::path::Path| {
            fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        };
        KmsEndpoint::Tls {
            uri: config.kms_endpoint.clone(),
            ca_pem: read(ca)?,
            cert_pem: read(cert)?,
            key_pem: zeroize::Zeroizing::new(read(key)?),
            server_name: config.kms_server_name.clone(),
        }
    } else {
        KmsEndpoint::parse_plain(&config.kms_endpoint).map_err(|e| e.to_string())?
    };
    let mut client_config = ClientConfig::new(endpoint);
    client_config.timeout = config.kms_timeout;
    KmsClient::new(client_config).map_err(|e| e.to_string())
}

/// The TLS of the gRPC port, or `None` for plaintext, which is allowed on loopback and, with
/// a warning, behind --insecure-plaintext.
fn server_tls(config: &ServeConfig) -> Result<Option<Arc<ServerTls>>, String> {
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        let files = TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: config.tls_client_ca.clone(),
        };
        return Ok(Some(Arc::new(
            ServerTls::load(files).map_err(|e| e.to_string())?,
        )));
    }
    let listen = match config.http_listen.0 {
        // The HTTP port carries the same tokens and secrets: the same rule.
        Some(http) if !http.ip().is_loopback() => http,
        _ => config.listen,
    };
    if listen.ip().is_loopback() {
        Ok(None)
    } else if config.insecure_plaintext {
        tracing::warn!(
            %listen,
            "serving PLAINTEXT gRPC (and HTTP) off loopback: bearer tokens and secrets cross the network in clear; development only"
        );
        Ok(None)
    } else {
        Err(format!(
            "{listen} is not a loopback address: give --tls-cert and --tls-key (or --insecure-plaintext for development)"
        ))
    }
}

/// The validation prober: egress guard with the operator's exceptions and CAs, provider URLs.
fn prober(config: &ServeConfig) -> Result<credentials_probe::Prober, String> {
    let endpoints = config.provider_url.iter().fold(
        credentials_probe::ProviderEndpoints::default(),
        |e, (t, u)| e.with_override(t, u),
    );
    if !config.egress_allow.is_empty() || !config.egress_allow_verified.is_empty() {
        let show = |r: &[credentials_probe::IpRange]| -> Vec<String> {
            r.iter().map(ToString::to_string).collect()
        };
        tracing::warn!(
            ranges = ?show(&config.egress_allow),
            verified_tls_only = ?show(&config.egress_allow_verified),
            "the egress guard allows these otherwise refused ranges"
        );
    }
    let mut egress = credentials_probe::EgressPolicy::new()
        .allow(config.egress_allow.iter().copied())
        .allow_verified(config.egress_allow_verified.iter().copied())
        .nat64_prefixes(config.egress_nat64_prefix.iter().copied());
    if let Some(path) = &config.probe_ca_file {
        let pem = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        egress = egress
            .trust_pem(&pem)
            .map_err(|e| format!("--probe-ca-file {}: {e}", path.display()))?;
    }
    Ok(credentials_probe::Prober::new(
        credentials_probe::ProbeConfig {
            timeout: config.probe_timeout,
            egress,
            endpoints,
            budgets: credentials_probe::ProbeBudgets {
                validation: credentials_probe::Budget {
                    global: config.probe_concurrency.max(1),
                    per_workspace: config.probe_concurrency_per_workspace.max(1),
                },
                discovery: credentials_probe::Budget {
                    global: config.discovery_concurrency.max(1),
                    per_workspace: config.discovery_concurrency_per_workspace.max(1),
                },
                queue_timeout: config.probe_queue_timeout,
            },
        },
    ))
}

/// Reports SERVING while Postgres and the kms answer and the kms holds every master-key version
/// live credentials are wrapped under (see `service::KeyringCheck`), NOT_SERVING otherwise;
/// logs changes with the reason and keeps `kms_missing_key_versions` current.
fn spawn_readiness(
    credentials: Credentials,
    health: Health,
    metrics: ApiMetrics,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let keyring = credentials.keyring_check().clone();
        let mut ready = false;
        let mut reason = String::new();
        loop {
            let db = tokio::time::timeout(Duration::from_secs(2), credentials.store().ping()).await;
            let kms = credentials.kms().is_serving().await;
            let (database_ok, kms_ok) = (matches!(db, Ok(Ok(()))), matches!(kms, Ok(true)));
            // Compared only while both answer; otherwise the last comparison stands.
            let missing = if database_ok && kms_ok {
                match tokio::time::timeout(Duration::from_secs(2), keyring.run()).await {
                    Ok(Ok(missing)) => missing,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot compare the kms's keyring with the stored key versions");
                        keyring.missing()
                    }
                    Err(_) => keyring.missing(),
                }
            } else {
                keyring.missing()
            };
            metrics.record_missing_key_versions(&missing);
            // Expired data keys leave memory within a tick, read again or not.
            credentials.data_keys().purge_expired();
            let now_ready = database_ok && kms_ok && missing.is_empty();
            let now_reason = match missing.is_empty() {
                true => String::new(),
                false => crate::service::KeyringCheck::reason(&missing),
            };
            if now_ready != ready || now_reason != reason {
                ready = now_ready;
                reason = now_reason;
                health.set_serving(ready).await;
                if ready {
                    tracing::info!("ready: the database and the kms answer");
                } else if !reason.is_empty() {
                    // A human must act: the credentials under these versions are unreadable.
                    tracing::error!(reason, "not ready");
                } else {
                    tracing::warn!(database_ok, kms_ok, "not ready");
                }
            }
            let pause = Duration::from_millis(if database_ok && kms_ok { 2000 } else { 250 });
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                // An access found its key version missing: compare now, not at the next tick.
                () = keyring.recheck_requested() => {}
            }
        }
    })
}

/// A started server: serving on [`Running::local_addr`] until [`Running::shutdown`].
#[derive(Debug)]
pub struct Running {
    address: std::net::SocketAddr,
    http_address: Option<std::net::SocketAddr>,
    serving: Serving,
    store: Store,
    health_port: Option<tokio::task::JoinHandle<()>>,
}

/// Runs the server until SIGTERM or SIGINT. Errors are startup failures.
pub async fn run(config: ServeConfig) -> Result<(), String> {
    let running = start(config).await?;
    service_kit::shutdown_signal().await;
    running.shutdown().await;
    Ok(())
}

/// Starts the server: checks the configuration, waits for Postgres and migrates, binds, and
/// serves until [`Running::shutdown`]. Errors are startup failures.
pub async fn start(config: ServeConfig) -> Result<Running, String> {
    // 1. Health first, NOT_SERVING, so nothing reports ready before Postgres and the kms answer.
    let mut lifecycle = Lifecycle::begin(&[MANAGEMENT, ACCESS, ADMIN], config.shutdown_grace).await;

    // 2. Configuration that can be wrong: fail before touching anything else.
    let verifier = Arc::new(verifier(&config.jwt)?);
    let tls = server_tls(&config)?;
    let connection_limits = config.connections.limits()?;
    let metrics = ApiMetrics::new();
    metrics.watch_token_cache(verifier.clone());
    let kms = kms_client(&config)?.with_metrics(metrics.kms.clone());
    if let Some(key) = &config.master_key_id {
        kms::validate_key_id("--master-key-id", key).map_err(|e| e.to_string())?;
    }

    // 3. The database: wait for it and migrate (advisory-locked, safe with many replicas).
    let store = store(&config.database, !config.no_migrate).await?;
    metrics.watch_pool(&store);
    let data_keys = Arc::new(DataKeyCache::new(DataKeyCacheConfig {
        max_age: config.data_key_cache_max_age,
        capacity: config.data_key_cache_size,
    }));
    metrics.watch_data_key_cache(data_keys.clone());
    let seeds = SeedConfig {
        max_age: config.write_seed_max_age,
        max_uses: config.write_seed_max_uses,
        keyring_check: config.write_seed_keyring_check,
        ..SeedConfig::default()
    };
    let credentials = Credentials::new(store.clone(), kms.clone(), config.master_key_id.clone())
        .with_rate_limits(RateLimiter::new(
            config.rate_limits.access_rate_limit,
            config.rate_limits.probe_rate_limit,
        ))
        .with_write_seeds(seeds)
        .with_data_key_cache(data_keys.clone());
    let keys = KeyLifecycle::new(
        store.clone(),
        kms,
        SweepConfig {
            batch_size: config.rewrap_batch_size.max(1),
            pause: config.rewrap_pause,
            interval: (!config.rewrap_interval.is_zero()).then_some(config.rewrap_interval),
        },
    )
    .with_write_seeds(seeds)
    .with_data_key_cache(data_keys);

    let prober = prober(&config)?;

    // 4. Bind, and say where.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot bind {}: {e}", config.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let http_listener = match config.http_listen.0 {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot bind --http-listen {addr}: {e}"))?,
        ),
        None => None,
    };
    let http_address = match &http_listener {
        Some(l) => Some(l.local_addr().map_err(|e| e.to_string())?),
        None => None,
    };
    tracing::info!(
        %address,
        tls = tls.is_some(),
        mutual_tls = tls.as_ref().is_some_and(|t| t.mutual()),
        certificate_sha256 = tls.as_ref().map(|t| t.fingerprint()),
        "listening"
    );
    if let Some(http_address) = http_address {
        tracing::info!(address = %http_address, tls = tls.is_some(), "HTTP/JSON listening");
    }
    // SIGHUP reloads the certificate, key and client CA: new handshakes use them, live
    // connections stay.
    if let Some(tls) = &tls {
        lifecycle.adopt(service_kit::reload_tls_on_sighup(tls.clone())?);
    }
    // The plaintext health port for kubelet probes; it outlives the drain (see shutdown).
    let health_port = match config.health_addr {
        Some(addr) => Some(lifecycle.health().serve_probe_port(addr).await?),
        None => None,
    };
    if let Some(addr) = config.admin_addr {
        service_kit::serve_admin(addr, metrics.registry.clone())
            .await
            .map_err(|e| e.to_string())?;
        lifecycle.adopt(metrics.spawn_key_version_refresh(store.clone()));
    }

    // 5. SERVING once the database and the kms answer (and NOT_SERVING whenever they stop).
    lifecycle.adopt(spawn_readiness(
        credentials.clone(),
        lifecycle.health(),
        metrics.clone(),
    ));
    // Resumes a sweep a crash interrupted, then sweeps on the schedule.
    lifecycle.adopt(keys.spawn_scheduler());

    // 6. The stack, outermost first: the shared layers (a span per RPC, its metrics, drain
    //    admission), then the server's own deadline (outside authentication so that it bounds
    //    everything the request does, and inside the drain, which waits for it to answer),
    //    then authentication: the token, and the permission the RPC declares
    //    (`edge::permissions`), before any handler runs; inside the drain so a refused call
    //    costs no token check, and inside the span so the request id and subject land on it.
    //    Health and reflection need no token. The HTTP port sends its calls through the same
    //    stack, in process, so both ports allow, audit and count alike.
    let stack = tower::ServiceBuilder::new()
        .layer(lifecycle.layers(metrics.rpc.clone()))
        .layer(DeadlineLayer::new(config.request_timeout))
        .layer(AuthLayer::new(verifier));
    let routes = tonic::service::Routes::new(lifecycle.health().service())
        .add_service(service_kit::reflection_v1(&[MANAGEMENT, ACCESS, ADMIN]))
        .add_service(service_kit::reflection_v1alpha(&[
            MANAGEMENT, ACCESS, ADMIN,
        ]))
        .add_service(
            CredentialsServiceServer::new(CredentialsService::new(credentials.clone(), prober))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            AccessServiceServer::new(AccessService::new(credentials))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            AdminServiceServer::new(AdminService::new(keys))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        );
    let http = match http_listener {
        Some(listener) => {
            let channel: Channel = tower::util::BoxCloneSyncService::new(
                tower::ServiceBuilder::new()
                    .map_response(|r: tonic::codegen::http::Response<_>| {
                        r.map(tonic::body::Body::new)
                    })
                    .service(stack.clone().service(routes.clone().prepare())),
            );
            let edge = HttpEdge::new(channel, HttpMetrics::register(&metrics.registry))?;
            Some((listener, edge))
        }
        None => None,
    };
    let router = connection_limits.server().layer(stack).add_routes(routes);
    let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
    let tls_http = tls.clone();
    let http = async move {
        if let Some((listener, edge)) = http {
            let mut stop = http_stopped;
            service_kit::serve_http(listener, tls_http, connection_limits, edge, async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            })
            .await;
        }
    };
    // Both ports stop together: the lifecycle's stop signal closes the gRPC port and tells the
    // HTTP port to stop accepting and let its connections finish.
    macro_rules! serve_both {
        ($incoming:expr) => {{
            let incoming = $incoming;
            lifecycle.serve(move |stop| async move {
                let http = tokio::spawn(http);
                let result = router
                    .serve_with_incoming_shutdown(incoming, async move {
                        stop.await;
                        let _ = stop_http.send(true);
                    })
                    .await;
                let _ = http.await;
                result
            })
        }};
    }
    let serving = match tls {
        Some(tls) => serve_both!(connection_limits.guard(tls.incoming(listener))),
        None => serve_both!(
            connection_limits.guard(
                TcpIncoming::from(listener)
                    .with_nodelay(Some(true))
                    .with_keepalive(Some(connection_limits.keepalive_interval))
            )
        ),
    };
    Ok(Running {
        address,
        http_address,
        serving,
        store,
        health_port,
    })
}

impl Running {
    /// The address the server listens on (useful with `--listen 127.0.0.1:0`).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.address
    }

    /// The address the HTTP/JSON port listens on, when it is on.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http_address
    }

    /// Shuts down: NOT_SERVING first (load balancers stop sending), then refuses new calls
    /// with UNAVAILABLE while the accepted ones finish, then closes the connections, all
    /// within the configured grace period (see [`service_kit::Lifecycle`]); then the pool.
    pub async fn shutdown(self) {
        self.serving.shutdown().await;
        // Then what is the API's own: the probe port (NOT_SERVING until now) and the pool.
        if let Some(task) = self.health_port {
            task.abort();
        }
        self.store.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::config::{Cli, Command};
    use clap::Parser;
    use std::time::{SystemTime, UNIX_EPOCH};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// The verifier `serve` builds from these extra flags, and a token it accepts.
    fn verifier_with(extra: &[&str]) -> (Verifier, String) {
        let secret = tempfile::NamedTempFile::new().unwrap();
        fs::write(secret.path(), SECRET).unwrap();
        let path = secret.path().to_str().unwrap().to_owned();
        let mut args = vec![
            "credentials-api",
            "serve",
            "--database-url",
            "postgres://u@h/db",
            "--jwt-hs256-secret-file",
            path.as_str(),
        ];
        args.extend_from_slice(extra);
        let Command::Serve(config) = Cli::try_parse_from(args).unwrap().command else {
            unreachable!("the subcommand is serve")
        };
        let verifier = verifier(&config.jwt).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = auth::Claims {
            sub: "svc".into(),
            iss: config.jwt.jwt_issuer.clone(),
            aud: config.jwt.jwt_audience.clone(),
            exp: now + 600,
            nbf: Some(now),
            iat: Some(now),
            workspaces: vec!["ws".into()],
            permissions: vec!["read".into()],
            platform_admin: false,
        };
        let key = auth::SigningKey::Hs256(zeroize::Zeroizing::new(SECRET.to_vec()));
        (verifier, key.mint(&claims).unwrap())
    }

    #[test]
    fn the_token_cache_size_flag_reaches_the_verifier() {
        let (default, token) = verifier_with(&[]);
        for _ in 0..3 {
            default.verify(&token, SystemTime::now()).unwrap();
        }
        let stats = default.token_cache_stats();
        assert_eq!((stats.hits, stats.entries), (2, 1), "{stats:?}");

        let (off, token) = verifier_with(&["--jwt-token-cache-size", "0"]);
        for _ in 0..3 {
            off.verify(&token, SystemTime::now()).unwrap();
        }
        let stats = off.token_cache_stats();
        assert_eq!((stats.hits, stats.entries), (0, 0), "{stats:?}");
    }
}
