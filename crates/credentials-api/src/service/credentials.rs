//! The credentials service's operations: authorization, input checks, envelope encryption
//! through the kms, storage, audit. No gRPC or SQL types: the gRPC layer converts at its edge.
//!
//! Order inside each operation is deliberate: permission, then input checks (INVALID_ARGUMENT
//! changes nothing), then workspace scoping (another workspace looks exactly like a missing id),
//! then the kms call (before any transaction, so no row lock waits on the network), then one
//! transaction for the rows and the audit event.

use crate::edge::paging;
use crate::service::Caller;
use crate::service::error::{Result, ServiceError};
use auth::Permission;
use credentials_core::{
    Category, SecretValue, TypeSpec, ValueInput, catalogue,
    limits::{DEFAULT_PAGE_SIZE, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, MAX_PAGE_SIZE},
    mask,
    model::{
        AuditAction, AuditEvent, AuditOutcome, Credential, Etag, ListFilter, NewAuditEvent,
        new_credential_id,
    },
    payload::{self, Envelope, PAYLOAD_FORMAT},
    value,
};
use credentials_store::{CredentialChanges, NewCredential, Store};
use kms::{EncryptionContext, KmsClient};
use uuid::Uuid;

/// What a create request asks for, as parsed by the gRPC layer.
#[derive(Debug)]
pub struct CreateInput {
    /// Requested workspace; empty for the token's only workspace.
    pub workspace_id: String,
    /// Display name.
    pub name: String,
    /// Optional category; must match the type's.
    pub category: String,
    /// Type id.
    pub type_id: String,
    /// Free text.
    pub description: String,
    /// The value; `None` when the request had none.
    pub value: Option<ValueInput>,
    /// Make it the default for its type.
    pub make_default: bool,
}

/// What an update request asks for; `None` leaves a field unchanged.
#[derive(Debug)]
pub struct UpdateInput {
    /// Requested workspace.
    pub workspace_id: String,
    /// The credential.
    pub id: Uuid,
    /// The etag the caller read, if any.
    pub etag: Option<Etag>,
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New value.
    pub value: Option<ValueInput>,
}

/// How an access request chooses its credential.
#[derive(Debug)]
pub enum AccessSelector {
    /// By id.
    Id(Uuid),
    /// The workspace's default for a type.
    DefaultForType(String),
}

/// A page of credentials.
#[derive(Debug)]
pub struct CredentialPage {
    /// The credentials.
    pub credentials: Vec<Credential>,
    /// Token of the next page; empty on the last.
    pub next_page_token: String,
}

/// A page of audit events.
#[derive(Debug)]
pub struct AuditPage {
    /// The events.
    pub events: Vec<AuditEvent>,
    /// Token of the next page; empty on the last.
    pub next_page_token: String,
}

/// The service's state: the database and the kms client.
#[derive(Debug, Clone)]
pub struct Credentials {
    store: Store,
    kms: KmsClient,
    /// The master key new data keys are wrapped under; the kms's default when `None`.
    master_key: Option<String>,
}

fn check_name(name: &str) -> Result<()> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(ServiceError::invalid(
            "name",
            format!("must be 1-{MAX_NAME_CHARS} characters, got {chars}"),
        ));
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "name",
            "must not start or end with spaces or contain control characters",
        ));
    }
    Ok(())
}

fn check_description(description: &str) -> Result<()> {
    let chars = description.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        return Err(ServiceError::invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters, got {chars}"),
        ));
    }
    if description
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ServiceError::invalid(
            "description",
            "must not contain control characters other than newlines and tabs",
        ));
    }
    Ok(())
}

/// The catalogue entry of a type named in request field `field`.
pub fn lookup_type(field: &str, type_id: &str) -> Result<&'static TypeSpec> {
    if type_id.is_empty() {
        return Err(ServiceError::invalid(field, "required"));
    }
    catalogue::lookup(type_id).ok_or_else(|| {
        ServiceError::invalid(
            field,
            format!(
                "unknown type '{}'; ListCredentialTypes lists the known types",
                type_id.chars().take(64).collect::<String>()
            ),
        )
    })
}

