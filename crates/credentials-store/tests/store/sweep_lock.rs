//! The re-wrap sweep lock is never left behind in the pool, whichever way its holder gives up.

use crate::common::{migrated_db, store_with};
use credentials_store::Store;

/// Whether `store` can take the sweep lock within a bounded number of attempts: closing a session
/// is asynchronous on the server, so the freed lock may appear a moment after the holder is gone.
async fn eventually_locks(store: &Store) -> bool {
    for _ in 0..200 {
        if let Some(lock) = store.try_sweep_lock().await.unwrap() {
            lock.release().await.unwrap();
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test]
async fn a_lock_dropped_on_an_early_error_frees_the_lock_for_other_replicas() {
    let db = migrated_db().await;
    let replica = store_with(&db, 1);
    let other = store_with(&db, 1);

    let lock = replica
        .try_sweep_lock()
        .await
        .unwrap()
        .expect("lock is free");
    assert!(
        other.try_sweep_lock().await.unwrap().is_none(),
        "held by the first replica"
    );
    // What an early `?` between taking and releasing the lock does.
    drop(lock);

    assert!(
        eventually_locks(&other).await,
        "the lock stayed with a pooled session of the first replica"
    );
    // The first replica's pool is still usable after its session was closed.
    assert!(eventually_locks(&replica).await);
}

#[tokio::test]
async fn a_released_lock_is_free_at_once_and_its_session_reused() {
    let db = migrated_db().await;
    let replica = store_with(&db, 1);
    let other = store_with(&db, 1);

    let lock = replica
        .try_sweep_lock()
        .await
        .unwrap()
        .expect("lock is free");
    lock.release().await.unwrap();
    let taken = other.try_sweep_lock().await.unwrap().expect("released");
    assert!(replica.try_sweep_lock().await.unwrap().is_none());
    taken.release().await.unwrap();
}
