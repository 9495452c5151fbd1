//! Plumbing shared by the vault's gRPC servers, so that both behave the same at the edges:
//! the server's start-up and shutdown, the per-RPC layers and the fields of their span, logs
//! and traces, metrics and the admin port, shutdown signals, reflection and the shape of
//! `INVALID_ARGUMENT` errors, TLS on their TCP ports, and serving an HTTP port beside the gRPC one.

#![forbid(unsafe_code)]

mod admin;
mod connection;
mod http;
mod logging;
pub mod metrics;
mod process;
mod propagation;
mod reflection;
pub mod rpc;
mod server;
mod shutdown;
pub mod span_fields;
mod span_json;
mod status;
mod tls;

pub use admin::{AdminError, serve_admin};
pub use connection::{ConnectionLimits, Guarded, GuardedIncoming, MAX_HEADER_LIST_BYTES};
pub use http::{HttpBody, serve_http};
pub use logging::{LogFormat, TelemetryError, TelemetryGuard, init_telemetry};
pub use process::{exit_code, undocumented_flags};
pub use propagation::{adopt_trace_context, inject_trace_context};
pub use reflection::{MAX_PLUMBING_MESSAGE_BYTES, reflection_v1, reflection_v1alpha};
pub use server::{DRAIN_SETTLE, Health, HealthChecks, Lifecycle, Serving, StopSignal};
pub use shutdown::shutdown_signal;
pub use span_json::SpanJson;
pub use status::invalid_argument;
pub use tls::{ServerTls, TlsError, TlsFiles, TlsIncoming, reload_tls_on_sighup};
