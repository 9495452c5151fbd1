//! Key lifecycle: the re-wrap sweep that moves data keys onto the primary version of their
//! target master key (through the kms's rewrap, so no plaintext data key leaves the kms), and
//! per-workspace master keys.
//!
//! Why the sweep is safe alongside clients: it swaps a row's wrapped key only if the row still
//! holds the wrapped key it read (compare-and-swap). A client's update writes a new ciphertext
//! with a new data key wrapped under the current primary, so the swap then misses and the row
//! is counted as skipped: stale key material can never land next to a new value. In payload
//! format 4 the wrapped key is the workspace's write seed, which an update may reuse: then the
//! swap lands, and that is still right, because the new value's key was derived from that same
//! seed and what the swap writes is the same seed, re-wrapped (under the seed context, so the
//! plaintext seed never leaves the kms here either).
//!
//! Why a sweep takes at least a few seconds: a replica reuses its write seed until it next
//! asks the kms for its primaries (at most the seeds' keyring-check interval), so just after a
//! rotation some writes still land on the old primary. A sweep that ends sooner than that
//! interval (plus a second for writes in flight) after it started goes over the rows once
//! more, so that nothing is left on the old version when it reports done and the operator
//! disables it. Every replica must run with the same interval. Why it is
//! resumable: the rows themselves record their key and version, so after a crash the sweep asks
//! again what is left. Why it is bounded: batches of a configured size, one kms call at a time,
//! a pause between batches, and one sweeper across replicas (an advisory lock).
//!
//! Who may do what: a workspace's key is administered only in a workspace the token names,
//! unless the token carries the platform-wide grant; a sweep spans every workspace, so it needs
//! that grant (checked by the auth layer). Every key assignment is audited in its workspace's
//! log, in the statement that makes it; every sweep request (and the scheduler's own) is
//! recorded in the security log before it starts, and each credential it moves in the
//! credential's workspace's log.
//!
//! A row still in an older payload format (1 or 2, whose context binds neither the type nor a
//! value generation) is moved to the current format as well: the kms unwraps its data key under
//! the old context, the value is opened, and it is sealed again under a new data key for the
//! current context (generation 1), swapped in with the same compare-and-swap on the old wrapped
//! key, so a client's update meanwhile still wins. Format 3 binds as much as format 4, but rows
//! in it are moved too (the store selects every format older than the current one), so that in
//! the end every row is in one format.

use super::caller::Caller;
use super::credentials::seal_value;
use super::data_key_cache::DataKeyCache;
use super::error::{Result, ServiceError};
use super::input::{AuditPage, SecurityListInput, WorkspaceKeyInput};
use super::paging;
use super::seed::{SeedConfig, WriteSeeds};
use credentials_core::{
    SecretValue,
    model::{AuditAction, AuditOutcome, NewAuditEvent},
    payload::{self, Envelope, RowBinding},
};
use credentials_store::{
    KeyAssignment, KeyTargets, KeyVersionCount, RewrapCandidate, RewrapProgress, RewrapRun,
    RunState, Store, StoreError,
};
use kms::{KeyState, KmsClient};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use uuid::Uuid;

/// How hard the sweep may push Postgres and the kms, and how often it runs by itself.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// Credentials per batch.
    pub batch_size: i64,
    /// Pause between batches.
    pub pause: Duration,
    /// How often to sweep by itself; `None` for on demand only.
    pub interval: Option<Duration>,
}

/// A key version with its live credentials and whether it is a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionStatus {
    /// The counts.
    pub count: KeyVersionCount,
    /// Whether it is the primary version of a key some workspace targets.
    pub is_target: bool,
}

/// The sweep status.
#[derive(Debug, Clone)]
pub struct SweepStatus {
    /// The latest run.
    pub last_run: Option<RewrapRun>,
    /// Live credentials per key version.
    pub versions: Vec<VersionStatus>,
    /// Live credentials not on their target.
    pub remaining: i64,
}

/// A workspace's master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceKey {
    /// The key id.
    pub key_id: String,
    /// Whether it is the workspace's own (not the default).
    pub dedicated: bool,
}

/// Runs sweeps and answers the admin API.
#[derive(Clone)]
pub struct KeyLifecycle {
    store: Store,
    kms: KmsClient,
    config: SweepConfig,
    /// Whether this process is sweeping now (the advisory lock covers other replicas).
    active: Arc<AtomicBool>,
    /// The data keys of the credentials this replica reads: a moved credential's entry goes.
    data_keys: Arc<DataKeyCache>,
    /// The seeds rows moved out of an older payload format are sealed again from.
    seeds: Arc<WriteSeeds>,
    /// The least time from a sweep's start to its last pass (see the module's doc).
    settle: Duration,
}

