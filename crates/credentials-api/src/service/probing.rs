//! Validation against the real target and schema discovery: the operations on top of the
//! vault that open a stored value and hand it to a probe. No gRPC types.
//!
//! A stored secret goes only to its credential's own target, and never unrecorded: every call
//! that sends a stored value (validate, test against a stored credential, discover) commits an
//! audit event with outcome `Started` before the probe dials, and is refused UNAVAILABLE,
//! having sent nothing, when it cannot. A test against a stored credential may replace only
//! what is the credential itself (its secret fields); a field that decides where or how the
//! secret is sent is changed only by an audited update, so a test that tries is refused
//! INVALID_ARGUMENT naming the field, sends nothing, and is audited as failed.
//!
//! Each probe is admitted under its workspace's and the process's budget of its kind before
//! the value is opened and before the `Started` event (see `credentials_probe::ProbeBudgets`).
//! A call that gets no slot in time (the queue timeout, or less when its gRPC deadline or the
//! probe's leaves less) is refused RESOURCE_EXHAUSTED with a retry delay, counted in
//! `probes_refused_total`, and leaves no audit event: nothing was opened or sent, and writing
//! an event per refusal would let a flood of refused calls load the audit log.

use super::caller::Caller;
use super::credentials::{Credentials, annotate, stored_type};
use super::error::{Result, ServiceError};
use super::input::{
    DiscoverInput, Discovered, ItemRef, StoredSchema, TestInput, TestTarget, Validated,
};
use credentials_core::{
    Format, Role, SecretString, TypeSpec, ValueInput,
    model::{AuditAction, AuditOutcome, Validation, ValidationOutcome, ValidationState},
    schema::DiscoveryOptions,
    value,
};
use credentials_probe::{Admitted, ProbeKind, ProbeResult, Prober};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};
use uuid::Uuid;

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

/// Whether a secret field's value says where it is sent too (a connection string names its
/// host, a URL is its own destination).
fn carries_destination(format: Format) -> bool {
    matches!(
        format,
        Format::Url(_) | Format::ConnectionString(_) | Format::ConnectionStringOf(_)
    )
}

