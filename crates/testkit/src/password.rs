//! A throwaway cluster with password (scram-sha-256) authentication on a free TCP port of
//! 127.0.0.1, serving TLS too, for tests of logins and certificates: a server that trusts local
//! connections ignores passwords, so a wrong one could not be told from a good one. Started at
//! most once per test process by the same launcher as the default cluster, and like it stopped,
//! with its directory deleted, when the process exits.

use crate::cluster::{self, Cluster, Spec, run};
use crate::quote::conn_value;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;
use tokio_postgres::{Client, NoTls};

/// The password-authenticated cluster of this test process.
pub struct PasswordPg {
    password: String,
    ca_pem: String,
    cluster: Cluster,
}

impl std::fmt::Debug for PasswordPg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordPg")
            .field("port", &self.cluster.port)
            .field("log", &self.cluster.log)
            .finish()
    }
}

impl PasswordPg {
    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.cluster.port
    }

    /// PEM of the throwaway CA that signed the server's certificate (for `127.0.0.1` and
    /// `localhost`): the cluster serves TLS too, so `sslmode=require` with this CA trusted
    /// connects, and without it the certificate is refused.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The password of the `postgres` superuser.
    pub fn superuser_password(&self) -> &str {
        &self.password
    }

    /// A key=value connection string for `user`/`password` on database `dbname`.
    pub fn url(&self, user: &str, password: &str, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={} password={} dbname={}",
            self.cluster.port,
            conn_value(user),
            conn_value(password),
            conn_value(dbname)
        )
    }

    /// A superuser client on `dbname`; its connection task is spawned on the current runtime.
    pub async fn admin(&self, dbname: &str) -> Client {
        let url = self.url("postgres", &self.password, dbname);
        let (client, conn) = tokio_postgres::connect(&url, NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "testkit: could not connect to the password cluster on port {} ({e}); log: {}",
                    self.cluster.port,
                    self.cluster.log.display()
                )
            });
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }
}

static CLUSTER: OnceCell<PasswordPg> = OnceCell::const_new();

/// The password-authenticated cluster, started on first use.
pub async fn password_pg() -> &'static PasswordPg {
    CLUSTER
        .get_or_init(|| async {
            match start().await {
                Ok(cluster) => cluster,
                Err(message) => panic!("testkit: password cluster: {message}"),
            }
        })
        .await
}

async fn start() -> Result<PasswordPg, String> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let password = format!("su-{}-{nanos}", std::process::id());
    let spec = Spec {
        prefix: "testkit-pgpw-",
        password: Some(password.clone()),
        tcp: true,
    };
    let (cluster, ca_pem) = cluster::launch(spec, enable_tls).await?;
    Ok(PasswordPg {
        password,
        ca_pem,
        cluster,
    })
}

/// Gives the cluster a server certificate for 127.0.0.1 and localhost, signed by a fresh CA,
/// and turns TLS on (plaintext connections still work). Returns the CA's PEM.
fn enable_tls(data: &Path, as_postgres: bool) -> Result<String, String> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let fail = |e: rcgen::Error| format!("could not make test certificates: {e}");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(fail)?)
        .map_err(fail)?;
    let key = KeyPair::generate().map_err(fail)?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .map_err(fail)?
        .signed_by(&key, &ca)
        .map_err(fail)?;
    let write = |name: &str, contents: &str| {
        let path = data.join(name);
        std::fs::write(&path, contents)
            .and_then(|()| {
                std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            })
            .map_err(|e| format!("could not write {}: {e}", path.display()))
    };
    write("server.crt", &cert.pem())?;
    write("server.key", &key.serialize_pem())?;
    let conf = data.join("postgresql.auto.conf");
    let mut settings = std::fs::read_to_string(&conf).unwrap_or_default();
    settings.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
    std::fs::write(&conf, settings)
        .map_err(|e| format!("could not write {}: {e}", conf.display()))?;
    if as_postgres {
        run(Command::new("chown")
            .arg("postgres")
            .arg(data.join("server.crt"))
            .arg(data.join("server.key"))
            .arg(&conf))?;
    }
    Ok(ca.pem())
}
