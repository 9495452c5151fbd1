#![allow(clippy::unwrap_used)]
//! Probes read bounded amounts whatever the server sends: a ClickHouse-HTTP server that answers
//! 200 and streams an endless body, hit by six parallel validations and six parallel schema
//! discoveries, leaves the real `credentials-api` process's peak resident memory (VmHWM, from
//! `/proc`) under a stated bound. Before the bounds, each validation read up to 32 MiB and each
//! discovery 32 MiB plus copies, which put the peak in the hundreds of MiB.

use credentials_proto::credentials::v1 as pb;
use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    time::Duration,
};
use testkit::stack::ALL;
use tests::{Stack, authed};
use tonic::Code;

/// The bound on the API's peak resident memory after the validations: they read 20 KiB each
/// at most, so the process stays near its baseline (about 30 MiB). Before the bounds, six
/// validations took it to 156-176 MiB.
const VALIDATION_PEAK_MIB: u64 = 64;
/// The bound on the API's peak resident memory after the discoveries too: four run at once
/// (the process's discovery budget), each holding its 4 MiB catalogue read, a copy and the
/// parsed rows; under a third of the 512 MiB the manifests give the API container.
const PEAK_BOUND_MIB: u64 = 160;

/// Six tenants, one call each per storm: the per-workspace budgets do not refuse any.
const WORKSPACES: [&str; 6] = ["m0", "m1", "m2", "m3", "m4", "m5"];

/// `JSONEachRow` lines repeated forever: table rows, or column rows when the query reads
/// `system.columns`.
fn chunk(columns: bool) -> Vec<u8> {
    let mut lines = String::new();
    let mut i = 0;
    while lines.len() < 64 * 1024 {
        if columns {
            lines.push_str(&format!(
                "{{\"database\":\"d\",\"table\":\"t{i:07}\",\"name\":\"c{i}\",\"type\":\"String\",\"default_expression\":\"\",\"comment\":\"{}\",\"position\":1}}\n",
                "x".repeat(40)
            ));
        } else {
            lines.push_str(&format!(
                "{{\"database\":\"d\",\"name\":\"t{i:07}\",\"engine\":\"MergeTree\",\"comment\":\"{}\",\"primary_key\":\"\"}}\n",
                "x".repeat(40)
            ));
        }
        i += 1;
    }
    lines.into_bytes()
}

/// A ClickHouse HTTP interface that answers every query 200 and never ends the body; returns
/// its port.
fn endless_clickhouse() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tables, columns) = (chunk(false), chunk(true));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (tables, columns) = (tables.clone(), columns.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    head.push_str(&line);
                    line.clear();
                }
                let body = if head.contains("system.columns") {
                    &columns
                } else {
                    &tables
                };
                let mut stream = stream;
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n",
                );
                let framed = [format!("{:x}\r\n", body.len()).as_bytes(), body, b"\r\n"].concat();
                // Until the client hangs up.
                while stream.write_all(&framed).is_ok() {}
            });
        }
    });
    port
}

/// `VmHWM` (peak resident set) of a process, in KiB.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endless_server_leaves_the_apis_memory_bounded() {
    let stack =
        Stack::start_with(&["--egress-allow", "127.0.0.0/8", "--rewrap-interval", "0"]).await;
    let token = stack.token(&WORKSPACES, ALL);
    let url = format!("http://u:p@127.0.0.1:{}/d", endless_clickhouse());
    let value = || testkit::stack::fields(&[("connection_string", &url)]);
    let client = stack.management().await;
    let before = peak_kib(stack.api.pid());

    let validations: Vec<_> = WORKSPACES
        .iter()
        .map(|ws| {
            let request = authed(
                pb::TestCredentialRequest {
                    workspace_id: (*ws).into(),
                    r#type: "clickhouse".into(),
                    value: value(),
                    ..Default::default()
                },
                &token,
            );
            let mut client = client.clone();
            async move { client.test_credential(request).await }
        })
        .collect();
    let validated = futures_join(validations).await;
    let after_validations = peak_kib(stack.api.pid());
    eprintln!(
        "credentials-api VmHWM: {} MiB at start, {} MiB after 6 validations",
        before / 1024,
        after_validations / 1024
    );
    assert!(
        after_validations / 1024 < VALIDATION_PEAK_MIB,
        "peak resident memory {} MiB after the validations is over the bound of {VALIDATION_PEAK_MIB} MiB",
        after_validations / 1024
    );
    for result in validated {
        let result = result.unwrap().into_inner().result.unwrap();
        // An endless answer to SELECT 1 is not ClickHouse's.
        assert_eq!(
            result.outcome,
            pb::ValidationOutcome::ProviderError as i32,
            "{result:?}"
        );
    }

    let mut ids = Vec::new();
    for ws in WORKSPACES {
        let mut create = testkit::stack::create("ch", "clickhouse", value());
        create.workspace_id = ws.into();
        let created = client
            .clone()
            .create_credential(authed(create, &token))
            .await
            .unwrap()
            .into_inner()
            .credential
            .unwrap();
        ids.push((ws, created.id));
    }
    let discoveries: Vec<_> = ids
        .iter()
        .map(|(ws, id)| {
            let request = authed(
                pb::DiscoverSchemaRequest {
                    workspace_id: (*ws).into(),
                    id: id.clone(),
                    ..Default::default()
                },
                &token,
            );
            let mut client = client.clone();
            async move { client.discover_schema(request).await }
        })
        .collect();
    let discovered = futures_join(discoveries).await;
    let peak = peak_kib(stack.api.pid());
    eprintln!(
        "credentials-api VmHWM: {} MiB after 6 discoveries",
        peak / 1024
    );
    assert!(
        peak / 1024 < PEAK_BOUND_MIB,
        "peak resident memory {} MiB is over the bound of {PEAK_BOUND_MIB} MiB",
        peak / 1024
    );
    for result in discovered {
        match result {
            Ok(done) => {
                let done = done.into_inner();
                assert!(done.truncated, "{done:?}");
                assert_ne!(
                    done.truncation,
                    pb::SchemaTruncation::Unspecified as i32,
                    "{done:?}"
                );
            }
            // Four discoveries run at once in the whole process; the others may find no slot.
            Err(status) => assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}"),
        }
    }
}

/// Runs the calls concurrently and collects their results in order.
async fn futures_join<F: std::future::Future + Send + 'static>(calls: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = calls
        .into_iter()
        .map(|call| tokio::time::timeout(Duration::from_secs(60), call))
        .map(tokio::spawn)
        .collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap().expect("a call took over 60 s"));
    }
    out
}
