//! A throwaway cluster with password (scram-sha-256) authentication on a free TCP port of
//! 127.0.0.1, for tests of logins: a server that trusts local connections ignores passwords, so
//! a wrong one could not be told from a good one. Started at most once per test process and
//! stopped, with its directory deleted, when the process exits (the same watchdog as the
//! default cluster).

use super::{WATCHDOG_SCRIPT, conn_value, find_pg_bin_dir, pg_command, read_log, running_as_root};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;
use tokio_postgres::{Client, NoTls};

/// How long to wait for the cluster to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The password-authenticated cluster of this test process.
pub struct PasswordPg {
    port: u16,
    password: String,
    ca_pem: String,
    log: PathBuf,
    /// Write end of the watchdog's stdin; never dropped, so the pipe closes when the process
    /// exits.
    _keepalive: ChildStdin,
}

impl std::fmt::Debug for PasswordPg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordPg")
            .field("port", &self.port)
            .field("log", &self.log)
            .finish()
    }
}

impl PasswordPg {
    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
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
            self.port,
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
                    self.port,
                    self.log.display()
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
    let pw = password.clone();
    let (dir, mut child, port, ca_pem) = tokio::task::spawn_blocking(move || spawn(&pw))
        .await
        .map_err(|e| format!("the start-up task failed: {e}"))??;
    let log = dir.join("postgres.log");
    let keepalive = child
        .stdin
        .take()
        .ok_or("the watchdog's stdin is not piped (testkit bug)")?;
    let url = format!(
        "host=127.0.0.1 port={port} user=postgres password={} dbname=postgres",
        conn_value(&password)
    );
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "postgres exited during startup ({status}); log {}:\n{}",
                log.display(),
                read_log(&log)
            ));
        }
        match tokio::time::timeout(Duration::from_secs(2), tokio_postgres::connect(&url, NoTls))
            .await
        {
            Ok(Ok((client, conn))) => {
                drop(client);
                let _ = conn.await;
                break;
            }
            Ok(Err(e)) if Instant::now() > deadline => {
                return Err(format!(
                    "no connection within {START_TIMEOUT:?} ({e}); log {}:\n{}",
                    log.display(),
                    read_log(&log)
                ));
            }
            Err(_) if Instant::now() > deadline => {
                return Err(format!("no connection within {START_TIMEOUT:?}"));
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    drop(child);
    Ok(PasswordPg {
        port,
        password,
        ca_pem,
        log,
        _keepalive: keepalive,
    })
}

/// initdb with scram-sha-256 and the superuser password, then postgres on a free port of
/// 127.0.0.1 under the watchdog. Blocking.
fn spawn(password: &str) -> Result<(PathBuf, std::process::Child, u16, String), String> {
    let bin = find_pg_bin_dir()?;
    let as_postgres = running_as_root();
    let tmp = tempfile::Builder::new()
        .prefix("testkit-pgpw-")
        .tempdir_in("/tmp")
        .map_err(|e| format!("could not create a temporary directory: {e}"))?;
    let dir = tmp.keep();
    let result = spawn_in(&bin, &dir, as_postgres, password);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map(|(child, port, ca)| (dir, child, port, ca))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => Err(format!("could not run {cmd:?}: {e}")),
    }
}

fn spawn_in(
    bin: &Path,
    dir: &Path,
    as_postgres: bool,
    password: &str,
) -> Result<(std::process::Child, u16, String), String> {
    let data = dir.join("data");
    let log = dir.join("postgres.log");
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, format!("{password}\n"))
        .map_err(|e| format!("could not write {}: {e}", pwfile.display()))?;
    if as_postgres {
        run(Command::new("chown").arg("-R").arg("postgres").arg(dir))?;
    }
    run(pg_command(as_postgres, &bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "scram-sha-256", "-E", "UTF8"])
        .args(["--locale=C", "--no-sync"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .current_dir(dir)
        .stdin(Stdio::null()))?;
    let _ = std::fs::remove_file(&pwfile);
    let ca_pem = enable_tls(&data, as_postgres)?;
    // A free port: bound then released; postgres takes it a moment later.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("could not find a free port: {e}"))?
        .port();
    let child = pg_command(as_postgres, Path::new("/bin/sh"))
        .arg("-c")
        .arg(WATCHDOG_SCRIPT)
        .arg("testkit-pgpw-watchdog")
        .arg(bin.join("postgres"))
        .arg(&data)
        .arg(dir)
        .arg(&log)
        .arg(dir)
        .arg(port.to_string())
        .arg("127.0.0.1")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start postgres: {e}"))?;
    Ok((child, port, ca_pem))
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
