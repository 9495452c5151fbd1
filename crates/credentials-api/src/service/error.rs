//! The service's error type. Domain, storage and kms errors are classified here, without
//! logging: an error is logged once, where it is handled (the edge, see `edge::status`).
//! [`ServiceError::code`] is the one mapping to a status code, used for the wire status and for
//! the audit row alike.

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
    #[error("{} is unavailable; retry later", dependency.name())]
    Unavailable {
        /// What is down.
        dependency: Dependency,
        /// Why, for the server log only (never a secret, but may name hosts).
        detail: String,
    },
    /// The credential's master key version is disabled or missing in the kms.
    #[error("the credential's master key is disabled or missing in the key service")]
    KeyUnavailable {
        /// The kms's reason, for the server log only.
        detail: String,
    },
    /// A budget is spent (too many probes running for the workspace or the process, or the
    /// caller's rate limit reached): nothing was done. Retryable after `retry_after`.
    #[error("{message}")]
    ResourceExhausted {
        /// What is exhausted, for the caller.
        message: String,
        /// When a retry may succeed.
        retry_after: std::time::Duration,
    },
    /// A dependency did not answer in time. Retryable.
    #[error("{0} did not answer in time; retry later")]
    DeadlineExceeded(&'static str),
    /// A stored value that does not authenticate under its row's context: its row was altered
    /// (relabelled, restored from an older value, downgraded) or its blob damaged. Not a bug
    /// and not the caller's mistake: the data is lost until someone looks or writes it again.
    #[error(
        "the credential's stored value fails its integrity check (its row was altered or \
         restored in the database); an operator must look, or set a new value with UpdateCredential"
    )]
    Integrity {
        /// What failed, for the server log only (never a secret).
        detail: String,
    },
    /// The request's server-side deadline passed before anything that could commit was
    /// sent: nothing changed. Retryable.
    #[error("the request's deadline passed before it completed; nothing was changed")]
    RequestDeadline,
    /// The request's server-side deadline passed while a commit was under way: the change
    /// may or may not have been applied. Read before retrying.
    #[error(
        "the database did not answer in time after the change was sent: it may or may not \
         have been applied; read it before retrying"
    )]
    OutcomeUnknown,
    /// A bug or corrupt data; details are in the server log only.
    #[error("internal error")]
    Internal(String),
}

/// A service the vault depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// Postgres.
    Database,
    /// The key management service.
    Kms,
}

impl Dependency {
    /// How messages to callers name it.
    pub fn name(self) -> &'static str {
        match self {
            Dependency::Database => "the database",
            Dependency::Kms => "the key service",
        }
    }
}

/// Result of a service operation.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// The status code an error is answered with: gRPC's codes, by their canonical names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// `INVALID_ARGUMENT`.
    InvalidArgument,
    /// `NOT_FOUND`.
    NotFound,
    /// `ALREADY_EXISTS`.
    AlreadyExists,
    /// `ABORTED`.
    Aborted,
    /// `PERMISSION_DENIED`.
    PermissionDenied,
    /// `FAILED_PRECONDITION`.
    FailedPrecondition,
    /// `RESOURCE_EXHAUSTED`.
    ResourceExhausted,
    /// `UNAVAILABLE`.
    Unavailable,
    /// `DEADLINE_EXCEEDED`.
    DeadlineExceeded,
    /// `DATA_LOSS`.
    DataLoss,
    /// `INTERNAL`.
    Internal,
}

impl Code {
    /// The canonical name, as audit rows record it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::Aborted => "ABORTED",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::Unavailable => "UNAVAILABLE",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::DataLoss => "DATA_LOSS",
            Code::Internal => "INTERNAL",
        }
    }
}

impl ServiceError {
    /// An INVALID_ARGUMENT naming `field`.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(FieldViolation {
            field: field.into(),
            description: description.into(),
        })
    }

    /// Whether the same call may succeed later without any change (a dependency was down).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. }
                | Self::DeadlineExceeded(_)
                | Self::ResourceExhausted { .. }
                | Self::RequestDeadline
                | Self::OutcomeUnknown
        )
    }

    /// The status code this error is answered with.
    pub fn code(&self) -> Code {
        match self {
            ServiceError::InvalidArgument(_) => Code::InvalidArgument,
            ServiceError::NotFound => Code::NotFound,
            ServiceError::AlreadyExists => Code::AlreadyExists,
            ServiceError::Aborted => Code::Aborted,
            ServiceError::PermissionDenied(_) => Code::PermissionDenied,
            ServiceError::FailedPrecondition(_) | ServiceError::KeyUnavailable { .. } => {
                Code::FailedPrecondition
            }
            ServiceError::Unavailable { .. } | ServiceError::OutcomeUnknown => Code::Unavailable,
            ServiceError::ResourceExhausted { .. } => Code::ResourceExhausted,
            ServiceError::DeadlineExceeded(_) | ServiceError::RequestDeadline => {
                Code::DeadlineExceeded
            }
            ServiceError::Integrity { .. } => Code::DataLoss,
            ServiceError::Internal(_) => Code::Internal,
        }
    }
}

impl From<FieldViolation> for ServiceError {
    fn from(v: FieldViolation) -> Self {
        Self::InvalidArgument(v)
    }
}

impl From<credentials_probe::Busy> for ServiceError {
    fn from(busy: credentials_probe::Busy) -> Self {
        Self::ResourceExhausted {
            message: busy.to_string(),
            retry_after: busy.retry_after,
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound,
            StoreError::NameTaken => Self::AlreadyExists,
            StoreError::EtagMismatch | StoreError::ValueRaced => Self::Aborted,
            StoreError::NoDefault => Self::FailedPrecondition(
                "the workspace has no default credential for this type; set one with SetDefaultCredential".into(),
            ),
            StoreError::SweepRunning => {
                Self::FailedPrecondition("a re-wrap sweep is already running".into())
            }
            StoreError::Unavailable(source) => Self::Unavailable {
                dependency: Dependency::Database,
                detail: source.to_string(),
            },
            other => Self::Internal(format!(
                "store: {other}: {:?}",
                std::error::Error::source(&other)
            )),
        }
    }
}

impl From<kms::Error> for ServiceError {
    fn from(err: kms::Error) -> Self {
        match err {
            kms::Error::Unavailable(detail) => Self::Unavailable {
                dependency: Dependency::Kms,
                detail,
            },
            kms::Error::DeadlineExceeded => Self::DeadlineExceeded("the key service"),
            kms::Error::KeyUnavailable(detail) => Self::KeyUnavailable { detail },
            e @ kms::Error::CannotUnwrap => Self::Integrity {
                detail: format!("kms: {e}"),
            },
            other => Self::Internal(format!("kms: {other}")),
        }
    }
}

impl From<SealError> for ServiceError {
    fn from(err: SealError) -> Self {
        match err {
            SealError::Tampered | SealError::FormatMismatch { .. } => Self::Integrity {
                detail: format!("payload: {err}"),
            },
            other => Self::Internal(format!("payload: {other}")),
        }
    }
}

impl From<PayloadError> for ServiceError {
    fn from(err: PayloadError) -> Self {
        Self::Internal(format!("payload: {err}"))
    }
}
