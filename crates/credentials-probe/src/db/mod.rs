//! Database probes: validation by a login plus `SELECT 1`, and schema discovery.
//!
//! | type | validation | discovery |
//! | --- | --- | --- |
//! | `postgresql`, `redshift` | login + `SELECT 1` (tokio-postgres, libpq `sslmode`s) | `pg_catalog` |
//! | `mysql` | login + `SELECT 1` (mysql_async) | `information_schema` |
//! | `clickhouse` | `SELECT 1` over the HTTP interface | `system.tables`, `system.columns` |
//! | `mssql` | unsupported: no TDS client in this build | unsupported |
//! | `database` | by its `schema_type`, as above | as above |

mod clickhouse;
mod mysql;
pub(crate) mod net;
mod postgres;

use crate::outcome::{ProbeConfig, ProbeResult, ValidationOutcome};
use credentials_core::SecretValue;
use credentials_core::schema::{DatabaseSchema, DiscoveryOptions};
use net::{Failure, within};
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

/// A database engine this module probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Postgres(Flavor),
    MySql,
    MsSql,
    ClickHouse,
}

const MSSQL_UNSUPPORTED: &str = "SQL Server validation needs a TDS client this build does not \
     include; the credential is stored but cannot be checked";

/// Whether `type_id` is one of the database types this module handles (`database` included).
pub fn handles(type_id: &str) -> bool {
    matches!(
        type_id,
        "postgresql" | "redshift" | "mysql" | "mssql" | "clickhouse" | "database"
    )
}

/// The engine and connection string of a value.
fn target<'a>(type_id: &str, value: &'a SecretValue) -> Result<(Engine, &'a str), Failure> {
    let engine_name = match type_id {
        "database" => value
            .get("schema_type")
            .map(|s| s.expose())
            .ok_or_else(|| Failure::invalid("a database credential needs its schema_type field"))?,
        other => other,
    };
    let engine = match engine_name {
        "postgresql" => Engine::Postgres(Flavor::Postgres),
        "redshift" => Engine::Postgres(Flavor::Redshift),
        "mysql" => Engine::MySql,
        "mssql" => Engine::MsSql,
        "clickhouse" => Engine::ClickHouse,
        "bigquery" | "snowflake" => {
            return Err(Failure::new(
                ValidationOutcome::UnsupportedType,
                format!(
                    "a {engine_name} database given as a connection string cannot be probed; \
                     store it as a {engine_name} credential, whose fields the probe understands"
                ),
            ));
        }
        other => {
            return Err(Failure::new(
                ValidationOutcome::UnsupportedType,
                format!("{other:?} is not a database type this probe knows"),
            ));
        }
    };
    let connection_string = value
        .get("connection_string")
        .map(|s| s.expose())
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Failure::invalid("the value has no connection_string"))?;
    Ok((engine, connection_string))
}

/// Validates a database credential (`postgresql`, `redshift`, `mysql`, `mssql`, `clickhouse`
/// or tools `database`) under `config.timeout`; the latency is left for the caller to set.
pub async fn validate(type_id: &str, value: &SecretValue, config: &ProbeConfig) -> ProbeResult {
    let result = async {
        let (engine, connection_string) = target(type_id, value)?;
        let policy = &config.egress;
        within(config.timeout, "the database", async {
            match engine {
                Engine::Postgres(flavor) => {
                    postgres::validate(connection_string, flavor, policy).await
                }
                Engine::MySql => mysql::validate(connection_string, policy).await,
                Engine::ClickHouse => clickhouse::validate(connection_string, policy).await,
                Engine::MsSql => Err(Failure::new(
                    ValidationOutcome::UnsupportedType,
                    MSSQL_UNSUPPORTED,
                )),
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
    type_id: &str,
    value: &SecretValue,
    config: &ProbeConfig,
    options: &DiscoveryOptions,
) -> Result<DatabaseSchema, DiscoveryError> {
    let (engine, connection_string) = target(type_id, value)?;
    let policy = &config.egress;
    let schema = within(options.timeout, "schema discovery", async {
        match engine {
            Engine::Postgres(flavor) => {
                postgres::discover(connection_string, flavor, policy, options).await
            }
            Engine::MySql => mysql::discover(connection_string, policy, options).await,
            Engine::ClickHouse => clickhouse::discover(connection_string, policy, options).await,
            Engine::MsSql => Err(Failure::new(
                ValidationOutcome::UnsupportedType,
                "SQL Server schema discovery needs a TDS client this build does not include",
            )),
        }
    })
    .await?;
    Ok(schema)
}
