//! Conversions at the gRPC edge: protobuf requests into domain inputs (INVALID_ARGUMENT naming
//! the field on failure) and domain values into protobuf responses.

use crate::service::error::{Result, ServiceError};
use credentials_core::{
    SecretString, TypeSpec, ValueInput,
    model::{AuditEvent, Credential, Etag, ValidationOutcome, ValidationState},
};
use credentials_proto::credentials::v1 as pb;
use std::{collections::BTreeMap, time::SystemTime};
use uuid::Uuid;

/// A credential id from a request field.
pub fn id(field: &str, value: &str) -> Result<Uuid> {
    if value.is_empty() {
        return Err(ServiceError::invalid(field, "required"));
    }
    Uuid::try_parse(value).map_err(|_| ServiceError::invalid(field, "not a credential id (a UUID)"))
}

/// An optional credential id (empty means none).
pub fn optional_id(field: &str, value: &str) -> Result<Option<Uuid>> {
    if value.is_empty() {
        Ok(None)
    } else {
        id(field, value).map(Some)
    }
}

/// An optional etag (empty means none).
pub fn etag(value: &str) -> Result<Option<Etag>> {
    if value.is_empty() {
        return Ok(None);
    }
    Etag::parse(value).map(Some).ok_or_else(|| {
        ServiceError::invalid(
            "etag",
            "malformed etag: send the etag of a credential as read",
        )
    })
}

/// A request's value, taking ownership of the strings so no copy is left behind.
pub fn value(value: Option<pb::CredentialValue>) -> Option<ValueInput> {
    match value?.kind? {
        pb::credential_value::Kind::Secret(secret) => {
            Some(ValueInput::Secret(SecretString::new(secret)))
        }
        pb::credential_value::Kind::Fields(fields) => Some(ValueInput::Fields(
            fields
                .values
                .into_iter()
                .map(|(k, v)| (k, SecretString::new(v)))
                .collect::<BTreeMap<_, _>>(),
        )),
    }
}

/// A probe's result.
pub fn validation_result(r: &credentials_probe::ProbeResult) -> pb::ValidationResult {
    pb::ValidationResult {
        outcome: validation_outcome(r.outcome) as i32,
        message: r.message.clone(),
        latency: prost_types::Duration::try_from(r.latency).ok(),
        checked_at: Some(timestamp(r.checked_at)),
    }
}

/// A discovered schema.
pub fn schema(s: credentials_core::schema::DatabaseSchema) -> pb::DatabaseSchema {
    use credentials_core::schema::TableKind;
    pb::DatabaseSchema {
        truncated: s.truncated,
        namespaces: s
            .namespaces
            .into_iter()
            .map(|n| pb::SchemaNamespace {
                name: n.name,
                tables: n
                    .tables
                    .into_iter()
                    .map(|t| pb::Table {
                        name: t.name,
                        kind: match t.kind {
                            TableKind::Table => pb::TableKind::Table,
                            TableKind::View => pb::TableKind::View,
                        } as i32,
                        description: t.description,
                        primary_key: t.primary_key,
                        columns: t
                            .columns
                            .into_iter()
                            .map(|c| pb::Column {
                                name: c.name,
                                data_type: c.data_type,
                                nullable: c.nullable,
                                default_value: c.default_value,
                                description: c.description,
                                position: c.position,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(t)
}

fn validation_state(state: ValidationState) -> pb::ValidationState {
    match state {
        ValidationState::Unknown => pb::ValidationState::Unspecified,
        ValidationState::Valid => pb::ValidationState::Valid,
        ValidationState::Invalid => pb::ValidationState::Invalid,
    }
}

fn validation_outcome(outcome: ValidationOutcome) -> pb::ValidationOutcome {
    match outcome {
        ValidationOutcome::Unspecified => pb::ValidationOutcome::Unspecified,
        ValidationOutcome::Valid => pb::ValidationOutcome::Valid,
        ValidationOutcome::InvalidCredentials => pb::ValidationOutcome::InvalidCredentials,
        ValidationOutcome::InsufficientPermissions => {
            pb::ValidationOutcome::InsufficientPermissions
        }
        ValidationOutcome::Unreachable => pb::ValidationOutcome::Unreachable,
        ValidationOutcome::TimedOut => pb::ValidationOutcome::TimedOut,
        ValidationOutcome::UnsupportedType => pb::ValidationOutcome::UnsupportedType,
        ValidationOutcome::ProviderError => pb::ValidationOutcome::ProviderError,
        ValidationOutcome::EgressDenied => pb::ValidationOutcome::EgressDenied,
    }
}

/// A credential as the API shows it: metadata and masked preview only.
pub fn credential(c: Credential) -> pb::Credential {
    let etag = c.etag().to_string();
    pb::Credential {
        id: c.id.to_string(),
        workspace_id: c.workspace_id,
        name: c.name,
        category: c.category.as_str().to_owned(),
        r#type: c.type_id,
        description: c.description,
        masked_content: c.masked_content,
        is_default: c.is_default,
        validation: Some(pb::Validation {
            state: validation_state(c.validation.state) as i32,
            outcome: validation_outcome(c.validation.outcome) as i32,
            message: c.validation.message,
            checked_at: c.validation.checked_at.map(timestamp),
        }),
        has_schema: c.has_schema,
        schema_updated_at: c.schema_updated_at.map(timestamp),
        created_at: Some(timestamp(c.created_at)),
        updated_at: Some(timestamp(c.updated_at)),
        deleted_at: c.deleted_at.map(timestamp),
        etag,
    }
}

/// A catalogue entry.
pub fn credential_type(t: &TypeSpec) -> pb::CredentialType {
    pb::CredentialType {
        r#type: t.id.to_owned(),
        category: t.category.as_str().to_owned(),
        display_name: t.display_name.to_owned(),
        description: t.description.to_owned(),
        fields: t
            .fields
            .iter()
            .map(|f| pb::CredentialFieldSpec {
                name: f.name.to_owned(),
                description: f.description.to_owned(),
                secret: f.secret,
                required: f.required,
                allowed_values: f.allowed_values.iter().map(|v| (*v).to_owned()).collect(),
            })
            .collect(),
        primary_field: t.primary_field.to_owned(),
        supports_validation: t.supports_validation,
        supports_schema_discovery: t.supports_schema_discovery,
    }
}

/// An audit event.
pub fn audit_event(e: AuditEvent) -> pb::AuditEvent {
    use credentials_core::model::{AuditAction as A, AuditOutcome as O};
    let action = match e.event.action {
        A::Create => pb::AuditAction::Create,
        A::Update => pb::AuditAction::Update,
        A::Delete => pb::AuditAction::Delete,
        A::SetDefault => pb::AuditAction::SetDefault,
        A::Access => pb::AuditAction::Access,
        A::Validate => pb::AuditAction::Validate,
        A::DiscoverSchema => pb::AuditAction::DiscoverSchema,
        A::Rewrap => pb::AuditAction::Rewrap,
    };
    let outcome = match e.event.outcome {
        O::Succeeded => pb::AuditOutcome::Succeeded,
        O::Failed => pb::AuditOutcome::Failed,
    };
    pb::AuditEvent {
        id: e.id.to_string(),
        workspace_id: e.event.workspace_id,
        credential_id: e
            .event
            .credential_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        actor: e.event.actor,
        action: action as i32,
        outcome: outcome as i32,
        status_code: e.event.status_code,
        request_id: e.event.request_id,
        time: Some(timestamp(e.time)),
    }
}
