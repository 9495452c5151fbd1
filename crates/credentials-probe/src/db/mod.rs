//! Database probes: validation by a login plus `SELECT 1`, and schema discovery, for the types
//! whose catalogue probe is a database engine (tools `database`: the engine its field names).
//!
//! | engine | validation | discovery |
//! | --- | --- | --- |
//! | PostgreSQL, Redshift | login + `SELECT 1` (tokio-postgres, libpq `sslmode`s) | `pg_catalog` |
//! | MySQL | login + `SELECT 1` (mysql_async) | `information_schema` |
//! | ClickHouse | `SELECT 1` over the HTTP interface | `system.tables`, `system.columns` |
//! | others | unsupported, with the catalogue's reason | unsupported |

mod clickhouse;
mod mysql;
pub(crate) mod net;
mod postgres;

use crate::outcome::{ProbeConfig, ProbeResult, ValidationOutcome};
use credentials_core::SecretValue;
use credentials_core::catalogue::{Engine, EngineProbe, Format, Probe, TypeSpec};
use credentials_core::schema::{DatabaseSchema, DiscoveryOptions};
use net::{Failure, within};

#[cfg(test)]
mod agreement;
use postgres::Flavor;

/// Why a schema discovery failed, in the terms of validation outcomes (e.g.
/// [`ValidationOutcome::InvalidCredentials`] when the login was refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DiscoveryError {
    /// What went wrong; never [`ValidationOutcome::Valid`].
    pub outcome: ValidationOutcome,
    /// A user-facing explanation; never contains the secret.
    pub message: String,
}

impl From<Failure> for DiscoveryError {
    fn from(f: Failure) -> Self {
        Self {
            outcome: f.outcome,
            message: f.message,
        }
    }
}

/// How this module reaches a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Postgres(Flavor),
    MySql,
    ClickHouse,
}

/// The client of an engine; `None` for the engines the catalogue declares unprobed (a test
/// keeps the two in step).
fn client(engine: Engine) -> Option<Client> {
    match engine {
        Engine::PostgreSql => Some(Client::Postgres(Flavor::Postgres)),
        Engine::Redshift => Some(Client::Postgres(Flavor::Redshift)),
        Engine::MySql => Some(Client::MySql),
        Engine::ClickHouse => Some(Client::ClickHouse),
        Engine::MsSql | Engine::BigQuery | Engine::Snowflake => None,
    }
}

/// Whether this module has a client for the engine.
#[cfg(test)]
pub(crate) fn has_client(engine: Engine) -> bool {
    client(engine).is_some()
}

/// The client and connection string of a value, by the type's probe.
fn target<'a>(spec: &TypeSpec, value: &'a SecretValue) -> Result<(Client, &'a str), Failure> {
    let engine = match spec.probe {
        Probe::Database(engine) => engine,
        Probe::DatabaseOfField(field) => {
            let name = value.get(field).map(|s| s.expose()).ok_or_else(|| {
                Failure::invalid(format!("a database credential needs its {field} field"))
            })?;
            Engine::parse(name).ok_or_else(|| {
                Failure::new(
                    ValidationOutcome::UnsupportedType,
                    format!(
                        "{:?} is not a database type this probe knows",
                        net::shown(name)
                    ),
                )
            })?
        }
        _ => {
            return Err(Failure::new(
                ValidationOutcome::UnsupportedType,
                format!("{} is not a database type", spec.id),
            ));
        }
    };
    if let EngineProbe::Unsupported(reason) = engine.probe() {
        return Err(Failure::new(ValidationOutcome::UnsupportedType, reason));
    }
    let client = client(engine).ok_or_else(|| {
        Failure::new(
            ValidationOutcome::UnsupportedType,
            format!("no {} client is built in", engine.as_str()),
        )
    })?;
    let connection_string = spec
        .fields
        .iter()
        .filter(|f| {
            matches!(
                f.format,
                Format::ConnectionString(_) | Format::ConnectionStringOf(_)
            )
        })
        .find_map(|f| value.get(f.name))
        .map(|s| s.expose())
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Failure::invalid("the value has no connection_string"))?;
    Ok((client, connection_string))
}

/// Validates a database credential (a [`Probe::Database`] or [`Probe::DatabaseOfField`] type)
/// under `config.timeout`; the latency is left for the caller to set.
pub async fn validate(spec: &TypeSpec, value: &SecretValue, config: &ProbeConfig) -> ProbeResult {
    let result = async {
        let (client, connection_string) = target(spec, value)?;
        let policy = &config.egress;
        within(config.timeout, "the database", async {
            match client {
                Client::Postgres(flavor) => {
                    postgres::validate(connection_string, flavor, policy).await
                }
                Client::MySql => mysql::validate(connection_string, policy).await,
                Client::ClickHouse => clickhouse::validate(connection_string, policy).await,
            }
        })
        .await
    }
    .await;
    match result {
        Ok(message) => ProbeResult::valid(message),
        Err(failure) => failure.into(),
    }
}

/// Discovers the schema of a database credential under `options.timeout`, connection
/// included. System schemas are always left out.
pub async fn discover(
    spec: &TypeSpec,
    value: &SecretValue,
    config: &ProbeConfig,
    options: &DiscoveryOptions,
) -> Result<DatabaseSchema, DiscoveryError> {
    let (client, connection_string) = target(spec, value)?;
    let policy = &config.egress;
    let schema = within(options.timeout, "schema discovery", async {
        match client {
            Client::Postgres(flavor) => {
                postgres::discover(connection_string, flavor, policy, options).await
            }
            Client::MySql => mysql::discover(connection_string, policy, options).await,
            Client::ClickHouse => clickhouse::discover(connection_string, policy, options).await,
        }
    })
    .await?;
    Ok(schema)
}
