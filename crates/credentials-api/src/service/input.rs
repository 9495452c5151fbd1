//! The operations' typed inputs and outputs. An input is built only by an edge conversion that
//! has already checked everything a request can get wrong on its own (ids, names, types, the
//! value against its type, limits); what needs the database or the caller's token (the
//! workspace, a stored credential's type) is checked by the operation.

use credentials_core::{
    Category, SecretString, SecretValue, TypeSpec, ValueInput,
    model::{AuditEvent, Credential, Etag, ListFilter},
    schema::{DatabaseSchema, DiscoveryOptions},
};
use credentials_probe::ProbeResult;
use std::time::SystemTime;
use uuid::Uuid;

/// One credential of a workspace, as a request names it.
#[derive(Debug, Clone)]
pub struct ItemRef {
    /// The requested workspace; empty for the token's only workspace.
    pub workspace_id: String,
    /// The credential.
    pub id: Uuid,
}

/// A checked create request.
#[derive(Debug)]
pub struct CreateInput {
    /// The requested workspace; empty for the token's only workspace.
    pub workspace_id: String,
    /// Display name (checked).
    pub name: String,
    /// The type (its category matched the request's, when given).
    pub spec: &'static TypeSpec,
    /// Free text (checked).
    pub description: String,
    /// The value, checked against the type.
    pub value: SecretValue,
    /// Make it the default for its type.
    pub make_default: bool,
}

/// A checked list request.
#[derive(Debug)]
pub struct ListInput {
    /// The requested workspace.
    pub workspace_id: String,
    /// Category, type (known) and deleted-or-live.
    pub filter: ListFilter,
    /// Page size, within the limits.
    pub page_size: usize,
    /// The previous page's token; empty for the first page.
    pub page_token: String,
}

/// A checked update request; `None` leaves a field unchanged, and at least one is `Some`.
#[derive(Debug)]
pub struct UpdateInput {
    /// The credential.
    pub item: ItemRef,
    /// The etag the caller read, if any.
    pub etag: Option<Etag>,
    /// New name (checked).
    pub name: Option<String>,
    /// New description (checked).
    pub description: Option<String>,
    /// New value, checked against the stored type by the operation.
    pub value: Option<ValueInput>,
}

/// A checked delete request.
#[derive(Debug)]
pub struct DeleteInput {
    /// The credential.
    pub item: ItemRef,
    /// The etag the caller read, if any.
    pub etag: Option<Etag>,
}

/// How an access request chooses its credential.
#[derive(Debug)]
pub enum AccessSelector {
    /// By id.
    Id(Uuid),
    /// The workspace's default for a (known) type.
    DefaultForType(&'static TypeSpec),
}

/// A checked access request.
#[derive(Debug)]
pub struct AccessInput {
    /// The requested workspace.
    pub workspace_id: String,
    /// Which credential.
    pub selector: AccessSelector,
}

/// What a test request probes.
#[derive(Debug)]
pub enum TestTarget {
    /// A value that is not stored, checked against its type.
    New {
        /// The type.
        spec: &'static TypeSpec,
        /// The value.
        value: SecretValue,
    },
    /// A stored credential's value, with the given fields replaced.
    Stored {
        /// The credential.
        id: Uuid,
        /// The type the request named, to be compared with the stored one; empty for none.
        type_id: String,
        /// Replacement fields, or a replacement for the primary secret.
        overrides: Option<ValueInput>,
    },
}

/// A checked test request.
#[derive(Debug)]
pub struct TestInput {
    /// The requested workspace.
    pub workspace_id: String,
    /// What to probe.
    pub target: TestTarget,
}

/// A checked schema discovery request.
#[derive(Debug)]
pub struct DiscoverInput {
    /// The credential.
    pub item: ItemRef,
    /// Filters and limits, within the documented bounds.
    pub options: DiscoveryOptions,
}

/// A checked audit listing request.
#[derive(Debug)]
pub struct AuditListInput {
    /// The requested workspace.
    pub workspace_id: String,
    /// Only this credential's events, when given.
    pub credential_id: Option<Uuid>,
    /// Page size, within the limits.
    pub page_size: usize,
    /// The previous page's token; empty for the first page.
    pub page_token: String,
}

/// A checked type listing request.
#[derive(Debug)]
pub struct TypesInput {
    /// Only this category, when given.
    pub category: Option<Category>,
}

/// A checked request to give a workspace its own master key (or the default back).
#[derive(Debug)]
pub struct WorkspaceKeyInput {
    /// The workspace (checked).
    pub workspace_id: String,
    /// The key (checked); `None` for the kms's default.
    pub key_id: Option<String>,
    /// Whether the key may be one another workspace has as its own.
    pub allow_shared_key: bool,
}

/// A checked security-log listing request.
#[derive(Debug)]
pub struct SecurityListInput {
    /// Page size, within the limits.
    pub page_size: usize,
    /// The previous page's token; empty for the first page.
    pub page_token: String,
}

/// A page of credentials.
#[derive(Debug)]
pub struct CredentialPage {
    /// The credentials.
    pub credentials: Vec<Credential>,
    /// Token of the next page; empty on the last.
    pub next_page_token: String,
}

impl AuditPage {
    /// A page of at most `page_size` events from `events`, read with a limit one more than
    /// `page_size` (the extra one tells there is a next page); the next page's token is made
    /// by `token` from the last event kept.
    pub fn cut(
        mut events: Vec<AuditEvent>,
        page_size: usize,
        token: impl FnOnce(&AuditEvent) -> String,
    ) -> Self {
        let next_page_token = if events.len() > page_size {
            events.truncate(page_size);
            events.last().map(token).unwrap_or_default()
        } else {
            String::new()
        };
        Self {
            events,
            next_page_token,
        }
    }
}

/// A page of audit events.
#[derive(Debug)]
pub struct AuditPage {
    /// The events.
    pub events: Vec<AuditEvent>,
    /// Token of the next page; empty on the last.
    pub next_page_token: String,
}

/// The outcome of making a credential its type's default.
#[derive(Debug)]
pub struct DefaultChange {
    /// The new default.
    pub credential: Credential,
    /// The credential that was the default before, if another one was.
    pub previous_default: Option<Uuid>,
}

/// A credential's plaintext, for the access door only.
#[derive(Debug)]
pub struct Accessed {
    /// The credential's metadata.
    pub credential: Credential,
    /// The type's primary secret (empty when the value lacks it).
    pub secret: SecretString,
    /// Every field of the value.
    pub value: SecretValue,
}

/// A validation's result and the credential with the result recorded.
#[derive(Debug)]
pub struct Validated {
    /// What the probe found.
    pub result: ProbeResult,
    /// The credential, with its validation state updated.
    pub credential: Credential,
}

/// A discovery's result.
#[derive(Debug)]
pub struct Discovered {
    /// The credential, with `has_schema` and `schema_updated_at` set.
    pub credential: Credential,
    /// The schema as stored.
    pub schema: DatabaseSchema,
}

/// A stored schema.
#[derive(Debug)]
pub struct StoredSchema {
    /// The schema.
    pub schema: DatabaseSchema,
    /// When it was discovered.
    pub discovered_at: SystemTime,
}
