//! `credentials-api`: the credentials vault's gRPC service, as a library so that its behaviour
//! can be tested in-process; `main.rs` only parses the command line.
//!
//! Three layers, each calling only the one below it:
//! - [`edge`]: the gRPC services, request conversion, the auth layer, page tokens, and the
//!   HTTP/JSON port that sends its requests through them;
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

/// The OpenAPI document of the HTTP/JSON port, as served and as committed in `docs/`.
pub fn openapi_json() -> Result<String, String> {
    let transcoder = json_transcoding::Transcoder::new(
        credentials_proto::FILE_DESCRIPTOR_SET,
        &edge::http::SERVICES,
    )
    .map_err(|e| e.to_string())?;
    serde_json::to_string_pretty(&edge::http::openapi_document(&transcoder))
        .map_err(|e| e.to_string())
}
