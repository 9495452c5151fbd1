//! The audit log's rules: one caller's bad event never fails another caller's, the text
//! columns' CHECKs, and the security log.

use crate::common::*;
use credentials_core::model::{AuditAction, AuditOutcome, NewAuditEvent};

fn access_event(workspace_id: &str, request_id: &str) -> NewAuditEvent {
    NewAuditEvent {
        workspace_id: workspace_id.to_owned(),
        credential_id: None,
        actor: "svc-a".to_owned(),
        action: AuditAction::Access,
        outcome: AuditOutcome::Failed,
        status_code: "NOT_FOUND".to_owned(),
        request_id: request_id.to_owned(),
    }
}

#[tokio::test]
async fn one_bad_event_in_a_batch_fails_only_its_own_caller() {
    let db = migrated_db().await;
    let store = store_on(&db);
    // Spawned together, they reach the writer together and form one batch: on this
    // single-threaded runtime the writer, woken by the first event, runs after the callers
    // spawned before it have all queued theirs.
    let mut events: Vec<NewAuditEvent> = (0..12)
        .map(|i| access_event(if i % 2 == 0 { WS } else { OTHER_WS }, &format!("good-{i}")))
        .collect();
    // A NUL byte: Postgres text cannot hold it (SQLSTATE 22021), so the batch's INSERT fails.
    events.insert(5, access_event("ws\0evil", "bad-nul"));
    // A well-formed string the audit table's CHECK refuses (SQLSTATE 23514).
    events.insert(9, access_event("ws with spaces", "bad-check"));
    let callers: Vec<_> = events
        .iter()
        .map(|event| {
            let (store, event) = (store.clone(), event.clone());
            tokio::spawn(async move { store.record_audit(&event).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for caller in callers {
        outcomes.push(caller.await.unwrap());
    }
    for (event, outcome) in events.iter().zip(&outcomes) {
        if event.request_id.starts_with("bad") {
            assert!(outcome.is_err(), "{} was written", event.request_id);
        } else {
            assert!(outcome.is_ok(), "{}: {:?}", event.request_id, outcome);
        }
    }
    let client = db.client().await;
    let written: i64 = client
        .query_one(
            "SELECT count(*) FROM audit_events WHERE request_id LIKE 'good-%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(written, 12);
    let bad: i64 = client
        .query_one(
            "SELECT count(*) FROM audit_events WHERE request_id LIKE 'bad-%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(bad, 0);
}

#[tokio::test]
async fn the_audit_tables_refuse_malformed_text() {
    let db = migrated_db().await;
    let client = db.client().await;
    let insert = |table: &str, ws: &str, actor: &str, code: &str, request: &str| {
        format!(
            "INSERT INTO {table} (workspace_id, actor, action, outcome, status_code, request_id) \
             VALUES ('{ws}', '{actor}', 5, 2, '{code}', '{request}')"
        )
    };
    let long_actor = "a".repeat(257);
    let long_ws = "w".repeat(65);
    for table in ["audit_events", "security_events"] {
        client
            .batch_execute(&insert(table, "ws-a", "svc", "NOT_FOUND", "r-1"))
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        for (ws, actor, code, request) in [
            ("", "svc", "OK", "r"),
            (long_ws.as_str(), "svc", "OK", "r"),
            ("ws a", "svc", "OK", "r"),
            ("ws", "", "OK", "r"),
            ("ws", long_actor.as_str(), "OK", "r"),
            ("ws", "svc' || chr(10) || 'x", "OK", "r"),
            ("ws", "svc", "", "r"),
            ("ws", "svc", "ok; drop", "r"),
            ("ws", "svc", "OK", ""),
            ("ws", "svc", "OK", "r 1"),
        ] {
            let err = client
                .batch_execute(&insert(table, ws, actor, code, request))
                .await
                .expect_err(&format!(
                    "{table} accepted {ws:?} {actor:?} {code:?} {request:?}"
                ));
            assert_eq!(
                err.code(),
                Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION),
                "{err}"
            );
        }
    }
    // Append-only, like the audit log.
    let err = client
        .batch_execute("DELETE FROM security_events")
        .await
        .unwrap_err();
    let message = err.as_db_error().map(|e| e.message().to_owned());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("append-only")),
        "{err:?}"
    );
}

/// The shapes at their edges, bound as parameters so that any byte can be tried: the rules
/// written without bounded repetition (V7) accept and refuse exactly what the regular
/// expressions of V3 did.
#[tokio::test]
async fn the_audit_text_rules_hold_at_their_edges() {
    let db = migrated_db().await;
    let client = db.client().await;
    let max_id = "w".repeat(64);
    let long_id = "w".repeat(65);
    let max_code = "A".repeat(32);
    let long_code = "A".repeat(33);
    let accepted: [(&str, &str, &str); 5] = [
        (max_id.as_str(), "OK", "r"),
        ("a", "OK", max_id.as_str()),
        ("A-z_0.9", "NOT_FOUND", "A-z_0.9"),
        ("ws", max_code.as_str(), "r"),
        ("ws", "OK", "r"),
    ];
    let refused: [(&str, &str, &str); 14] = [
        (long_id.as_str(), "OK", "r"),
        ("ws", "OK", long_id.as_str()),
        ("ws", long_code.as_str(), "r"),
        ("ws", "O", "r"),
        ("ws", "ok", "r"),
        ("ws", "OK1", "r"),
        ("ws\n", "OK", "r"),
        ("ws", "OK\n", "r"),
        ("ws", "OK", "r\n"),
        ("wś", "OK", "r"),
        ("ws", "OK", "r€"),
        ("ws/", "OK", "r"),
        ("ws", "OK", "r:1"),
        ("ws", "OK", ""),
    ];
    for table in ["audit_events", "security_events"] {
        let sql = format!(
            "INSERT INTO {table} (workspace_id, actor, action, outcome, status_code, request_id) \
             VALUES ($1, 'svc', 5, 2, $2, $3)"
        );
        for (ws, code, request) in accepted {
            client
                .execute(&sql, &[&ws, &code, &request])
                .await
                .unwrap_or_else(|e| panic!("{table} refused {ws:?} {code:?} {request:?}: {e}"));
        }
        for (ws, code, request) in refused {
            let err = client
                .execute(&sql, &[&ws, &code, &request])
                .await
                .expect_err(&format!("{table} accepted {ws:?} {code:?} {request:?}"));
            assert_eq!(
                err.code(),
                Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION),
                "{err}"
            );
        }
    }
}

#[tokio::test]
async fn security_events_are_kept_apart_from_every_workspace_log() {
    let db = migrated_db().await;
    let store = store_on(&db);
    store
        .record_security_event(&access_event(OTHER_WS, "cross-1"))
        .await
        .unwrap();
    store
        .record_security_event(&access_event("", "platform-1"))
        .await
        .unwrap();
    assert!(
        store
            .list_audit(OTHER_WS, None, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let events = store.list_security_events(None, 10).await.unwrap();
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.event.workspace_id.as_str(), e.event.request_id.as_str()))
        .collect();
    assert_eq!(seen, [("", "platform-1"), (OTHER_WS, "cross-1")]);
    let older = store
        .list_security_events(Some(events[0].id), 10)
        .await
        .unwrap();
    assert_eq!(older.len(), 1);
}
