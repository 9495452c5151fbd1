use crate::conn::{CancelTls, Conn};
use crate::{Result, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::time::Duration;
use tokio_postgres::{NoTls, config::SslMode};

/// Public web roots plus the operator's CA certificates.
fn tls_config(ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = ca_pem {
        let mut added = 0;
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(pem) {
            let cert: rustls::pki_types::CertificateDer<'static> =
                cert.map_err(|e| StoreError::Config(format!("database CA file: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| StoreError::Config(format!("database CA file: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(StoreError::Config(
                "database CA file holds no certificate".into(),
            ));
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Arbitrary constant shared by every replica: whoever holds this advisory lock migrates, the
/// others wait and then find nothing left to do.
const MIGRATION_LOCK: i64 = 0x7661_756c_745f_6d31;

/// How to reach Postgres.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// A libpq URL or key=value string.
    pub url: String,
    /// Most connections in the pool.
    pub max_connections: usize,
    /// How long a request waits for a free connection.
    pub wait_timeout: Duration,
    /// How long opening a connection may take.
    pub connect_timeout: Duration,
    /// Extra CA certificates (PEM) trusted for `sslmode=require`, e.g. a managed Postgres's CA.
    pub ca_pem: Option<Vec<u8>>,
}

/// Connection-pool figures, for health and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open.
    pub size: usize,
    /// Connections idle.
    pub available: usize,
    /// Requests waiting for a connection.
    pub waiting: usize,
    /// The pool's limit.
    pub max_size: usize,
}

/// The credentials database.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    pub(crate) audit: crate::group_commit::AuditWriter,
    pub(crate) workspace_keys: std::sync::Arc<crate::keys::WorkspaceKeyCache>,
    /// How cancel requests reach Postgres (see `conn`).
    pub(crate) cancel: CancelTls,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("status", &self.status())
            .finish()
    }
}

impl Store {
    /// Builds the pool and starts the audit group-commit writer (so call it inside a Tokio
    /// runtime). Connects lazily: a Postgres that is down now makes calls fail with
    /// [`StoreError::Unavailable`] until it is up.
    pub fn new(config: &StoreConfig) -> Result<Self> {
        let mut pg: tokio_postgres::Config = config
            .url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::Config(e.to_string()))?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(config.connect_timeout);
        }
        if pg.get_application_name().is_none() {
            pg.application_name("credentials-api");
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        // TLS only when the string demands it: `prefer` (libpq's and tokio-postgres's default)
        // would otherwise fail outright against servers with self-signed certificates, where
        // libpq would encrypt without verifying. With `require` the certificate IS verified.
        let (manager, cancel) = match pg.get_ssl_mode() {
            SslMode::Require => {
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(
                    config.ca_pem.as_deref(),
                )?);
                (
                    Manager::from_config(pg, tls.clone(), manager_config),
                    CancelTls::Rustls(tls),
                )
            }
            _ => (
                Manager::from_config(pg, NoTls, manager_config),
                CancelTls::Plain,
            ),
        };
        let pool = Pool::builder(manager)
            .max_size(config.max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.wait_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let audit = crate::group_commit::AuditWriter::spawn(pool.clone());
        Ok(Self {
            pool,
            audit,
            workspace_keys: Default::default(),
            cancel,
        })
    }

    /// Applies the embedded migrations. Safe when several replicas start at once: they
    /// serialize on a session advisory lock.
    pub async fn migrate(&self) -> Result<()> {
        let mut conn = self.pool.get().await?;
        conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let client: &mut tokio_postgres::Client = &mut conn;
        let result = embedded::migrations::runner().run_async(client).await;
        // Unlock even after a failure; the session would release it anyway when it closes.
        conn.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await?;
        let report = result.map_err(|e| StoreError::Migration(e.to_string()))?;
        for migration in report.applied_migrations() {
            tracing::info!(migration = %migration, "migration applied");
        }
        Ok(())
    }

    /// A connection from the pool that is discarded if dropped in the middle of a write.
    pub(crate) async fn conn(&self) -> Result<Conn> {
        Ok(Conn::new(self.pool.get().await?, self.cancel.clone()))
    }

    /// Checks that Postgres answers.
    pub async fn ping(&self) -> Result<()> {
        let conn = self.pool.get().await?;
        conn.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// The pool's figures now.
    pub fn status(&self) -> PoolStatus {
        let s = self.pool.status();
        PoolStatus {
            size: s.size,
            available: s.available,
            waiting: s.waiting,
            max_size: s.max_size,
        }
    }

    /// Closes the pool: later calls fail, open connections are dropped.
    pub fn close(&self) {
        self.pool.close();
    }
}
