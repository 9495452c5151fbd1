//! A database probe never hands a password to whoever sits on the path of a connection to a
//! public address: the attacker is a fake server on 127.0.0.1 that speaks just enough of the
//! wire protocol to ask for the password in clear, and the prober is told to treat loopback as
//! it treats public addresses (`--egress-allow-verified`). Each test first shows that the same
//! fake does get the password where the operator allowed cleartext, so that "never received"
//! means something.

#![allow(clippy::unwrap_used)]

mod db_support;

use credentials_probe::ValidationOutcome;
use db_support::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every byte the fake received, over all connections.
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<u8>>>);

impl Heard {
    fn add(&self, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }

    fn has_marker(&self) -> bool {
        let heard = self.0.lock().unwrap();
        heard.windows(MARKER.len()).any(|w| w == MARKER.as_bytes())
    }
}

/// Reads until the peer stops sending for a moment or closes, recording everything.
async fn drain(stream: &mut TcpStream, heard: &Heard) {
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        heard.add(&buf[..n]);
    }
}

/// Reads one length-prefixed Postgres startup-phase message (int32 length, then the body).
async fn pg_startup_message(stream: &mut TcpStream, heard: &Heard) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.ok()?;
    let len = usize::try_from(u32::from_be_bytes(len)).ok()?;
    let mut body = vec![0u8; len.checked_sub(4)?.min(1 << 16)];
    stream.read_exact(&mut body).await.ok()?;
    heard.add(&len.to_be_bytes());
    heard.add(&body);
    Some(body)
}

/// A Postgres "server" that declines TLS (`N` to SSLRequest) and answers the startup message
/// with AuthenticationCleartextPassword. Returns its port and what it heard.
async fn fake_postgres() -> (u16, Heard) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let heard = Heard::default();
    let h = heard.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let heard = h.clone();
            tokio::spawn(async move {
                let Some(mut first) = pg_startup_message(&mut stream, &heard).await else {
                    return;
                };
                // SSLRequest: the request code 80877103 and nothing else.
                if first == 80_877_103u32.to_be_bytes() {
                    if stream.write_all(b"N").await.is_err() {
                        return;
                    }
                    match pg_startup_message(&mut stream, &heard).await {
                        Some(startup) => first = startup,
                        None => return,
                    }
                }
                drop(first);
                // 'R', length 8, auth type 3: AuthenticationCleartextPassword.
                let ask = [b'R', 0, 0, 0, 8, 0, 0, 0, 3];
                if stream.write_all(&ask).await.is_ok() {
                    drain(&mut stream, &heard).await;
                }
            });
        }
    });
    (port, heard)
}

async fn validate_postgres(
    prober: &credentials_probe::Prober,
    url: &str,
) -> credentials_probe::ProbeResult {
    prober
        .validate(
            "postgresql",
            &value("postgresql", &[("connection_string", url)]),
        )
        .await
}

#[tokio::test]
async fn postgres_never_answers_a_cleartext_password_request_from_a_public_address() {
    let timeout = Duration::from_secs(10);

    // Where the operator allowed cleartext, libpq's `prefer` falls back to no TLS and the
    // password goes to the server that asked: the fake can steal it.
    let (port, heard) = fake_postgres().await;
    let url = format!("postgresql://app:{MARKER}@127.0.0.1:{port}/db?sslmode=prefer");
    let _ = validate_postgres(&prober(timeout), &url).await;
    assert!(
        heard.has_marker(),
        "the fake should receive the password here"
    );

    for sslmode in [
        "",
        "?sslmode=prefer",
        "?sslmode=require",
        "?sslmode=verify-ca",
        "?sslmode=verify-full",
        "?sslmode=disable",
    ] {
        let (port, heard) = fake_postgres().await;
        let url = format!("postgresql://app:{MARKER}@127.0.0.1:{port}/db{sslmode}");
        let result = validate_postgres(&verified_only_prober(timeout), &url).await;
        assert!(
            !heard.has_marker(),
            "{sslmode:?}: the fake received the password"
        );
        let outcome = if sslmode.ends_with("disable") {
            ValidationOutcome::EgressDenied
        } else {
            ValidationOutcome::ProviderError
        };
        expect(&result, outcome, &[MARKER]);
        let says = if sslmode.ends_with("disable") {
            "sslmode=disable"
        } else {
            "always verified"
        };
        assert!(
            result.message.contains(says),
            "{sslmode:?}: {}",
            result.message
        );
    }

    // The key=value form reads the same way.
    let (port, heard) = fake_postgres().await;
    let kv = format!("host=127.0.0.1 port={port} user=app password='{MARKER}' sslmode=allow");
    let result = validate_postgres(&verified_only_prober(timeout), &kv).await;
    assert!(
        !heard.has_marker(),
        "key=value: the fake received the password"
    );
    expect(&result, ValidationOutcome::ProviderError, &[MARKER]);
}

