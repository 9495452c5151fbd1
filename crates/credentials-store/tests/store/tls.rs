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

/// A server whose certificate chains to the configured CA is reached over TLS, and the
/// connection really is encrypted (pg_stat_ssl says so); without the CA it is refused.
#[tokio::test]
async fn a_server_signed_by_the_configured_ca_is_reached_over_tls() {
    let pg = testkit::password_pg().await;
    let url = format!(
        "{} sslmode=require",
        pg.url("postgres", pg.superuser_password(), "postgres")
    );
    let trusted = Store::new(&config(&url, Some(pg.ca_pem().as_bytes().to_vec()))).unwrap();
    trusted.ping().await.unwrap();
    // The pool keeps the connection open: the server sees it, encrypted.
    let admin = pg.admin("postgres").await;
    let encrypted: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE s.ssl AND a.application_name = 'credentials-api'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(encrypted, 1, "the store's connection is not encrypted");

    let untrusted = Store::new(&config(&url, None)).unwrap();
    let err = untrusted.ping().await.unwrap_err();
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");
}
