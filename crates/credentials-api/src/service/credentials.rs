//! The credentials service's operations: authorization, envelope encryption through the kms,
//! storage, audit. No gRPC or SQL types: inputs arrive checked from an edge (see [`super::input`]).
//!
//! Order inside each operation is deliberate: workspace scoping (another workspace looks
//! exactly like a missing id), then checks that need stored state, then the kms call (before
//! any transaction, so no row lock waits on the network), then one transaction for the rows and
//! the audit event. Before the call, the auth layer checked the RPC's permission (the table in
//! `edge::permissions`) and the edge checked everything the request can get wrong on its own.
//! Access alone checks its permission here too: a refused access must be audited, and only the
//! operation writes that row.

use super::caller::Caller;
use super::data_key_cache::DataKeyCache;
use super::error::{Result, ServiceError};
use super::input::{
    AccessInput, AccessSelector, Accessed, AuditListInput, AuditPage, CreateInput, CredentialPage,
    DefaultChange, DeleteInput, ItemRef, ListInput, TypesInput, UpdateInput,
};
use super::keyring::KeyringCheck;
use super::paging;
use super::seed::{SeedConfig, WriteSeeds};
use auth::Permission;
use credentials_core::EncryptionContext;
use credentials_core::{
    SecretString, SecretValue, TypeSpec, catalogue,
    limits::check_workspace_id,
    mask,
    model::{AuditAction, AuditOutcome, Credential, NewAuditEvent, new_credential_id},
    payload::{self, Envelope, PAYLOAD_FORMAT, RowBinding},
    value,
};
use credentials_store::{CredentialChanges, NewCredential, Store, StoreError};
use kms::KmsClient;
use std::sync::Arc;
use uuid::Uuid;
use zeroize::Zeroizing;

/// The service's state: the database and the kms client.
#[derive(Debug, Clone)]
pub struct Credentials {
    store: Store,
    kms: KmsClient,
    /// Whether the kms holds the key versions the rows use (shared with the readiness loop).
    keyring: KeyringCheck,
    /// The master key new data keys are wrapped under; the kms's default when `None`.
    master_key: Option<String>,
    /// Per-principal limits on accesses and probes (see `rate_limit`).
    limits: std::sync::Arc<super::RateLimiter>,
    /// Unwrapped data keys of recently read credentials (see `data_keys`).
    data_keys: Arc<DataKeyCache>,
    /// The seeds new values' data keys are derived from (see [`super::seed`]).
    seeds: Arc<WriteSeeds>,
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

/// The catalogue entry of a stored credential's type: unknown means corrupt data, not bad input.
pub(crate) fn stored_type(credential: &Credential) -> Result<&'static TypeSpec> {
    catalogue::lookup(&credential.type_id).ok_or_else(|| {
        ServiceError::Internal(format!("stored type {} unknown", credential.type_id))
    })
}

/// Names the workspace and credential on the RPC's span: ids, not secrets, and what lets a
/// trace be found from a credential. Never used as metric labels (unbounded).
pub(crate) fn annotate(workspace_id: &str, id: Option<Uuid>) {
    let span = tracing::Span::current();
    span.record(service_kit::span_fields::WORKSPACE_ID, workspace_id);
    if let Some(id) = id {
        span.record(
            service_kit::span_fields::CREDENTIAL_ID,
            tracing::field::display(id),
        );
    }
}

/// What binds a stored credential's value: its row, type and value generation.
pub(crate) fn binding_of<'a>(credential: &'a Credential, envelope: &Envelope) -> RowBinding<'a> {
    RowBinding {
        workspace_id: &credential.workspace_id,
        credential_id: credential.id,
        type_id: &credential.type_id,
        value_generation: envelope.value_generation,
    }
}

/// Seals a value in the current payload format (4) for `row`, under a data key of its own
/// derived from the workspace's write seed (wrapped under `master_key`, the kms's default when
/// `None`) with a fresh salt: no kms call while the seed is fresh. The derived key is zeroized
/// on return.
pub(crate) async fn seal_value(
    seeds: &WriteSeeds,
    row: &RowBinding<'_>,
    master_key: Option<&str>,
    value: &SecretValue,
) -> Result<Envelope> {
    let ctx = payload::encryption_context(row);
    let seed = seeds.for_write(row.workspace_id, master_key).await?;
    let salt = payload::new_salt()?;
    let key = payload::derive_data_key(seed.plaintext(), &salt, &ctx)?;
    let json = value.to_json();
    let (ciphertext, nonce) = payload::seal(&key, &salt, &ctx, &json)?;
    Ok(Envelope {
        ciphertext,
        nonce,
        wrapped_key: seed.wrapped.clone(),
        master_key_id: seed.key_id.clone(),
        master_key_version: seed.key_version,
        payload_format: PAYLOAD_FORMAT,
        value_generation: row.value_generation,
    })
}

