//! Validation probes and schema discovery for stored credentials. Every outbound connection made
//! on a user's behalf goes through the [`egress`] guard.

#![forbid(unsafe_code)]

mod admission;
pub mod db;
pub mod egress;
pub mod http;
mod jwt;
pub mod outcome;
mod providers;
pub mod sigv4;
pub mod smtp;
mod tool_probes;
mod vector;
mod warehouse;

pub use admission::{Budget, Busy, BusyScope, ProbeBudgets, ProbeKind};
pub use db::DiscoveryError;
pub use egress::{EgressError, EgressPolicy, IpRange, Nat64Prefix};
pub use http::{HttpClient, HttpError};
pub use outcome::{ProbeConfig, ProbeResult, ProviderEndpoints, ValidationOutcome};

use credentials_core::SecretValue;
use credentials_core::catalogue::{self, Probe};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Runs validation probes and schema discoveries: dispatches on the catalogue's probe of the
/// type, admits each under its budgets (see [`ProbeBudgets`]) and bounds the deadline.
#[derive(Debug, Clone)]
pub struct Prober {
    config: Arc<ProbeConfig>,
    http: HttpClient,
    budgets: Arc<admission::Budgets>,
}

/// A probe admitted under its budgets: it holds its permits until it has run.
#[derive(Debug)]
pub struct Admitted {
    prober: Prober,
    kind: ProbeKind,
    permits: admission::Permits,
}

impl Prober {
    /// A prober with this configuration; HTTPS trusts the public web PKI.
    pub fn new(config: ProbeConfig) -> Self {
        let http = HttpClient::new(config.egress.clone());
        Self::with_http_client(config, http)
    }

    /// A prober whose HTTP probes use this client (tests pass one trusting a local CA).
    pub fn with_http_client(config: ProbeConfig, http: HttpClient) -> Self {
        let budgets = Arc::new(admission::Budgets::new(&config.budgets));
        Self {
            config: Arc::new(config),
            http,
            budgets,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProbeConfig {
        &self.config
    }

    /// Waits for a permit of `workspace`'s budget of `kind` and one of the process's, at most
    /// the queue timeout, `within` (what the caller's deadline leaves, if it has one) and the
    /// probe's own deadline (`deadline`: the probe timeout, or a discovery's). Refused with
    /// [`Busy`] when none came in time: the probe must not run.
    pub async fn admit(
        &self,
        kind: ProbeKind,
        workspace: &str,
        deadline: Duration,
        within: Option<Duration>,
    ) -> Result<Admitted, Busy> {
        self.admit_in(kind, Some(workspace), deadline, within).await
    }

    async fn admit_in(
        &self,
        kind: ProbeKind,
        workspace: Option<&str>,
        deadline: Duration,
        within: Option<Duration>,
    ) -> Result<Admitted, Busy> {
        let wait = within.map_or(deadline, |w| w.min(deadline));
        let permits = self.budgets.admit(kind, workspace, wait).await?;
        Ok(Admitted {
            prober: self.clone(),
            kind,
            permits,
        })
    }

    /// Probes a credential of type `type_id` under the process's budget only (for callers
    /// that act for no workspace: tools and tests). Never fails: no permit within the queue
    /// timeout is a [`ValidationOutcome::TimedOut`] outcome, as is a probe past its deadline.
    pub async fn validate(&self, type_id: &str, value: &SecretValue) -> ProbeResult {
        match self
            .admit_in(ProbeKind::Validation, None, self.config.timeout, None)
            .await
        {
            Ok(admitted) => admitted.validate(type_id, value).await,
            Err(busy) => ProbeResult::timed_out(busy.to_string()),
        }
    }

    /// Discovers a schema under the process's budget only (for callers that act for no
    /// workspace: tools and tests); see [`Admitted::discover_schema`].
    pub async fn discover_schema(
        &self,
        type_id: &str,
        value: &SecretValue,
        options: &credentials_core::schema::DiscoveryOptions,
    ) -> Result<credentials_core::schema::DatabaseSchema, DiscoveryError> {
        match self
            .admit_in(ProbeKind::Discovery, None, options.timeout, None)
            .await
        {
            Ok(admitted) => admitted.discover_schema(type_id, value, options).await,
            Err(busy) => Err(DiscoveryError {
                outcome: ValidationOutcome::TimedOut,
                message: busy.to_string(),
            }),
        }
    }

    /// Runs the probe the catalogue declares for the type.
    async fn dispatch(&self, type_id: &str, value: &SecretValue) -> ProbeResult {
        let (config, http) = (&*self.config, &self.http);
        let Some(spec) = catalogue::lookup(type_id) else {
            return ProbeResult::unsupported(unknown_type(type_id));
        };
        match &spec.probe {
            Probe::OpenAiCompatible { .. } => {
                providers::key_read(config, http, spec, None, None, value).await
            }
            Probe::KeyRead(read) => {
                providers::key_read(config, http, spec, Some(read), None, value).await
            }
            Probe::KeyReadAt { url_field, read } => {
                providers::key_read(config, http, spec, Some(read), Some(url_field), value).await
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

impl Admitted {
    /// What the probe's deadline leaves after the wait for its permits.
    fn left(&self, deadline: Duration) -> Duration {
        deadline.saturating_sub(self.permits.waited)
    }

    /// Probes a credential of type `type_id` against its target, within the probe deadline
    /// less the wait for the permit. Never fails: every failure is an outcome with a message
    /// free of secrets.
    pub async fn validate(self, type_id: &str, value: &SecretValue) -> ProbeResult {
        debug_assert_eq!(self.kind, ProbeKind::Validation);
        let started = Instant::now();
        let deadline = self.left(self.prober.config.timeout);
        let probe = self.prober.dispatch(type_id, value);
        let mut result = match tokio::time::timeout(deadline, probe).await {
            Ok(result) => result,
            Err(_) => ProbeResult::timed_out(format!(
                "no answer within {} ms",
                self.prober.config.timeout.as_millis()
            )),
        };
        result.latency = started.elapsed();
        result.checked_at = SystemTime::now();
        result
    }

    /// Discovers the schema of a database credential (a type whose catalogue probe is a
    /// database engine, tools `database` by its `schema_type`), or a vector store's indexes or
    /// collections as tables (see `vector.rs`), within `options.timeout` less the wait for the
    /// permit.
    pub async fn discover_schema(
        self,
        type_id: &str,
        value: &SecretValue,
        options: &credentials_core::schema::DiscoveryOptions,
    ) -> Result<credentials_core::schema::DatabaseSchema, DiscoveryError> {
        debug_assert_eq!(self.kind, ProbeKind::Discovery);
        let Some(spec) = catalogue::lookup(type_id) else {
            return Err(DiscoveryError {
                outcome: ValidationOutcome::UnsupportedType,
                message: unknown_type(type_id),
            });
        };
        let options = credentials_core::schema::DiscoveryOptions {
            timeout: self.left(options.timeout),
            ..options.clone()
        };
        let config = &self.prober.config;
        match spec.probe.key_read() {
            Some(_) => vector::discover(config, &self.prober.http, spec, value, &options).await,
            None => db::discover(spec, value, config, &options).await,
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
        | Probe::KeyReadAt { .. }
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
            Probe::OpenAiCompatible { .. }
                | Probe::KeyRead(_)
                | Probe::KeyReadAt { .. }
                | Probe::KeyAtEndpoint
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
