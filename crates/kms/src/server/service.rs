//! The `kms.v1.KeyManagementService` implementation and the one place its errors become gRPC
//! statuses.

use super::envelope::{self, EnvelopeError};
use super::keyring::{Keyring, VersionState};
use kms::{
    ContextError, DEFAULT_DATA_KEY_LEN, EncryptionContext, MAX_DATA_KEY_LEN, MAX_WRAPPED_KEY_LEN,
    MIN_DATA_KEY_LEN, pb, validate_key_id,
};
use ring::rand::{SecureRandom, SystemRandom};
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

/// The keyring in use, swapped whole on reload so a request sees one consistent keyring, with
/// the id of that load (see `DescribeKeysResponse.keyring_load_id`).
#[derive(Debug)]
pub struct KeyringHandle(RwLock<(Arc<Keyring>, String)>);

/// A fresh, random id for a keyring load: nothing about the keys can be learnt from it.
fn new_load_id() -> String {
    let mut bytes = [0u8; 12];
    // A failing system RNG also fails every wrap; an all-zero id then only costs cache hits.
    let _ = SystemRandom::new().fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl KeyringHandle {
    /// Wraps a loaded keyring.
    pub fn new(keyring: Keyring) -> Self {
        Self(RwLock::new((Arc::new(keyring), new_load_id())))
    }

    /// The keyring as of now.
    pub fn current(&self) -> Arc<Keyring> {
        // A poisoned lock only means a panic elsewhere while swapping an Arc; the value is whole.
        self.0.read().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// The id of the load now in use.
    pub fn load_id(&self) -> String {
        self.0.read().unwrap_or_else(|e| e.into_inner()).1.clone()
    }

    /// Replaces the keyring for every later request, under a new load id.
    pub fn replace(&self, keyring: Keyring) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = (Arc::new(keyring), new_load_id());
    }
}

/// Why a kms request failed.
#[derive(Debug, thiserror::Error)]
enum ServiceError {
    #[error(transparent)]
    InvalidArgument(#[from] ContextError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::InvalidArgument(e) => service_kit::invalid_argument(&e.field, &e.reason),
            ServiceError::Envelope(e) => {
                // The detail is for the operator's log; the wire gets a generic message per class.
                tracing::warn!(error = %e, "request refused");
                match e {
                    EnvelopeError::UnknownFormat(_) => service_kit::invalid_argument(
                        "wrapped_key",
                        "unsupported wrapped-key format",
                    ),
                    EnvelopeError::Malformed(_) => {
                        service_kit::invalid_argument("wrapped_key", "malformed wrapped key")
                    }
                    EnvelopeError::WrongContext | EnvelopeError::Tampered => {
                        Status::permission_denied(
                            "the wrapped key does not open under this encryption context",
                        )
                    }
                    EnvelopeError::UnknownKey(_) => {
                        Status::failed_precondition("the master key is not in the keyring")
                    }
                    EnvelopeError::UnknownVersion { .. } => {
                        Status::failed_precondition("the master-key version is not in the keyring")
                    }
                    EnvelopeError::DisabledVersion { .. } => {
                        Status::failed_precondition("the master-key version is disabled")
                    }
                    EnvelopeError::DisabledKey(_) => {
                        Status::failed_precondition("the master key is disabled")
                    }
                    EnvelopeError::Rng => Status::internal("key generation failed"),
                }
            }
        }
    }
}

/// Serves `kms.v1.KeyManagementService` from the current keyring.
#[derive(Debug)]
pub struct KmsService {
    keyring: Arc<KeyringHandle>,
    rng: SystemRandom,
}

impl KmsService {
    /// A service over `keyring`.
    pub fn new(keyring: Arc<KeyringHandle>) -> Self {
        Self {
            keyring,
            rng: SystemRandom::new(),
        }
    }
}

/// The shared context type from the proto's map: the one place the server converts it.
fn context(map: HashMap<String, String>) -> Result<EncryptionContext, ServiceError> {
    let ctx: EncryptionContext = map.into_iter().collect();
    ctx.validate()?;
    // Ids, not secrets: they let a trace of the kms call be found by the credential.
    let span = tracing::Span::current();
    for field in ["workspace_id", "credential_id"] {
        if let Some(value) = ctx.get(field) {
            span.record(field, value);
        }
    }
    Ok(ctx)
}

fn wrapped_key(blob: &[u8]) -> Result<(), ServiceError> {
    if blob.is_empty() || blob.len() > MAX_WRAPPED_KEY_LEN {
        return Err(ContextError {
            field: "wrapped_key".into(),
            reason: format!("must be 1-{MAX_WRAPPED_KEY_LEN} bytes, got {}", blob.len()),
        }
        .into());
    }
    Ok(())
}

/// An empty key id means `default`; anything else must be well-formed.
fn key_id<'a>(field: &str, id: &'a str, default: &'a str) -> Result<&'a str, ServiceError> {
    if id.is_empty() {
        return Ok(default);
    }
    validate_key_id(field, id)?;
    Ok(id)
}

