//! Conversions at the gRPC edge, in one place: each request into the service's typed input
//! (one `TryFrom` per request; INVALID_ARGUMENT naming the field on failure, before anything is
//! touched) and the service's outputs into protobuf responses.

use crate::service::{
    AccessInput, AccessSelector, Accessed, AuditListInput, AuditPage, CreateInput, CredentialPage,
    DefaultChange, DeleteInput, DiscoverInput, Discovered, ItemRef, ListInput, Result,
    SecurityListInput, ServiceError, StoredSchema, TestInput, TestTarget, TypesInput, UpdateInput,
    Validated, WorkspaceKeyInput, discovery_options, lookup_type,
};
use credentials_core::{
    Category, SecretString, TypeSpec, ValueInput, limits,
    model::{AuditEvent, Credential, Etag, ListFilter, ValidationOutcome, ValidationState},
    value,
};
use credentials_proto::credentials::v1 as pb;
use std::{collections::BTreeMap, time::SystemTime};
use uuid::Uuid;

/// A credential id from a request field.
fn id(field: &str, value: &str) -> Result<Uuid> {
    if value.is_empty() {
        return Err(ServiceError::invalid(field, "required"));
    }
    Uuid::try_parse(value).map_err(|_| ServiceError::invalid(field, "not a credential id (a UUID)"))
}

/// An optional credential id (empty means none).
fn optional_id(field: &str, value: &str) -> Result<Option<Uuid>> {
    if value.is_empty() {
        Ok(None)
    } else {
        id(field, value).map(Some)
    }
}