/// Names the workspace and credential on the RPC's span: ids, not secrets, and what lets a
/// trace be found from a credential. Never used as metric labels (unbounded).
fn annotate(workspace_id: &str, id: Option<Uuid>) {
    let span = tracing::Span::current();
    span.record("workspace_id", workspace_id);
    if let Some(id) = id {
        span.record("credential_id", tracing::field::display(id));
    }
}

/// Parses a category filter or field; empty means none.
pub fn parse_category(field: &str, category: &str) -> Result<Option<Category>> {
    if category.is_empty() {
        return Ok(None);
    }
    Category::parse(category).map(Some).ok_or_else(|| {
        let known: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
        ServiceError::invalid(field, format!("must be one of {}", known.join(", ")))
    })
}

/// A page size from a request: 0 means the default; more than the maximum is refused.
pub fn page_size(requested: i32) -> Result<usize> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(ServiceError::invalid("page_size", "must not be negative")),
        n if n as usize > MAX_PAGE_SIZE => Err(ServiceError::invalid(
            "page_size",
            format!("must be at most {MAX_PAGE_SIZE}, got {n}"),
        )),
        n => Ok(n as usize),
    }
}

impl Credentials {
    /// A vault over a store and a kms client.
    pub fn new(store: Store, kms: KmsClient, master_key: Option<String>) -> Self {
        Self {
            store,
            kms,
            master_key,
        }
    }

    /// The store, for health checks.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The kms client, for health checks.
    pub fn kms(&self) -> &KmsClient {
        &self.kms
    }

    pub(crate) fn audit(
        caller: &Caller,
        workspace_id: &str,
        credential_id: Option<Uuid>,
        action: AuditAction,
        outcome: AuditOutcome,
        status_code: &str,
    ) -> NewAuditEvent {
        NewAuditEvent {
            workspace_id: workspace_id.to_owned(),
            credential_id,
            actor: caller.principal.subject.clone(),
            action,
            outcome,
            status_code: status_code.to_owned(),
            request_id: caller.request_id.clone(),
        }
    }

    fn context(
        workspace_id: &str,
        id: Uuid,
    ) -> (
        std::collections::BTreeMap<String, String>,
        EncryptionContext,
    ) {
        let map = payload::encryption_context(workspace_id, id);
        let ctx = EncryptionContext::from(map.clone());
        (map, ctx)
    }

    /// Seals a value under a fresh data key from the kms; the plaintext key is zeroized when
    /// this returns.
    async fn seal(&self, workspace_id: &str, id: Uuid, value: &SecretValue) -> Result<Envelope> {
        let (map, ctx) = Self::context(workspace_id, id);
        // A workspace's own master key wins over the configured one.
        let master_key = match self.store.workspace_key(workspace_id).await? {
            Some(key) => Some(key),
            None => self.master_key.clone(),
        };
        let key = self
            .kms
            .generate_data_key(master_key.as_deref(), &ctx)
            .await?;
        let json = value.to_json();
        let (ciphertext, nonce) = payload::seal(&key.plaintext, &map, &json)?;
        Ok(Envelope {
            ciphertext,
            nonce,
            wrapped_key: key.wrapped,
            master_key_id: key.key_id,
            master_key_version: key.key_version,
            payload_format: PAYLOAD_FORMAT,
        })
    }

    /// A live credential and its opened value.
    pub(crate) async fn open_stored(
        &self,
        workspace_id: &str,
        id: Uuid,
    ) -> Result<(Credential, SecretValue)> {
        let (credential, envelope) = self.store.get_sealed(workspace_id, id).await?;
        let value = self.open(&credential, &envelope).await?;
        Ok((credential, value))
    }

