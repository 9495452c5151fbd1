//! Key lifecycle: which master key each workspace uses, which credentials are not yet on their
//! target master-key version or payload format, and the compare-and-swaps that move one.

use crate::{Result, Store, StoreError, audit};
use credentials_core::model::NewAuditEvent;
use deadpool_postgres::GenericClient;
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant, SystemTime},
};
use uuid::Uuid;

/// What became of a workspace-key assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAssignment {
    /// The workspace has the key now, and the change is audited.
    Assigned,
    /// The key is another workspace's own and sharing was not allowed: nothing changed.
    SharedRefused,
}

/// Lock key shared by every replica: whoever holds it sweeps.
const SWEEP_LOCK: i64 = 0x7661_756c_745f_7277;

/// Where each master key's primary version is, and which key is the default: what the kms
/// reports, passed to the candidate query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTargets {
    /// The kms's default key (for workspaces without a key of their own).
    pub default_key: String,
    /// (key id, primary version) of every enabled key.
    pub primaries: Vec<(String, u32)>,
}

/// A live credential whose data key is not on its target version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrapCandidate {
    /// The credential.
    pub id: Uuid,
    /// Its workspace (part of the encryption context).
    pub workspace_id: String,
    /// The wrapped data key now.
    pub wrapped_key: Vec<u8>,
    /// The master key it is wrapped under now.
    pub key_id: String,
    /// The version it is wrapped under now.
    pub key_version: u32,
    /// The master key it should be under.
    pub target_key: String,
    /// How its value is sealed (part of the encryption context the key is wrapped with).
    pub payload_format: i16,
    /// Its type id (in the context from format 3 on).
    pub type_id: String,
    /// Its value generation (in the context from format 3 on).
    pub value_generation: i64,
    /// The sealed value and its nonce, only for a row in an older payload format: moving it
    /// to the current format means opening and sealing it again.
    pub sealed: Option<(Vec<u8>, Vec<u8>)>,
}

/// Live credentials per master key and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVersionCount {
    /// The master key.
    pub key_id: String,
    /// The version.
    pub key_version: u32,
    /// Live credentials it wraps.
    pub credentials: i64,
}

/// Where a re-wrap sweep stands, as stored in `rewrap_runs.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Still going (or interrupted by a crash: the next sweep resumes it).
    Running,
    /// Finished with nothing left behind.
    Succeeded,
    /// Stopped early or left credentials behind.
    Failed,
}

impl RunState {
    /// The stored code.
    pub fn code(self) -> i16 {
        match self {
            RunState::Running => 1,
            RunState::Succeeded => 2,
            RunState::Failed => 3,
        }
    }

    /// The state of a stored code; `None` for a code this build does not know.
    pub fn from_code(code: i16) -> Option<Self> {
        [RunState::Running, RunState::Succeeded, RunState::Failed]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// A sweep's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrapRun {
    /// Run id.
    pub id: i64,
    /// Where it stands.
    pub state: RunState,
    /// Whether it only counted.
    pub dry_run: bool,
    /// Who started it.
    pub requested_by: String,
    /// When it started.
    pub started_at: SystemTime,
    /// When it finished.
    pub finished_at: Option<SystemTime>,
    /// Credentials looked at.
    pub examined: i64,
    /// Credentials moved.
    pub rewrapped: i64,
    /// Credentials changed by clients meanwhile.
    pub skipped: i64,
    /// Credentials that could not be moved.
    pub failed: i64,
    /// Summary or failure reason.
    pub message: String,
}

/// Progress counters of a sweep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewrapProgress {
    /// Looked at.
    pub examined: i64,
    /// Moved.
    pub rewrapped: i64,
    /// Changed by clients meanwhile.
    pub skipped: i64,
    /// Could not be moved.
    pub failed: i64,
}

/// A session holding the sweep lock. [`SweepLock::release`] unlocks and returns the connection
/// to the pool; on every other path (an early `?`, a panic, a failed unlock) dropping it takes the
/// connection out of the pool and closes it, so the session, and with it the lock, ends instead of
/// lingering in the pool where every replica would believe another one is sweeping.
pub struct SweepLock {
    conn: Option<deadpool_postgres::Object>,
}

