//! Test support: a PostgreSQL server for tests, a fresh database per test, and a proxy that
//! fails on command.
//!
//! Every database test gets its own database, so tests run in parallel:
//!
//! ```no_run
//! # async fn example() {
//! let db = testkit::TestDb::create("credentials", |url| async move {
//!     // Run the migrations against `url`; close every connection before returning.
//!     # let _ = url;
//! })
//! .await;
//! let client = db.client().await;
//! client.batch_execute("SELECT 1").await.expect("query");
//! # }
//! ```
//!
//! - **The server** ([`pg_server`]) is the one named by `DATABASE_URL` when that variable is
//!   set. Otherwise a throwaway cluster is started on first use (once per test process):
//!   `initdb` into a temporary directory, then `postgres` listening only on a Unix socket in
//!   that directory, under a watchdog that stops it and deletes the directory when the test
//!   process exits, however it exits.
//! - **A password cluster** ([`password_pg`]): scram-sha-256 and TLS on a TCP port, for tests
//!   of logins and certificates; started by the same launcher.
//! - **Per-test databases** ([`TestDb`]): cloned from a template migrated once per process,
//!   dropped with the value; leftovers of crashed test processes are swept.
//! - **A chaos proxy** ([`ChaosProxy`]): a TCP proxy in front of Postgres (or any server) that
//!   can cut, stall and restore connections, for outage and recovery tests.
//! - **The real binaries** ([`stack`]): the kms process, tokens, and request builders shared by
//!   the API's in-process tests and the end-to-end tests.

#![forbid(unsafe_code)]

// The launcher of throwaway clusters, shared by the two kinds of server.
mod cluster;
mod password;
mod server;

mod testdb;

mod chaos;

mod quote;
pub mod stack;

pub use chaos::{ChaosMode, ChaosProxy, Upstream};
pub use password::{PasswordPg, password_pg};
pub use server::{PgServer, pg_server};
pub use testdb::TestDb;