/// How long after a sweep starts writes may still land on the previous primary under `seeds`.
fn settle_time(seeds: &SeedConfig) -> Duration {
    if seeds.max_age.is_zero() {
        Duration::ZERO
    } else {
        seeds.keyring_check + Duration::from_secs(1)
    }
}

impl std::fmt::Debug for KeyLifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLifecycle")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What the security log's page tokens are bound to: not a workspace id (it cannot be one), so
/// a token of a workspace's audit listing is refused here and the other way round.
const SECURITY_LOG: &str = "(security log)";

/// The event of a sweep request: platform-wide, so for the security log (no workspace).
fn sweep_event(actor: &str, request_id: &str) -> NewAuditEvent {
    NewAuditEvent {
        workspace_id: String::new(),
        credential_id: None,
        actor: actor.to_owned(),
        action: AuditAction::StartRewrap,
        outcome: AuditOutcome::Succeeded,
        status_code: "OK".to_owned(),
        request_id: request_id.to_owned(),
    }
}

/// What binds a candidate's value: its row, type and value generation.
fn binding(candidate: &RewrapCandidate) -> RowBinding<'_> {
    RowBinding {
        workspace_id: &candidate.workspace_id,
        credential_id: candidate.id,
        type_id: &candidate.type_id,
        value_generation: candidate.value_generation,
    }
}

fn sum(counts: &[KeyVersionCount]) -> i64 {
    counts.iter().map(|c| c.credentials).sum()
}

impl KeyLifecycle {
    /// The key lifecycle over a store and the kms.
    pub fn new(store: Store, kms: KmsClient, config: SweepConfig) -> Self {
        Self {
            seeds: Arc::new(WriteSeeds::new(kms.clone(), SeedConfig::default())),
            settle: settle_time(&SeedConfig::default()),
            store,
            kms,
            config,
            active: Arc::new(AtomicBool::new(false)),
            data_keys: Arc::new(DataKeyCache::off()),
        }
    }

    /// The same lifecycle, dropping each credential it moves from `cache`.
    pub fn with_data_key_cache(mut self, cache: Arc<DataKeyCache>) -> Self {
        self.data_keys = cache;
        self
    }

    /// The same lifecycle for replicas whose writes use seeds as `config` says: rows it moves
    /// are sealed from seeds under `config`, and each sweep lasts past its keyring check.
    pub fn with_write_seeds(mut self, config: SeedConfig) -> Self {
        self.seeds = Arc::new(WriteSeeds::new(self.kms.clone(), config));
        self.settle = settle_time(&config);
        self
    }

    /// Where every enabled key's primary version is, as the kms says now.
    async fn targets(&self) -> Result<KeyTargets> {
        let keys = self.kms.describe_keys().await?;
        Ok(KeyTargets {
            default_key: keys.default_key_id,
            primaries: keys
                .keys
                .into_iter()
                .filter(|k| k.state != KeyState::Disabled)
                .map(|k| (k.key_id, k.primary_version))
                .collect(),
        })
    }

    /// Starts a sweep (or returns the unfinished one); a dry run only counts.
    pub async fn start(
        &self,
        caller: &Caller,
        dry_run: bool,
    ) -> Result<(RewrapRun, Vec<KeyVersionCount>)> {
        // Recorded before anything moves: no record, no sweep.
        self.store
            .record_security_event(&sweep_event(&caller.principal.subject, &caller.request_id))
            .await?;
        if dry_run {
            let targets = self.targets().await?;
            let would_move = self.store.count_rewrap_candidates(&targets, None).await?;
            let now = std::time::SystemTime::now();
            let run = RewrapRun {
                id: 0,
                state: RunState::Succeeded,
                dry_run: true,
                requested_by: caller.principal.subject.clone(),
                started_at: now,
                finished_at: Some(now),
                examined: sum(&would_move),
                rewrapped: 0,
                skipped: 0,
                failed: 0,
                message: format!("{} credentials would move", sum(&would_move)),
            };
            return Ok((run, would_move));
        }
        let run = self.begin(&caller.principal.subject).await?;
        Ok((run, Vec::new()))
    }