impl SweepLock {
    /// Releases the lock.
    pub async fn release(mut self) -> Result<()> {
        let Some(conn) = self.conn.take() else {
            return Ok(());
        };
        match conn
            .execute("SELECT pg_advisory_unlock($1)", &[&SWEEP_LOCK])
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                // Unknown whether the unlock ran: close the session rather than pool it.
                drop(deadpool_postgres::Object::take(conn));
                Err(e.into())
            }
        }
    }
}

impl Drop for SweepLock {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Dropping the detached client ends its connection task, which closes the session.
            drop(deadpool_postgres::Object::take(conn));
        }
    }
}

const RUN_COLUMNS: &str = "id, state, dry_run, requested_by, started_at, finished_at, examined, \
    rewrapped, skipped, failed, message";

fn run(row: &tokio_postgres::Row) -> Result<RewrapRun> {
    Ok(RewrapRun {
        id: row.try_get(0)?,
        state: RunState::from_code(row.try_get(1)?)
            .ok_or(StoreError::Corrupt("unknown re-wrap run state"))?,
        dry_run: row.try_get(2)?,
        requested_by: row.try_get(3)?,
        started_at: row.try_get(4)?,
        finished_at: row.try_get(5)?,
        examined: row.try_get(6)?,
        rewrapped: row.try_get(7)?,
        skipped: row.try_get(8)?,
        failed: row.try_get(9)?,
        message: row.try_get(10)?,
    })
}

/// A (key id, key version, count) row.
fn key_version_count(row: &tokio_postgres::Row) -> Result<KeyVersionCount> {
    Ok(KeyVersionCount {
        key_id: row.try_get(0)?,
        key_version: u32::try_from(row.try_get::<_, i32>(1)?)
            .map_err(|_| StoreError::Corrupt("master_key_version"))?,
        credentials: row.try_get(2)?,
    })
}

/// Live credentials (`c`) that are not on the primary version of their target key (`t`): the
/// workspace's own key, else the default key `$3`; `$1`/`$2` are the keys' primary versions and
/// `$4` optionally one workspace. A row still in a payload format older than the current one
/// is off target too: the sweep moves it to the current format.
const OFF_TARGET: &str = "FROM credentials c \
    LEFT JOIN workspace_keys w ON w.workspace_id = c.workspace_id \
    JOIN unnest($1::text[], $2::int[]) AS t(key_id, primary_version) \
      ON t.key_id = COALESCE(w.key_id, $3) \
    WHERE c.deleted_at IS NULL AND ($4::text IS NULL OR c.workspace_id = $4) \
      AND (c.master_key_id <> t.key_id OR c.master_key_version <> t.primary_version \
           OR c.payload_format < $5)";

/// The format every row should be in, as the `$5` of [`OFF_TARGET`].
const CURRENT_FORMAT: i16 = credentials_core::payload::PAYLOAD_FORMAT;

fn targets_params(targets: &KeyTargets) -> (Vec<String>, Vec<i32>) {
    targets
        .primaries
        .iter()
        .map(|(k, v)| (k.clone(), i32::try_from(*v).unwrap_or(i32::MAX)))
        .unzip()
}

/// How long a workspace's key assignment is remembered. Every create and value update asks,
/// so a cache saves a query on the write path; a change made on another replica is seen within
/// this time, and data keys wrapped meanwhile under the previous key are moved by the next
/// sweep.
const WORKSPACE_KEY_TTL: Duration = Duration::from_secs(5);
/// Entries kept before the cache is emptied (bounds memory with many workspaces).
const WORKSPACE_KEY_CACHE_MAX: usize = 10_000;

/// Recently read workspace key assignments.
#[derive(Debug, Default)]
pub(crate) struct WorkspaceKeyCache(Mutex<HashMap<String, (Option<String>, Instant)>>);

impl WorkspaceKeyCache {
    fn get(&self, workspace_id: &str) -> Option<Option<String>> {
        let entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(workspace_id)
            .filter(|(_, at)| at.elapsed() < WORKSPACE_KEY_TTL)
            .map(|(key, _)| key.clone())
    }

    fn put(&self, workspace_id: &str, key: Option<String>) {
        let mut entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= WORKSPACE_KEY_CACHE_MAX {
            entries.clear();
        }
        entries.insert(workspace_id.to_owned(), (key, Instant::now()));
    }

    fn forget(&self, workspace_id: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(workspace_id);
    }
}

