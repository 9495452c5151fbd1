//! The kms's metric families, served on the admin port.

use super::keyring::{Keyring, VersionState};
use service_kit::metrics::{Counter, Gauge, Registry};
use service_kit::rpc::RpcMetrics;
use std::collections::BTreeMap;

/// Everything the kms measures.
#[derive(Debug, Clone)]
pub struct KmsMetrics {
    /// The registry the admin port renders.
    pub registry: Registry,
    /// `grpc_server_*`, recorded by the RPC layer.
    pub rpc: RpcMetrics,
    reloads: Counter<1>,
    versions: Gauge<2>,
}

impl KmsMetrics {
    /// Registers the kms's families.
    pub fn new() -> Self {
        let registry = Registry::new();
        Self {
            rpc: RpcMetrics::register(&registry),
            reloads: registry.counter(
                "kms_keyring_reloads_total",
                "Keyring reloads on SIGHUP, by result (success, failure, refused).",
                ["result"],
            ),
            versions: registry.gauge(
                "kms_keyring_versions",
                "Master-key versions in the loaded keyring, by key and state (primary, enabled, disabled).",
                ["key_id", "state"],
            ),
            registry,
        }
    }

    /// Counts a reload attempt.
    pub fn reloaded(&self, ok: bool) {
        self.reloads.inc([if ok { "success" } else { "failure" }]);
    }

    /// Counts a reload refused because it would drop or change a version in use.
    pub fn reload_refused(&self) {
        self.reloads.inc(["refused"]);
    }

    /// Describes the keyring now in use: versions per key and state (never material).
    pub fn keyring_loaded(&self, keyring: &Keyring) {
        let mut counts: BTreeMap<(&str, &str), u32> = BTreeMap::new();
        for key in keyring.keys() {
            for version in key.versions.values() {
                let state = if key.state == VersionState::Disabled
                    || version.state == VersionState::Disabled
                {
                    "disabled"
                } else if version.version == key.primary {
                    "primary"
                } else {
                    "enabled"
                };
                *counts.entry((key.id.as_str(), state)).or_default() += 1;
            }
        }
        self.versions.replace_all(
            counts
                .into_iter()
                .map(|((key_id, state), n)| ([key_id, state], f64::from(n))),
        );
    }
}
