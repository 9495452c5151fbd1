//! Who may probe now: the budgets of concurrent probes, so that one tenant, or one kind of
//! probe, cannot take every slot.
//!
//! A probe holds a permit of its workspace's budget and one of the process's, for its kind:
//! validations and discoveries have budgets of their own, so long discoveries (up to 120 s
//! against a silent server) cannot starve validations, and a workspace never holds more than
//! its share of either. The workspace permit is taken first, so a workspace over its share
//! waits without holding a global one that another workspace could use.
//!
//! Waiting is bounded: by the queue timeout, by what the caller's deadline leaves, and by the
//! probe's own deadline, whichever is shortest; the time waited counts against the probe's
//! deadline. A caller that gets no permit in that time is refused with [`Busy`] and nothing is
//! sent anywhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What a probe does, each with its own budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// A validation (or a test of a value): one login or read, seconds at most.
    Validation,
    /// A schema discovery: catalogue reads, up to minutes.
    Discovery,
}

impl ProbeKind {
    /// The kind's name, as metric labels and messages spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Validation => "validation",
            ProbeKind::Discovery => "discovery",
        }
    }

    /// How long a refused caller is told to wait before retrying: about the time a probe of
    /// the kind takes to free its permit.
    pub fn retry_after(self) -> Duration {
        match self {
            ProbeKind::Validation => Duration::from_secs(1),
            ProbeKind::Discovery => Duration::from_secs(5),
        }
    }
}

/// How many probes of one kind may run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// In the whole process.
    pub global: usize,
    /// For one workspace.
    pub per_workspace: usize,
}

/// The budgets of both kinds and the longest wait for a permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeBudgets {
    /// Validations and tests (default 16, 4 per workspace).
    pub validation: Budget,
    /// Schema discoveries (default 4, 2 per workspace).
    pub discovery: Budget,
    /// The longest wait for a permit, whatever the deadlines leave (default 2 s).
    pub queue_timeout: Duration,
}

impl Default for ProbeBudgets {
    fn default() -> Self {
        Self {
            validation: Budget {
                global: 16,
                per_workspace: 4,
            },
            discovery: Budget {
                global: 4,
                per_workspace: 2,
            },
            queue_timeout: Duration::from_secs(2),
        }
    }
}

/// Which budget had no permit left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyScope {
    /// The caller's workspace runs as many probes of the kind as it may.
    Workspace,
    /// The process runs as many probes of the kind as it may.
    Global,
}

impl BusyScope {
    /// The scope's name, as metric labels spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            BusyScope::Workspace => "workspace",
            BusyScope::Global => "global",
        }
    }
}

/// No permit within the wait: the probe did not run and nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many {} probes are running{}; retry in {} s", kind.as_str(), match scope { BusyScope::Workspace => " in this workspace", BusyScope::Global => "" }, retry_after.as_secs())]
pub struct Busy {
    /// The kind refused.
    pub kind: ProbeKind,
    /// Which budget was exhausted.
    pub scope: BusyScope,
    /// When a retry may succeed.
    pub retry_after: Duration,
}

/// The semaphores of one kind.
#[derive(Debug)]
struct Pool {
    global: Arc<Semaphore>,
    per_workspace: usize,
    /// Only workspaces with a probe running or waiting have an entry (see [`Pool::of`]).
    workspaces: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Pool {
    fn new(budget: Budget) -> Self {
        Self {
            global: Arc::new(Semaphore::new(budget.global.max(1))),
            per_workspace: budget.per_workspace.max(1),
            workspaces: Mutex::new(HashMap::new()),
        }
    }

    /// The workspace's semaphore. Entries nobody holds (only the map keeps them) are dropped
    /// first, so the map stays as small as the number of workspaces probing now; a clone is
    /// made only under the lock, so a count of one cannot grow while it is looked at.
    fn of(&self, workspace: &str) -> Arc<Semaphore> {
        let mut map = self
            .workspaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, s| Arc::strong_count(s) > 1);
        map.entry(workspace.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_workspace)))
            .clone()
    }
}

/// Every budget of a prober.
#[derive(Debug)]
pub(crate) struct Budgets {
    validation: Pool,
    discovery: Pool,
    queue_timeout: Duration,
}