/// A stored value's own data key, for its context `ctx` (from [`payload::stored_context`]):
/// from `cache` when it holds one for this wrapped key, context and salt; else, up to format 3
/// the kms unwraps it under that context, and in format 4 the kms unwraps the workspace's seed
/// under the seed context and the key is derived from it with the row's salt
/// ([`Envelope::derivation_salt`]) and `ctx` (the seed's plaintext is zeroized on return, the
/// derived key remembered in `cache`).
pub(crate) async fn row_data_key(
    kms: &KmsClient,
    cache: &DataKeyCache,
    credential: &Credential,
    envelope: &Envelope,
    ctx: &EncryptionContext,
) -> Result<Zeroizing<Vec<u8>>> {
    let salt = envelope.derivation_salt()?;
    let derivation = salt.unwrap_or_default();
    if let Some(key) = cache.lookup(&envelope.wrapped_key, ctx, derivation) {
        return Ok(key);
    }
    let key = match salt {
        None => {
            kms.unwrap_data_key(&envelope.wrapped_key, ctx)
                .await?
                .plaintext
        }
        Some(salt) => {
            let wrapping = payload::wrapping_context(
                &binding_of(credential, envelope),
                envelope.payload_format,
            )?;
            let seed = kms
                .unwrap_data_key(&envelope.wrapped_key, &wrapping)
                .await?;
            payload::derive_data_key(&seed.plaintext, salt, ctx)?
        }
    };
    cache.insert(credential.id, &envelope.wrapped_key, ctx, derivation, &key);
    Ok(key)
}

/// Opens a stored value with its data key (see [`row_data_key`]) for the row's context,
/// rebuilt from the row (workspace, id, the payload format it records and, from format 3, its
/// type and value generation). An unknown format, or a format that does not go with the row's
/// generation, is refused before the kms is asked.
pub(crate) async fn open_value(
    kms: &KmsClient,
    cache: &DataKeyCache,
    credential: &Credential,
    envelope: &Envelope,
) -> Result<SecretValue> {
    let ctx = payload::stored_context(&binding_of(credential, envelope), envelope.payload_format)?;
    let key = row_data_key(kms, cache, credential, envelope, &ctx).await?;
    let json = payload::open(&key, &ctx, envelope)?;
    Ok(SecretValue::from_json(&json)?)
}

/// How many times an update seals a value when other writes of it keep coming first: each
/// round of racing writers lands one, so up to this many concurrent writers all succeed.
const VALUE_WRITE_ATTEMPTS: usize = 5;

impl Credentials {
    /// A service over a store and a kms client.
    pub fn new(store: Store, kms: KmsClient, master_key: Option<String>) -> Self {
        Self {
            keyring: KeyringCheck::new(store.clone(), kms.clone()),
            seeds: Arc::new(WriteSeeds::new(kms.clone(), SeedConfig::default())),
            store,
            kms,
            master_key,
            limits: std::sync::Arc::new(super::RateLimiter::unlimited()),
            data_keys: Arc::new(DataKeyCache::off()),
        }
    }

    /// The same operations reading data keys through `cache` (which the keyring check empties
    /// when the kms loads a keyring).
    pub fn with_data_key_cache(mut self, cache: Arc<DataKeyCache>) -> Self {
        self.keyring = self.keyring.with_data_key_cache(cache.clone());
        self.data_keys = cache;
        self
    }

    /// The data-key cache, for its metrics and purge tick.
    pub fn data_keys(&self) -> &Arc<DataKeyCache> {
        &self.data_keys
    }

    /// The same operations with write seeds used as `config` says.
    pub fn with_write_seeds(mut self, config: SeedConfig) -> Self {
        self.seeds = Arc::new(WriteSeeds::new(self.kms.clone(), config));
        self.keyring = self.keyring.with_write_seeds(self.seeds.clone());
        self
    }

