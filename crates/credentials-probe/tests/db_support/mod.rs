//! Shared helpers of the database and SMTP probe tests.

#![allow(clippy::unwrap_used, dead_code)]

use credentials_core::SecretValue;
use credentials_core::catalogue::lookup;
use credentials_core::value::{ValueInput, check};
use credentials_probe::{EgressPolicy, ProbeConfig, ProbeResult, Prober, ValidationOutcome};
use std::io::ErrorKind;
use std::time::Duration;

/// A password no message may ever show.
pub const MARKER: &str = "Pw-MARKER-5f3a9c";

/// A configuration that allows loopback (the test servers) with this deadline.
pub fn loopback_config(timeout: Duration) -> ProbeConfig {
    ProbeConfig {
        timeout,
        egress: EgressPolicy::new().allow(["127.0.0.0/8".parse().unwrap()]),
        ..ProbeConfig::default()
    }
}

/// A prober allowing loopback.
pub fn prober(timeout: Duration) -> Prober {
    Prober::new(loopback_config(timeout))
}

/// A prober with the default policy (public addresses only).
pub fn default_prober() -> Prober {
    Prober::new(ProbeConfig::default())
}

/// A checked value of type `type_id`.
pub fn value(type_id: &str, pairs: &[(&str, &str)]) -> SecretValue {
    check(
        lookup(type_id).unwrap(),
        ValueInput::Fields(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).into()))
                .collect(),
        ),
    )
    .unwrap()
}

/// Asserts the outcome and that the message holds none of the secrets.
pub fn expect(result: &ProbeResult, outcome: ValidationOutcome, secrets: &[&str]) {
    eprintln!("{:?}: {}", result.outcome, result.message);
    assert_eq!(result.outcome, outcome, "{result:?}");
    for secret in secrets {
        assert!(
            !result.message.contains(secret),
            "message leaks a secret: {}",
            result.message
        );
    }
}

/// A port of 127.0.0.1 nothing listens on.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server that accepts connections and never says a word; returns its port.
pub async fn silent_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    port
}

/// A listener that records whether anything connected to it.
pub struct Tripwire {
    listener: std::net::TcpListener,
}

impl Tripwire {
    /// A fresh listener on 127.0.0.1.
    pub fn new() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Self { listener }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    /// Asserts nobody connected (the kernel queues connections even if nobody accepts them).
    pub fn assert_untouched(&self) {
        match self.listener.accept() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("something connected: {other:?}"),
        }
    }
}

/// Asserts the probe gave up within the deadline (plus a second of slack for scheduling).
pub fn assert_within(elapsed: Duration, timeout: Duration) {
    assert!(
        elapsed < timeout + Duration::from_secs(1),
        "took {elapsed:?} with a {timeout:?} deadline"
    );
}

/// A prober that may reach loopback only as it reaches public addresses
/// (`--egress-allow-verified 127.0.0.0/8`): verified TLS, never a password in cleartext. The
/// test servers on 127.0.0.1 then stand for a database on the internet.
pub fn verified_only_prober(timeout: Duration) -> Prober {
    Prober::new(ProbeConfig {
        timeout,
        egress: EgressPolicy::new().allow_verified(["127.0.0.0/8".parse().unwrap()]),
        ..ProbeConfig::default()
    })
}
