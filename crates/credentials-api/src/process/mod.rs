//! The process: configuration, metrics, and the server's start-up and shutdown.

pub mod config;
mod dev_token;
pub(crate) mod metrics;
pub mod server;

pub use dev_token::dev_token;