    /// Opens a stored value: the kms unwraps the data key for this row's context.
    async fn open(&self, credential: &Credential, envelope: &Envelope) -> Result<SecretValue> {
        let (map, ctx) = Self::context(&credential.workspace_id, credential.id);
        let key = self
            .kms
            .unwrap_data_key(&envelope.wrapped_key, &ctx)
            .await?;
        let json = payload::open(&key.plaintext, &map, envelope)?;
        Ok(SecretValue::from_json(&json)?)
    }

    /// Creates a credential.
    pub async fn create(&self, caller: &Caller, input: CreateInput) -> Result<Credential> {
        check_name(&input.name)?;
        check_description(&input.description)?;
        let spec = lookup_type("type", &input.type_id)?;
        if let Some(category) = parse_category("category", &input.category)?
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
        let value = input
            .value
            .ok_or_else(|| ServiceError::invalid("value", "required"))?;
        let value = value::check(spec, value)?;
        let workspace_id = caller.workspace_for_collection(&input.workspace_id)?;

        let id = new_credential_id();
        annotate(&workspace_id, Some(id));
        let masked_content = mask::preview(spec, &value);
        let envelope = self.seal(&workspace_id, id, &value).await?;
        drop(value);
        let new = NewCredential {
            id,
            workspace_id: workspace_id.clone(),
            name: input.name,
            category: spec.category,
            type_id: spec.id.to_owned(),
            description: input.description,
            masked_content,
            make_default: input.make_default,
            envelope,
        };
        let event = Self::audit(
            caller,
            &workspace_id,
            Some(id),
            AuditAction::Create,
            AuditOutcome::Succeeded,
            "OK",
        );
        let credential = self.store.insert_credential(&new, &event).await?;
        tracing::info!(credential_id = %id, workspace_id, type_id = spec.id, "credential created");
        Ok(credential)
    }

    /// Gets a credential (live or deleted).
    pub async fn get(&self, caller: &Caller, workspace_id: &str, id: Uuid) -> Result<Credential> {
        let workspace_id = caller.workspace_for_item(workspace_id)?;
        annotate(&workspace_id, Some(id));
        Ok(self.store.get_credential(&workspace_id, id).await?)
    }

    /// Lists a page of credentials.
    pub async fn list(
        &self,
        caller: &Caller,
        workspace_id: &str,
        filter: ListFilter,
        page_size: usize,
        page_token: &str,
    ) -> Result<CredentialPage> {
        if let Some(type_id) = &filter.type_id {
            lookup_type("type", type_id)?;
        }
        let workspace_id = caller.workspace_for_collection(workspace_id)?;
        annotate(&workspace_id, None);
        let cursor = paging::credentials_cursor(&workspace_id, &filter, page_token)?;
        let (credentials, next) = self
            .store
            .list_credentials(&workspace_id, &filter, cursor, page_size)
            .await?;
        Ok(CredentialPage {
            credentials,
            next_page_token: next
                .map(|c| paging::credentials_token(&workspace_id, &filter, c))
                .unwrap_or_default(),
        })
    }

    /// Updates a credential's name, description and/or value.
    pub async fn update(&self, caller: &Caller, input: UpdateInput) -> Result<Credential> {
        if input.name.is_none() && input.description.is_none() && input.value.is_none() {
            return Err(ServiceError::invalid(
                "name",
                "nothing to update: give at least one of name, description, value",
            ));
        }
        if let Some(name) = &input.name {
            check_name(name)?;
        }
        if let Some(description) = &input.description {
            check_description(description)?;
        }
        let workspace_id = caller.workspace_for_item(&input.workspace_id)?;
        annotate(&workspace_id, Some(input.id));
        let mut changes = CredentialChanges {
            name: input.name,
            description: input.description,
            value: None,
        };
        if let Some(value) = input.value {
            // The type decides what a valid value is, so the credential is read first.
            let current = self.store.get_credential(&workspace_id, input.id).await?;
            if current.deleted_at.is_some() {
                return Err(ServiceError::NotFound);
            }
            let spec = lookup_type("type", &current.type_id).map_err(|_| {
                ServiceError::Internal(format!("stored type {} unknown", current.type_id))
            })?;
            let value = value::check(spec, value)?;
            let masked = mask::preview(spec, &value);
            let envelope = self.seal(&workspace_id, input.id, &value).await?;
            changes.value = Some((envelope, masked));
        }
        let event = Self::audit(
            caller,
            &workspace_id,
            Some(input.id),
            AuditAction::Update,
            AuditOutcome::Succeeded,
            "OK",
        );
        let credential = self
            .store
            .update_credential(
                &workspace_id,
                input.id,
                input.etag.map(|e| e.0),
                &changes,
                &event,
            )
            .await?;
        tracing::info!(credential_id = %input.id, workspace_id, value_changed = changes.value.is_some(), "credential updated");
        Ok(credential)
    }

