//! Per-principal rate limits on the RPCs that cost the most or leak the most: plaintext
//! accesses, and the probes that make the vault connect to a caller-chosen target.
//!
//! One token bucket per (principal, class): it holds up to `count` calls and refills `count`
//! per period, so a caller may burst to the limit and then goes at the steady rate. A call
//! that finds the bucket empty is refused with how long until a token is back (the edge sends
//! it as `google.rpc.RetryInfo`). The first refusal of a principal in each period is audited
//! (a security event); the refusals after it in the same period are only counted, so a
//! caller hammering a limit cannot turn the audit log into its own denial of service.
//!
//! Memory is bounded: at most [`MAX_TRACKED`] buckets. A full bucket says nothing a missing
//! one would not, so when the map is full those go first; if every tracked principal is
//! mid-burst, the longest-untouched bucket goes (that principal gets a fresh burst: under
//! such a flood of principals the limit is best effort, memory is not).
//!
//! A small map rather than `governor`: the audit-once-per-window rule needs per-key state of
//! our own next to the bucket, and the bound on keys is ours to choose either way.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// Most (principal, class) buckets kept at once (about 100 bytes each).
pub const MAX_TRACKED: usize = 65_536;

/// A limit: `count` calls per `per`, in bursts of up to `count`; a zero count is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Calls allowed per period (and the largest burst).
    pub count: u32,
    /// The period.
    pub per: Duration,
}

impl Rate {
    /// Parses `N/s`, `N/m` or `N/h`.
    pub fn parse(s: &str) -> Result<Rate, String> {
        let (count, unit) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not N/s, N/m or N/h"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: {count:?} is not a whole number"))?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            other => return Err(format!("{s:?}: unit {other:?} is not s, m or h")),
        };
        Ok(Rate { count, per })
    }

    fn is_off(self) -> bool {
        self.count == 0
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "m",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// Which budget a call draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateClass {
    /// `AccessCredential`.
    Access,
    /// `ValidateCredential`, `TestCredential`, `DiscoverSchema`.
    Probe,
}

/// A refused call: when to retry, and whether this refusal is the one of its window to audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Until a call would be admitted again.
    pub retry_after: Duration,
    /// The first refusal of this principal and class in the current period.
    pub audit: bool,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    audited: Option<Instant>,
}

/// The buckets of every principal, for both classes.
#[derive(Debug)]
pub struct RateLimiter {
    access: Rate,
    probe: Rate,
    max_tracked: usize,
    buckets: Mutex<HashMap<(String, RateClass), Bucket>>,
}

impl RateLimiter {
    /// Limits `access` for accesses and `probe` for probes.
    pub fn new(access: Rate, probe: Rate) -> Self {
        Self::with_capacity(access, probe, MAX_TRACKED)
    }

    fn with_capacity(access: Rate, probe: Rate, max_tracked: usize) -> Self {
        Self {
            access,
            probe,
            max_tracked: max_tracked.max(1),
            buckets: Mutex::default(),
        }
    }

    /// No limit at all.
    pub fn unlimited() -> Self {
        let off = Rate {
            count: 0,
            per: Duration::from_secs(1),
        };
        Self::new(off, off)
    }

    /// The limit of `class`.
    pub fn rate(&self, class: RateClass) -> Rate {
        match class {
            RateClass::Access => self.access,
            RateClass::Probe => self.probe,
        }
    }

    /// Takes a token for `principal`'s call of `class`, or says why not.
    pub fn check(&self, principal: &str, class: RateClass) -> Result<(), Refusal> {
        self.check_at(principal, class, Instant::now())
    }

