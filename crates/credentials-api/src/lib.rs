//! `credentials-api`: the credentials vault's gRPC service, as a library so that its behaviour
//! can be tested in-process; `main.rs` only parses the command line.
//!
//! Three layers, each calling only the one below it:
//! - [`edge`]: the gRPC services, request conversion, the auth layer, page tokens;
//! - [`service`]: the operations with typed inputs and outputs, and their errors;
//! - [`process`]: configuration, metrics, start-up and shutdown.
//!
//! `docs/architecture.md` follows a request through them.

#![forbid(unsafe_code)]

pub mod edge;
pub mod process;
pub mod service;

pub use process::config::{Cli, Command, ServeConfig};
pub use process::dev_token;
pub use process::server::{Running, run, start, store};
