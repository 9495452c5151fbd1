//! A bounded, decrypt-only cache of unwrapped data keys, so that reading the same credential
//! again does not wait for a kms round trip (the Kubernetes API server's KMS v2 cache and the
//! AWS Encryption SDK's caching materials manager do the same).
//!
//! What makes it safe, and what it costs:
//! - **Decrypt only.** Writes never look here: every new value gets a fresh data key from the
//!   kms. An entry is made only after the kms unwrapped the key for exactly that wrapped key
//!   and encryption context.
//! - **Keyed by what the kms checked.** The key is the SHA-256 of the wrapped key, the row's
//!   salt (payload format 4) and the context's canonical bytes; the context names the workspace, the credential, its type and
//!   value generation, so a row whose wrapped key or binding differs in any byte finds no entry
//!   and goes to the kms, which refuses what it would refuse.
//! - **Bounded in time and count.** An entry older than the maximum age is never served and is
//!   dropped within one purge tick; at the entry cap the oldest entry goes first. A maximum age
//!   of zero turns the cache off.
//! - **Dropped when what it stands for changes:** the credential updated, deleted or re-wrapped
//!   on this replica ([`DataKeyCache::forget`]), and every entry when the kms loads a keyring
//!   (at start or on reload, which is also how disabling a master-key version takes effect:
//!   [`DataKeyCache::observe_keyring`], fed by the readiness loop's keyring comparison).
//! - **Zeroized.** Key bytes live in `Zeroizing` buffers, wiped when an entry is evicted and
//!   when a caller's copy drops.
//! - **Not the audit.** An access answered from here still reads the row and commits its audit
//!   event before it answers; only the kms call is saved.
//!
//! The trade-off is memory: a data key may stay in the API's memory for the maximum age after
//! its last unwrap, and a kms that stops answering (or that disables a version) is noticed by
//! cached reads only at the next keyring comparison (every readiness tick, 2 s while the kms
//! answers). `docs/performance.md` has the numbers; `--data-key-cache-max-age 0` turns it off.

use kms::EncryptionContext;
use ring::digest::{Context, SHA256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;
use zeroize::Zeroizing;

/// Default maximum age of a cached data key (the Kubernetes KMS v2 cache keeps its seeds for
/// minutes too): long enough that a busy credential rarely waits for the kms, short enough that
/// a key lingers in memory for at most a few minutes after its last unwrap.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// Default entry cap: one entry is 32 key bytes plus about 150 bytes of bookkeeping, so the
/// full cache holds about 2 MiB.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// SHA-256 of a wrapped key and its context.
type CacheKey = [u8; 32];

/// How long entries live and how many there may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataKeyCacheConfig {
    /// An entry older than this is never served; zero turns the cache off.
    pub max_age: Duration,
    /// At most this many entries; zero turns the cache off.
    pub capacity: usize,
}

impl Default for DataKeyCacheConfig {
    fn default() -> Self {
        Self {
            max_age: DEFAULT_MAX_AGE,
            capacity: DEFAULT_CAPACITY,
        }
    }
}

/// Why entries left the cache (the `reason` label of the eviction counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// Older than the maximum age.
    Expired,
    /// Pushed out by newer entries at the cap.
    Capacity,
    /// Its credential was updated, deleted or re-wrapped here.
    Changed,
    /// The kms loaded a keyring (start or reload).
    KeyringLoaded,
}

impl Eviction {
    /// Every reason, in label order.
    pub const ALL: [Eviction; 4] = [
        Eviction::Expired,
        Eviction::Capacity,
        Eviction::Changed,
        Eviction::KeyringLoaded,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Eviction::Expired => "expired",
            Eviction::Capacity => "capacity",
            Eviction::Changed => "credential_changed",
            Eviction::KeyringLoaded => "keyring_loaded",
        }
    }
}

/// Counts since start, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataKeyCacheStats {
    /// Lookups answered from memory.
    pub hits: u64,
    /// Lookups that had to ask the kms (the cache off counts none).
    pub misses: u64,
    /// Entries dropped, per [`Eviction::ALL`] reason.
    pub evictions: [u64; 4],
    /// Entries held now.
    pub entries: usize,
}

