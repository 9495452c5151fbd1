//! Harness for end-to-end tests: finds the workspace's binaries (built by the test command before
//! the tests run), starts them with their own temporary directory and log file, waits until they
//! are ready, and stops them. The kms launcher and the process helpers live in `testkit::stack`,
//! shared with the in-process API tests.
//!
//! ERROR means a human must look, so a process that logged an ERROR line fails its test: the
//! check runs when the process handle is dropped (a [`Stack`] checks both of its processes).
//! A test that provokes an ERROR names it first with `expect_error(message)` on the handle.

#![forbid(unsafe_code)]

mod stack;

pub use stack::{ApiProcess, Stack, StackOptions};
pub use testkit::stack::{
    KmsProcess, authed, bin, kms_keyring, logged_address, send_signal, wait_until,
};

/// `GET path` over plain HTTP/1.1: the status code and the body.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the admin port");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, body.to_owned())
}
