//! The fields of the per-RPC span that are filled in after it opens: by the tracing layer
//! (the status), by the auth layer (request id, subject) and by handlers (the entity ids).
//! A field the span does not declare is silently dropped by `tracing`, so the span and every
//! recording site use these names and nothing else.
//!
//! Ids only, never a secret; none of them is ever a metric label (they are unbounded).

/// The request id: the caller's `x-request-id`, or a fresh one (auth layer).
pub const REQUEST_ID: &str = "request_id";
/// The token's subject (auth layer).
pub const SUBJECT: &str = "subject";
/// The workspace the call acts in (handlers).
pub const WORKSPACE_ID: &str = "workspace_id";
/// The credential the call acts on (handlers).
pub const CREDENTIAL_ID: &str = "credential_id";
/// The status code's canonical name, e.g. `NOT_FOUND` (tracing layer).
pub const CODE: &str = "code";
/// The status code as a number, OpenTelemetry's `rpc.grpc.status_code` (tracing layer).
pub const GRPC_STATUS_CODE: &str = "rpc.grpc.status_code";
/// `ERROR` for codes that mean the server failed, OpenTelemetry's span status (tracing layer).
pub const OTEL_STATUS_CODE: &str = "otel.status_code";

/// Every field above, in the order the span declares them.
pub const ALL: [&str; 7] = [
    OTEL_STATUS_CODE,
    GRPC_STATUS_CODE,
    CODE,
    REQUEST_ID,
    SUBJECT,
    WORKSPACE_ID,
    CREDENTIAL_ID,
];
