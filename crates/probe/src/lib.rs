//! Validation probes and schema discovery for stored credentials. Every outbound connection made
//! on a user's behalf goes through the [`egress`] guard.

#![forbid(unsafe_code)]

pub mod egress;

pub use egress::{EgressError, EgressPolicy, IpRange};