/// The first field of `overrides` a test against a stored credential may not replace, with
/// why. Only secret fields may be replaced: trying a new key against the stored target is the
/// point. Destination and option fields decide where and how the stored secrets are sent.
/// Identity fields (a user name, a client id) are not secret, but replacing one while keeping
/// the stored password would let a caller try that password against other accounts of the
/// same server, so they are refused too. A secret field that carries its own destination (a
/// connection string, a signed URL) may be replaced only when no other stored secret would go
/// along with it to the new destination. Names the type does not have are left to the value
/// check, which refuses them as for any value.
fn forbidden_override(
    spec: &TypeSpec,
    overrides: &BTreeMap<String, SecretString>,
) -> Option<(String, &'static str)> {
    for name in overrides.keys() {
        let Some(field) = spec.field(name) else {
            continue;
        };
        let why = match field.role {
            Role::Secret if !carries_destination(field.format) => continue,
            Role::Secret => {
                let others_kept = spec
                    .fields_with_role(Role::Secret)
                    .any(|other| other.name != field.name && !overrides.contains_key(other.name));
                if !others_kept {
                    continue;
                }
                "says where the credential's other secrets are sent: change it with UpdateCredential"
            }
            Role::Identity => {
                "is whose credential it is: test another account with a value of its own, or change it with UpdateCredential"
            }
            Role::Destination => {
                "decides where the stored secret is sent: change it with UpdateCredential"
            }
            Role::Option => {
                "decides how the stored secret is sent: change it with UpdateCredential"
            }
        };
        return Some((format!("value.fields[{name}]"), why));
    }
    None
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

/// Admits a probe of `kind` for `workspace_id`, or refuses it RESOURCE_EXHAUSTED, counted in
/// `probes_refused_total` (the operator's signal that a budget is too small or a tenant busy)
/// and logged at INFO with the workspace, which the metric leaves out: a refusal is the
/// caller's to retry, not an operator's to act on one by one.
async fn admit(
    prober: &Prober,
    kind: ProbeKind,
    workspace_id: &str,
    deadline: Duration,
    within: Option<Duration>,
) -> Result<Admitted> {
    prober
        .admit(kind, workspace_id, deadline, within)
        .await
        .map_err(|busy| {
            crate::process::metrics::record_probe_refused(busy.kind, busy.scope);
            tracing::info!(
                workspace_id,
                kind = busy.kind.as_str(),
                scope = busy.scope.as_str(),
                "probe refused: no slot free in time"
            );
            ServiceError::from(busy)
        })
}

impl Credentials {
    /// Commits the event that a stored value is about to be sent to its target: before the
    /// probe, so that no probe goes unrecorded. Fails (UNAVAILABLE when the log cannot be
    /// written) and the probe does not run.
    async fn audit_started(
        &self,
        caller: &Caller,
        workspace_id: &str,
        id: Uuid,
        action: AuditAction,
    ) -> Result<()> {
        let event = Self::audit(
            caller,
            workspace_id,
            Some(id),
            action,
            AuditOutcome::Started,
            "OK",
        );
        self.store().record_audit(&event).await?;
        Ok(())
    }

    /// Probes a stored credential, stores the outcome on it and audits it. `within` is what
    /// the caller's deadline leaves, if it set one.
    pub async fn validate(
        &self,
        caller: &Caller,
        prober: &Prober,
        item: ItemRef,
        within: Option<Duration>,
    ) -> Result<Validated> {
        let id = item.id;
        let workspace_id = caller.workspace_for_item(&item.workspace_id)?;
        annotate(&workspace_id, Some(id));
        let timeout = prober.config().timeout;
        let admitted = admit(
            prober,
            ProbeKind::Validation,
            &workspace_id,
            timeout,
            within,
        )
        .await?;
        let (credential, value) = self.open_stored(&workspace_id, id).await?;
        self.audit_started(caller, &workspace_id, id, AuditAction::Validate)
            .await?;
        let result = admitted.validate(&credential.type_id, &value).await;
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
    /// the given fields replaced. Stores nothing. `within` is what the caller's deadline
    /// leaves, if it set one.
    pub async fn test(
        &self,
        caller: &Caller,
        prober: &Prober,
        input: TestInput,
        within: Option<Duration>,
    ) -> Result<ProbeResult> {
        let timeout = prober.config().timeout;
        let (spec, checked, admitted) = match input.target {
            TestTarget::Stored {
                id,
                type_id,
                overrides,
            } => {
                let workspace_id = caller.workspace_for_item(&input.workspace_id)?;
                annotate(&workspace_id, Some(id));
                // Metadata first: a refused override is decided without opening the value.
                let current = self.store().get_credential(&workspace_id, id).await?;
                if current.deleted_at.is_some() {
                    return Err(ServiceError::NotFound);
                }
                if !type_id.is_empty() && type_id != current.type_id {
                    return Err(ServiceError::invalid(
                        "type",
                        "leave it empty, or give the stored credential's type",
                    ));
                }
                let spec = stored_type(&current)?;
                let overrides = match overrides {
                    None => BTreeMap::new(),
                    Some(ValueInput::Fields(fields)) => fields,
                    Some(ValueInput::Secret(secret)) => {
                        [(spec.primary_field.to_owned(), secret)].into()
                    }
                };
                if let Some((field, why)) = forbidden_override(spec, &overrides) {
                    let refusal = ServiceError::invalid(field, why);
                    let event = Self::audit(
                        caller,
                        &workspace_id,
                        Some(id),
                        AuditAction::Test,
                        AuditOutcome::Failed,
                        refusal.code().as_str(),
                    );
                    self.store().record_audit(&event).await?;
                    tracing::warn!(credential_id = %id, workspace_id, "test refused: it would redirect a stored secret");
                    return Err(refusal);
                }
                let admitted = admit(
                    prober,
                    ProbeKind::Validation,
                    &workspace_id,
                    timeout,
                    within,
                )
                .await?;
                let (_, stored) = self.open_stored(&workspace_id, id).await?;
                let checked = value::check(spec, stored.overridden(overrides))?;
                drop(stored);
                self.audit_started(caller, &workspace_id, id, AuditAction::Test)
                    .await?;
                (spec, checked, admitted)
            }
            TestTarget::New { spec, value } => {
                let workspace_id = caller.workspace_for_collection(&input.workspace_id)?;
                let admitted = admit(
                    prober,
                    ProbeKind::Validation,
                    &workspace_id,
                    timeout,
                    within,
                )
                .await?;
                (spec, value, admitted)
            }
        };
        let result = admitted.validate(spec.id, &checked).await;
        crate::process::metrics::record_validation(spec.id, result.outcome);
        tracing::info!(type_id = spec.id, outcome = ?result.outcome, "value tested");
        Ok(result)
    }

    /// Discovers a database credential's schema and stores it on the credential. `within` is
    /// what the caller's deadline leaves, if it set one.
    pub async fn discover_schema(
        &self,
        caller: &Caller,
        prober: &Prober,
        input: DiscoverInput,
        within: Option<Duration>,
    ) -> Result<Discovered> {
        let (id, options) = (input.item.id, input.options);
        let workspace_id = caller.workspace_for_item(&input.item.workspace_id)?;
        annotate(&workspace_id, Some(id));
        let timeout = options.timeout;
        let admitted = admit(prober, ProbeKind::Discovery, &workspace_id, timeout, within).await?;
        let (credential, value) = self.open_stored(&workspace_id, id).await?;
        let spec = stored_type(&credential)?;
        if !spec.supports_schema_discovery_of(&value) {
            return Err(ServiceError::FailedPrecondition(format!(
                "schema discovery is not available for type '{}'",
                spec.id
            )));
        }
        self.audit_started(caller, &workspace_id, id, AuditAction::DiscoverSchema)
            .await?;
        let schema = admitted
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
