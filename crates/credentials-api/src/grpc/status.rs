//! The one place where a `VaultError` becomes a gRPC status.

use crate::error::VaultError;
use tonic::Status;

impl From<VaultError> for Status {
    fn from(err: VaultError) -> Self {
        match err {
            VaultError::InvalidArgument(v) => {
                service_kit::invalid_argument(&v.field, &v.description)
            }
            VaultError::NotFound => Status::not_found("credential not found"),
            e @ VaultError::AlreadyExists => Status::already_exists(e.to_string()),
            e @ VaultError::Aborted => Status::aborted(e.to_string()),
            VaultError::PermissionDenied(m) => Status::permission_denied(m),
            VaultError::FailedPrecondition(m) => Status::failed_precondition(m),
            e @ VaultError::Unavailable(_) => Status::unavailable(e.to_string()),
            e @ VaultError::DeadlineExceeded(_) => Status::deadline_exceeded(e.to_string()),
            VaultError::Internal(detail) => {
                // A human must look: a bug or corrupt data. The detail never holds a secret.
                tracing::error!(%detail, "internal error");
                Status::internal("internal error")
            }
        }
    }
}
