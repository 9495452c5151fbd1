//! In-process tests of credentials-api: the whole server on a real socket, a database of each
//! test's own and the real kms. What needs the binaries themselves (signals, sockets, TLS,
//! crashes, telemetry) is tested end to end in the `tests` package.

#![allow(clippy::unwrap_used)]

mod support;

mod access_control;
mod access_fields;
mod admin_scope;
mod bad_input;
mod concurrency;
mod data_key_cache;
mod harness;
mod http_mapping;
mod http_product;
mod input_rules;
mod keyring_health;
mod keys;
mod kms_outage;
mod lifecycle;
mod limits;
mod listing;
mod masking;
mod postgres_outage;
mod probe_audit;
mod probe_budget;
mod probe_messages;
mod schema_text;
mod secrets;
mod tenant_isolation;
mod validation;
mod value_binding;
mod vector_stores;
mod write_seeds;
