use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// `INVALID_ARGUMENT` naming the offending field, in the message (for grpcurl users) and as a
/// `google.rpc.BadRequest` field violation (for programs).
pub fn invalid_argument(field: &str, description: &str) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {description}"),
        ErrorDetails::with_bad_request_violation(field, description),
    )
}
