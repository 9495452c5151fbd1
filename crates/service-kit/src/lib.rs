//! Plumbing shared by the vault's gRPC servers, so that both behave the same at the edges:
//! log format, shutdown signals, reflection and the shape of `INVALID_ARGUMENT` errors.

#![forbid(unsafe_code)]

mod logging;
mod reflection;
mod shutdown;
mod status;

pub use logging::{LogFormat, init_logging};
pub use reflection::{reflection_v1, reflection_v1alpha};
pub use shutdown::shutdown_signal;
pub use status::invalid_argument;
