//! The password cluster: scram-sha-256 logins on 127.0.0.1, TLS served, started by the same
//! launcher as the default cluster.

use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

#[tokio::test]
async fn the_right_password_logs_in_a_wrong_one_is_refused_and_tls_is_on() {
    let pg = testkit::password_pg().await;
    let admin = pg.admin("postgres").await;
    let row = admin
        .query_one(
            "SELECT current_setting('ssl'), current_setting('password_encryption'), \
             current_setting('listen_addresses')",
            &[],
        )
        .await
        .expect("settings");
    assert_eq!(row.get::<_, String>(0), "on");
    assert_eq!(row.get::<_, String>(1), "scram-sha-256");
    assert_eq!(row.get::<_, String>(2), "127.0.0.1");

    let wrong = pg.url("postgres", "not-the-password", "postgres");
    let err = tokio_postgres::connect(&wrong, NoTls)
        .await
        .err()
        .expect("a wrong password is refused");
    assert_eq!(err.code(), Some(&SqlState::INVALID_PASSWORD), "{err}");
    assert!(pg.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(format!("{pg:?}").contains(&pg.port().to_string()));
    assert!(!format!("{pg:?}").contains(pg.superuser_password()));
}
