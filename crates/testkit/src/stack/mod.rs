//! Pieces of a credentials stack for tests, shared by the in-process API tests and the
//! end-to-end package: the workspace's binaries and the kms as a child process, test tokens,
//! and builders for the requests most tests send.
//!
//! The binaries are found next to the test executable, so the test command must build them
//! first (`cargo build --workspace --bins`); [`bin`] says so when one is missing.

mod binaries;
mod errors;
mod kms;
mod requests;
mod rewrap;
mod tokens;

pub use binaries::{bin, kms_keyring, logged_address, send_signal, wait_until};
pub use errors::{ErrorCheck, error_lines, fail_on_unexpected_errors};
pub use kms::KmsProcess;
pub use requests::{by_id, by_id_in, create, default_for, fields, secret};
pub use rewrap::{create_many, create_named, on, rewrap_status, wait_for_sweep};
pub use tokens::{
    JWT_SECRET, SUBJECT, authed, claims, platform_token, token, token_with, write_jwt_secret,
};

use crate::TestDb;

/// Every permission a token can carry.
pub const ALL: &[&str] = &["read", "write", "access", "admin"];

/// The number of rows in `table` of `db`.
pub async fn count(db: &TestDb, table: &str) -> i64 {
    db.client()
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap_or_else(|e| panic!("count {table}: {e}"))
        .get(0)
}
