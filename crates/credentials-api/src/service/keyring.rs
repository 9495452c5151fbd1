//! Whether the kms holds every master-key version that live credentials are wrapped under.
//!
//! A kms started on the wrong keyring (an old copy, another environment's) answers health and
//! wraps new keys, yet every credential wrapped under a version it lacks is unreadable. The API
//! compares the versions its rows use (a skip scan, one index probe per version) with what the
//! kms describes: at start and on every readiness tick, and at once when an access finds its
//! version missing. While any is missing, health reports NOT_SERVING with the reason (logged on
//! change, and the `kms_missing_key_versions` gauge), and accesses of those rows answer
//! FAILED_PRECONDITION saying which version to restore.

use super::data_key_cache::DataKeyCache;
use super::error::{Result, ServiceError};
use super::seed::WriteSeeds;
use credentials_core::model::Credential;
use credentials_store::Store;
use kms::{KeyringDescription, KmsClient};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A master-key version: a key id and a version number (never material).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyVersion {
    /// The master key.
    pub key_id: String,
    /// The version.
    pub version: u32,
}

impl std::fmt::Display for KeyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} v{}", self.key_id, self.version)
    }
}

/// The last comparison of the rows' key versions with the kms's keyring, shared by the
/// readiness loop and the access path.
#[derive(Debug, Clone)]
pub struct KeyringCheck {
    store: Store,
    kms: KmsClient,
    missing: Arc<Mutex<Vec<KeyVersion>>>,
    recheck: Arc<Notify>,
    /// Emptied whenever the kms is seen on a keyring load other than the last one seen.
    data_keys: Arc<DataKeyCache>,
    /// Dropped then too, so a write after a reload (perhaps disabling a key) asks the kms.
    seeds: Option<Arc<WriteSeeds>>,
}

/// Whether the keyring described holds `key_id` version `version` (in any state: a disabled
/// version is the operator's choice, answered as such, not a lost one).
fn holds(keyring: &KeyringDescription, key_id: &str, version: u32) -> bool {
    keyring
        .keys
        .iter()
        .any(|k| k.key_id == key_id && k.versions.iter().any(|v| v.version == version))
}

/// What an access of a credential wrapped under a missing version answers.
pub(crate) fn missing_version_error(missing: &KeyVersion) -> ServiceError {
    ServiceError::FailedPrecondition(format!(
        "the kms does not hold key version {missing} that this credential is wrapped under; \
         restore the keyring"
    ))
}

impl KeyringCheck {
    /// A check over the store's rows and the kms's keyring; nothing is missing until it runs.
    pub fn new(store: Store, kms: KmsClient) -> Self {
        Self {
            store,
            kms,
            missing: Arc::default(),
            recheck: Arc::default(),
            data_keys: Arc::new(DataKeyCache::off()),
            seeds: None,
        }
    }

    /// The same check, also dropping `seeds` when the kms loads a keyring.
    pub(crate) fn with_write_seeds(mut self, seeds: Arc<WriteSeeds>) -> Self {
        self.seeds = Some(seeds);
        self
    }

    /// The same check, also telling `cache` of every keyring description it gets.
    pub(crate) fn with_data_key_cache(mut self, cache: Arc<DataKeyCache>) -> Self {
        self.data_keys = cache;
        self
    }

    fn described(&self, keyring: &KeyringDescription) {
        if let Some(dropped) = self.data_keys.observe_keyring(&keyring.load_id) {
            if let Some(seeds) = &self.seeds {
                seeds.clear();
            }
            tracing::info!(
                dropped_data_keys = dropped,
                "the kms loaded its keyring anew; cached data keys and write seeds dropped"
            );
        }
    }

    /// Compares now: the key versions live rows use that the kms does not hold, sorted (also
    /// remembered for [`KeyringCheck::missing`]).
    pub async fn run(&self) -> Result<Vec<KeyVersion>> {
        let in_use = self.store.key_versions_in_use().await?;
        let keyring = self.kms.describe_keys().await?;
        self.described(&keyring);
        let mut missing: Vec<KeyVersion> = in_use
            .into_iter()
            .filter(|(key_id, version)| !holds(&keyring, key_id, *version))
            .map(|(key_id, version)| KeyVersion { key_id, version })
            .collect();
        missing.sort();
        *self.missing.lock().unwrap_or_else(|e| e.into_inner()) = missing.clone();
        Ok(missing)
    }

    /// The versions found missing by the last run.
    pub fn missing(&self) -> Vec<KeyVersion> {
        self.missing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Resolves when an access asked for a check sooner than the next tick.
    pub async fn recheck_requested(&self) {
        self.recheck.notified().await;
    }

    /// The operator's reason for NOT_SERVING, naming the missing versions.
    pub fn reason(missing: &[KeyVersion]) -> String {
        let list: Vec<String> = missing.iter().map(ToString::to_string).collect();
        format!(
            "the kms does not hold master-key versions that live credentials are wrapped under ({}); restore the keyring",
            list.join(", ")
        )
    }

    /// After the kms refused a credential's key as unavailable: if the kms no longer holds the
    /// version the row names, the answer says so (and health rechecks at once); a disabled
    /// version keeps `refused`.
    pub(crate) async fn classify_refusal(
        &self,
        credential: &Credential,
        refused: ServiceError,
    ) -> ServiceError {
        let Some((key_id, version)) = credential.master_key.clone() else {
            return refused;
        };
        let described = self.kms.describe_keys().await;
        if let Ok(keyring) = &described {
            self.described(keyring);
        }
        match described {
            Ok(keyring) if !holds(&keyring, &key_id, version) => {
                self.recheck.notify_one();
                missing_version_error(&KeyVersion { key_id, version })
            }
            _ => refused,
        }
    }
}
