//! The PostgreSQL server of a test process: the one `DATABASE_URL` names, or a throwaway
//! cluster (see [`crate::cluster`]) started on first use, once per process.

use crate::cluster::{self, Cluster, Spec};
use crate::quote::conn_value;
use std::path::Path;
use std::str::FromStr as _;
use tokio::sync::OnceCell;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls};

/// How tests reach Postgres: `DATABASE_URL`'s server, or a throwaway cluster started on
/// first use.
pub struct PgServer {
    /// Connection string without `dbname`.
    base: String,
    /// The same without the password, for messages.
    redacted: String,
    /// Database for administrative connections.
    pub(crate) maintenance_db: String,
    /// Present for a throwaway cluster.
    cluster: Option<Cluster>,
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl PgServer {
    /// Connection string (libpq key=value form) for database `dbname` on this server.
    /// It parses with `tokio_postgres::Config::from_str`.
    pub fn url(&self, dbname: &str) -> String {
        format!("{} dbname={}", self.base, conn_value(dbname))
    }

    /// A client connected to the maintenance database (`postgres`, or `DATABASE_URL`'s
    /// database). Its connection task is spawned on the current runtime.
    pub async fn admin(&self) -> Client {
        connect(
            &self.url(&self.maintenance_db),
            &format!("maintenance database on {}", self.describe()),
        )
        .await
    }

    /// The throwaway cluster's postgres log, or `None` when using `DATABASE_URL`.
    pub fn log_path(&self) -> Option<&Path> {
        self.cluster.as_ref().map(|c| c.log.as_path())
    }

    /// Whether this is a throwaway cluster started by this process.
    pub fn is_throwaway(&self) -> bool {
        self.cluster.is_some()
    }

    /// Human-readable description of the server, without password.
    pub(crate) fn describe(&self) -> String {
        match &self.cluster {
            Some(c) => format!(
                "throwaway cluster [{}] (dir {}, log {}; removed when the test process exits)",
                self.redacted,
                c.dir.display(),
                c.log.display()
            ),
            None => format!("DATABASE_URL server [{}]", self.redacted),
        }
    }

    fn from_database_url(database_url: &str) -> PgServer {
        let config = Config::from_str(database_url).unwrap_or_else(|e| {
            panic!(
                "testkit: DATABASE_URL is not a valid PostgreSQL connection string ({e}); \
                 use e.g. postgresql://postgres@127.0.0.1:5432/postgres or unset it to use a \
                 throwaway cluster"
            )
        });
        let (base, redacted) = base_from_config(&config, None);
        PgServer {
            base,
            redacted,
            maintenance_db: config.get_dbname().unwrap_or("postgres").to_owned(),
            cluster: None,
        }
    }

    /// Starts the throwaway cluster: trust authentication, Unix socket only.
    async fn start_cluster() -> Result<PgServer, String> {
        let spec = Spec {
            prefix: "testkit-pg-",
            password: None,
            tcp: false,
        };
        let (cluster, ()) = cluster::launch(spec, |_, _| Ok(())).await?;
        Ok(PgServer {
            redacted: cluster.base.clone(),
            base: cluster.base.clone(),
            maintenance_db: "postgres".to_owned(),
            cluster: Some(cluster),
        })
    }
}

static SERVER: OnceCell<PgServer> = OnceCell::const_new();
static START_FAILURE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The server for this test process: `DATABASE_URL`'s, or a throwaway cluster started at
/// most once per process.
pub async fn pg_server() -> &'static PgServer {
    SERVER
        .get_or_init(|| async {
            match std::env::var("DATABASE_URL") {
                Ok(url) if !url.trim().is_empty() => PgServer::from_database_url(&url),
                Ok(_) | Err(std::env::VarError::NotPresent) => {
                    // A failed start is not retried by every test (each could wait 30 s).
                    if let Some(message) = START_FAILURE.get() {
                        panic!("testkit: {message}\n(failure of an earlier start in this process)");
                    }
                    match PgServer::start_cluster().await {
                        Ok(server) => server,
                        Err(message) => {
                            let message = format!(
                                "{message}\n(to use an existing server instead, set DATABASE_URL, \
                                 e.g. postgresql://postgres@127.0.0.1:5432/postgres)"
                            );
                            let _ = START_FAILURE.set(message.clone());
                            panic!("testkit: {message}");
                        }
                    }
                }
                Err(e) => panic!("testkit: DATABASE_URL: {e}"),
            }
        })
        .await
}

