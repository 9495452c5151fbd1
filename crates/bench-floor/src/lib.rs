//! `bench-floor`: the honest limit of a tonic service on the benchmark's machine.
//!
//! It answers `credentials.v1.CredentialsService/GetCredential` with the same point select of
//! the same rows as credentials-api's get, over the same stack (tonic, deadpool-postgres,
//! tokio-postgres, a prepared statement per connection), and does nothing else: no auth, no
//! tracing, no metrics, no audit, no limits. Every other RPC answers `UNIMPLEMENTED`, and a
//! token header is ignored. `scripts/bench.sh` drives it with loadgen next to the API, so every
//! scenario can be read as a share of what the framework and Postgres alone allow.
//!
//! It is a measuring instrument, never a deployment: it trusts every caller.

#![forbid(unsafe_code)]

mod config;
mod service;

pub use config::Config;
pub use service::{Floor, pool, serve};