impl Store {
    /// The workspace's own master key, if it has one (remembered for a few seconds).
    pub async fn workspace_key(&self, workspace_id: &str) -> Result<Option<String>> {
        if let Some(key) = self.workspace_keys.get(workspace_id) {
            return Ok(key);
        }
        let conn = self.pool.get().await?;
        let statement = conn
            .prepare_cached("SELECT key_id FROM workspace_keys WHERE workspace_id = $1")
            .await?;
        let row = conn.query_opt(&statement, &[&workspace_id]).await?;
        let key: Option<String> = row.map(|r| r.try_get(0)).transpose()?;
        self.workspace_keys.put(workspace_id, key.clone());
        Ok(key)
    }

    /// Sets (or with `None` removes) a workspace's own master key, with its audit event, in one
    /// transaction. A key another workspace has as its own is assigned only with
    /// `allow_shared`; otherwise nothing changes and [`KeyAssignment::SharedRefused`] says why.
    /// Assignments are serialized (a table lock: they are rare), so two workspaces cannot both
    /// pass the check for the same key at once.
    pub async fn set_workspace_key(
        &self,
        workspace_id: &str,
        key_id: Option<&str>,
        allow_shared: bool,
        audit_event: &NewAuditEvent,
    ) -> Result<KeyAssignment> {
        self.workspace_keys.forget(workspace_id);
        let mut conn = self.conn().await?;
        conn.mark_dirty();
        let marks = conn.marks();
        let tx = conn.transaction().await?;
        tx.batch_execute("LOCK TABLE workspace_keys IN SHARE ROW EXCLUSIVE MODE")
            .await?;
        match key_id {
            Some(key_id) => {
                if !allow_shared {
                    let shared = tx
                        .query_opt(
                            "SELECT 1 FROM workspace_keys WHERE key_id = $1 AND workspace_id <> $2 LIMIT 1",
                            &[&key_id, &workspace_id],
                        )
                        .await?
                        .is_some();
                    if shared {
                        return Ok(KeyAssignment::SharedRefused);
                    }
                }
                tx.execute(
                    "INSERT INTO workspace_keys (workspace_id, key_id, updated_by) VALUES ($1, $2, $3) \
                     ON CONFLICT (workspace_id) DO UPDATE SET key_id = $2, updated_by = $3, updated_at = now()",
                    &[&workspace_id, &key_id, &audit_event.actor],
                )
                .await?;
            }
            None => {
                tx.execute(
                    "DELETE FROM workspace_keys WHERE workspace_id = $1",
                    &[&workspace_id],
                )
                .await?;
            }
        }
        audit::insert(&tx, audit_event).await?;
        marks.mark_committing();
        tx.commit().await?;
        conn.mark_clean();
        self.workspace_keys.forget(workspace_id);
        Ok(KeyAssignment::Assigned)
    }