    /// The same operations under `limits`.
    pub fn with_rate_limits(mut self, limits: super::RateLimiter) -> Self {
        self.limits = std::sync::Arc::new(limits);
        self
    }

    /// Admits `caller`'s call of `class` (the RPC `action` names) under its rate limit, or
    /// refuses it with RESOURCE_EXHAUSTED and when to retry. The first refusal of a window is
    /// recorded as a security event (best effort: a refusal already protects the vault, so a
    /// database that cannot take the event does not turn it into UNAVAILABLE).
    pub async fn admit(
        &self,
        caller: &Caller,
        class: super::RateClass,
        action: AuditAction,
    ) -> Result<()> {
        let Err(refusal) = self.limits.check(&caller.principal.subject, class) else {
            return Ok(());
        };
        let what = match class {
            super::RateClass::Access => "credential accesses",
            super::RateClass::Probe => "validations, tests and discoveries",
        };
        let refused = ServiceError::ResourceExhausted {
            message: format!(
                "rate limit of {} {what} per principal reached; retry in {} ms",
                self.limits.rate(class),
                refusal.retry_after.as_millis()
            ),
            retry_after: refusal.retry_after,
        };
        if refusal.audit {
            tracing::warn!(subject = %caller.principal.subject, ?class, "rate limit reached; later refusals in this window are not audited");
            let event = Self::audit(
                caller,
                "",
                None,
                action,
                AuditOutcome::Failed,
                refused.code().as_str(),
            );
            if let Err(e) = self.store.record_security_event(&event).await {
                tracing::warn!(error = %e, "cannot record the rate-limit refusal");
            }
        }
        Err(refused)
    }