    /// Records a run (or finds the unfinished one) and makes sure someone is executing it.
    async fn begin(&self, requested_by: &str) -> Result<RewrapRun> {
        let run = match self.store.start_run(requested_by, false).await {
            Ok(run) => {
                tracing::info!(run_id = run.id, requested_by, "re-wrap sweep started");
                run
            }
            Err(StoreError::SweepRunning) => self
                .store
                .unfinished_run()
                .await?
                .ok_or_else(|| ServiceError::Internal("sweep both running and absent".into()))?,
            Err(e) => return Err(e.into()),
        };
        self.spawn_execute(run.id);
        Ok(run)
    }

    fn spawn_execute(&self, run_id: i64) {
        if self.active.swap(true, Ordering::SeqCst) {
            return;
        }
        let this = self.clone();
        let active = ActiveSweep(self.active.clone());
        tokio::spawn(async move {
            // Held for the task's life so that a panicking sweep clears the flag too.
            let _active = active;
            if let Err(e) = this.execute(run_id).await {
                tracing::warn!(run_id, error = %e, "re-wrap sweep interrupted; it resumes later");
            }
        });
    }

    /// Resumes an unfinished sweep (after a crash or on another replica's behalf), or, with a
    /// schedule, starts one when credentials are left behind.
    pub async fn tick(&self, scheduled: bool) -> Result<()> {
        if let Some(run) = self.store.unfinished_run().await? {
            self.spawn_execute(run.id);
            return Ok(());
        }
        if scheduled {
            let targets = self.targets().await?;
            if sum(&self.store.count_rewrap_candidates(&targets, None).await?) > 0 {
                self.store
                    .record_security_event(&sweep_event("scheduler", "rewrap-scheduler"))
                    .await?;
                self.begin("scheduler").await?;
            }
        }
        Ok(())
    }

