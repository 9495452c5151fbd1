//! The edge: everything that knows about gRPC. Requests are authenticated by the auth layer,
//! converted into the service's typed inputs in `convert`, passed to the service, and its
//! answers (or its [`ServiceError`](crate::service::ServiceError)) converted back; `status`
//! is the one place an error becomes a gRPC status. Nothing here
//! decides what a request means.

mod admin;
mod auth_layer;
mod convert;
mod deadline_layer;
mod grpc;
pub mod http;
pub mod permissions;
mod status;

pub use admin::AdminService;
pub use auth_layer::AuthLayer;
pub use deadline_layer::{DeadlineLayer, PROBE_MINIMUM};
pub use grpc::{AccessService, CredentialsService};
