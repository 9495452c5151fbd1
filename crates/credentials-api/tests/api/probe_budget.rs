//! One workspace cannot starve another's probes: each has its own share of the probe slots,
//! and a call that gets no slot in time is refused RESOURCE_EXHAUSTED with a retry delay,
//! having opened, audited and sent nothing.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tonic::Code;
use tonic_types::StatusExt;

/// A target that accepts connections and never answers: every probe sent to it holds its
/// slot until the probe's deadline.
struct Silent {
    port: u16,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Silent {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = held.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                keep.lock().unwrap().push(stream);
            }
        });
        Self { port, held }
    }

    fn connections(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

/// A target that answers every request at once with HTTP 200.
fn prompt() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
            );
        }
    });
    port
}

async fn api_key(stack: &TestApi, token: &str, name: &str, port: u16) -> pb::Credential {
    stack
        .create(
            token,
            create(
                name,
                "api_key",
                fields(&[
                    ("api_key", "key-budget-0001"),
                    ("endpoint", &format!("http://127.0.0.1:{port}/check")),
                ]),
            ),
        )
        .await
}

fn validate(id: &str, token: &str) -> tonic::Request<pb::ValidateCredentialRequest> {
    authed(
        pb::ValidateCredentialRequest {
            id: id.into(),
            ..Default::default()
        },
        token,
    )
}

#[tokio::test]
async fn a_workspace_stalling_its_probes_leaves_another_workspaces_validation_answering() {
    // The defaults: 16 validation slots in all, 4 per workspace, a 2 s queue timeout. The
    // stalled probes wait out a 20 s deadline, far longer than anything asserted below.
    let stack = TestApi::start_with(&[
        "--egress-allow",
        "127.0.0.0/8",
        "--rewrap-interval",
        "0",
        "--probe-timeout",
        "20s",
    ])
    .await;
    let (token_a, token_b) = (stack.token(&["ws-a"], ALL), stack.token(&["ws-b"], ALL));
    let silent = Silent::start();
    let stalled = api_key(&stack, &token_a, "stalled", silent.port).await;
    let healthy = api_key(&stack, &token_b, "healthy", prompt()).await;

    // Workspace A asks for more validations than the whole process has slots.
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let mut m = stack.management();
            let request = validate(&stalled.id, &token_a);
            tokio::spawn(async move { m.validate_credential(request).await })
        })
        .collect();
    // A's probes hold their slots (the silent target has their connections).
    let a_started = Instant::now();
    let holding = testkit::stack::wait_until(Duration::from_secs(10), || async {
        silent.connections() >= 4
    })
    .await;
    assert!(holding, "A's probes never reached the silent target");

    let started = Instant::now();
    let answer = stack
        .management()
        .validate_credential(validate(&healthy.id, &token_b))
        .await
        .unwrap()
        .into_inner();
    let b_took = started.elapsed();
    assert_eq!(
        answer.result.unwrap().outcome,
        pb::ValidationOutcome::Valid as i32
    );
    // A normal validation against a local server takes milliseconds; waiting for one of A's
    // slots would take the 20 s probe deadline.
    assert!(b_took < Duration::from_secs(5), "B waited {b_took:?}");

    // A's share is 4: the other 16 are refused once the queue timeout passes, long before
    // the running ones end, with a retry delay.
    let sixteen_done = testkit::stack::wait_until(Duration::from_secs(10), || async {
        calls.iter().filter(|c| c.is_finished()).count() >= 16
    })
    .await;
    assert!(sixteen_done, "A's excess calls were not refused in time");
    assert!(a_started.elapsed() < Duration::from_secs(15));
    let (done, running): (Vec<_>, Vec<_>) = calls.into_iter().partition(|c| c.is_finished());
    assert_eq!(running.len(), 4, "A's share of slots");
    for call in done {
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        assert!(
            err.message().contains("this workspace"),
            "{}",
            err.message()
        );
        let retry = err.get_details_retry_info().expect("RetryInfo");
        assert!(retry.retry_delay.is_some_and(|d| !d.is_zero()), "{retry:?}");
    }
    assert_eq!(silent.connections(), 4, "only admitted probes dial");

    // Only the admitted probes opened and audited the value; the refused left no event.
    let reader = stack.token(&["ws-a"], &["read"]);
    let events = stack
        .management()
        .list_audit_events(authed(
            pb::ListAuditEventsRequest {
                credential_id: stalled.id.clone(),
                ..Default::default()
            },
            &reader,
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    let started_events = events
        .iter()
        .filter(|e| {
            e.action == pb::AuditAction::Validate as i32
                && e.outcome == pb::AuditOutcome::Started as i32
        })
        .count();
    assert_eq!(started_events, 4, "{events:?}");

    for call in running {
        call.abort();
    }
}

#[tokio::test]
async fn stalled_discoveries_do_not_take_validations_slots() {
    let stack =
        TestApi::start_with(&["--egress-allow", "127.0.0.0/8", "--rewrap-interval", "0"]).await;
    let workspaces = ["d0", "d1", "d2", "d3", "d4"];
    let token = stack.token(&workspaces, ALL);
    let silent = Silent::start();
    let url = format!("postgresql://u:p@127.0.0.1:{}/db", silent.port);
    // Four discoveries in each of five workspaces, each waiting on a server that never
    // answers: more than all the probe slots the process had when validations and
    // discoveries shared one budget.
    let mut calls = Vec::new();
    for ws in workspaces {
        let mut request = create("pg", "postgresql", fields(&[("connection_string", &url)]));
        request.workspace_id = ws.into();
        let created = stack.create(&token, request).await;
        for _ in 0..4 {
            let mut m = stack.management();
            let request = authed(
                pb::DiscoverSchemaRequest {
                    workspace_id: ws.into(),
                    id: created.id.clone(),
                    timeout: Some(prost_types::Duration {
                        seconds: 60,
                        nanos: 0,
                    }),
                    ..Default::default()
                },
                &token,
            );
            calls.push(tokio::spawn(
                async move { m.discover_schema(request).await },
            ));
        }
    }
    let holding = testkit::stack::wait_until(Duration::from_secs(10), || async {
        silent.connections() >= 4
    })
    .await;
    assert!(holding, "the discoveries never reached the silent target");

    let b = stack.token(&["ws-b"], ALL);
    let healthy = api_key(&stack, &b, "healthy", prompt()).await;
    let started = Instant::now();
    let answer = stack
        .management()
        .validate_credential(validate(&healthy.id, &b))
        .await
        .unwrap()
        .into_inner();
    let took = started.elapsed();
    assert_eq!(
        answer.result.unwrap().outcome,
        pb::ValidationOutcome::Valid as i32
    );
    assert!(
        took < Duration::from_secs(5),
        "the validation waited {took:?}"
    );

    // Discoveries have 4 slots in all: the other 16 are refused, not queued for a minute.
    let refused = testkit::stack::wait_until(Duration::from_secs(10), || async {
        calls.iter().filter(|c| c.is_finished()).count() >= 16
    })
    .await;
    assert!(refused, "the excess discoveries were not refused in time");
    for call in calls {
        if call.is_finished() {
            let err = call.await.unwrap().unwrap_err();
            assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
            assert!(err.get_details_retry_info().is_some(), "{err:?}");
        } else {
            call.abort();
        }
    }
    assert_eq!(silent.connections(), 4, "only admitted discoveries dial");
}
