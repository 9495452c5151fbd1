//! The store against a real Postgres, a database of each test's own: one test binary, so the
//! throwaway cluster starts once and the shared helpers need no dead-code allowance.

#![allow(clippy::unwrap_used)]

mod abandoned_writes;
mod audit_rules;
mod common;
mod operations;
mod previews;
mod schema;
mod sweep_lock;
mod tls;
