//! Validation probes and schema discovery for stored credentials. Every outbound connection made
//! on a user's behalf goes through the [`egress`] guard.

#![forbid(unsafe_code)]

pub mod db;
pub mod egress;
pub mod http;
mod jwt;
pub mod outcome;
mod providers;
pub mod sigv4;
pub mod smtp;
mod tool_probes;
mod warehouse;

pub use db::DiscoveryError;
pub use egress::{EgressError, EgressPolicy, IpRange};
pub use http::{HttpClient, HttpError};
pub use outcome::{ProbeConfig, ProbeResult, ProviderEndpoints, ValidationOutcome};

use credentials_core::SecretValue;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::sync::Semaphore;

/// Runs validation probes: dispatches by type id, bounds concurrency and the deadline.
#[derive(Debug, Clone)]
pub struct Prober {
    config: Arc<ProbeConfig>,
    http: HttpClient,
    permits: Arc<Semaphore>,
}

impl Prober {
    /// A prober with this configuration; HTTPS trusts the public web PKI.
    pub fn new(config: ProbeConfig) -> Self {
        let http = HttpClient::new(config.egress.clone());
        Self::with_http_client(config, http)
    }

    /// A prober whose HTTP probes use this client (tests pass one trusting a local CA).
    pub fn with_http_client(config: ProbeConfig, http: HttpClient) -> Self {
        let permits = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
        Self {
            config: Arc::new(config),
            http,
            permits,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProbeConfig {
        &self.config
    }

    /// Probes a credential of type `type_id` against its target, within the configured
    /// deadline. Never fails: every failure is an outcome with a message free of secrets.
    pub async fn validate(&self, type_id: &str, value: &SecretValue) -> ProbeResult {
        // Waiting for a permit is not part of the probe's deadline or latency.
        let _permit = self.permits.acquire().await;
        let started = Instant::now();
        let deadline = self.config.timeout;
        let mut result = match tokio::time::timeout(deadline, self.dispatch(type_id, value)).await {
            Ok(result) => result,
            Err(_) => {
                ProbeResult::timed_out(format!("no answer within {} ms", deadline.as_millis()))
            }
        };
        result.latency = started.elapsed();
        result.checked_at = SystemTime::now();
        result
    }

    /// Discovers the schema of a database credential (`postgresql`, `redshift`, `mysql`,
    /// `clickhouse`, or tools `database` of those engines) within `options.timeout`.
    pub async fn discover_schema(
        &self,
        type_id: &str,
        value: &SecretValue,
        options: &credentials_core::schema::DiscoveryOptions,
    ) -> Result<credentials_core::schema::DatabaseSchema, DiscoveryError> {
        let _permit = self.permits.acquire().await;
        db::discover(type_id, value, &self.config, options).await
    }

    async fn dispatch(&self, type_id: &str, value: &SecretValue) -> ProbeResult {
        let (config, http) = (&*self.config, &self.http);
        match type_id {
            "bigquery" => warehouse::bigquery(config, http, value).await,
            "snowflake" => warehouse::snowflake(config, http, value).await,
            "static_file" => warehouse::static_file(http, value).await,
            "api_key" => tool_probes::api_key(http, value).await,
            "oauth" => tool_probes::oauth(http, value).await,
            "smtp" => smtp::validate(value, config).await,
            id if db::handles(id) => db::validate(id, value, config).await,
            id if providers::handles(id) => providers::validate(config, http, id, value).await,
            _ => ProbeResult::unsupported(format!(
                "unknown credential type {}",
                type_id.chars().take(64).collect::<String>()
            )),
        }
    }
}