    /// Live credentials per master key and version.
    pub async fn key_version_counts(&self) -> Result<Vec<KeyVersionCount>> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query(
                "SELECT master_key_id, master_key_version, count(*) FROM credentials \
                 WHERE deleted_at IS NULL GROUP BY 1, 2 ORDER BY 1, 2",
                &[],
            )
            .await?;
        rows.iter().map(key_version_count).collect()
    }

    /// The distinct (master key, version) pairs live credentials are wrapped under. A skip scan
    /// of the partial index on (master_key_id, master_key_version): one index probe per pair,
    /// whatever the number of rows, so health may ask every few seconds.
    pub async fn key_versions_in_use(&self) -> Result<Vec<(String, u32)>> {
        let conn = self.pool.get().await?;
        let statement = conn
            .prepare_cached(
                "WITH RECURSIVE v(key_id, key_version) AS ( \
                   (SELECT master_key_id, master_key_version FROM credentials \
                    WHERE deleted_at IS NULL \
                    ORDER BY master_key_id, master_key_version LIMIT 1) \
                   UNION ALL \
                   SELECT n.master_key_id, n.master_key_version FROM v, LATERAL ( \
                     SELECT master_key_id, master_key_version FROM credentials \
                     WHERE deleted_at IS NULL \
                       AND (master_key_id, master_key_version) > (v.key_id, v.key_version) \
                     ORDER BY master_key_id, master_key_version LIMIT 1) n \
                 ) SELECT key_id, key_version FROM v",
            )
            .await?;
        conn.query(&statement, &[])
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    u32::try_from(r.try_get::<_, i32>(1)?)
                        .map_err(|_| StoreError::Corrupt("master_key_version"))?,
                ))
            })
            .collect()
    }

    /// Live credentials not on the primary version of their target key, in id order after
    /// `after`. A workspace whose own key is not among `targets` is left alone (the kms does
    /// not know it, so there is nowhere to move to).
    pub async fn rewrap_candidates(
        &self,
        targets: &KeyTargets,
        workspace_id: Option<&str>,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<RewrapCandidate>> {
        let conn = self.pool.get().await?;
        let (keys, versions) = targets_params(targets);
        let statement = conn
            .prepare_cached(&format!(
                "SELECT c.id, c.workspace_id, c.wrapped_key, c.master_key_id, \
                 c.master_key_version, t.key_id, c.payload_format, c.type_id, \
                 c.value_generation, \
                 CASE WHEN c.payload_format < $5 THEN c.ciphertext END, \
                 CASE WHEN c.payload_format < $5 THEN c.nonce END {OFF_TARGET} \
                 AND ($6::uuid IS NULL OR c.id > $6) ORDER BY c.id LIMIT $7"
            ))
            .await?;
        let rows = conn
            .query(
                &statement,
                &[
                    &keys,
                    &versions,
                    &targets.default_key,
                    &workspace_id,
                    &CURRENT_FORMAT,
                    &after,
                    &limit,
                ],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RewrapCandidate {
                    id: r.try_get(0)?,
                    workspace_id: r.try_get(1)?,
                    wrapped_key: r.try_get(2)?,
                    key_id: r.try_get(3)?,
                    key_version: u32::try_from(r.try_get::<_, i32>(4)?)
                        .map_err(|_| StoreError::Corrupt("master_key_version"))?,
                    target_key: r.try_get(5)?,
                    payload_format: r.try_get(6)?,
                    type_id: r.try_get(7)?,
                    value_generation: r.try_get(8)?,
                    sealed: match (r.try_get(9)?, r.try_get(10)?) {
                        (Some(ciphertext), Some(nonce)) => Some((ciphertext, nonce)),
                        _ => None,
                    },
                })
            })
            .collect()
    }

    /// How many live credentials are not on their target, per current key and version.
    pub async fn count_rewrap_candidates(
        &self,
        targets: &KeyTargets,
        workspace_id: Option<&str>,
    ) -> Result<Vec<KeyVersionCount>> {
        let conn = self.pool.get().await?;
        let (keys, versions) = targets_params(targets);
        let rows = conn
            .query(
                &format!(
                    "SELECT c.master_key_id, c.master_key_version, count(*) {OFF_TARGET} \
                     GROUP BY 1, 2 ORDER BY 1, 2"
                ),
                &[
                    &keys,
                    &versions,
                    &targets.default_key,
                    &workspace_id,
                    &CURRENT_FORMAT,
                ],
            )
            .await?;
        rows.iter().map(key_version_count).collect()
    }

    /// Replaces a credential's wrapped data key if it is still `old` (compare-and-swap): a
    /// client's update or delete in the meantime wins, and the sweep skips the row. The
    /// revision and etag do not change: the value is the same. Returns whether it swapped.
    pub async fn swap_wrapped_key(
        &self,
        id: Uuid,
        old: &[u8],
        new: &[u8],
        key_id: &str,
        key_version: u32,
        audit_event: &NewAuditEvent,
    ) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        let tx = conn.transaction().await?;
        let version =
            i32::try_from(key_version).map_err(|_| StoreError::Corrupt("master_key_version"))?;
        let statement = tx
            .prepare_cached(
                "UPDATE credentials SET wrapped_key = $3, master_key_id = $4, master_key_version = $5 \
                 WHERE id = $1 AND wrapped_key = $2 AND deleted_at IS NULL",
            )
            .await?;
        let swapped = tx
            .execute(&statement, &[&id, &old, &new, &key_id, &version])
            .await?
            == 1;
        if swapped {
            audit::insert(&tx, audit_event).await?;
        }
        tx.commit().await?;
        Ok(swapped)
    }

    /// Replaces a credential's whole envelope, resealed in the current payload format with a
    /// new data key, and its masked preview (computed again from the opened value, so a preview
    /// written under older masking rules is replaced), if the row still holds the wrapped key
    /// `old` (compare-and-swap, as [`Store::swap_wrapped_key`]): a client's write meanwhile
    /// wins. The revision and etag do not change: the value is the same. Returns whether it
    /// swapped.
    pub async fn swap_envelope(
        &self,
        id: Uuid,
        old: &[u8],
        new: &credentials_core::payload::Envelope,
        masked_content: &str,
        audit_event: &NewAuditEvent,
    ) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        let tx = conn.transaction().await?;
        let version = i32::try_from(new.master_key_version)
            .map_err(|_| StoreError::Corrupt("master_key_version"))?;
        let statement = tx
            .prepare_cached(
                "UPDATE credentials SET ciphertext = $3, nonce = $4, wrapped_key = $5, \
                 master_key_id = $6, master_key_version = $7, payload_format = $8, \
                 value_generation = $9, masked_content = $10 \
                 WHERE id = $1 AND wrapped_key = $2 AND deleted_at IS NULL",
            )
            .await?;
        let swapped = tx
            .execute(
                &statement,
                &[
                    &id,
                    &old,
                    &new.ciphertext,
                    &new.nonce,
                    &new.wrapped_key,
                    &new.master_key_id,
                    &version,
                    &new.payload_format,
                    &new.value_generation,
                    &masked_content,
                ],
            )
            .await?
            == 1;
        if swapped {
            audit::insert(&tx, audit_event).await?;
        }
        tx.commit().await?;
        Ok(swapped)
    }

    /// Takes the sweep lock if no other replica holds it.
    pub async fn try_sweep_lock(&self) -> Result<Option<SweepLock>> {
        let conn = self.pool.get().await?;
        let locked: bool = conn
            .query_one("SELECT pg_try_advisory_lock($1)", &[&SWEEP_LOCK])
            .await?
            .try_get(0)?;
        Ok(locked.then_some(SweepLock { conn: Some(conn) }))
    }

    /// Records a new sweep as running; [`StoreError::SweepRunning`] when one is unfinished
    /// already (a unique index allows one).
    pub async fn start_run(&self, requested_by: &str, dry_run: bool) -> Result<RewrapRun> {
        let conn = self.conn().await?;
        // Commits by itself: once sent, its outcome is unknown until it answers.
        conn.mark_autocommit();
        let row = conn
            .query_one(
                &format!(
                    "INSERT INTO rewrap_runs (state, dry_run, requested_by) VALUES (1, $1, $2) \
                     RETURNING {RUN_COLUMNS}"
                ),
                &[&dry_run, &requested_by],
            )
            .await;
        conn.mark_clean();
        run(&row?)
    }

    /// The unfinished sweep, if any.
    pub async fn unfinished_run(&self) -> Result<Option<RewrapRun>> {
        let conn = self.pool.get().await?;
        let row = conn
            .query_opt(
                &format!("SELECT {RUN_COLUMNS} FROM rewrap_runs WHERE finished_at IS NULL"),
                &[],
            )
            .await?;
        row.as_ref().map(run).transpose()
    }

    /// The latest sweep, if any.
    pub async fn latest_run(&self) -> Result<Option<RewrapRun>> {
        let conn = self.pool.get().await?;
        let row = conn
            .query_opt(
                &format!("SELECT {RUN_COLUMNS} FROM rewrap_runs ORDER BY id DESC LIMIT 1"),
                &[],
            )
            .await?;
        row.as_ref().map(run).transpose()
    }

    /// Adds progress to a running sweep.
    pub async fn add_run_progress(&self, id: i64, progress: RewrapProgress) -> Result<()> {
        let conn = self.pool.get().await?;
        conn.execute(
            "UPDATE rewrap_runs SET examined = examined + $2, rewrapped = rewrapped + $3, \
             skipped = skipped + $4, failed = failed + $5 WHERE id = $1",
            &[
                &id,
                &progress.examined,
                &progress.rewrapped,
                &progress.skipped,
                &progress.failed,
            ],
        )
        .await?;
        Ok(())
    }

    /// Marks a sweep finished with its final state and message.
    pub async fn finish_run(&self, id: i64, state: RunState, message: &str) -> Result<RewrapRun> {
        let conn = self.pool.get().await?;
        let row = conn
            .query_one(
                &format!(
                    "UPDATE rewrap_runs SET state = $2, message = $3, finished_at = now() \
                     WHERE id = $1 RETURNING {RUN_COLUMNS}"
                ),
                &[&id, &state.code(), &message],
            )
            .await?;
        run(&row)
    }
}
