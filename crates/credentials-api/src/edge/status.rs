//! The one place where a `ServiceError` becomes a gRPC status, and where errors the caller
//! cannot act on are logged (once: the layers below classify without logging).

use crate::service::{Code, Dependency, ServiceError};
use tonic::Status;
use tonic_types::StatusExt;

fn code(code: Code) -> tonic::Code {
    match code {
        Code::InvalidArgument => tonic::Code::InvalidArgument,
        Code::NotFound => tonic::Code::NotFound,
        Code::AlreadyExists => tonic::Code::AlreadyExists,
        Code::Aborted => tonic::Code::Aborted,
        Code::PermissionDenied => tonic::Code::PermissionDenied,
        Code::FailedPrecondition => tonic::Code::FailedPrecondition,
        Code::ResourceExhausted => tonic::Code::ResourceExhausted,
        Code::Unavailable => tonic::Code::Unavailable,
        Code::DeadlineExceeded => tonic::Code::DeadlineExceeded,
        Code::DataLoss => tonic::Code::DataLoss,
        Code::Internal => tonic::Code::Internal,
    }
}

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Self {
        let wire = code(err.code());
        match err {
            ServiceError::InvalidArgument(v) => {
                service_kit::invalid_argument(&v.field, &v.description)
            }
            ServiceError::Unavailable {
                dependency,
                ref detail,
            } => {
                match dependency {
                    Dependency::Database => tracing::warn!(error = %detail, "database unavailable"),
                    Dependency::Kms => tracing::warn!(%detail, "kms unavailable"),
                }
                Status::new(wire, err.to_string())
            }
            ServiceError::ResourceExhausted {
                message,
                retry_after,
            } => {
                // google.rpc.RetryInfo: clients that honour it back off for as long as a
                // slot or a rate-limit token takes to come back, instead of retrying at once.
                Status::with_error_details(
                    wire,
                    message,
                    tonic_types::ErrorDetails::with_retry_info(Some(retry_after)),
                )
            }
            ServiceError::KeyUnavailable { ref detail } => {
                tracing::warn!(%detail, "master key unavailable");
                Status::new(wire, err.to_string())
            }
            ServiceError::Integrity { ref detail } => {
                // An operator must look: someone with database access changed the row.
                tracing::error!(%detail, "stored value fails its integrity check");
                Status::new(wire, err.to_string())
            }
            ServiceError::Internal(detail) => {
                // A human must look: a bug or corrupt data. The detail never holds a secret.
                tracing::error!(%detail, "internal error");
                Status::internal("internal error")
            }
            ServiceError::OutcomeUnknown => {
                tracing::warn!("request deadline passed with a commit under way: outcome unknown");
                Status::new(wire, err.to_string())
            }
            ServiceError::NotFound => Status::not_found("credential not found"),
            e @ (ServiceError::AlreadyExists
            | ServiceError::Aborted
            | ServiceError::DeadlineExceeded(_)
            | ServiceError::RequestDeadline) => Status::new(wire, e.to_string()),
            ServiceError::PermissionDenied(m) | ServiceError::FailedPrecondition(m) => {
                Status::new(wire, m)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes_follow_the_service_codes() {
        let cases = [
            (
                ServiceError::invalid("name", "required"),
                tonic::Code::InvalidArgument,
            ),
            (ServiceError::NotFound, tonic::Code::NotFound),
            (ServiceError::AlreadyExists, tonic::Code::AlreadyExists),
            (ServiceError::Aborted, tonic::Code::Aborted),
            (
                ServiceError::PermissionDenied("no".into()),
                tonic::Code::PermissionDenied,
            ),
            (
                ServiceError::FailedPrecondition("no".into()),
                tonic::Code::FailedPrecondition,
            ),
            (
                ServiceError::KeyUnavailable {
                    detail: "v1 disabled".into(),
                },
                tonic::Code::FailedPrecondition,
            ),
            (
                ServiceError::Unavailable {
                    dependency: Dependency::Database,
                    detail: "refused".into(),
                },
                tonic::Code::Unavailable,
            ),
            (
                ServiceError::ResourceExhausted {
                    message: "too many validation probes are running".into(),
                    retry_after: std::time::Duration::from_secs(1),
                },
                tonic::Code::ResourceExhausted,
            ),
            (
                ServiceError::DeadlineExceeded("the key service"),
                tonic::Code::DeadlineExceeded,
            ),
            (
                ServiceError::Integrity {
                    detail: "payload: the stored value does not authenticate (refused)".into(),
                },
                tonic::Code::DataLoss,
            ),
            (ServiceError::Internal("bug".into()), tonic::Code::Internal),
        ];
        for (err, expected) in cases {
            let audit_name = err.code().as_str();
            let status = Status::from(err);
            assert_eq!(status.code(), expected);
            // The audit row records the same code the caller sees.
            assert_eq!(audit_name, service_kit::rpc::code_name(status.code()));
            assert!(!status.message().contains("refused") && !status.message().contains("bug"));
        }
    }
}
