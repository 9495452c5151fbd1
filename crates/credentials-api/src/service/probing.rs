//! Validation against the real target and schema discovery: the operations on top of the
//! vault that open a stored value and hand it to a probe. No gRPC types.

use super::caller::Caller;
use super::credentials::{Credentials, stored_type};
use super::error::{Result, ServiceError};
use super::input::{
    DiscoverInput, Discovered, ItemRef, StoredSchema, TestInput, TestTarget, Validated,
};
use credentials_core::{
    ValueInput,
    model::{AuditAction, AuditOutcome, Validation, ValidationOutcome, ValidationState},
    schema::DiscoveryOptions,
    value,
};
use credentials_probe::{ProbeResult, Prober};
use std::time::{Duration, SystemTime};

/// Default deadline of a schema discovery.
pub const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest deadline a discovery may ask for.
pub const MAX_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(120);
/// Default and largest table limits of a discovery.
pub const DEFAULT_MAX_TABLES: usize = 1000;
/// Largest table limit a discovery may ask for.
pub const MAX_MAX_TABLES: usize = 5000;

/// What a stored credential's state becomes after a probe: valid only when the target accepted
/// it; unknown when the type cannot be probed; invalid otherwise.
fn state(outcome: ValidationOutcome) -> ValidationState {
    match outcome {
        ValidationOutcome::Valid => ValidationState::Valid,
        ValidationOutcome::UnsupportedType | ValidationOutcome::Unspecified => {
            ValidationState::Unknown
        }
        _ => ValidationState::Invalid,
    }
}

/// The discovery options of a request, checked against the limits.
pub fn discovery_options(
    include_schemas: Vec<String>,
    exclude_schemas: Vec<String>,
    max_tables: i32,
    timeout: Option<Duration>,
) -> Result<DiscoveryOptions> {
    let max_tables = match max_tables {
        0 => DEFAULT_MAX_TABLES,
        n if n > 0 && n as usize <= MAX_MAX_TABLES => n as usize,
        n => {
            return Err(ServiceError::invalid(
                "max_tables",
                format!("must be 1-{MAX_MAX_TABLES}, got {n}"),
            ));
        }
    };
    let timeout = match timeout {
        None => DEFAULT_DISCOVERY_TIMEOUT,
        Some(t) if !t.is_zero() && t <= MAX_DISCOVERY_TIMEOUT => t,
        Some(_) => {
            return Err(ServiceError::invalid(
                "timeout",
                format!(
                    "must be more than 0 and at most {} s",
                    MAX_DISCOVERY_TIMEOUT.as_secs()
                ),
            ));
        }
    };
    for (field, names) in [
        ("include_schemas", &include_schemas),
        ("exclude_schemas", &exclude_schemas),
    ] {
        if names.len() > 100 || names.iter().any(|n| n.is_empty() || n.len() > 128) {
            return Err(ServiceError::invalid(
                field,
                "at most 100 names of 1-128 bytes",
            ));
        }
    }
    Ok(DiscoveryOptions {
        include_schemas,
        exclude_schemas,
        max_tables,
        timeout,
    })
}

impl Credentials {
    /// Probes a stored credential, stores the outcome on it and audits it.
    pub async fn validate(
        &self,
        caller: &Caller,
        prober: &Prober,
        item: ItemRef,
    ) -> Result<Validated> {
        let id = item.id;
        let workspace_id = caller.workspace_for_item(&item.workspace_id)?;
        let (credential, value) = self.open_stored(&workspace_id, id).await?;
        let result = prober.validate(&credential.type_id, &value).await;
        drop(value);
        crate::process::metrics::record_validation(&credential.type_id, result.outcome);
        let validation = Validation {
            state: state(result.outcome),
            outcome: result.outcome,
            message: result.message.clone(),
            checked_at: Some(result.checked_at),
        };
        let event = Self::audit(
            caller,
            &workspace_id,
            Some(id),
            AuditAction::Validate,
            AuditOutcome::Succeeded,
            "OK",
        );
        let credential = self
            .store()
            .record_validation(&workspace_id, id, &validation, &event)
            .await?;
        tracing::info!(credential_id = %id, workspace_id, type_id = credential.type_id, outcome = ?result.outcome, latency_ms = result.latency.as_millis() as u64, "credential validated");
        Ok(Validated { result, credential })
    }

