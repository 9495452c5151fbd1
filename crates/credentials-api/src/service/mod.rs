//! The service: the vault's operations over typed inputs, with authorization, envelope
//! encryption through the kms, storage, audit and probes. No gRPC or SQL types.

mod caller;
mod credentials;
pub(crate) mod error;
pub(crate) mod keys;
pub(crate) mod probing;

pub use caller::{Caller, check_workspace_id};
pub use credentials::{
    AccessSelector, AuditPage, CreateInput, CredentialPage, Credentials, UpdateInput, lookup_type,
    page_size, parse_category,
};
pub use error::{Result, ServiceError};
pub use keys::{KeyLifecycle, SweepConfig};