#[tonic::async_trait]
impl pb::key_management_service_server::KeyManagementService for KmsService {
    async fn generate_data_key(
        &self,
        request: Request<pb::GenerateDataKeyRequest>,
    ) -> Result<Response<pb::GenerateDataKeyResponse>, Status> {
        let request = request.into_inner();
        let ctx = context(request.encryption_context)?;
        let len = match request.key_length_bytes as usize {
            0 => DEFAULT_DATA_KEY_LEN,
            n if (MIN_DATA_KEY_LEN..=MAX_DATA_KEY_LEN).contains(&n) => n,
            n => {
                return Err(ServiceError::from(ContextError {
                    field: "key_length_bytes".into(),
                    reason: format!("must be {MIN_DATA_KEY_LEN}-{MAX_DATA_KEY_LEN}, got {n}"),
                })
                .into());
            }
        };
        let keyring = self.keyring.current();
        let key_id = key_id("key_id", &request.key_id, keyring.default_key())?;
        let mut data_key = Zeroizing::new(vec![0u8; len]);
        self.rng
            .fill(&mut data_key)
            .map_err(|_| ServiceError::from(EnvelopeError::Rng))?;
        let (wrapped, version) = envelope::wrap(&keyring, key_id, &ctx, &data_key, &self.rng)
            .map_err(ServiceError::from)?;
        tracing::debug!(key_id, version, "data key generated");
        Ok(Response::new(pb::GenerateDataKeyResponse {
            // The response buffer is dropped by the transport after encoding; the copy we own
            // is zeroized here.
            plaintext_key: data_key.to_vec(),
            wrapped_key: wrapped,
            key_id: key_id.to_owned(),
            key_version: version,
        }))
    }

    async fn unwrap_data_key(
        &self,
        request: Request<pb::UnwrapDataKeyRequest>,
    ) -> Result<Response<pb::UnwrapDataKeyResponse>, Status> {
        let request = request.into_inner();
        let ctx = context(request.encryption_context)?;
        wrapped_key(&request.wrapped_key)?;
        let keyring = self.keyring.current();
        let (data_key, key_id, version) =
            envelope::unwrap(&keyring, &request.wrapped_key, &ctx).map_err(ServiceError::from)?;
        Ok(Response::new(pb::UnwrapDataKeyResponse {
            plaintext_key: data_key.to_vec(),
            key_id,
            key_version: version,
        }))
    }

    async fn rewrap_data_key(
        &self,
        request: Request<pb::RewrapDataKeyRequest>,
    ) -> Result<Response<pb::RewrapDataKeyResponse>, Status> {
        let request = request.into_inner();
        let ctx = context(request.encryption_context)?;
        wrapped_key(&request.wrapped_key)?;
        let keyring = self.keyring.current();
        let (data_key, source_key, source_version) =
            envelope::unwrap(&keyring, &request.wrapped_key, &ctx).map_err(ServiceError::from)?;
        let destination = key_id(
            "destination_key_id",
            &request.destination_key_id,
            &source_key,
        )?;
        let (wrapped, version) = envelope::wrap(&keyring, destination, &ctx, &data_key, &self.rng)
            .map_err(ServiceError::from)?;
        tracing::debug!(
            source_key,
            source_version,
            key_id = destination,
            version,
            "data key rewrapped"
        );
        Ok(Response::new(pb::RewrapDataKeyResponse {
            wrapped_key: wrapped,
            key_id: destination.to_owned(),
            key_version: version,
            source_key_id: source_key,
            source_key_version: source_version,
        }))
    }

    async fn describe_keys(
        &self,
        _request: Request<pb::DescribeKeysRequest>,
    ) -> Result<Response<pb::DescribeKeysResponse>, Status> {
        let keyring = self.keyring.current();
        Ok(Response::new(pb::DescribeKeysResponse {
            keyring_load_id: self.keyring.load_id(),
            ..describe(&keyring)
        }))
    }
}

fn state(state: VersionState) -> pb::KeyVersionState {
    match state {
        VersionState::Enabled => pb::KeyVersionState::Enabled,
        VersionState::Disabled => pb::KeyVersionState::Disabled,
    }
}

/// The keyring's public description (also printed by `kms keyring show`).
pub fn describe(keyring: &Keyring) -> pb::DescribeKeysResponse {
    pb::DescribeKeysResponse {
        default_key_id: keyring.default_key().to_owned(),
        keys: keyring
            .keys()
            .map(|key| pb::MasterKey {
                key_id: key.id.clone(),
                state: state(key.state) as i32,
                primary_version: key.primary,
                versions: key
                    .versions
                    .values()
                    .map(|v| pb::MasterKeyVersion {
                        version: v.version,
                        state: state(v.state) as i32,
                        create_time: Some(prost_types::Timestamp::from(v.created_at)),
                    })
                    .collect(),
            })
            .collect(),
        keyring_load_id: String::new(),
    }
}