    /// Deletes a credential and destroys its secret.
    pub async fn delete(
        &self,
        caller: &Caller,
        workspace_id: &str,
        id: Uuid,
        etag: Option<Etag>,
    ) -> Result<Credential> {
        let workspace_id = caller.workspace_for_item(workspace_id)?;
        annotate(&workspace_id, Some(id));
        let event = Self::audit(
            caller,
            &workspace_id,
            Some(id),
            AuditAction::Delete,
            AuditOutcome::Succeeded,
            "OK",
        );
        let credential = self
            .store
            .delete_credential(&workspace_id, id, etag.map(|e| e.0), &event)
            .await?;
        tracing::info!(credential_id = %id, workspace_id, "credential deleted and its secret destroyed");
        Ok(credential)
    }

    /// Makes a credential the default for its type.
    pub async fn set_default(
        &self,
        caller: &Caller,
        workspace_id: &str,
        id: Uuid,
    ) -> Result<(Credential, Option<Uuid>)> {
        let workspace_id = caller.workspace_for_item(workspace_id)?;
        annotate(&workspace_id, Some(id));
        let event = Self::audit(
            caller,
            &workspace_id,
            Some(id),
            AuditAction::SetDefault,
            AuditOutcome::Succeeded,
            "OK",
        );
        let (credential, previous) = self.store.set_default(&workspace_id, id, &event).await?;
        tracing::info!(credential_id = %id, workspace_id, type_id = credential.type_id, "default set");
        Ok((credential, previous))
    }

    /// Hands out a credential's plaintext. Every call that gets past input checks is audited,
    /// refusals included; the event is committed before the answer.
    pub async fn access(
        &self,
        caller: &Caller,
        workspace_id: &str,
        selector: AccessSelector,
    ) -> Result<(Credential, SecretValue)> {
        if let AccessSelector::DefaultForType(type_id) = &selector {
            lookup_type("default_for_type", type_id)?;
        }
        let requested_id = match &selector {
            AccessSelector::Id(id) => Some(*id),
            AccessSelector::DefaultForType(_) => None,
        };
        let outcome = self.access_inner(caller, workspace_id, selector).await;
        if let Err(err @ ServiceError::InvalidArgument(_)) = outcome {
            // Bad input changes nothing, not even the audit log.
            return Err(err);
        }
        let (credential_id, audit_outcome, status) = match &outcome {
            Ok((credential, _)) => (Some(credential.id), AuditOutcome::Succeeded, "OK"),
            Err(err) => (requested_id, AuditOutcome::Failed, status_name(err)),
        };
        // The audit event names the workspace asked for, even one the caller may not use.
        let audited_workspace = match (&outcome, workspace_id.is_empty()) {
            (Ok((credential, _)), _) => credential.workspace_id.clone(),
            (Err(_), false) => workspace_id.to_owned(),
            (Err(_), true) => caller
                .principal
                .workspaces
                .first()
                .cloned()
                .unwrap_or_default(),
        };
        let event = Self::audit(
            caller,
            &audited_workspace,
            credential_id,
            AuditAction::Access,
            audit_outcome,
            status,
        );
        if let Err(err) = self.store.record_audit(&event).await {
            // No audit, no plaintext.
            tracing::warn!(error = %err, "access audit event not recorded; refusing the access");
            return Err(err.into());
        }
        if let Ok((credential, _)) = &outcome {
            // DEBUG, not INFO: the audit table is the record of every access, and a log line per
            // read of the hottest path costs more than it tells.
            tracing::debug!(credential_id = %credential.id, workspace_id = credential.workspace_id, "credential accessed");
        }
        outcome
    }

