//! testkit's own tests, against a real Postgres: one test binary, so the throwaway cluster
//! starts once.

mod chaos;
mod password;
mod testdb;
