//! Write seeds: the kms-wrapped data key per workspace from which this replica derives each
//! value's own data key (payload format 4), so a create or update waits for no kms call while
//! its workspace's seed is fresh (the Kubernetes API server's KMS v2 design).
//!
//! Why a seed is safe to share: each value's key is HKDF of the seed with a random 256-bit
//! salt and the row's context (see `credentials_core::payload::derive_data_key`), so values
//! never share a key, and the seed is wrapped under the workspace's master key with a context
//! naming only the workspace, so no other tenant's row can ever use it.
//!
//! Why it rotates: a plaintext seed in memory covers every value written with it, so it is
//! replaced after a maximum age or number of derivations, and whenever the master key it was
//! wrapped under is no longer the workspace's key or the primary version has moved (new
//! values must land on the primary, and a disabled version must take nothing new). Key
//! changes are seen at once (the workspace's key is read per write); the kms's primary
//! versions are asked for at most once per check interval, so after a keyring reload writes
//! may land on the previous primary for up to that long (the re-wrap sweep moves them).

use super::error::Result;
use credentials_core::payload;
use kms::{KeyState, KmsClient};
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use zeroize::Zeroizing;

/// How long and how often a seed may be used, and how often the kms's primaries are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedConfig {
    /// The longest a seed is used for new values; zero asks the kms for a seed per write.
    pub max_age: Duration,
    /// The most values derived from one seed.
    pub max_uses: u64,
    /// The longest the kms's primary versions are trusted before being asked again; zero asks
    /// on every write that would use a cached seed.
    pub keyring_check: Duration,
    /// The most workspaces with a seed held at once (each holds 32 key bytes).
    pub max_workspaces: usize,
}

impl Default for SeedConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(300),
            max_uses: 100_000,
            keyring_check: Duration::from_secs(2),
            max_workspaces: 10_000,
        }
    }
}

/// A seed as the kms handed it out: the plaintext (zeroized on drop) and its wrapped form.
pub(crate) struct Seed {
    plaintext: Zeroizing<Vec<u8>>,
    /// What the rows store as their wrapped key.
    pub(crate) wrapped: Vec<u8>,
    /// The master key the kms wrapped it under.
    pub(crate) key_id: String,
    /// Its version.
    pub(crate) key_version: u32,
    /// The master key the write asked for (`None`: the kms's default), to see a change.
    requested: Option<String>,
    born: Instant,
    uses: AtomicU64,
}

impl Seed {
    /// The seed's key bytes, for deriving a value's data key.
    pub(crate) fn plaintext(&self) -> &[u8] {
        &self.plaintext
    }
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seed")
            .field("key_id", &self.key_id)
            .field("key_version", &self.key_version)
            .field("uses", &self.uses.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The kms's master keys as last described: enabled or not, and the primary version.
#[derive(Debug, Default)]
struct Primaries {
    asked: Option<Instant>,
    keys: HashMap<String, (KeyState, u32)>,
}

/// This replica's write seeds, one per workspace.
#[derive(Debug)]
pub struct WriteSeeds {
    kms: KmsClient,
    config: SeedConfig,
    seeds: Mutex<HashMap<String, Arc<Seed>>>,
    primaries: tokio::sync::Mutex<Primaries>,
}

impl WriteSeeds {
    /// Seeds from `kms` under `config`; none is asked for before the first write.
    pub fn new(kms: KmsClient, config: SeedConfig) -> Self {
        Self {
            kms,
            config,
            seeds: Mutex::default(),
            primaries: tokio::sync::Mutex::default(),
        }
    }

    /// Forgets every seed (zeroizing those no write still holds), e.g. after the keyring
    /// changed: the next write of each workspace asks the kms for a new one.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Seed>>> {
        self.seeds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The seed a new value of `workspace_id` is derived from, wrapped under `master_key` (the
    /// kms's default when `None`): the held one while it is fresh and on the current primary,
    /// else a new one from the kms. Counts one derivation.
    pub(crate) async fn for_write(
        &self,
        workspace_id: &str,
        master_key: Option<&str>,
    ) -> Result<Arc<Seed>> {
        if let Some(seed) = self.held(workspace_id, master_key)
            && self.on_primary(&seed).await?
        {
            return Ok(seed);
        }
        let key = self
            .kms
            .generate_data_key(master_key, &payload::seed_context(workspace_id))
            .await?;
        let seed = Arc::new(Seed {
            plaintext: key.plaintext,
            wrapped: key.wrapped,
            key_id: key.key_id,
            key_version: key.key_version,
            requested: master_key.map(str::to_owned),
            born: Instant::now(),
            uses: AtomicU64::new(1),
        });
        if !self.config.max_age.is_zero() {
            let mut seeds = self.lock();
            if seeds.len() >= self.config.max_workspaces && !seeds.contains_key(workspace_id) {
                seeds.retain(|_, s| self.fresh(s));
                if seeds.len() >= self.config.max_workspaces {
                    // Still full of live seeds: drop one; its workspace asks the kms again.
                    if let Some(victim) = seeds.keys().next().cloned() {
                        seeds.remove(&victim);
                    }
                }
            }
            seeds.insert(workspace_id.to_owned(), seed.clone());
        }
        Ok(seed)
    }

    /// The held seed of a workspace if it is young enough, has derivations left and was
    /// wrapped under the key asked for now; counts the derivation it is about to serve.
    fn held(&self, workspace_id: &str, master_key: Option<&str>) -> Option<Arc<Seed>> {
        let seeds = self.lock();
        let seed = seeds.get(workspace_id)?;
        if seed.requested.as_deref() != master_key || !self.fresh(seed) {
            return None;
        }
        // Counted before use, so racing writers never take more than `max_uses` together.
        if seed.uses.fetch_add(1, Ordering::Relaxed) >= self.config.max_uses {
            return None;
        }
        Some(seed.clone())
    }

    fn fresh(&self, seed: &Seed) -> bool {
        seed.born.elapsed() < self.config.max_age
            && seed.uses.load(Ordering::Relaxed) < self.config.max_uses
    }

    /// Whether the kms's key for `seed` is enabled and its primary is the seed's version (or
    /// older, when the description predates the seed), asking the kms when the last answer is
    /// older than the check interval.
    async fn on_primary(&self, seed: &Seed) -> Result<bool> {
        let mut primaries = self.primaries.lock().await;
        let stale = primaries
            .asked
            .is_none_or(|at| at.elapsed() >= self.config.keyring_check);
        if stale {
            let keyring = self.kms.describe_keys().await?;
            primaries.keys = keyring
                .keys
                .into_iter()
                .map(|k| (k.key_id, (k.state, k.primary_version)))
                .collect();
            primaries.asked = Some(Instant::now());
        }
        Ok(matches!(
            primaries.keys.get(&seed.key_id),
            Some((KeyState::Enabled, primary)) if *primary <= seed.key_version
        ))
    }
}
