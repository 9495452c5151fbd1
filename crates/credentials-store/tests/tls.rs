//! TLS to Postgres: with sslmode=require the server's certificate is verified.

#![allow(clippy::unwrap_used)]

use credentials_store::{Store, StoreConfig, StoreError};
use std::time::Duration;

fn config(url: &str, ca_pem: Option<Vec<u8>>) -> StoreConfig {
    StoreConfig {
        url: url.to_owned(),
        max_connections: 1,
        wait_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        ca_pem,
    }
}

#[test]
fn a_ca_file_without_certificates_is_a_configuration_error() {
    let url = "host=127.0.0.1 port=5432 user=postgres dbname=postgres sslmode=require";
    for pem in [b"".to_vec(), b"not a certificate".to_vec()] {
        let err = Store::new(&config(url, Some(pem))).unwrap_err();
        assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    }
}

/// The machine's Postgres (127.0.0.1:5432) serves TLS with a self-signed certificate: with
/// sslmode=require it must be refused (nothing trusts it), while sslmode=disable connects.
#[tokio::test]
async fn an_untrusted_server_certificate_is_refused() {
    let base = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";
    let plain = Store::new(&config(&format!("{base} sslmode=disable"), None)).unwrap();
    if plain.ping().await.is_err() {
        eprintln!("SKIPPED: no Postgres on 127.0.0.1:5432");
        return;
    }
    let tls = Store::new(&config(&format!("{base} sslmode=require"), None)).unwrap();
    let err = tls.ping().await.unwrap_err();
    let text = format!("{err:?}");
    assert!(
        text.contains("UnknownIssuer") || text.contains("certificate") || text.contains("ssl"),
        "{text}"
    );
}