/// Connects and spawns the connection task on the current runtime.
pub(crate) async fn connect(url: &str, what: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("testkit: could not connect to the {what}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Builds `host=... port=... user=... [password=...]` from a parsed config (and the same
/// without the password). With `endpoint`, that host and port replace the config's hosts,
/// host addresses and ports (to go through a proxy).
pub(crate) fn base_from_config(config: &Config, endpoint: Option<(&str, u16)>) -> (String, String) {
    let mut parts: Vec<String> = Vec::new();
    if let Some((host, port)) = endpoint {
        parts.push(format!("host={}", conn_value(host)));
        parts.push(format!("port={port}"));
    } else {
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.to_string_lossy().into_owned(),
            })
            .collect();
        if !hosts.is_empty() {
            parts.push(format!("host={}", conn_value(&hosts.join(","))));
        }
        let hostaddrs: Vec<String> = config
            .get_hostaddrs()
            .iter()
            .map(|a| a.to_string())
            .collect();
        if !hostaddrs.is_empty() {
            parts.push(format!("hostaddr={}", conn_value(&hostaddrs.join(","))));
        }
        let ports: Vec<String> = config.get_ports().iter().map(|p| p.to_string()).collect();
        if !ports.is_empty() {
            parts.push(format!("port={}", ports.join(",")));
        }
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={}", conn_value(user)));
    }
    match config.get_ssl_mode() {
        SslMode::Disable => parts.push("sslmode=disable".to_owned()),
        SslMode::Require => parts.push("sslmode=require".to_owned()),
        _ => {}
    }
    if let Some(timeout) = config.get_connect_timeout() {
        parts.push(format!("connect_timeout={}", timeout.as_secs().max(1)));
    }
    if let Some(options) = config.get_options() {
        parts.push(format!("options={}", conn_value(options)));
    }
    if let Some(name) = config.get_application_name() {
        parts.push(format!("application_name={}", conn_value(name)));
    }
    let redacted = parts.join(" ");
    if let Some(password) = config.get_password() {
        parts.push(format!(
            "password={}",
            conn_value(&String::from_utf8_lossy(password))
        ));
    }
    (parts.join(" "), redacted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn database_url_with_password_keeps_it_and_replaces_dbname() {
        let config = Config::from_str("postgresql://alice:p%40ss%20w'o%5Crd@db.example:6543/maint")
            .expect("valid url");
        let (base, redacted) = base_from_config(&config, None);
        assert!(!redacted.contains("p@ss"), "{redacted}");
        let server = PgServer {
            base,
            redacted,
            maintenance_db: "maint".to_owned(),
            cluster: None,
        };
        let url = server.url("vt_1_2");
        let parsed = Config::from_str(&url).expect("url parses");
        assert_eq!(parsed.get_password(), Some(&b"p@ss w'o\\rd"[..]), "{url}");
        assert_eq!(parsed.get_user(), Some("alice"));
        assert_eq!(parsed.get_dbname(), Some("vt_1_2"));
        assert_eq!(parsed.get_ports(), &[6543]);
        assert_eq!(parsed.get_hosts(), &[Host::Tcp("db.example".to_owned())]);
        assert!(!format!("{server:?}").contains("p@ss"));
    }

    #[test]
    fn key_value_database_url_with_several_hosts_and_socket() {
        let config = Config::from_str(
            "host=/run/my\\ sockets,h2 port=5433,5434 user=bob password=secret dbname=x \
             sslmode=disable",
        )
        .expect("valid");
        let (base, _) = base_from_config(&config, None);
        let parsed = Config::from_str(&format!("{base} dbname=y")).expect("parses");
        assert_eq!(
            parsed.get_hosts(),
            &[
                Host::Unix(PathBuf::from("/run/my sockets")),
                Host::Tcp("h2".to_owned())
            ]
        );
        assert_eq!(parsed.get_ports(), &[5433, 5434]);
        assert_eq!(parsed.get_password(), Some(&b"secret"[..]));
        assert_eq!(parsed.get_ssl_mode(), SslMode::Disable);
        assert_eq!(parsed.get_dbname(), Some("y"));
    }

    #[test]
    fn an_endpoint_replaces_hosts_addresses_and_ports() {
        let config = Config::from_str(
            "host=/run/pg,h2 hostaddr=192.0.2.1 port=5433 user=bob password=secret",
        )
        .expect("valid");
        let (base, redacted) = base_from_config(&config, Some(("127.0.0.1", 40000)));
        assert!(!redacted.contains("secret"), "{redacted}");
        let parsed = Config::from_str(&base).expect("parses");
        assert_eq!(parsed.get_hosts(), &[Host::Tcp("127.0.0.1".to_owned())]);
        assert!(parsed.get_hostaddrs().is_empty());
        assert_eq!(parsed.get_ports(), &[40000]);
        assert_eq!(parsed.get_user(), Some("bob"));
        assert_eq!(parsed.get_password(), Some(&b"secret"[..]));
    }
}
