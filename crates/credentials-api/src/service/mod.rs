//! The service: the vault's operations over typed inputs, with authorization, envelope
//! encryption through the kms, storage, audit and probes. No gRPC or SQL types.

mod caller;
mod credentials;
pub mod data_key_cache;
mod error;
mod input;
mod keyring;
mod keys;
mod paging;
mod probing;
mod rate_limit;
mod seed;

pub use caller::Caller;
pub use credentials::{Credentials, lookup_type};
pub use data_key_cache::{DataKeyCache, DataKeyCacheConfig, DataKeyCacheStats, Eviction};
pub use error::{Code, Dependency, Result, ServiceError};
pub use input::{
    AccessInput, AccessSelector, Accessed, AuditListInput, AuditPage, CreateInput, CredentialPage,
    DefaultChange, DeleteInput, DiscoverInput, Discovered, ItemRef, ListInput, SecurityListInput,
    StoredSchema, TestInput, TestTarget, TypesInput, UpdateInput, Validated, WorkspaceKeyInput,
};
pub use keyring::{KeyVersion, KeyringCheck};
pub use keys::{KeyLifecycle, SweepConfig, SweepStatus, VersionStatus, WorkspaceKey};
pub use probing::discovery_options;
pub use rate_limit::{MAX_TRACKED, Rate, RateClass, RateLimiter, Refusal};
pub use seed::{SeedConfig, WriteSeeds};
