//! `test-stack`: the whole stack for the SDKs' test suites, which are not Rust.
//!
//! Starts a database of its own (a throwaway Postgres when `DATABASE_URL` is unset), the real kms
//! and the real credentials-api, and a second database with a few tables that the API's probes
//! may reach (for schema discovery), then prints one JSON line on stdout:
//!
//! ```json
//! {"grpc":"127.0.0.1:P","http":"127.0.0.1:Q","workspace":"sdk","token":"...","analytics_url":"postgresql://..."}
//! ```
//!
//! and answers commands on stdin, one per line, each with one JSON line:
//! `token <ws,ws> <perm,perm> [subject]` → `{"token":"..."}` (valid for an hour; the subject is
//! the actor of audit events and the principal of rate limits, `e2e-test` unless given); `stop-api` → `{"ok":true}` once the API is
//! gone (SIGKILL: a crash); `start-api` → `{"ok":true}` once it listens again on the same ports;
//! `tamper <credential id>` → `{"ok":true,"rows":1}` after altering the row in the database, so
//! reading its value fails its integrity check (`DATA_LOSS`).
//! A bad command answers `{"error":"..."}`. End of input or SIGTERM stops everything and drops
//! both databases. Logs go to stderr.

#![forbid(unsafe_code)]

use std::io::{BufRead as _, Write as _};
use tests::{Stack, StackOptions};
use tokio::sync::mpsc;

/// The workspace the default token names.
const WORKSPACE: &str = "sdk";

/// What the API logs when a stored value fails its integrity check.
const TAMPERED: &str = "stored value fails its integrity check";

#[tokio::main]
async fn main() {
    let mut stack = Stack::start_with_options(StackOptions {
        api_args: probe_args(),
        ..StackOptions::default()
    })
    .await;
    let grpc = stack.api.addr.clone();
    let http = stack.api.http_addr().await;
    let analytics_url = analytics_database().await;
    let token = stack.token(&[WORKSPACE], &["read", "write", "access"]);
    say(serde_json::json!({
        "grpc": grpc, "http": http, "workspace": WORKSPACE, "token": token,
        "analytics_url": analytics_url, "dir": stack.dir.path(),
    }));

    let (tx, mut commands) = mpsc::unbounded_channel();
    // Blocking stdin on a thread of its own: the runtime stays free for the processes.
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    loop {
        let line = tokio::select! {
            line = commands.recv() => match line { Some(line) => line, None => break },
            _ = term.recv() => break,
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["token", workspaces, permissions, subject @ ..] if subject.len() <= 1 => {
                let workspaces: Vec<&str> = workspaces.split(',').collect();
                let permissions: Vec<&str> = permissions.split(',').collect();
                let mut claims = testkit::stack::claims(&workspaces, &permissions);
                if let [subject] = subject {
                    claims.sub = (*subject).to_owned();
                }
                serde_json::json!({ "token": stack.token_with(claims) })
            }
            ["stop-api"] => {
                stack.api.kill();
                serde_json::json!({ "ok": true })
            }
            ["start-api"] => {
                stack
                    .restart_api_with(&["--listen", &grpc, "--http-listen", &http])
                    .await;
                serde_json::json!({ "ok": true })
            }
            ["tamper", id] => {
                // What an attacker with the database could do: move a row's value generation.
                // Its sealed value no longer opens, so the API answers DATA_LOSS and logs an
                // ERROR, which this stack then expects.
                stack.api.expect_error(TAMPERED);
                let db = stack.db.client().await;
                match db
                    .execute(
                        "UPDATE credentials SET value_generation = value_generation + 1 \
                         WHERE id::text = $1",
                        &[id],
                    )
                    .await
                {
                    Ok(rows) => serde_json::json!({ "ok": true, "rows": rows }),
                    Err(e) => serde_json::json!({ "error": e.to_string() }),
                }
            }
            [] => continue,
            _ => serde_json::json!({ "error": format!("unknown command: {line}") }),
        };
        say(answer);
    }
    drop(stack);
}

/// Lets validation and discovery reach the loopback databases of the tests.
fn probe_args() -> Vec<String> {
    ["--egress-allow", "127.0.0.0/8", "--rewrap-interval", "0"]
        .map(String::from)
        .to_vec()
}

/// Writes one JSON line to stdout and flushes it: the SDK suites read line by line.
fn say(value: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}").expect("stdout");
    out.flush().expect("stdout");
}

/// A database on the password-authenticated test cluster (a server that trusts local
/// connections would accept any password) with two tables and a view, and its URL.
async fn analytics_database() -> String {
    let pg = testkit::password_pg().await;
    let db = format!("analytics_{}", std::process::id());
    let admin = pg.admin("postgres").await;
    for statement in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
    ] {
        admin
            .batch_execute(&statement)
            .await
            .expect("create the analytics database");
    }
    pg.admin(&db)
        .await
        .batch_execute(
            "CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, region text);
             COMMENT ON TABLE customers IS 'One row per paying customer';
             CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL
               REFERENCES customers (id), total numeric(12, 2) NOT NULL DEFAULT 0,
               placed_at timestamptz NOT NULL DEFAULT now());
             CREATE VIEW revenue_by_region AS SELECT c.region, sum(o.total) AS revenue
               FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.region;",
        )
        .await
        .expect("create the analytics tables");
    format!(
        "postgresql://postgres:{}@127.0.0.1:{}/{db}",
        pg.superuser_password(),
        pg.port()
    )
}