struct Entry {
    key: Zeroizing<Vec<u8>>,
    credential_id: Uuid,
    inserted: Instant,
    /// Its place in the insertion order, so a stale order slot is recognised.
    seq: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<CacheKey, Entry>,
    /// The one entry per credential: a newer wrapped key of a credential replaces the older.
    by_credential: HashMap<Uuid, CacheKey>,
    /// Insertion order, oldest first; slots of removed entries are skipped when met.
    order: VecDeque<(CacheKey, u64)>,
    next_seq: u64,
    /// The kms's keyring load last seen (see [`DataKeyCache::observe_keyring`]).
    keyring_load: Option<String>,
}

impl Inner {
    fn remove(&mut self, key: &CacheKey) -> bool {
        match self.entries.remove(key) {
            Some(entry) => {
                if self.by_credential.get(&entry.credential_id) == Some(key) {
                    self.by_credential.remove(&entry.credential_id);
                }
                true
            }
            None => false,
        }
    }

    /// The oldest live entry's key and age, dropping stale order slots on the way.
    fn oldest(&mut self, now: Instant) -> Option<(CacheKey, Duration)> {
        while let Some(&(key, seq)) = self.order.front() {
            match self.entries.get(&key) {
                Some(entry) if entry.seq == seq => {
                    return Some((key, now.saturating_duration_since(entry.inserted)));
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
        None
    }

    /// Drops the order slots of removed entries once they outnumber the live ones, so a
    /// credential written again and again does not grow the queue between purges.
    fn compact(&mut self, capacity: usize) {
        if self.order.len() > 2 * capacity.max(self.entries.len()) + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(key, seq)| entries.get(key).is_some_and(|e| e.seq == *seq));
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((key, _)) = self.order.pop_front() {
            self.remove(&key);
        }
    }
}

/// Unwrapped data keys of recently read credentials (see the module docs).
pub struct DataKeyCache {
    config: DataKeyCacheConfig,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: [AtomicU64; 4],
}

impl std::fmt::Debug for DataKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeyCache")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The cache key of a wrapped key under a context, with the row's own derivation input (a
/// format-4 salt; empty before): length-prefixed, so no two triples share one.
fn cache_key(wrapped: &[u8], context: &EncryptionContext, derivation: &[u8]) -> CacheKey {
    let mut hash = Context::new(&SHA256);
    for part in [wrapped, derivation] {
        hash.update(&(part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.update(&context.canonical_bytes());
    let mut key = [0; 32];
    key.copy_from_slice(hash.finish().as_ref());
    key
}

impl DataKeyCache {
    /// A cache with these limits (off when either is zero).
    pub fn new(config: DataKeyCacheConfig) -> Self {
        Self {
            config,
            inner: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: Default::default(),
        }
    }

    /// A cache that holds nothing.
    pub fn off() -> Self {
        Self::new(DataKeyCacheConfig {
            max_age: Duration::ZERO,
            capacity: 0,
        })
    }

    /// Whether it holds anything at all.
    pub fn is_on(&self) -> bool {
        !self.config.max_age.is_zero() && self.config.capacity > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn evicted(&self, reason: Eviction, n: usize) {
        if n > 0 {
            self.evictions[reason as usize].fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// The data key of a `wrapped` key under `context` with the row's `derivation` input, if
    /// one younger than the maximum age is held: a copy, wiped when dropped.
    pub fn lookup(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
        derivation: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        if !self.is_on() {
            return None;
        }
        let key = cache_key(wrapped, context, derivation);
        let mut inner = self.lock();
        let found = match inner.entries.get(&key) {
            Some(entry) if entry.inserted.elapsed() < self.config.max_age => {
                Some(Zeroizing::new(entry.key.to_vec()))
            }
            Some(_) => {
                inner.remove(&key);
                self.evicted(Eviction::Expired, 1);
                None
            }
            None => None,
        };
        drop(inner);
        match &found {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        found
    }

    /// Remembers the data key of `credential_id`'s `wrapped` key under `context` with its
    /// `derivation` input (unwrapped by the kms, or derived from the seed it unwrapped),
    /// replacing the credential's older entry.
    pub fn insert(
        &self,
        credential_id: Uuid,
        wrapped: &[u8],
        context: &EncryptionContext,
        derivation: &[u8],
        data_key: &[u8],
    ) {
        if !self.is_on() {
            return;
        }
        let key = cache_key(wrapped, context, derivation);
        let now = Instant::now();
        let mut inner = self.lock();
        let mut replaced = 0;
        if let Some(older) = inner.by_credential.get(&credential_id).copied()
            && older != key
            && inner.remove(&older)
        {
            replaced += 1;
        }
        let mut pushed_out = 0;
        while inner.entries.len() >= self.config.capacity && !inner.entries.contains_key(&key) {
            if inner.oldest(now).is_none() {
                break;
            }
            inner.pop_oldest();
            pushed_out += 1;
        }
        inner.compact(self.config.capacity);
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.order.push_back((key, seq));
        inner.by_credential.insert(credential_id, key);
        inner.entries.insert(
            key,
            Entry {
                key: Zeroizing::new(data_key.to_vec()),
                credential_id,
                inserted: now,
                seq,
            },
        );
        drop(inner);
        self.evicted(Eviction::Changed, replaced);
        self.evicted(Eviction::Capacity, pushed_out);
    }

    /// Drops the credential's entry: its value was written anew, it was deleted, or its data key
    /// was re-wrapped.
    pub fn forget(&self, credential_id: Uuid) {
        if !self.is_on() {
            return;
        }
        let mut inner = self.lock();
        let removed = match inner.by_credential.get(&credential_id).copied() {
            Some(key) => inner.remove(&key),
            None => false,
        };
        drop(inner);
        self.evicted(Eviction::Changed, usize::from(removed));
    }

    /// Notes the kms's keyring load seen now: when it differs from the last one seen (the kms
    /// restarted or reloaded, perhaps disabling a version), every entry is dropped, so the next
    /// read of each credential asks the kms again. Returns how many were dropped when the load
    /// changed (not on the first sight), `None` when it did not.
    pub fn observe_keyring(&self, load_id: &str) -> Option<usize> {
        let mut inner = self.lock();
        if inner.keyring_load.as_deref() == Some(load_id) {
            return None;
        }
        let first_sight = inner.keyring_load.is_none();
        inner.keyring_load = Some(load_id.to_owned());
        let n = inner.entries.len();
        inner.entries.clear();
        inner.by_credential.clear();
        inner.order.clear();
        drop(inner);
        self.evicted(Eviction::KeyringLoaded, n);
        (!first_sight).then_some(n)
    }

    /// Drops entries past the maximum age (run every readiness tick, so an expired key does not
    /// stay in memory until its credential is read again).
    pub fn purge_expired(&self) {
        if !self.is_on() {
            return;
        }
        let now = Instant::now();
        let mut inner = self.lock();
        let mut n = 0;
        while let Some((_, age)) = inner.oldest(now) {
            if age < self.config.max_age {
                break;
            }
            inner.pop_oldest();
            n += 1;
        }
        drop(inner);
        self.evicted(Eviction::Expired, n);
    }

    /// Counts since start and the entries held now.
    pub fn stats(&self) -> DataKeyCacheStats {
        DataKeyCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: std::array::from_fn(|i| self.evictions[i].load(Ordering::Relaxed)),
            entries: self.lock().entries.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(credential: &str) -> EncryptionContext {
        EncryptionContext::new()
            .with("workspace_id", "ws")
            .with("credential_id", credential)
    }

    fn cache(max_age: Duration, capacity: usize) -> DataKeyCache {
        DataKeyCache::new(DataKeyCacheConfig { max_age, capacity })
    }

    fn id() -> Uuid {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Uuid::from_u128(u128::from(NEXT.fetch_add(1, Ordering::Relaxed)))
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_key_is_served_only_for_the_same_wrapped_key_and_context() {
        let c = cache(HOUR, 10);
        let id = id();
        c.insert(id, b"wrapped-1", &ctx("a"), b"", &[7; 32]);
        assert_eq!(
            c.lookup(b"wrapped-1", &ctx("a"), b"")
                .as_deref()
                .map(Vec::as_slice),
            Some(&[7u8; 32][..])
        );
        assert!(
            c.lookup(b"wrapped-2", &ctx("a"), b"").is_none(),
            "other wrapped key"
        );
        assert!(
            c.lookup(b"wrapped-1", &ctx("b"), b"").is_none(),
            "other context"
        );
        assert!(
            c.lookup(b"wrapped-1", &ctx("a"), b"salt").is_none(),
            "other salt"
        );
        let stats = c.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (1, 3, 1));
    }

    #[test]
    fn the_length_prefix_keeps_wrapped_key_and_context_apart() {
        // Without the prefix, moving a byte between the two would give the same hash input.
        let one = EncryptionContext::new().with("k", "v");
        assert_ne!(cache_key(b"ab", &one, b""), cache_key(b"a", &one, b"b"));
    }

    #[test]
    fn an_entry_past_the_maximum_age_is_not_served_and_is_purged() {
        let c = cache(Duration::from_millis(20), 10);
        c.insert(id(), b"w", &ctx("a"), b"", &[1; 32]);
        c.insert(id(), b"w", &ctx("b"), b"", &[2; 32]);
        std::thread::sleep(Duration::from_millis(30));
        assert!(c.lookup(b"w", &ctx("a"), b"").is_none());
        c.purge_expired();
        let stats = c.stats();
        assert_eq!(stats.entries, 0);
        assert_eq!(stats.evictions[Eviction::Expired as usize], 2);
    }

    #[test]
    fn at_the_cap_the_oldest_entry_goes_first() {
        let c = cache(HOUR, 2);
        let ids: Vec<Uuid> = (0..3).map(|_| id()).collect();
        for (i, id) in ids.iter().enumerate() {
            c.insert(*id, b"w", &ctx(&i.to_string()), b"", &[i as u8; 32]);
        }
        assert!(
            c.lookup(b"w", &ctx("0"), b"").is_none(),
            "the oldest was pushed out"
        );
        assert!(c.lookup(b"w", &ctx("1"), b"").is_some());
        assert!(c.lookup(b"w", &ctx("2"), b"").is_some());
        let stats = c.stats();
        assert_eq!(stats.entries, 2);
        assert_eq!(stats.evictions[Eviction::Capacity as usize], 1);
    }

    #[test]
    fn forgetting_a_credential_drops_its_entry_only() {
        let c = cache(HOUR, 10);
        let (a, b) = (id(), id());
        c.insert(a, b"w", &ctx("a"), b"", &[1; 32]);
        c.insert(b, b"w", &ctx("b"), b"", &[2; 32]);
        c.forget(a);
        assert!(c.lookup(b"w", &ctx("a"), b"").is_none());
        assert!(c.lookup(b"w", &ctx("b"), b"").is_some());
        // A stale order slot of the forgotten entry does not confuse the cap.
        c.insert(a, b"w", &ctx("a"), b"", &[1; 32]);
        assert_eq!(c.stats().entries, 2);
    }

    #[test]
    fn a_credential_written_again_and_again_does_not_grow_the_order_queue() {
        let c = cache(HOUR, 4);
        let id = id();
        for i in 0..1000u32 {
            c.forget(id);
            c.insert(id, &i.to_be_bytes(), &ctx("a"), b"", &[1; 32]);
        }
        assert!(
            c.lock().order.len() <= 2 * 4 + 64 + 1,
            "{}",
            c.lock().order.len()
        );
        assert_eq!(c.stats().entries, 1);
    }

    #[test]
    fn a_newer_wrapped_key_of_a_credential_replaces_its_older_entry() {
        let c = cache(HOUR, 10);
        let id = id();
        c.insert(id, b"old", &ctx("a"), b"", &[1; 32]);
        c.insert(id, b"new", &ctx("a"), b"", &[2; 32]);
        assert!(c.lookup(b"old", &ctx("a"), b"").is_none());
        assert_eq!(c.stats().entries, 1);
        assert_eq!(c.stats().evictions[Eviction::Changed as usize], 1);
    }

    #[test]
    fn a_new_keyring_load_empties_the_cache_and_the_same_one_does_not() {
        let c = cache(HOUR, 10);
        c.observe_keyring("load-1");
        c.insert(id(), b"w", &ctx("a"), b"", &[1; 32]);
        c.observe_keyring("load-1");
        assert!(c.lookup(b"w", &ctx("a"), b"").is_some(), "same load");
        c.observe_keyring("load-2");
        assert!(c.lookup(b"w", &ctx("a"), b"").is_none(), "new load");
        assert_eq!(c.stats().evictions[Eviction::KeyringLoaded as usize], 1);
    }

    #[test]
    fn a_cache_with_a_zero_limit_holds_nothing() {
        for c in [
            cache(Duration::ZERO, 10),
            cache(HOUR, 0),
            DataKeyCache::off(),
        ] {
            c.insert(id(), b"w", &ctx("a"), b"", &[1; 32]);
            assert!(c.lookup(b"w", &ctx("a"), b"").is_none());
            assert_eq!(c.stats(), DataKeyCacheStats::default());
        }
    }

    #[test]
    fn debug_shows_counts_never_key_bytes() {
        let c = cache(HOUR, 10);
        c.insert(id(), b"w", &ctx("a"), b"", &[0xAB; 32]);
        let shown = format!("{c:?}");
        assert!(shown.contains("entries: 1"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
    }
}
