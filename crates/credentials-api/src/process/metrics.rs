//! The API's metric families, served on the admin port (`--admin-addr`). Every label value
//! comes from a closed set (method names, status codes, key ids of the keyring, catalogue type
//! ids, fixed words): never a credential id, a workspace id, a name or anything secret.

use crate::service::KeyVersion;
use auth::Verifier;
use credentials_core::{catalogue, model::ValidationOutcome};
use credentials_store::Store;
use service_kit::metrics::{Counter, Gauge, Registry};
use service_kit::rpc::RpcMetrics;
use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

/// How often `credentials_by_master_key_version` is recounted (one grouped query).
const KEY_VERSION_REFRESH: Duration = Duration::from_secs(30);

/// The process's validation counter, for [`record_validation`] wherever validation runs.
static VALIDATION_OUTCOMES: OnceLock<Counter<2>> = OnceLock::new();

/// The process's counter of probes refused for want of a permit, for [`record_probe_refused`].
static PROBES_REFUSED: OnceLock<Counter<2>> = OnceLock::new();

/// Brings a counter up to a count kept elsewhere (the count is the truth; the counter only
/// ever rises to it).
fn catch_up(counter: &Counter<1>, label: &str, n: u64) {
    let delta = n as f64 - counter.get([label]);
    if delta > 0.0 {
        counter.inc_by([label], delta);
    }
}

/// Everything the API measures.
#[derive(Debug, Clone)]
pub struct ApiMetrics {
    /// The registry the admin port renders.
    pub registry: Registry,
    /// `grpc_server_*`, recorded by the RPC layer.
    pub rpc: RpcMetrics,
    /// `kms_client_*`, recorded by the kms client.
    pub kms: kms::ClientMetrics,
    pool: Gauge<1>,
    key_versions: Gauge<2>,
    missing_key_versions: Gauge<2>,
}

impl ApiMetrics {
    /// Registers the API's families.
    pub fn new() -> Self {
        let registry = Registry::new();
        let validation = registry.counter(
            "validation_outcomes_total",
            "Credential validations, by credential type and outcome.",
            ["type", "outcome"],
        );
        // One registry per process; should a second ever be made, the first keeps counting.
        let _ = VALIDATION_OUTCOMES.set(validation);
        // No workspace label: ids stay out of metrics; the log line of the refusal has it.
        let _ = PROBES_REFUSED.set(registry.counter(
            "probes_refused_total",
            "Probes refused RESOURCE_EXHAUSTED with no slot free in time, by kind (validation, discovery) and budget (workspace, global).",
            ["kind", "scope"],
        ));
        Self {
            rpc: RpcMetrics::register(&registry),
            kms: kms::ClientMetrics::register(&registry),
            pool: registry.gauge(
                "db_pool_connections",
                "Postgres pool connections: size (open), available (idle), waiting (requests queued for one), max.",
                ["state"],
            ),
            key_versions: registry.gauge(
                "credentials_by_master_key_version",
                "Live credentials per master key and version (what a re-wrap sweep still has to move).",
                ["key_id", "key_version"],
            ),
            missing_key_versions: registry.gauge(
                "kms_missing_key_versions",
                "Master-key versions live credentials are wrapped under that the kms does not hold (1 each; health is NOT_SERVING while any is listed).",
                ["key_id", "key_version"],
            ),
            registry,
        }
    }

    /// Lists the key versions the kms lacks (none: the family is empty).
    pub fn record_missing_key_versions(&self, missing: &[KeyVersion]) {
        list_key_versions(&self.missing_key_versions, missing);
    }

    /// Reads the pool's figures at every scrape.
    pub fn watch_pool(&self, store: &Store) {
        let (store, pool) = (store.clone(), self.pool.clone());
        self.registry.on_scrape(move || {
            let s = store.status();
            for (state, n) in [
                ("size", s.size),
                ("available", s.available),
                ("waiting", s.waiting),
                ("max", s.max_size),
            ] {
                pool.set([state], n as f64);
            }
        });
    }

    /// Reads the verified-token cache's counts at every scrape: lookups answered from memory
    /// (`hit`) or by verifying the token (`miss`), and tokens held.
    pub fn watch_token_cache(&self, verifier: Arc<Verifier>) {
        let lookups = self.registry.counter(
            "auth_token_cache_lookups_total",
            "Bearer tokens looked up in the verified-token cache, by result: hit (answered from memory) or miss (verified).",
            ["result"],
        );
        let entries = self.registry.gauge(
            "auth_token_cache_entries",
            "Verified tokens held in memory until they expire.",
            [],
        );
        self.registry.on_scrape(move || {
            let stats = verifier.token_cache_stats();
            for (result, n) in [("hit", stats.hits), ("miss", stats.misses)] {
                catch_up(&lookups, result, n);
            }
            entries.set([], stats.entries as f64);
        });
    }

