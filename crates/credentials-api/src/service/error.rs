//! The service's error type. Domain and storage errors are classified here; the gRPC edge
//! (`grpc::status`) turns a `ServiceError` into a `tonic::Status`, in one place.

use credentials_core::{FieldViolation, payload::SealError, value::PayloadError};
use credentials_store::StoreError;

/// Why a request failed, in the service's terms.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A request field is invalid; nothing was changed.
    #[error("{0}")]
    InvalidArgument(FieldViolation),
    /// No such credential in the caller's workspace (or the workspace is not the caller's).
    #[error("credential not found")]
    NotFound,
    /// A live credential of the workspace has the name already.
    #[error("a credential with this name already exists in the workspace")]
    AlreadyExists,
    /// The etag is stale.
    #[error("the credential changed since it was read; read it again and retry")]
    Aborted,
    /// The token lacks a permission or a workspace.
    #[error("{0}")]
    PermissionDenied(String),
    /// The request is valid but the state does not allow it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A dependency (the database or the kms) is down or overloaded. Retryable.
    #[error("{0} is unavailable; retry later")]
    Unavailable(&'static str),
    /// A dependency did not answer in time. Retryable.
    #[error("{0} did not answer in time; retry later")]
    DeadlineExceeded(&'static str),
    /// A bug or corrupt data; details are in the server log only.
    #[error("internal error")]
    Internal(String),
}

/// Result of a service operation.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl ServiceError {
    /// An INVALID_ARGUMENT naming `field`.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(FieldViolation {
            field: field.into(),
            description: description.into(),
        })
    }
}

impl From<FieldViolation> for ServiceError {
    fn from(v: FieldViolation) -> Self {
        Self::InvalidArgument(v)
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound,
            StoreError::NameTaken => Self::AlreadyExists,
            StoreError::EtagMismatch => Self::Aborted,
            StoreError::NoDefault => {
                Self::FailedPrecondition("the workspace has no default credential for this type; set one with SetDefaultCredential".into())
            }
            StoreError::SweepRunning => {
                Self::FailedPrecondition("a re-wrap sweep is already running".into())
            }
            StoreError::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                Self::Unavailable("the database")
            }
            other => Self::Internal(format!("store: {other}: {:?}", std::error::Error::source(&other))),
        }
    }
}

impl From<kms::Error> for ServiceError {
    fn from(err: kms::Error) -> Self {
        match err {
            kms::Error::Unavailable(detail) => {
                tracing::warn!(%detail, "kms unavailable");
                Self::Unavailable("the key service")
            }
            kms::Error::DeadlineExceeded => Self::DeadlineExceeded("the key service"),
            kms::Error::KeyUnavailable(detail) => {
                tracing::warn!(%detail, "master key unavailable");
                Self::FailedPrecondition(
                    "the credential's master key is disabled or missing in the key service".into(),
                )
            }
            other => Self::Internal(format!("kms: {other}")),
        }
    }
}

impl From<SealError> for ServiceError {
    fn from(err: SealError) -> Self {
        Self::Internal(format!("payload: {err}"))
    }
}

impl From<PayloadError> for ServiceError {
    fn from(err: PayloadError) -> Self {
        Self::Internal(format!("payload: {err}"))
    }
}