/// An optional etag (empty means none).
fn etag(value: &str) -> Result<Option<Etag>> {
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
fn value(value: Option<pb::CredentialValue>) -> Option<ValueInput> {
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

/// A category filter or field; empty means none.
fn category(field: &str, category: &str) -> Result<Option<Category>> {
    if category.is_empty() {
        return Ok(None);
    }
    Category::parse(category).map(Some).ok_or_else(|| {
        let known: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
        ServiceError::invalid(field, format!("must be one of {}", known.join(", ")))
    })
}

/// A request's timeout. A Duration whose nanos are outside 0-999,999,999 is malformed
/// (google.protobuf.Duration), and prost's conversion would carry them into the seconds
/// instead of refusing them.
fn timeout(d: prost_types::Duration) -> Result<std::time::Duration> {
    match (u64::try_from(d.seconds), u32::try_from(d.nanos)) {
        (Ok(seconds), Ok(nanos)) if nanos < 1_000_000_000 => {
            Ok(std::time::Duration::new(seconds, nanos))
        }
        _ => Err(ServiceError::invalid(
            "timeout",
            "must be a non-negative duration with nanos of 0-999999999",
        )),
    }
}

fn item(workspace_id: String, raw_id: &str) -> Result<ItemRef> {
    Ok(ItemRef {
        id: id("id", raw_id)?,
        workspace_id,
    })
}

impl TryFrom<pb::CreateCredentialRequest> for CreateInput {
    type Error = ServiceError;

    fn try_from(r: pb::CreateCredentialRequest) -> Result<Self> {
        let name = limits::check_name(&r.name)?;
        limits::check_description(&r.description)?;
        let spec = lookup_type("type", &r.r#type)?;
        if let Some(category) = category("category", &r.category)?
            && category != spec.category
        {
            return Err(ServiceError::invalid(
                "category",
                format!(
                    "type '{}' is in category '{}', not '{}'",
                    spec.id,
                    spec.category.as_str(),
                    category.as_str()
                ),
            ));
        }
        let value = value(r.value).ok_or_else(|| ServiceError::invalid("value", "required"))?;
        Ok(CreateInput {
            workspace_id: r.workspace_id,
            name,
            spec,
            description: r.description,
            value: value::check(spec, value)?,
            make_default: r.make_default,
        })
    }
}

impl TryFrom<pb::GetCredentialRequest> for ItemRef {
    type Error = ServiceError;

    fn try_from(r: pb::GetCredentialRequest) -> Result<Self> {
        item(r.workspace_id, &r.id)
    }
}

impl TryFrom<pb::ListCredentialsRequest> for ListInput {
    type Error = ServiceError;

    fn try_from(r: pb::ListCredentialsRequest) -> Result<Self> {
        let filter = ListFilter {
            category: category("category", &r.category)?,
            type_id: (!r.r#type.is_empty()).then_some(r.r#type),
            show_deleted: r.show_deleted,
        };
        let page_size = limits::page_size(r.page_size)?;
        if let Some(type_id) = &filter.type_id {
            lookup_type("type", type_id)?;
        }
        Ok(ListInput {
            workspace_id: r.workspace_id,
            filter,
            page_size,
            page_token: r.page_token,
        })
    }
}

impl TryFrom<pb::UpdateCredentialRequest> for UpdateInput {
    type Error = ServiceError;

    fn try_from(r: pb::UpdateCredentialRequest) -> Result<Self> {
        let item = item(r.workspace_id, &r.id)?;
        let etag = etag(&r.etag)?;
        let value = match r.value {
            Some(v) => Some(value(Some(v)).ok_or_else(|| {
                ServiceError::invalid("value", "set value.secret or value.fields")
            })?),
            None => None,
        };
        if r.name.is_none() && r.description.is_none() && value.is_none() {
            return Err(ServiceError::invalid(
                "name",
                "nothing to update: give at least one of name, description, value",
            ));
        }
        let name = r.name.as_deref().map(limits::check_name).transpose()?;
        if let Some(description) = &r.description {
            limits::check_description(description)?;
        }
        Ok(UpdateInput {
            item,
            etag,
            name,
            description: r.description,
            value,
        })
    }
}

impl TryFrom<pb::DeleteCredentialRequest> for DeleteInput {
    type Error = ServiceError;

    fn try_from(r: pb::DeleteCredentialRequest) -> Result<Self> {
        Ok(DeleteInput {
            item: item(r.workspace_id, &r.id)?,
            etag: etag(&r.etag)?,
        })
    }
}

impl TryFrom<pb::SetDefaultCredentialRequest> for ItemRef {
    type Error = ServiceError;

    fn try_from(r: pb::SetDefaultCredentialRequest) -> Result<Self> {
        item(r.workspace_id, &r.id)
    }
}

impl TryFrom<pb::ValidateCredentialRequest> for ItemRef {
    type Error = ServiceError;

    fn try_from(r: pb::ValidateCredentialRequest) -> Result<Self> {
        item(r.workspace_id, &r.id)
    }
}

impl TryFrom<pb::GetSchemaRequest> for ItemRef {
    type Error = ServiceError;

    fn try_from(r: pb::GetSchemaRequest) -> Result<Self> {
        item(r.workspace_id, &r.id)
    }
}

impl TryFrom<pb::TestCredentialRequest> for TestInput {
    type Error = ServiceError;

    fn try_from(r: pb::TestCredentialRequest) -> Result<Self> {
        let target = match optional_id("credential_id", &r.credential_id)? {
            Some(id) => TestTarget::Stored {
                id,
                type_id: r.r#type,
                overrides: value(r.value),
            },
            None => {
                let spec = lookup_type("type", &r.r#type)?;
                let input =
                    value(r.value).ok_or_else(|| ServiceError::invalid("value", "required"))?;
                TestTarget::New {
                    spec,
                    value: value::check(spec, input)?,
                }
            }
        };
        Ok(TestInput {
            workspace_id: r.workspace_id,
            target,
        })
    }
}

impl TryFrom<pb::DiscoverSchemaRequest> for DiscoverInput {
    type Error = ServiceError;

    fn try_from(r: pb::DiscoverSchemaRequest) -> Result<Self> {
        let item = item(r.workspace_id, &r.id)?;
        let timeout = r.timeout.map(timeout).transpose()?;
        let options =
            discovery_options(r.include_schemas, r.exclude_schemas, r.max_tables, timeout)?;
        Ok(DiscoverInput { item, options })
    }
}

impl TryFrom<pb::ListCredentialTypesRequest> for TypesInput {
    type Error = ServiceError;

    fn try_from(r: pb::ListCredentialTypesRequest) -> Result<Self> {
        Ok(TypesInput {
            category: category("category", &r.category)?,
        })
    }
}

impl TryFrom<pb::ListAuditEventsRequest> for AuditListInput {
    type Error = ServiceError;

    fn try_from(r: pb::ListAuditEventsRequest) -> Result<Self> {
        let credential_id = optional_id("credential_id", &r.credential_id)?;
        Ok(AuditListInput {
            workspace_id: r.workspace_id,
            credential_id,
            page_size: limits::page_size(r.page_size)?,
            page_token: r.page_token,
        })
    }
}

impl TryFrom<pb::AccessCredentialRequest> for AccessInput {
    type Error = ServiceError;

    fn try_from(r: pb::AccessCredentialRequest) -> Result<Self> {
        use pb::access_credential_request::Selector;
        let selector = match r.selector {
            Some(Selector::Id(raw)) => AccessSelector::Id(id("id", &raw)?),
            Some(Selector::DefaultForType(t)) if !t.is_empty() => {
                AccessSelector::DefaultForType(lookup_type("default_for_type", &t)?)
            }
            _ => {
                return Err(ServiceError::invalid(
                    "id",
                    "set id, or default_for_type to get the workspace's default for a type",
                ));
            }
        };
        Ok(AccessInput {
            workspace_id: r.workspace_id,
            selector,
        })
    }
}

impl TryFrom<pb::SetWorkspaceKeyRequest> for WorkspaceKeyInput {
    type Error = ServiceError;

    fn try_from(r: pb::SetWorkspaceKeyRequest) -> Result<Self> {
        limits::check_workspace_id(&r.workspace_id)?;
        let key_id = (!r.key_id.is_empty()).then_some(r.key_id);
        if let Some(key_id) = &key_id {
            kms::validate_key_id("key_id", key_id)
                .map_err(|e| ServiceError::invalid(e.field, e.reason))?;
        }
        Ok(WorkspaceKeyInput {
            workspace_id: r.workspace_id,
            key_id,
            allow_shared_key: r.allow_shared_key,
        })
    }
}

impl TryFrom<pb::ListSecurityEventsRequest> for SecurityListInput {
    type Error = ServiceError;

    fn try_from(r: pb::ListSecurityEventsRequest) -> Result<Self> {
        Ok(SecurityListInput {
            page_size: limits::page_size(r.page_size)?,
            page_token: r.page_token,
        })
    }
}

/// The workspace of a workspace-key lookup (checked).
pub fn workspace_of(r: pb::GetWorkspaceKeyRequest) -> Result<String> {
    limits::check_workspace_id(&r.workspace_id)?;
    Ok(r.workspace_id)
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
        truncation: truncation(s.truncation) as i32,
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
                product_name: f.alias().unwrap_or_default().to_owned(),
            })
            .collect(),
        primary_field: t.primary_field.to_owned(),
        primary_secret_field: t.primary_secret.to_owned(),
        supports_validation: t.supports_validation,
        supports_schema_discovery: t.supports_schema_discovery,
        product_name: t.alias().unwrap_or_default().to_owned(),
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
        A::Test => pb::AuditAction::Test,
        A::SetWorkspaceKey => pb::AuditAction::SetWorkspaceKey,
        A::StartRewrap => pb::AuditAction::StartRewrap,
    };
    let outcome = match e.event.outcome {
        O::Succeeded => pb::AuditOutcome::Succeeded,
        O::Failed => pb::AuditOutcome::Failed,
        O::Started => pb::AuditOutcome::Started,
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

/// A page of credentials.
pub fn credential_page(page: CredentialPage) -> pb::ListCredentialsResponse {
    pb::ListCredentialsResponse {
        credentials: page.credentials.into_iter().map(credential).collect(),
        next_page_token: page.next_page_token,
    }
}

/// A page of audit events.
pub fn audit_page(page: AuditPage) -> pb::ListAuditEventsResponse {
    pb::ListAuditEventsResponse {
        events: page.events.into_iter().map(audit_event).collect(),
        next_page_token: page.next_page_token,
    }
}

/// A new default.
pub fn default_change(change: DefaultChange) -> pb::SetDefaultCredentialResponse {
    pb::SetDefaultCredentialResponse {
        credential: Some(credential(change.credential)),
        previous_default_id: change
            .previous_default
            .map(|p| p.to_string())
            .unwrap_or_default(),
    }
}

/// A validation's result and the updated credential.
pub fn validated(v: Validated) -> pb::ValidateCredentialResponse {
    pb::ValidateCredentialResponse {
        result: Some(validation_result(&v.result)),
        credential: Some(credential(v.credential)),
    }
}

/// A discovery's summary.
pub fn discovered(d: Discovered) -> pb::DiscoverSchemaResponse {
    pb::DiscoverSchemaResponse {
        table_count: i32::try_from(d.schema.table_count()).unwrap_or(i32::MAX),
        truncated: d.schema.truncated,
        truncation: truncation(d.schema.truncation) as i32,
        credential: Some(credential(d.credential)),
    }
}

/// Why a schema was cut short, on the wire.
fn truncation(t: Option<credentials_core::schema::Truncation>) -> pb::SchemaTruncation {
    use credentials_core::schema::Truncation;
    match t {
        None => pb::SchemaTruncation::Unspecified,
        Some(Truncation::TableLimit) => pb::SchemaTruncation::TableLimit,
        Some(Truncation::RowBudget) => pb::SchemaTruncation::RowBudget,
        Some(Truncation::ByteBudget) => pb::SchemaTruncation::ByteBudget,
        Some(Truncation::DocumentBudget) => pb::SchemaTruncation::DocumentBudget,
    }
}

/// A stored schema, as a document and as DDL.
pub fn stored_schema(s: StoredSchema) -> pb::GetSchemaResponse {
    pb::GetSchemaResponse {
        ddl: s.schema.to_ddl(),
        schema: Some(schema(s.schema)),
        discovered_at: Some(timestamp(s.discovered_at)),
    }
}

/// A credential's plaintext. The response owns copies of the plaintext; tonic encodes and drops
/// them. The service's secret types are zeroized when they go out of scope here.
pub fn accessed(a: Accessed) -> pb::AccessCredentialResponse {
    let fields = a
        .value
        .fields()
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_owned()))
        .collect();
    pb::AccessCredentialResponse {
        secret: a.secret.expose().to_owned(),
        fields,
        credential: Some(credential(a.credential)),
    }
}