    /// Reads the data-key cache's counts at every scrape: lookups answered from memory (`hit`)
    /// or by the kms (`miss`), entries dropped by reason, and entries held.
    pub fn watch_data_key_cache(&self, cache: Arc<crate::service::DataKeyCache>) {
        let lookups = self.registry.counter(
            "data_key_cache_lookups_total",
            "Data-key lookups of credential reads, by result: hit (answered from memory) or miss (unwrapped by the kms).",
            ["result"],
        );
        let evictions = self.registry.counter(
            "data_key_cache_evictions_total",
            "Unwrapped data keys dropped from memory, by reason (expired, capacity, credential_changed, keyring_loaded).",
            ["reason"],
        );
        let entries = self.registry.gauge(
            "data_key_cache_entries",
            "Unwrapped data keys held in memory.",
            [],
        );
        self.registry.on_scrape(move || {
            let stats = cache.stats();
            catch_up(&lookups, "hit", stats.hits);
            catch_up(&lookups, "miss", stats.misses);
            for reason in crate::service::Eviction::ALL {
                catch_up(&evictions, reason.label(), stats.evictions[reason as usize]);
            }
            entries.set([], stats.entries as f64);
        });
    }

    /// Counts credentials per key version now and every 30 s (a query per scrape would let
    /// scrapers load Postgres).
    pub fn spawn_key_version_refresh(&self, store: Store) -> tokio::task::JoinHandle<()> {
        let gauge = self.key_versions.clone();
        tokio::spawn(async move {
            loop {
                match store.key_version_counts().await {
                    Ok(counts) => {
                        let versions: Vec<String> =
                            counts.iter().map(|c| c.key_version.to_string()).collect();
                        gauge.replace_all(
                            counts.iter().zip(&versions).map(|(c, v)| {
                                ([c.key_id.as_str(), v.as_str()], c.credentials as f64)
                            }),
                        );
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot count credentials per key version")
                    }
                }
                tokio::time::sleep(KEY_VERSION_REFRESH).await;
            }
        })
    }
}

/// Sets `gauge` to 1 for each of `versions` and drops every other series.
fn list_key_versions(gauge: &Gauge<2>, versions: &[KeyVersion]) {
    let numbers: Vec<String> = versions.iter().map(|m| m.version.to_string()).collect();
    gauge.replace_all(
        versions
            .iter()
            .zip(&numbers)
            .map(|(m, v)| ([m.key_id.as_str(), v.as_str()], 1.0)),
    );
}

fn outcome_label(outcome: ValidationOutcome) -> &'static str {
    match outcome {
        ValidationOutcome::Unspecified => "unspecified",
        ValidationOutcome::Valid => "valid",
        ValidationOutcome::InvalidCredentials => "invalid_credentials",
        ValidationOutcome::InsufficientPermissions => "insufficient_permissions",
        ValidationOutcome::Unreachable => "unreachable",
        ValidationOutcome::TimedOut => "timed_out",
        ValidationOutcome::UnsupportedType => "unsupported_type",
        ValidationOutcome::ProviderError => "provider_error",
        ValidationOutcome::EgressDenied => "egress_denied",
    }
}

/// Counts one validation result in `validation_outcomes_total`. A type id outside the
/// catalogue is counted as `other`, so the label stays bounded whatever a caller passes.
pub fn record_validation(type_id: &str, outcome: ValidationOutcome) {
    let type_label = catalogue::lookup(type_id).map_or("other", |t| t.id);
    if let Some(counter) = VALIDATION_OUTCOMES.get() {
        counter.inc([type_label, outcome_label(outcome)]);
    }
}

/// Counts one probe refused for want of a permit in `probes_refused_total`.
pub fn record_probe_refused(
    kind: credentials_probe::ProbeKind,
    scope: credentials_probe::BusyScope,
) {
    if let Some(counter) = PROBES_REFUSED.get() {
        counter.inc([kind.as_str(), scope.as_str()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_key_versions_are_listed_and_cleared() {
        // A registry of its own: ApiMetrics::new would take the process's validation counter.
        let registry = Registry::new();
        let gauge = registry.gauge(
            "kms_missing_key_versions",
            "test",
            ["key_id", "key_version"],
        );
        list_key_versions(
            &gauge,
            &[KeyVersion {
                key_id: "default".into(),
                version: 2,
            }],
        );
        let text = registry.render();
        assert!(
            text.contains("kms_missing_key_versions{key_id=\"default\",key_version=\"2\"} 1\n"),
            "{text}"
        );
        list_key_versions(&gauge, &[]);
        assert!(!registry.render().contains("key_version=\"2\""));
    }

    #[test]
    fn validation_labels_are_bounded() {
        let metrics = ApiMetrics::new();
        record_validation("openai", ValidationOutcome::Valid);
        record_validation("3f6d7c0e-not-a-type", ValidationOutcome::InvalidCredentials);
        let text = metrics.registry.render();
        assert!(text.contains("# TYPE validation_outcomes_total counter\n"));
        assert!(text.contains("validation_outcomes_total{type=\"openai\",outcome=\"valid\"} 1\n"));
        assert!(text.contains(
            "validation_outcomes_total{type=\"other\",outcome=\"invalid_credentials\"} 1\n"
        ));
        assert!(!text.contains("3f6d7c0e"));
    }

    #[test]
    fn refused_probes_are_counted_by_kind_and_budget() {
        // Not ApiMetrics::new: the test that checks the validation counter must make the
        // process's first one. Whoever sets the refusal counter first owns it.
        let _ = PROBES_REFUSED.set(Registry::new().counter(
            "probes_refused_total",
            "test",
            ["kind", "scope"],
        ));
        let counter = PROBES_REFUSED.get().unwrap();
        let before = counter.get(["discovery", "global"]);
        record_probe_refused(
            credentials_probe::ProbeKind::Discovery,
            credentials_probe::BusyScope::Global,
        );
        assert_eq!(counter.get(["discovery", "global"]), before + 1.0);
    }
}