/// The permits of one admitted probe, released when it is dropped.
#[derive(Debug)]
pub(crate) struct Permits {
    _workspace: Option<OwnedSemaphorePermit>,
    _global: OwnedSemaphorePermit,
    /// How long the wait took (it counts against the probe's deadline).
    pub(crate) waited: Duration,
}

impl Budgets {
    pub(crate) fn new(budgets: &ProbeBudgets) -> Self {
        Self {
            validation: Pool::new(budgets.validation),
            discovery: Pool::new(budgets.discovery),
            queue_timeout: budgets.queue_timeout,
        }
    }

    /// Waits at most `within` (and the queue timeout) for a permit of the workspace's budget
    /// (none for `None`) and one of the process's.
    pub(crate) async fn admit(
        &self,
        kind: ProbeKind,
        workspace: Option<&str>,
        within: Duration,
    ) -> Result<Permits, Busy> {
        let pool = match kind {
            ProbeKind::Validation => &self.validation,
            ProbeKind::Discovery => &self.discovery,
        };
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + within.min(self.queue_timeout);
        let busy = |scope| Busy {
            kind,
            scope,
            retry_after: kind.retry_after(),
        };
        let workspace = match workspace {
            Some(workspace) => Some(
                acquire(pool.of(workspace), deadline)
                    .await
                    .ok_or(busy(BusyScope::Workspace))?,
            ),
            None => None,
        };
        let global = acquire(pool.global.clone(), deadline)
            .await
            .ok_or(busy(BusyScope::Global))?;
        Ok(Permits {
            _workspace: workspace,
            _global: global,
            waited: started.elapsed(),
        })
    }
}

/// A permit of `semaphore` before `deadline`; `None` if there was none in time.
async fn acquire(
    semaphore: Arc<Semaphore>,
    deadline: tokio::time::Instant,
) -> Option<OwnedSemaphorePermit> {
    // Never closed, so an error cannot happen; treat it as busy all the same.
    tokio::time::timeout_at(deadline, semaphore.acquire_owned())
        .await
        .ok()?
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(global: usize, per_workspace: usize) -> Budgets {
        Budgets::new(&ProbeBudgets {
            validation: Budget {
                global,
                per_workspace,
            },
            discovery: Budget {
                global: 1,
                per_workspace: 1,
            },
            queue_timeout: Duration::from_millis(50),
        })
    }

    #[tokio::test]
    async fn a_workspace_gets_its_share_and_no_more() {
        let b = budgets(3, 2);
        let wait = Duration::from_secs(10);
        let kind = ProbeKind::Validation;
        let a1 = b.admit(kind, Some("a"), wait).await.unwrap();
        let _a2 = b.admit(kind, Some("a"), wait).await.unwrap();
        let refused = b.admit(kind, Some("a"), wait).await.unwrap_err();
        assert_eq!(refused.scope, BusyScope::Workspace);
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        // Another workspace still gets the last global permit, and then the process is full.
        let _b1 = b.admit(kind, Some("b"), wait).await.unwrap();
        let refused = b.admit(kind, Some("c"), wait).await.unwrap_err();
        assert_eq!(refused.scope, BusyScope::Global);
        // Discoveries have their own budget.
        let _d = b
            .admit(ProbeKind::Discovery, Some("a"), wait)
            .await
            .unwrap();
        drop(a1);
        b.admit(kind, Some("a"), wait).await.unwrap();
    }

    #[tokio::test]
    async fn the_wait_is_bounded_by_the_callers_deadline_and_idle_workspaces_are_forgotten() {
        let b = budgets(1, 1);
        let held = b
            .admit(ProbeKind::Validation, Some("a"), Duration::from_secs(1))
            .await
            .unwrap();
        let started = Instant::now();
        let refused = b
            .admit(ProbeKind::Validation, Some("a"), Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(refused.kind, ProbeKind::Validation);
        assert!(started.elapsed() < Duration::from_secs(1));
        drop(held);
        b.admit(ProbeKind::Validation, Some("b"), Duration::ZERO)
            .await
            .unwrap();
        let map = b.validation.workspaces.lock().unwrap();
        assert_eq!(map.keys().collect::<Vec<_>>(), ["b"]);
    }
}
