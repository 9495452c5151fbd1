//! A bounded cache of verified tokens, so a long-lived service token is parsed and its
//! signature checked once rather than on every call.
//!
//! Safe because of what it is keyed by and what it keeps:
//! - the key is the SHA-256 of the whole token as received (header, payload and signature), so
//!   a token that differs from a verified one in any byte, a forged signature included, finds no
//!   entry and is verified afresh; no secret comparison happens on the lookup;
//! - only successes are stored, with the token's validity window (`nbf`/`exp`, leeway applied),
//!   and a hit re-checks that window at the caller's `now`: a cached token expires exactly when
//!   the uncached one would, with the same error;
//! - the cache belongs to one [`Verifier`](crate::Verifier) and is emptied whenever its keys or
//!   secret change, so a token signed by a removed key is never accepted from memory;
//! - the entry count is capped: at the cap, expired entries go first, then the entry expiring
//!   soonest (the one worth least). That scan is linear in the cap and runs only at the cap.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ring::digest::{SHA256, digest};

use crate::{AuthError, Principal};

/// Default cap on cached tokens: ample for every service identity of a deployment. An entry is
/// the principal, a few hundred bytes for ordinary tokens (a few MiB in all) and never more than
/// the 8 KiB a token may hold; only tokens signed by a configured key get one.
pub const DEFAULT_TOKEN_CACHE_CAPACITY: usize = 10_000;

/// SHA-256 of a token.
type TokenHash = [u8; 32];

/// When a verified token may be used, as offsets from the Unix epoch with the leeway applied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// Refused before this (`nbf - leeway`; zero without `nbf`).
    pub(crate) from: Duration,
    /// Refused after this (`exp + leeway`).
    pub(crate) until: Duration,
}

impl Window {
    /// The error a token with this window gets at `now`, if any: the same checks, in the same
    /// order, as [`crate::claims::validate`].
    pub(crate) fn check(&self, now: Duration) -> Result<(), AuthError> {
        if now > self.until {
            Err(AuthError::Expired)
        } else if now < self.from {
            Err(AuthError::NotYetValid)
        } else {
            Ok(())
        }
    }
}

struct Entry {
    principal: Principal,
    window: Window,
}

/// Hit and miss counts since the verifier was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCacheStats {
    /// Calls answered from the cache.
    pub hits: u64,
    /// Calls that verified the token (including every refused one).
    pub misses: u64,
    /// Tokens held now.
    pub entries: usize,
}

/// The verified tokens of one verifier.
pub(crate) struct TokenCache {
    capacity: usize,
    entries: Mutex<HashMap<TokenHash, Entry>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl TokenCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub(crate) fn hash(token: &str) -> TokenHash {
        let mut hash = [0; 32];
        hash.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
        hash
    }

    /// The cached answer for `hash` at `now`: `None` when not cached (verify it), else the
    /// principal or the window's refusal. An entry past its window is dropped.
    pub(crate) fn get(
        &self,
        hash: &TokenHash,
        now: Duration,
    ) -> Option<Result<Principal, AuthError>> {
        let mut entries = self.lock();
        let Some(entry) = entries.get(hash) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(match entry.window.check(now) {
            Ok(()) => Ok(entry.principal.clone()),
            Err(e) => {
                if matches!(e, AuthError::Expired) {
                    entries.remove(hash);
                }
                Err(e)
            }
        })
    }

    /// Remembers a token that verified at `now`.
    pub(crate) fn insert(
        &self,
        hash: TokenHash,
        principal: &Principal,
        window: Window,
        now: Duration,
    ) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&hash) {
            entries.retain(|_, entry| entry.window.until >= now);
            if entries.len() >= self.capacity
                && let Some(soonest) = entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.window.until)
                    .map(|(hash, _)| *hash)
            {
                entries.remove(&soonest);
            }
        }
        entries.insert(
            hash,
            Entry {
                principal: principal.clone(),
                window,
            },
        );
    }

    /// Forgets every token: the keys they were verified with may be gone.
    pub(crate) fn clear(&mut self) {
        self.entries
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    pub(crate) fn stats(&self) -> TokenCacheStats {
        TokenCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.lock().len(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, Entry>> {
        // A panic while holding the lock leaves a map that is still consistent (every change
        // is one HashMap call), so carrying on is safe.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