    fn check_at(&self, principal: &str, class: RateClass, now: Instant) -> Result<(), Refusal> {
        let rate = self.rate(class);
        if rate.is_off() {
            return Ok(());
        }
        let capacity = f64::from(rate.count);
        let per_second = capacity / rate.per.as_secs_f64();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (principal.to_owned(), class);
        if !buckets.contains_key(&key) && buckets.len() >= self.max_tracked {
            self.make_room(&mut buckets, now);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: capacity,
            updated: now,
            audited: None,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let retry_after = Duration::from_secs_f64((1.0 - bucket.tokens) / per_second);
        let audit = bucket
            .audited
            .is_none_or(|at| now.saturating_duration_since(at) >= rate.per);
        if audit {
            bucket.audited = Some(now);
        }
        Err(Refusal { retry_after, audit })
    }

    /// Drops the buckets that are full by now (as good as absent); if none is, the one
    /// untouched for longest.
    fn make_room(&self, buckets: &mut HashMap<(String, RateClass), Bucket>, now: Instant) {
        buckets.retain(|(_, class), b| {
            let rate = self.rate(*class);
            let refill = now.saturating_duration_since(b.updated).as_secs_f64()
                * f64::from(rate.count)
                / rate.per.as_secs_f64();
            b.tokens + refill < f64::from(rate.count)
        });
        if buckets.len() >= self.max_tracked
            && let Some(oldest) = buckets
                .iter()
                .min_by_key(|(_, b)| b.updated)
                .map(|(k, _)| k.clone())
        {
            buckets.remove(&oldest);
        }
    }

    /// Buckets held now.
    pub fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(s: &str) -> Rate {
        Rate::parse(s).unwrap()
    }

    #[test]
    fn rates_parse_and_print() {
        assert_eq!(
            rate("100/s"),
            Rate {
                count: 100,
                per: Duration::from_secs(1)
            }
        );
        assert_eq!(rate("60/m").to_string(), "60/m");
        assert_eq!(rate("5/h").per, Duration::from_secs(3600));
        for bad in ["", "10", "x/s", "10/d", "-1/s"] {
            assert!(Rate::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_burst_then_the_steady_rate_and_one_audit_per_window() {
        let limiter = RateLimiter::new(rate("3/s"), rate("2/m"));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("alice", RateClass::Access, t0).is_ok());
        }
        let first = limiter
            .check_at("alice", RateClass::Access, t0)
            .unwrap_err();
        assert!(first.audit);
        assert!(
            first.retry_after > Duration::ZERO && first.retry_after <= Duration::from_millis(334)
        );
        // Refused again in the same window: counted, not audited.
        let again = limiter
            .check_at("alice", RateClass::Access, t0 + Duration::from_millis(100))
            .unwrap_err();
        assert!(!again.audit);
        // Others and the other class are untouched.
        assert!(limiter.check_at("bob", RateClass::Access, t0).is_ok());
        assert!(limiter.check_at("alice", RateClass::Probe, t0).is_ok());
        // A token comes back after a third of a second.
        assert!(
            limiter
                .check_at("alice", RateClass::Access, t0 + Duration::from_millis(400))
                .is_ok()
        );
        // The next window's first refusal is audited again.
        let later = t0 + Duration::from_millis(1500);
        for _ in 0..3 {
            let _ = limiter.check_at("alice", RateClass::Access, later);
        }
        assert!(
            limiter
                .check_at("alice", RateClass::Access, later)
                .unwrap_err()
                .audit
        );
    }

    #[test]
    fn zero_is_no_limit() {
        let limiter = RateLimiter::unlimited();
        for _ in 0..10_000 {
            assert!(limiter.check("a", RateClass::Access).is_ok());
        }
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn memory_stays_bounded_under_many_principals() {
        let limiter = RateLimiter::with_capacity(rate("2/s"), rate("2/s"), 100);
        let t0 = Instant::now();
        for n in 0..10_000 {
            let name = format!("p{n}");
            let _ = limiter.check_at(&name, RateClass::Access, t0);
            let _ = limiter.check_at(&name, RateClass::Access, t0);
            assert!(limiter.tracked() <= 100);
        }
        // A principal mid-burst is still limited while there is room to keep it.
        let limiter = RateLimiter::with_capacity(rate("1/h"), rate("1/h"), 100);
        assert!(limiter.check_at("hot", RateClass::Probe, t0).is_ok());
        for n in 0..50 {
            let _ = limiter.check_at(&format!("p{n}"), RateClass::Probe, t0);
        }
        assert!(limiter.check_at("hot", RateClass::Probe, t0).is_err());
    }
}
