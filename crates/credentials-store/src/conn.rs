//! Connections whose writes have a certain outcome when the request holding them is abandoned.
//!
//! A request past its deadline (or whose client went away) is dropped where it stands, in the
//! middle of a statement against a Postgres that may be hung. What was sent still runs when
//! Postgres answers again, so the rule is: **a write commits only through an explicit COMMIT
//! that was sent**. Writes run as `BEGIN` (pipelined with the first statement: no extra round
//! trip) … `COMMIT`; until the COMMIT is sent, an abandoned write cannot commit, and the
//! caller may be told so with certainty. Once it is sent, the outcome is unknown until
//! Postgres answers: the request's [`RequestScope`] records that, so the edge answers
//! "outcome unknown" instead of a failure that might be false.
//!
//! A [`Conn`] dropped in the middle of a write never goes back to the pool, where the next
//! request would inherit its open transaction or queue behind its hung statement: it is
//! detached, and (when no COMMIT was sent) its statement is cancelled, best effort, so
//! Postgres stops working on it. Postgres rolls the transaction back when the connection
//! ends (tokio-postgres sends Terminate once the answers it waits for are in).

use crate::{Result, StoreError};
use deadpool_postgres::Object;
use std::{
    ops::Deref,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

/// How long a best-effort cancel request may take (it dials Postgres anew).
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

tokio::task_local! {
    static SCOPE: RequestScope;
}

/// What the store did for one request, for the layer that bounds the request's time: whether
/// a COMMIT (or a write that commits by itself) was sent. Cheap to clone; clones share.
#[derive(Debug, Clone, Default)]
pub struct RequestScope {
    commit_sent: Arc<AtomicBool>,
}

impl RequestScope {
    /// A fresh scope: nothing sent yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `work` in this scope: the store's writes inside it report to it.
    pub async fn run<F: Future>(self, work: F) -> F::Output {
        SCOPE.scope(self, work).await
    }

    /// Whether a write that may commit was sent in this scope: if the request is abandoned
    /// now, its outcome is unknown.
    pub fn commit_sent(&self) -> bool {
        self.commit_sent.load(Ordering::SeqCst)
    }

    /// The scope of the running request, if it has one.
    pub(crate) fn current() -> Option<Self> {
        SCOPE.try_with(Clone::clone).ok()
    }

    /// Records that a write that may commit is being sent.
    pub(crate) fn mark_commit_sent() {
        let _ = SCOPE.try_with(|s| s.commit_sent.store(true, Ordering::SeqCst));
    }

    pub(crate) fn set_commit_sent(&self) {
        self.commit_sent.store(true, Ordering::SeqCst);
    }
}

/// How to reach Postgres for a cancel request: the pool's own TLS setting.
#[derive(Clone)]
pub(crate) enum CancelTls {
    /// Plaintext.
    Plain,
    /// TLS as the pool's connections use it.
    Rustls(tokio_postgres_rustls::MakeRustlsConnect),
}

/// Where a write on a [`Conn`] stands; shared, so that code holding a tokio-postgres
/// `Transaction` (which borrows the connection) can still mark its COMMIT.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    /// A write is open: BEGIN sent and neither COMMIT nor ROLLBACK answered.
    dirty: AtomicBool,
    /// The COMMIT was sent: cancelling now could only blur the outcome.
    committing: AtomicBool,
}

impl Marks {
    /// Marks that a COMMIT is about to be sent; [`Conn::mark_clean`] after it answered.
    pub(crate) fn mark_committing(&self) {
        self.committing.store(true, Ordering::SeqCst);
        RequestScope::mark_commit_sent();
    }
}

/// A pooled connection that is discarded, not returned, when dropped in the middle of a
/// write (see the module doc).
pub(crate) struct Conn {
    object: Option<Object>,
    marks: Arc<Marks>,
    cancel: CancelTls,
}

impl Conn {
    pub(crate) fn new(object: Object, cancel: CancelTls) -> Self {
        Self {
            object: Some(object),
            marks: Arc::default(),
            cancel,
        }
    }

    fn object(&self) -> &Object {
        // Only `Drop` takes it.
        self.object.as_ref().expect("a live connection")
    }

    /// The marks, to keep while a `Transaction` borrows the connection.
    pub(crate) fn marks(&self) -> Arc<Marks> {
        self.marks.clone()
    }

    /// Marks a write open: from now on a drop discards the connection.
    pub(crate) fn mark_dirty(&self) {
        self.marks.dirty.store(true, Ordering::SeqCst);
    }

    /// Marks the write finished (committed or rolled back, answered): the connection may go
    /// back to the pool.
    pub(crate) fn mark_clean(&self) {
        self.marks.dirty.store(false, Ordering::SeqCst);
        self.marks.committing.store(false, Ordering::SeqCst);
    }

    /// Marks a write that commits by itself (one statement outside a transaction) as sent:
    /// its outcome is unknown until it answers, then [`Conn::mark_clean`].
    pub(crate) fn mark_autocommit(&self) {
        self.mark_dirty();
        self.marks.mark_committing();
    }

    /// Sends `BEGIN` pipelined with `work` (whose first statement follows it on the wire),
    /// and returns what `work` gave. On any failure the transaction is rolled back.
    pub(crate) async fn begin_with<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        self.mark_dirty();
        let (begun, done) = tokio::join!(self.object().batch_execute("BEGIN"), work);
        let outcome = begun.map_err(StoreError::from).and(done);
        if outcome.is_err() {
            self.rollback().await;
        }
        outcome
    }

    /// Commits the open write.
    pub(crate) async fn commit(&self) -> Result<()> {
        self.marks.mark_committing();
        self.object().batch_execute("COMMIT").await?;
        self.mark_clean();
        Ok(())
    }

    /// Rolls the open write back; if that fails the connection stays marked and is
    /// discarded when dropped.
    pub(crate) async fn rollback(&self) {
        if self.object().batch_execute("ROLLBACK").await.is_ok() {
            self.mark_clean();
        }
    }
}

impl Deref for Conn {
    type Target = Object;

    fn deref(&self) -> &Object {
        self.object()
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Object {
        self.object.as_mut().expect("a live connection")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.marks.dirty.load(Ordering::SeqCst) {
            return;
        }
        let Some(object) = self.object.take() else {
            return;
        };
        // Out of the pool: nobody else may use a connection with an open write.
        let client = Object::take(object);
        if self.marks.committing.load(Ordering::SeqCst) {
            tracing::warn!("a request was abandoned with its COMMIT sent; connection discarded");
            return;
        }
        tracing::info!(
            "a request was abandoned in the middle of a write; connection discarded, statement cancelled"
        );
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let token = client.cancel_token();
        let tls = self.cancel.clone();
        runtime.spawn(async move {
            let cancelled = match tls {
                CancelTls::Plain => {
                    tokio::time::timeout(CANCEL_TIMEOUT, token.cancel_query(tokio_postgres::NoTls))
                        .await
                }
                CancelTls::Rustls(tls) => {
                    tokio::time::timeout(CANCEL_TIMEOUT, token.cancel_query(tls)).await
                }
            };
            if !matches!(cancelled, Ok(Ok(()))) {
                tracing::debug!("cancel request not delivered");
            }
            drop(client);
        });
    }
}