    /// The comparison of the rows' key versions with the kms's keyring, for health.
    pub fn keyring_check(&self) -> &KeyringCheck {
        &self.keyring
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

    /// The master key a workspace's new data keys are wrapped under: its own key if it has
    /// one, else the configured one (the kms's default when `None`). Decided before sealing,
    /// so sealing itself touches no store.
    async fn master_key_for(&self, workspace_id: &str) -> Result<Option<String>> {
        Ok(match self.store.workspace_key(workspace_id).await? {
            Some(key) => Some(key),
            None => self.master_key.clone(),
        })
    }

    /// Seals a value for `row` (its type and the generation the value will have are in the
    /// context) under a data key of its own, derived from the workspace's seed wrapped under
    /// `master_key`; the derived key is zeroized when this returns.
    async fn seal(
        &self,
        row: &RowBinding<'_>,
        master_key: Option<&str>,
        value: &SecretValue,
    ) -> Result<Envelope> {
        seal_value(&self.seeds, row, master_key, value).await
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

    /// Opens a stored value: the kms unwraps the data key for this row's context (see
    /// [`open_value`]). A key the kms refuses as unavailable is told apart: a version the kms
    /// does not hold at all means a lost or wrong keyring, and the answer says to restore it.
    async fn open(&self, credential: &Credential, envelope: &Envelope) -> Result<SecretValue> {
        match open_value(&self.kms, &self.data_keys, credential, envelope).await {
            Err(refused @ ServiceError::KeyUnavailable { .. }) => {
                Err(self.keyring.classify_refusal(credential, refused).await)
            }
            other => other,
        }
    }

    /// Creates a credential.
    pub async fn create(&self, caller: &Caller, input: CreateInput) -> Result<Credential> {
        let workspace_id = caller.workspace_for_collection(&input.workspace_id)?;
        let spec = input.spec;
        let id = new_credential_id();
        annotate(&workspace_id, Some(id));
        let masked_content = mask::preview(spec, &input.value);
        let master_key = self.master_key_for(&workspace_id).await?;
        let row = RowBinding {
            workspace_id: &workspace_id,
            credential_id: id,
            type_id: spec.id,
            value_generation: 1,
        };
        let envelope = self.seal(&row, master_key.as_deref(), &input.value).await?;
        drop(input.value);
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
    pub async fn get(&self, caller: &Caller, item: ItemRef) -> Result<Credential> {
        let workspace_id = caller.workspace_for_item(&item.workspace_id)?;
        annotate(&workspace_id, Some(item.id));
        Ok(self.store.get_credential(&workspace_id, item.id).await?)
    }

    /// Lists a page of credentials.
    pub async fn list(&self, caller: &Caller, input: ListInput) -> Result<CredentialPage> {
        let workspace_id = caller.workspace_for_collection(&input.workspace_id)?;
        annotate(&workspace_id, None);
        let filter = input.filter;
        let cursor = paging::credentials_cursor(&workspace_id, &filter, &input.page_token)?;
        let (credentials, next) = self
            .store
            .list_credentials(&workspace_id, &filter, cursor, input.page_size)
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
        let id = input.item.id;
        let workspace_id = caller.workspace_for_item(&input.item.workspace_id)?;
        annotate(&workspace_id, Some(id));
        let mut changes = CredentialChanges {
            name: input.name,
            description: input.description,
            value: None,
        };
        let etag = input.etag.map(|e| e.0);
        let event = Self::audit(
            caller,
            &workspace_id,
            Some(id),
            AuditAction::Update,
            AuditOutcome::Succeeded,
            "OK",
        );
        let Some(value) = input.value else {
            let credential = self
                .store
                .update_credential(&workspace_id, id, etag, &changes, &event)
                .await?;
            // The key still opens the value, but an update is where an operator expects a
            // credential's state in memory to start afresh.
            self.data_keys.forget(id);
            tracing::info!(credential_id = %id, workspace_id, value_changed = false, "credential updated");
            return Ok(credential);
        };
        let mut value = Some(value);
        let mut checked = None;
        let mut attempt = 1;
        let credential = loop {
            // The type decides what a valid value is, and the generation read here is the one
            // the new value follows (it is sealed into its context), so the row is read first.
            let (current, sealed) = self.store.get_sealed(&workspace_id, id).await?;
            let spec = stored_type(&current)?;
            let value = match (checked.take(), value.take()) {
                (Some(checked), _) => checked,
                (None, Some(raw)) => value::check(spec, raw)?,
                (None, None) => return Err(ServiceError::Internal("update lost its value".into())),
            };
            let masked = mask::preview(spec, &value);
            let master_key = self.master_key_for(&workspace_id).await?;
            let row = RowBinding {
                value_generation: sealed.value_generation + 1,
                ..binding_of(&current, &sealed)
            };
            let envelope = self.seal(&row, master_key.as_deref(), &value).await?;
            changes.value = Some((envelope, masked));
            match self
                .store
                .update_credential(&workspace_id, id, etag, &changes, &event)
                .await
            {
                Err(StoreError::ValueRaced) if attempt < VALUE_WRITE_ATTEMPTS => {
                    attempt += 1;
                    checked = Some(value);
                }
                other => break other?,
            }
        };
        // The old value's key is worth nothing now; it goes at once, not at its maximum age.
        self.data_keys.forget(id);
        tracing::info!(credential_id = %id, workspace_id, value_changed = true, "credential updated");
        Ok(credential)
    }

    /// Deletes a credential and destroys its secret.
    pub async fn delete(&self, caller: &Caller, input: DeleteInput) -> Result<Credential> {
        let id = input.item.id;
        let workspace_id = caller.workspace_for_item(&input.item.workspace_id)?;
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
            .delete_credential(&workspace_id, id, input.etag.map(|e| e.0), &event)
            .await?;
        // The secret is destroyed; its key leaves memory with it.
        self.data_keys.forget(id);
        tracing::info!(credential_id = %id, workspace_id, "credential deleted and its secret destroyed");
        Ok(credential)
    }

    /// Makes a credential the default for its type.
    pub async fn set_default(&self, caller: &Caller, item: ItemRef) -> Result<DefaultChange> {
        let id = item.id;
        let workspace_id = caller.workspace_for_item(&item.workspace_id)?;
        annotate(&workspace_id, Some(id));
        let event = Self::audit(
            caller,
            &workspace_id,
            Some(id),
            AuditAction::SetDefault,
            AuditOutcome::Succeeded,
            "OK",
        );
        let (credential, previous_default) =
            self.store.set_default(&workspace_id, id, &event).await?;
        tracing::info!(credential_id = %id, workspace_id, type_id = credential.type_id, "default set");
        Ok(DefaultChange {
            credential,
            previous_default,
        })
    }

    /// Hands out a credential's plaintext. Every call that gets past input checks is audited,
    /// refusals included; the event is committed before the answer. A refusal is recorded in
    /// the log of the workspace the request named only if the token names that workspace;
    /// otherwise in the security log, so that no token adds events to another tenant's log.
    pub async fn access(&self, caller: &Caller, input: AccessInput) -> Result<Accessed> {
        let workspace_id = input.workspace_id;
        // The form of the id before anything is recorded: a malformed one is bad input, which
        // changes nothing, and the log only ever holds well-formed ids.
        if !workspace_id.is_empty() {
            check_workspace_id(&workspace_id)?;
        }
        let requested_id = match &input.selector {
            AccessSelector::Id(id) => Some(*id),
            AccessSelector::DefaultForType(_) => None,
        };
        let outcome = self
            .access_inner(caller, &workspace_id, input.selector)
            .await;
        if let Err(err @ ServiceError::InvalidArgument(_)) = outcome {
            // Bad input changes nothing, not even the audit log.
            return Err(err);
        }
        let (credential_id, audit_outcome, status) = match &outcome {
            Ok(accessed) => (Some(accessed.credential.id), AuditOutcome::Succeeded, "OK"),
            Err(err) => (requested_id, AuditOutcome::Failed, err.code().as_str()),
        };
        let (audited_workspace, own_log) = match &outcome {
            Ok(accessed) => (accessed.credential.workspace_id.clone(), true),
            Err(_) => match caller.named_workspace(&workspace_id) {
                Some(named) => {
                    let own = caller.names_workspace(&named);
                    (named, own)
                }
                None => (String::new(), false),
            },
        };
        let event = Self::audit(
            caller,
            &audited_workspace,
            credential_id,
            AuditAction::Access,
            audit_outcome,
            status,
        );
        // No audit, no plaintext.
        if own_log {
            self.store.record_audit(&event).await?;
        } else {
            self.store.record_security_event(&event).await?;
        }
        if let Ok(accessed) = &outcome {
            // DEBUG, not INFO: the audit table is the record of every access, and a log line per
            // read of the hottest path costs more than it tells.
            tracing::debug!(credential_id = %accessed.credential.id, workspace_id = accessed.credential.workspace_id, "credential accessed");
        }
        outcome
    }

    async fn access_inner(
        &self,
        caller: &Caller,
        workspace_id: &str,
        selector: AccessSelector,
    ) -> Result<Accessed> {
        caller.require(Permission::Access)?;
        let (credential, envelope) = match selector {
            AccessSelector::Id(id) => {
                let workspace_id = caller.workspace_for_item(workspace_id)?;
                self.store.get_sealed(&workspace_id, id).await?
            }
            AccessSelector::DefaultForType(spec) => {
                let workspace_id = caller.workspace_for_collection(workspace_id)?;
                self.store
                    .get_default_sealed(&workspace_id, spec.id)
                    .await?
            }
        };
        annotate(&credential.workspace_id, Some(credential.id));
        let value = self.open(&credential, &envelope).await?;
        let secret = value
            .primary_secret(stored_type(&credential)?)
            .map(|s| SecretString::from(s.expose()))
            .unwrap_or_else(|| SecretString::from(""));
        Ok(Accessed {
            credential,
            secret,
            value,
        })
    }

    /// The type catalogue, optionally of one category.
    pub fn list_types(&self, input: TypesInput) -> Vec<&'static TypeSpec> {
        catalogue::all()
            .iter()
            .filter(|t| input.category.is_none_or(|c| t.category == c))
            .collect()
    }

    /// A page of the workspace's audit events.
    pub async fn list_audit(&self, caller: &Caller, input: AuditListInput) -> Result<AuditPage> {
        let workspace_id = caller.workspace_for_collection(&input.workspace_id)?;
        let (credential_id, page_size) = (input.credential_id, input.page_size);
        annotate(&workspace_id, credential_id);
        let before = paging::audit_before(&workspace_id, credential_id, &input.page_token)?;
        let limit = i64::try_from(page_size + 1).unwrap_or(i64::MAX);
        let events = self
            .store
            .list_audit(&workspace_id, credential_id, before, limit)
            .await?;
        Ok(AuditPage::cut(events, page_size, |e| {
            paging::audit_token(&workspace_id, credential_id, e.id)
        }))
    }
}
