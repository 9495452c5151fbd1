//! Postgres storage of the credentials vault. Stores only ciphertext, wrapped data keys and
//! metadata; the schema enforces the invariants (unique live names, one live default per type,
//! types from the catalogue, envelope present exactly while live, append-only audit).

#![forbid(unsafe_code)]

mod audit;
mod conn;
mod credentials;
mod error;
mod group_commit;
mod keys;
mod pool;
mod rows;
mod validation;

pub use conn::RequestScope;
pub use credentials::{CredentialChanges, NewCredential};
pub use error::{Result, StoreError};
pub use keys::{
    KeyAssignment, KeyTargets, KeyVersionCount, RewrapCandidate, RewrapProgress, RewrapRun,
    RunState, SweepLock,
};
pub use pool::{PoolStatus, Store, StoreConfig};