    /// Runs forever: resumes unfinished sweeps at once, then sweeps on the schedule.
    pub fn spawn_scheduler(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut first = true;
            loop {
                let scheduled = !first && this.config.interval.is_some();
                if let Err(e) = this.tick(scheduled).await {
                    tracing::warn!(error = %e, "re-wrap scheduler could not check for work");
                }
                first = false;
                let wait = this.config.interval.unwrap_or(Duration::from_secs(60));
                tokio::time::sleep(wait).await;
            }
        })
    }

    async fn execute(&self, run_id: i64) -> Result<()> {
        // An early `?` below drops `lock`, which closes its session and so frees the lock.
        let Some(lock) = self.store.try_sweep_lock().await? else {
            tracing::info!(run_id, "another replica is sweeping");
            return Ok(());
        };
        // Re-read under the lock: the run may have been finished meanwhile.
        let still_open = self
            .store
            .unfinished_run()
            .await?
            .is_some_and(|r| r.id == run_id);
        let result = if still_open {
            self.sweep(run_id).await
        } else {
            Ok(())
        };
        lock.release().await?;
        result
    }

    async fn sweep(&self, run_id: i64) -> Result<()> {
        let targets = match self.targets().await {
            Ok(t) => t,
            Err(e) => {
                // Leave it unfinished: the scheduler resumes once the kms answers.
                return Err(e);
            }
        };
        let started = tokio::time::Instant::now();
        let mut settled = self.settle.is_zero();
        let mut after: Option<Uuid> = None;
        let mut total = RewrapProgress::default();
        loop {
            let batch = self
                .store
                .rewrap_candidates(&targets, None, after, self.config.batch_size)
                .await?;
            let Some(last) = batch.last() else {
                if settled {
                    break;
                }
                // Writes of replicas that have not yet seen the new primary may have landed
                // behind the cursor: once they all have, go over the rows again.
                tokio::time::sleep_until(started + self.settle).await;
                (settled, after) = (true, None);
                continue;
            };
            after = Some(last.id);
            let mut progress = RewrapProgress::default();
            for candidate in &batch {
                progress.examined += 1;
                let event = NewAuditEvent {
                    workspace_id: candidate.workspace_id.clone(),
                    credential_id: Some(candidate.id),
                    actor: "rewrap-sweep".into(),
                    action: AuditAction::Rewrap,
                    outcome: AuditOutcome::Succeeded,
                    status_code: "OK".into(),
                    request_id: format!("rewrap-{run_id}"),
                };
                let moved = match &candidate.sealed {
                    Some(sealed) => self.reseal(candidate, sealed, &event).await,
                    None => self.rewrap(candidate, &event).await,
                };
                // Moved or not, the entry of the wrapped key read is the one to drop: a moved
                // row's next read must go through the kms under its new wrapping.
                self.data_keys.forget(candidate.id);
                let swapped = match moved {
                    Ok(swapped) => swapped,
                    Err(e) if e.is_retryable() => {
                        self.store.add_run_progress(run_id, progress).await?;
                        return Err(e);
                    }
                    Err(e) => {
                        tracing::warn!(credential_id = %candidate.id, key_id = candidate.key_id, key_version = candidate.key_version, payload_format = candidate.payload_format, error = %e, "cannot re-wrap");
                        progress.failed += 1;
                        continue;
                    }
                };
                if swapped {
                    progress.rewrapped += 1;
                } else {
                    progress.skipped += 1;
                }
            }
            self.store.add_run_progress(run_id, progress).await?;
            total.examined += progress.examined;
            total.rewrapped += progress.rewrapped;
            total.skipped += progress.skipped;
            total.failed += progress.failed;
            tokio::time::sleep(self.config.pause).await;
        }
        let state = if total.failed == 0 {
            RunState::Succeeded
        } else {
            RunState::Failed
        };
        let message = format!(
            "moved {} (this pass), skipped {} changed by clients, failed {}",
            total.rewrapped, total.skipped, total.failed
        );
        let run = self.store.finish_run(run_id, state, &message).await?;
        tracing::info!(
            run_id,
            examined = run.examined,
            rewrapped = run.rewrapped,
            skipped = run.skipped,
            failed = run.failed,
            "re-wrap sweep finished"
        );
        Ok(())
    }

    /// Moves a current-format row's wrapped key (its seed) onto its target through the kms's
    /// rewrap, under the context it is wrapped with (the seed context); returns whether the
    /// swap landed.
    async fn rewrap(&self, candidate: &RewrapCandidate, event: &NewAuditEvent) -> Result<bool> {
        let context = payload::wrapping_context(&binding(candidate), candidate.payload_format)?;
        let moved = self
            .kms
            .rewrap_data_key(
                &candidate.wrapped_key,
                &context,
                Some(&candidate.target_key),
            )
            .await?;
        Ok(self
            .store
            .swap_wrapped_key(
                candidate.id,
                &candidate.wrapped_key,
                &moved.wrapped,
                &moved.key_id,
                moved.key_version,
                event,
            )
            .await?)
    }

    /// Moves an older-format row to the current format: unwraps and opens it under its old
    /// context, seals it again under a new data key (on the target key) for the current
    /// context, masks it again under the current rules, and swaps the envelope and preview in
    /// if the row still holds the wrapped key read.
    async fn reseal(
        &self,
        candidate: &RewrapCandidate,
        (ciphertext, nonce): &(Vec<u8>, Vec<u8>),
        event: &NewAuditEvent,
    ) -> Result<bool> {
        let row = binding(candidate);
        let old_context = payload::stored_context(&row, candidate.payload_format)?;
        let old = Envelope {
            ciphertext: ciphertext.clone(),
            nonce: nonce.clone(),
            wrapped_key: candidate.wrapped_key.clone(),
            master_key_id: candidate.key_id.clone(),
            master_key_version: candidate.key_version,
            payload_format: candidate.payload_format,
            value_generation: candidate.value_generation,
        };
        let key = self
            .kms
            .unwrap_data_key(&candidate.wrapped_key, &old_context)
            .await?;
        let json = payload::open(&key.plaintext, &old_context, &old)?;
        drop(key);
        let value = SecretValue::from_json(&json)?;
        drop(json);
        let new_row = RowBinding {
            value_generation: candidate.value_generation + 1,
            ..row
        };
        let new = seal_value(&self.seeds, &new_row, Some(&candidate.target_key), &value).await?;
        // Rows this old were masked under older rules (a token in a URL's user info shown
        // whole, a password's ends): the value is open here, so the preview is made again.
        let spec = credentials_core::catalogue::lookup(&candidate.type_id).ok_or_else(|| {
            ServiceError::Internal(format!("stored type {} unknown", candidate.type_id))
        })?;
        let masked = credentials_core::mask::preview(spec, &value);
        drop(value);
        Ok(self
            .store
            .swap_envelope(candidate.id, &candidate.wrapped_key, &new, &masked, event)
            .await?)
    }

    /// The latest run, the counts per key version, and what is left.
    pub async fn status(&self) -> Result<SweepStatus> {
        let targets = self.targets().await?;
        let counts = self.store.key_version_counts().await?;
        let remaining = sum(&self.store.count_rewrap_candidates(&targets, None).await?);
        let versions = counts
            .into_iter()
            .map(|count| {
                let is_target = targets
                    .primaries
                    .iter()
                    .any(|(k, v)| *k == count.key_id && *v == count.key_version);
                VersionStatus { count, is_target }
            })
            .collect();
        Ok(SweepStatus {
            last_run: self.store.latest_run().await?,
            versions,
            remaining,
        })
    }

    /// Assigns a workspace its own key (or, with `None`, the default back). Returns the key and
    /// how many of the workspace's credentials the next sweep will move.
    pub async fn set_workspace_key(
        &self,
        caller: &Caller,
        input: WorkspaceKeyInput,
    ) -> Result<(WorkspaceKey, i64)> {
        let workspace_id = caller.workspace_to_administer(&input.workspace_id)?;
        let (workspace_id, key_id) = (workspace_id.as_str(), input.key_id.as_deref());
        let keys = self.kms.describe_keys().await?;
        if let Some(key_id) = key_id {
            match keys.keys.iter().find(|k| k.key_id == key_id) {
                None => {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "key '{key_id}' is not in the kms keyring: add it with `kms keyring add-key` and reload the kms"
                    )));
                }
                Some(k) if k.state == KeyState::Disabled => {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "key '{key_id}' is disabled in the kms keyring"
                    )));
                }
                Some(_) => {}
            }
        }
        let event = |outcome, status_code: &str| NewAuditEvent {
            workspace_id: workspace_id.to_owned(),
            credential_id: None,
            actor: caller.principal.subject.clone(),
            action: AuditAction::SetWorkspaceKey,
            outcome,
            status_code: status_code.to_owned(),
            request_id: caller.request_id.clone(),
        };
        let assigned = self
            .store
            .set_workspace_key(
                workspace_id,
                key_id,
                input.allow_shared_key,
                &event(AuditOutcome::Succeeded, "OK"),
            )
            .await?;
        if assigned == KeyAssignment::SharedRefused {
            let refusal = ServiceError::FailedPrecondition(
                "allow_shared_key: the key is another workspace's own key; set allow_shared_key \
                 to share it"
                    .into(),
            );
            self.store
                .record_audit(&event(AuditOutcome::Failed, refusal.code().as_str()))
                .await?;
            return Err(refusal);
        }
        tracing::info!(
            workspace_id,
            key_id = key_id.unwrap_or(&keys.default_key_id),
            "workspace master key set"
        );
        let targets = self.targets().await?;
        let to_move = sum(&self
            .store
            .count_rewrap_candidates(&targets, Some(workspace_id))
            .await?);
        let key = WorkspaceKey {
            key_id: key_id.map_or(keys.default_key_id, str::to_owned),
            dedicated: key_id.is_some(),
        };
        Ok((key, to_move))
    }

    /// A workspace's master key.
    pub async fn workspace_key(&self, caller: &Caller, workspace_id: &str) -> Result<WorkspaceKey> {
        let workspace_id = caller.workspace_to_administer(workspace_id)?;
        Ok(match self.store.workspace_key(&workspace_id).await? {
            Some(key_id) => WorkspaceKey {
                key_id,
                dedicated: true,
            },
            None => WorkspaceKey {
                key_id: self.kms.describe_keys().await?.default_key_id,
                dedicated: false,
            },
        })
    }

    /// A page of the security log (the auth layer checked the platform-wide grant).
    pub async fn list_security_events(&self, input: SecurityListInput) -> Result<AuditPage> {
        let before = paging::audit_before(SECURITY_LOG, None, &input.page_token)?;
        let limit = i64::try_from(input.page_size + 1).unwrap_or(i64::MAX);
        let events = self.store.list_security_events(before, limit).await?;
        Ok(AuditPage::cut(events, input.page_size, |e| {
            paging::audit_token(SECURITY_LOG, None, e.id)
        }))
    }
}

/// Clears the replica's "sweep running" flag when the sweep task ends, however it ends.
struct ActiveSweep(Arc<AtomicBool>);

impl Drop for ActiveSweep {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_sweep_clears_the_active_flag() {
        let active = Arc::new(AtomicBool::new(true));
        let guard = ActiveSweep(active.clone());
        let task = tokio::spawn(async move {
            let _active = guard;
            panic!("sweep bug");
        });
        assert!(task.await.unwrap_err().is_panic());
        assert!(
            !active.load(Ordering::SeqCst),
            "the next sweep would never start"
        );
    }
}