    /// Probes a value that is not stored: a type and a value, or a stored credential's value with
    /// the given fields replaced. Stores nothing.
    pub async fn test(
        &self,
        caller: &Caller,
        prober: &Prober,
        input: TestInput,
    ) -> Result<ProbeResult> {
        let (spec, checked) = match input.target {
            TestTarget::Stored {
                id,
                type_id,
                overrides,
            } => {
                let workspace_id = caller.workspace_for_item(&input.workspace_id)?;
                let (credential, stored) = self.open_stored(&workspace_id, id).await?;
                if !type_id.is_empty() && type_id != credential.type_id {
                    return Err(ServiceError::invalid(
                        "type",
                        "leave it empty, or give the stored credential's type",
                    ));
                }
                let spec = stored_type(&credential)?;
                let merged = match overrides {
                    None => stored.overridden(Default::default()),
                    Some(ValueInput::Fields(fields)) => stored.overridden(fields),
                    Some(ValueInput::Secret(secret)) => stored.overridden(
                        [(spec.primary_field.to_owned(), secret)]
                            .into_iter()
                            .collect(),
                    ),
                };
                (spec, value::check(spec, merged)?)
            }
            TestTarget::New { spec, value } => {
                caller.workspace_for_collection(&input.workspace_id)?;
                (spec, value)
            }
        };
        let result = prober.validate(spec.id, &checked).await;
        crate::process::metrics::record_validation(spec.id, result.outcome);
        tracing::info!(type_id = spec.id, outcome = ?result.outcome, "value tested");
        Ok(result)
    }

    /// Discovers a database credential's schema and stores it on the credential.
    pub async fn discover_schema(
        &self,
        caller: &Caller,
        prober: &Prober,
        input: DiscoverInput,
    ) -> Result<Discovered> {
        let (id, options) = (input.item.id, input.options);
        let workspace_id = caller.workspace_for_item(&input.item.workspace_id)?;
        let (credential, value) = self.open_stored(&workspace_id, id).await?;
        let spec = stored_type(&credential)?;
        if !spec.supports_schema_discovery_of(&value) {
            return Err(ServiceError::FailedPrecondition(format!(
                "schema discovery is not available for type '{}'",
                spec.id
            )));
        }
        let schema = prober
            .discover_schema(spec.id, &value, &options)
            .await
            .map_err(|e| {
                ServiceError::FailedPrecondition(format!("schema discovery failed: {}", e.message))
            })?;
        drop(value);
        let document = serde_json::to_value(&schema)
            .map_err(|e| ServiceError::Internal(format!("schema serialization: {e}")))?;
        let event = Self::audit(
            caller,
            &workspace_id,
            Some(id),
            AuditAction::DiscoverSchema,
            AuditOutcome::Succeeded,
            "OK",
        );
        let credential = self
            .store()
            .save_schema(&workspace_id, id, &document, SystemTime::now(), &event)
            .await?;
        tracing::info!(credential_id = %id, workspace_id, tables = schema.table_count(), truncated = schema.truncated, "schema discovered");
        Ok(Discovered { credential, schema })
    }

    /// A credential's stored schema and when it was discovered.
    pub async fn get_schema(&self, caller: &Caller, item: ItemRef) -> Result<StoredSchema> {
        let workspace_id = caller.workspace_for_item(&item.workspace_id)?;
        let (document, discovered_at) = self
            .store()
            .get_schema(&workspace_id, item.id)
            .await?
            .ok_or_else(|| {
                ServiceError::FailedPrecondition(
                    "no schema has been discovered for this credential: call DiscoverSchema".into(),
                )
            })?;
        let schema = serde_json::from_value(document)
            .map_err(|e| ServiceError::Internal(format!("stored schema unreadable: {e}")))?;
        Ok(StoredSchema {
            schema,
            discovered_at,
        })
    }
}
