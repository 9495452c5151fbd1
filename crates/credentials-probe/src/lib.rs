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
pub use egress::{EgressError, EgressPolicy, IpRange, Nat64Prefix};
pub use http::{HttpClient, HttpError};
pub use outcome::{ProbeConfig, ProbeResult, ProviderEndpoints, ValidationOutcome};

use credentials_core::SecretValue;
use credentials_core::catalogue::{self, Probe};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::sync::Semaphore;

/// Runs validation probes: dispatches on the catalogue's probe of the type, bounds concurrency
/// and the deadline.
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

    /// Discovers the schema of a database credential (a type whose catalogue probe is a
    /// database engine, tools `database` by its `schema_type`) within `options.timeout`.
    pub async fn discover_schema(
        &self,
        type_id: &str,
        value: &SecretValue,
        options: &credentials_core::schema::DiscoveryOptions,
    ) -> Result<credentials_core::schema::DatabaseSchema, DiscoveryError> {
        let Some(spec) = catalogue::lookup(type_id) else {
            return Err(DiscoveryError {
                outcome: ValidationOutcome::UnsupportedType,
                message: unknown_type(type_id),
            });
        };
        let _permit = self.permits.acquire().await;
        db::discover(spec, value, &self.config, options).await
    }

    /// Runs the probe the catalogue declares for the type.
    async fn dispatch(&self, type_id: &str, value: &SecretValue) -> ProbeResult {
        let (config, http) = (&*self.config, &self.http);
        let Some(spec) = catalogue::lookup(type_id) else {
            return ProbeResult::unsupported(unknown_type(type_id));
        };
        match &spec.probe {
            Probe::OpenAiCompatible { .. } => {
                providers::key_read(config, http, spec, None, value).await
            }
            Probe::KeyRead(read) => {
                providers::key_read(config, http, spec, Some(read), value).await
            }
            Probe::AwsCallerIdentity { .. } => {
                providers::aws_caller_identity(config, http, spec, value).await
            }
            Probe::Database(_) | Probe::DatabaseOfField(_) => {
                db::validate(spec, value, config).await
            }
            Probe::SmtpLogin => smtp::validate(value, config).await,
            Probe::ServiceAccountToken => warehouse::bigquery(config, http, spec, value).await,
            Probe::SnowflakeLogin { .. } => warehouse::snowflake(config, http, spec, value).await,
            Probe::ReadableUrl => warehouse::static_file(http, value).await,
            Probe::KeyAtEndpoint => tool_probes::api_key(http, spec, value).await,
            Probe::OAuthRefresh => tool_probes::oauth(http, value).await,
            Probe::Unsupported(reason) => ProbeResult::unsupported(*reason),
        }
    }
}

fn unknown_type(type_id: &str) -> String {
    format!(
        "unknown credential type {}",
        type_id.chars().take(64).collect::<String>()
    )
}

/// The fields a probe reads by name (database probes find their connection string by format,
/// key reads use the primary field).
#[cfg(test)]
fn fields_read(probe: &Probe) -> &'static [&'static str] {
    match probe {
        Probe::AwsCallerIdentity { .. } => providers::AWS_FIELDS,
        Probe::SmtpLogin => smtp::FIELDS,
        Probe::ServiceAccountToken => warehouse::BIGQUERY_FIELDS,
        Probe::SnowflakeLogin { .. } => warehouse::SNOWFLAKE_FIELDS,
        Probe::ReadableUrl => warehouse::STATIC_FILE_FIELDS,
        Probe::KeyAtEndpoint => tool_probes::API_KEY_FIELDS,
        Probe::OAuthRefresh => tool_probes::OAUTH_FIELDS,
        Probe::OpenAiCompatible { .. }
        | Probe::KeyRead(_)
        | Probe::Database(_)
        | Probe::DatabaseOfField(_)
        | Probe::Unsupported(_) => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credentials_core::Engine;

    /// What the prober lacks for each catalogue entry, one line per gap.
    fn gaps(spec: &credentials_core::TypeSpec) -> Vec<String> {
        let mut out = Vec::new();
        for name in fields_read(&spec.probe) {
            if spec.field(name).is_none() {
                out.push(format!(
                    "{}: its {:?} probe reads a field {name} the type does not declare",
                    spec.id, spec.probe
                ));
            }
        }
        let http_key = matches!(
            spec.probe,
            Probe::OpenAiCompatible { .. } | Probe::KeyRead(_) | Probe::KeyAtEndpoint
        );
        let empty = SecretValue::from_json(br#"{"fields":{}}"#).unwrap_or_else(|_| unreachable!());
        let request = http::Request::get("https://example.com/");
        if http_key
            && providers::attach_key(request, spec.attach, "key", &empty)
                .is_err_and(|r| r.outcome == ValidationOutcome::UnsupportedType)
        {
            out.push(format!(
                "{}: the prober cannot attach a key as {:?} (see providers::attach_key)",
                spec.id, spec.attach
            ));
        }
        if spec.default_base_url().is_some()
            && ProviderEndpoints::default().base_url(spec.id) != spec.default_base_url()
        {
            out.push(format!(
                "{}: its default base URL is not in ProviderEndpoints",
                spec.id
            ));
        }
        if let Probe::Database(engine) = spec.probe
            && engine.is_probed()
            && !db::has_client(engine)
        {
            out.push(format!(
                "{}: the catalogue says {engine:?} is probed, but db/ has no client for it",
                spec.id
            ));
        }
        out
    }

    #[test]
    fn the_prober_implements_every_catalogue_entry() {
        let all: Vec<String> = catalogue::all().iter().flat_map(gaps).collect();
        assert!(all.is_empty(), "the prober lacks:\n{}", all.join("\n"));
    }

    #[test]
    fn every_probed_engine_has_a_client_and_no_other() {
        for engine in Engine::ALL {
            assert_eq!(
                db::has_client(engine),
                engine.is_probed(),
                "{engine:?}: the catalogue's EngineProbe and db/'s clients disagree"
            );
        }
    }
}
