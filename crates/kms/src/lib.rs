//! The vault's key management service.
//!
//! This library is what other processes link: the `kms.v1` protos, the encryption context and
//! its limits, and a typed [`KmsClient`] whose calls take and return domain types only (the
//! proto messages stay inside it). It holds no keyring code and no master key; the server that
//! does lives only in the `kms` binary (`src/server/`).
//!
//! [`EncryptionContext`] is the `encryption-context` crate's, re-exported: the payload seal
//! binds the same type with the same canonical encoding.

#![forbid(unsafe_code)]

mod client;
mod context;
mod error;

pub use client::{
    ClientConfig, ClientMetrics, DataKey, KeyState, KeyVersionDescription, KeyringDescription,
    KmsClient, KmsEndpoint, MasterKeyDescription, RewrappedKey, UnwrappedKey,
};
pub use context::{
    ContextError, DEFAULT_DATA_KEY_LEN, EncryptionContext, MAX_CONTEXT_ENTRIES,
    MAX_CONTEXT_KEY_LEN, MAX_CONTEXT_VALUE_LEN, MAX_DATA_KEY_LEN, MAX_KEY_ID_LEN,
    MAX_WRAPPED_KEY_LEN, MIN_DATA_KEY_LEN, validate_key_id,
};
/// The generated `kms.v1` messages and gRPC stubs.
pub use credentials_proto::kms::v1 as pb;
pub use error::{Error, Result};
