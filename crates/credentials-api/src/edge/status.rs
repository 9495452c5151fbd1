//! The one place where a `ServiceError` becomes a gRPC status.

use crate::service::error::ServiceError;
use tonic::Status;

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::InvalidArgument(v) => {
                service_kit::invalid_argument(&v.field, &v.description)
            }
            ServiceError::NotFound => Status::not_found("credential not found"),
            e @ ServiceError::AlreadyExists => Status::already_exists(e.to_string()),
            e @ ServiceError::Aborted => Status::aborted(e.to_string()),
            ServiceError::PermissionDenied(m) => Status::permission_denied(m),
            ServiceError::FailedPrecondition(m) => Status::failed_precondition(m),
            e @ ServiceError::Unavailable(_) => Status::unavailable(e.to_string()),
            e @ ServiceError::DeadlineExceeded(_) => Status::deadline_exceeded(e.to_string()),
            ServiceError::Internal(detail) => {
                // A human must look: a bug or corrupt data. The detail never holds a secret.
                tracing::error!(%detail, "internal error");
                Status::internal("internal error")
            }
        }
    }
}