/// One MySQL packet: 3-byte little-endian length, sequence id, payload.
fn mysql_packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_le_bytes();
    let mut out = vec![len[0], len[1], len[2], seq];
    out.extend_from_slice(payload);
    out
}

/// A MySQL "server" without TLS (no CLIENT_SSL) that answers the client's handshake response
/// with an AuthSwitchRequest to mysql_clear_password, then refuses the login with error 1045.
async fn fake_mysql() -> (u16, Heard) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let heard = Heard::default();
    let h = heard.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let heard = h.clone();
            tokio::spawn(async move {
                // LONG_PASSWORD | FOUND_ROWS | LONG_FLAG | CONNECT_WITH_DB | PROTOCOL_41 |
                // TRANSACTIONS | SECURE_CONNECTION | MULTI_STATEMENTS | MULTI_RESULTS |
                // PLUGIN_AUTH | PLUGIN_AUTH_LENENC_CLIENT_DATA; no SSL.
                let caps: u32 = 0x1
                    | 0x2
                    | 0x4
                    | 0x8
                    | 0x200
                    | 0x2000
                    | 0x8000
                    | 0x1_0000
                    | 0x2_0000
                    | 0x8_0000
                    | 0x20_0000;
                let caps = caps.to_le_bytes();
                let mut hello = vec![0x0a];
                hello.extend_from_slice(b"8.0.0-fake\0");
                hello.extend_from_slice(&7u32.to_le_bytes());
                hello.extend_from_slice(b"abcdefgh\0");
                hello.extend_from_slice(&caps[..2]);
                hello.push(0x21);
                hello.extend_from_slice(&2u16.to_le_bytes());
                hello.extend_from_slice(&caps[2..]);
                hello.push(21);
                hello.extend_from_slice(&[0; 10]);
                hello.extend_from_slice(b"ijklmnopqrst\0");
                hello.extend_from_slice(b"mysql_native_password\0");
                if stream.write_all(&mysql_packet(0, &hello)).await.is_err() {
                    return;
                }
                let mut buf = [0u8; 4096];
                let mut read = async |stream: &mut TcpStream| {
                    if let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await
                    {
                        heard.add(&buf[..n]);
                    }
                };
                read(&mut stream).await;
                let mut switch = vec![0xfe];
                switch.extend_from_slice(b"mysql_clear_password\0abcdefghijklmnopqrst\0");
                if stream.write_all(&mysql_packet(2, &switch)).await.is_err() {
                    return;
                }
                read(&mut stream).await;
                let mut err = vec![0xff];
                err.extend_from_slice(&1045u16.to_le_bytes());
                err.extend_from_slice(b"#28000Access denied");
                let _ = stream.write_all(&mysql_packet(4, &err)).await;
                drain(&mut stream, &heard).await;
            });
        }
    });
    (port, heard)
}

#[tokio::test]
async fn mysql_never_sends_a_password_without_verified_tls_to_a_public_address() {
    let timeout = Duration::from_secs(10);
    let validate = |prober: credentials_probe::Prober, url: String| async move {
        prober
            .validate("mysql", &value("mysql", &[("connection_string", &url)]))
            .await
    };

    // Allowed for cleartext, a URL that enables the clear-password plugin hands it over.
    let (port, heard) = fake_mysql().await;
    let url = format!("mysql://app:{MARKER}@127.0.0.1:{port}/db?enable_cleartext_plugin=true");
    let _ = validate(prober(timeout), url).await;
    assert!(
        heard.has_marker(),
        "the fake should receive the password here"
    );

    for params in [
        "?enable_cleartext_plugin=true",
        "?enable_cleartext_plugin=true&require_ssl=true&verify_ca=false&verify_identity=false",
        "",
    ] {
        let (port, heard) = fake_mysql().await;
        let url = format!("mysql://app:{MARKER}@127.0.0.1:{port}/db{params}");
        let result = validate(verified_only_prober(timeout), url).await;
        assert!(
            !heard.has_marker(),
            "{params:?}: the fake received the password"
        );
        expect(&result, ValidationOutcome::ProviderError, &[MARKER]);
        assert!(
            result.message.contains("does not offer TLS") && result.message.contains("verified"),
            "{params:?}: {}",
            result.message
        );
    }
}