    async fn access_inner(
        &self,
        caller: &Caller,
        workspace_id: &str,
        selector: AccessSelector,
    ) -> Result<(Credential, SecretValue)> {
        caller.require(Permission::Access)?;
        let (credential, envelope) = match selector {
            AccessSelector::Id(id) => {
                let workspace_id = caller.workspace_for_item(workspace_id)?;
                self.store.get_sealed(&workspace_id, id).await?
            }
            AccessSelector::DefaultForType(type_id) => {
                let workspace_id = caller.workspace_for_collection(workspace_id)?;
                self.store
                    .get_default_sealed(&workspace_id, &type_id)
                    .await?
            }
        };
        annotate(&credential.workspace_id, Some(credential.id));
        let value = self.open(&credential, &envelope).await?;
        Ok((credential, value))
    }

    /// The type catalogue, optionally of one category.
    pub fn list_types(&self, category: &str) -> Result<Vec<&'static TypeSpec>> {
        let category = parse_category("category", category)?;
        Ok(catalogue::all()
            .iter()
            .filter(|t| category.is_none_or(|c| t.category == c))
            .collect())
    }

    /// A page of the workspace's audit events.
    pub async fn list_audit(
        &self,
        caller: &Caller,
        workspace_id: &str,
        credential_id: Option<Uuid>,
        page_size: usize,
        page_token: &str,
    ) -> Result<AuditPage> {
        let workspace_id = caller.workspace_for_collection(workspace_id)?;
        annotate(&workspace_id, credential_id);
        let before = paging::audit_before(&workspace_id, credential_id, page_token)?;
        let limit = i64::try_from(page_size + 1).unwrap_or(i64::MAX);
        let mut events = self
            .store
            .list_audit(&workspace_id, credential_id, before, limit)
            .await?;
        let next_page_token = if events.len() > page_size {
            events.truncate(page_size);
            events
                .last()
                .map(|e| paging::audit_token(&workspace_id, credential_id, e.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(AuditPage {
            events,
            next_page_token,
        })
    }
}

/// The gRPC status code name an error will be answered with, for audit events.
fn status_name(err: &ServiceError) -> &'static str {
    match err {
        ServiceError::InvalidArgument(_) => "INVALID_ARGUMENT",
        ServiceError::NotFound => "NOT_FOUND",
        ServiceError::AlreadyExists => "ALREADY_EXISTS",
        ServiceError::Aborted => "ABORTED",
        ServiceError::PermissionDenied(_) => "PERMISSION_DENIED",
        ServiceError::FailedPrecondition(_) => "FAILED_PRECONDITION",
        ServiceError::Unavailable(_) => "UNAVAILABLE",
        ServiceError::DeadlineExceeded(_) => "DEADLINE_EXCEEDED",
        ServiceError::Internal(_) => "INTERNAL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_descriptions() {
        assert!(check_name("OpenAI Production").is_ok());
        for bad in ["", " lead", "trail ", "tab\there", &"x".repeat(129)] {
            let err = check_name(bad).unwrap_err();
            assert!(
                matches!(err, ServiceError::InvalidArgument(v) if v.field == "name"),
                "{bad:?}"
            );
        }
        assert!(check_name(&"é".repeat(128)).is_ok());
        assert!(check_description("line one\nline two").is_ok());
        assert!(check_description(&"x".repeat(1025)).is_err());
        assert!(check_description("bell\u{7}").is_err());
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(500).unwrap(), 500);
        assert!(
            matches!(page_size(501), Err(ServiceError::InvalidArgument(v)) if v.field == "page_size")
        );
        assert!(page_size(-1).is_err());
    }
}
