//! The domain of the credentials vault, free of gRPC and SQL types:
//!
//! - [`catalogue`]: every credential type: its category, value fields (role and format), how it
//!   is probed and how its secret is attached to a request;
//! - [`connection_url`]: the one reading of a connection URL's user info and hosts, refusing
//!   strings that drivers would split differently;
//! - [`value`]: checking a written value against the catalogue into a normalized [`SecretValue`];
//! - [`mask`]: the masked preview shown instead of a secret;
//! - [`payload`]: sealing a value with a data key, bound to its [`EncryptionContext`] (the type
//!   the kms binds the data key to, re-exported here);
//! - [`model`]: credentials, audit events and their states;
//! - [`limits`]: the documented limits on names, descriptions, values and pages, and the rules
//!   that check them.

#![forbid(unsafe_code)]

pub mod catalogue;
pub mod connection_url;
pub mod limits;
pub mod mask;
pub mod model;
pub mod payload;
pub mod schema;
mod secret;
pub mod value;

pub use catalogue::{
    Attach, Category, Engine, EngineProbe, ErrorDialect, FieldSpec, Format, KeyRead, Probe, Role,
    TypeSpec,
};
pub use encryption_context::EncryptionContext;
pub use secret::SecretString;
pub use value::{FieldViolation, SecretValue, ValueInput};
