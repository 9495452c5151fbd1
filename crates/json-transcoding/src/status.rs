//! gRPC statuses as HTTP answers: the status code Google's HTTP mapping pairs with each gRPC
//! code (`google/rpc/code.proto`), and the body in the `google.rpc.Status` JSON shape, its
//! details (BadRequest field violations, RetryInfo, ...) written by the same JSON mapping.

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions, Value};
use tonic::Code;

/// The HTTP status of a gRPC code, as in `google/rpc/code.proto`.
pub fn http_status(code: Code) -> http::StatusCode {
    use http::StatusCode as S;
    match code {
        Code::Ok => S::OK,
        Code::Cancelled => S::from_u16(499).unwrap_or(S::BAD_REQUEST),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => S::BAD_REQUEST,
        Code::DeadlineExceeded => S::GATEWAY_TIMEOUT,
        Code::NotFound => S::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => S::CONFLICT,
        Code::PermissionDenied => S::FORBIDDEN,
        Code::Unauthenticated => S::UNAUTHORIZED,
        Code::ResourceExhausted => S::TOO_MANY_REQUESTS,
        Code::Unimplemented => S::NOT_IMPLEMENTED,
        Code::Unavailable => S::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => S::INTERNAL_SERVER_ERROR,
    }
}

/// The `google.rpc.Status` JSON of `status`, with its details when the pool knows their types
/// (a detail it cannot write is left out rather than failing the answer).
pub fn status_json(pool: &DescriptorPool, status: &tonic::Status) -> Vec<u8> {
    let mut object = serde_json::Map::new();
    object.insert("code".into(), (status.code() as i32).into());
    object.insert("message".into(), status.message().into());
    let mut details = Vec::new();
    if let Some(desc) = pool.get_message_by_name("google.rpc.Status")
        && !status.details().is_empty()
        && let Ok(decoded) = DynamicMessage::decode(desc, status.details())
        && let Some(Value::List(items)) =
            decoded.get_field_by_name("details").map(|v| v.into_owned())
    {
        for item in items {
            let Value::Message(any) = item else { continue };
            let mut out = serde_json::Serializer::new(Vec::new());
            if any
                .serialize_with_options(&mut out, &SerializeOptions::new())
                .is_ok()
                && let Ok(value) = serde_json::from_slice::<serde_json::Value>(&out.into_inner())
            {
                details.push(value);
            }
        }
    }
    object.insert("details".into(), details.into());
    serde_json::to_vec(&serde_json::Value::Object(object)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_documented_http_status() {
        let expected = [
            (Code::InvalidArgument, 400),
            (Code::FailedPrecondition, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::ResourceExhausted, 429),
            (Code::Internal, 500),
            (Code::Unimplemented, 501),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Cancelled, 499),
        ];
        for (code, http) in expected {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }
}
