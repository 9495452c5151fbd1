//! Test support: a PostgreSQL server for tests and a fresh database per test.
//!
//! Every database test gets its own database, so tests run in parallel:
//!
//! ```no_run
//! # async fn example() {
//! let db = testkit::TestDb::create("credentials", |url| async move {
//!     // Run the migrations against `url`; close every connection before returning.
//!     # let _ = url;
//! })
//! .await;
//! let client = db.client().await;
//! client.batch_execute("SELECT 1").await.expect("query");
//! # }
//! ```
//!
//! The server is the one named by `DATABASE_URL` when that variable is set. Otherwise a
//! throwaway cluster is started on first use (once per test process): `initdb` into a
//! temporary directory, then `postgres` listening only on a Unix socket in that directory.
//! A watchdog shell stops the cluster and deletes the directory when the test process
//! exits, however it exits (the watchdog's stdin is a pipe whose write end only the test
//! process holds; end-of-file on it means the test process is gone).
//!
//! Databases are named `vt_<pid>_<n>`, templates `vt_<pid>_tpl_<key>`. Before the first
//! database of a process is created, leftovers of test processes that no longer run are
//! dropped.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::str::FromStr as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

mod password;
pub use password::{PasswordPg, password_pg};
pub mod stack;

use tokio::sync::{Mutex, OnceCell};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls};

/// Port of the throwaway cluster. It listens on a Unix socket only, so this never clashes
/// with a server on the machine.
const CLUSTER_PORT: u16 = 5432;
/// How long to wait for a throwaway cluster to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `Drop for TestDb` waits for `DROP DATABASE` before giving up.
const DROP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs postgres and stops it when the test process exits.
///
/// Positional parameters: `$1` postgres binary, `$2` data directory, `$3` socket directory,
/// `$4` log file, `$5` directory to delete after postgres stopped, `$6` port, `$7` TCP listen
/// addresses (none when absent).
///
/// Our stdin is a pipe whose only write end is held by the test process (Rust opens pipes
/// close-on-exec, so no other child inherits it). The background subshell blocks reading it;
/// end-of-file means the test process exited (normally, by panic, or by SIGKILL). It then
/// sends SIGINT (fast shutdown) to postgres, waits for it to exit (escalating to SIGQUIT
/// after 10 s) and removes the temporary directory. The foreground shell waits for postgres,
/// so the test process sees this process exit if postgres dies on its own.
const WATCHDOG_SCRIPT: &str = r#"
exec 3<&0 </dev/null >>"$4" 2>&1
"$1" -D "$2" -k "$3" -p "$6" -c "listen_addresses=${7:-}" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 3<&- &
pg=$!
(
  cat <&3 >/dev/null
  kill -INT "$pg" 2>/dev/null
  i=0
  while kill -0 "$pg" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt 100 ]; then kill -QUIT "$pg" 2>/dev/null; fi
    sleep 0.1
  done
  rm -rf "$5"
) &
exec 3<&-
wait "$pg"
"#;

/// How tests reach Postgres: `DATABASE_URL`'s server, or a throwaway cluster started on
/// first use.
pub struct PgServer {
    /// Connection string without `dbname`.
    base: String,
    /// The same without the password, for messages.
    redacted: String,
    /// Database for administrative connections.
    maintenance_db: String,
    /// Present for a throwaway cluster.
    cluster: Option<Cluster>,
}

/// A throwaway cluster started by this process.
struct Cluster {
    /// Temporary directory: `data/`, the socket, `postgres.log`, `initdb.log`.
    dir: PathBuf,
    log: PathBuf,
    /// Write end of the watchdog's stdin; never dropped, so the pipe closes when the
    /// process exits.
    _keepalive: ChildStdin,
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
    fn describe(&self) -> String {
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
        let (base, redacted) = base_from_config(&config);
        PgServer {
            base,
            redacted,
            maintenance_db: config.get_dbname().unwrap_or("postgres").to_owned(),
            cluster: None,
        }
    }

    /// Starts the throwaway cluster; on failure returns an actionable message.
    async fn start_cluster() -> Result<PgServer, String> {
        let started = Instant::now();
        let spawned = tokio::task::spawn_blocking(init_and_spawn_cluster)
            .await
            .map_err(|e| format!("the cluster start-up task failed: {e}"))??;
        let Spawned {
            dir,
            mut child,
            command,
        } = spawned;
        let log = dir.join("postgres.log");
        let base = format!(
            "host={} port={CLUSTER_PORT} user=postgres",
            conn_value(&dir.to_string_lossy())
        );
        let url = format!("{base} dbname=postgres");
        let keepalive = child
            .stdin
            .take()
            .ok_or("the watchdog's stdin is not piped (testkit bug)")?;

        let deadline = started + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "the throwaway PostgreSQL cluster exited during startup ({status}).\n\
                     command: {command}\nlog: {}\n--- log ---\n{}",
                    log.display(),
                    read_log(&log)
                ));
            }
            let attempt =
                tokio::time::timeout(Duration::from_secs(2), tokio_postgres::connect(&url, NoTls))
                    .await;
            let last_error = match attempt {
                Ok(Ok((client, conn))) => {
                    drop(client);
                    let _ = conn.await;
                    break;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "connection attempt timed out".to_owned(),
            };
            if Instant::now() > deadline {
                // Dropping `keepalive` makes the watchdog stop postgres and delete the
                // directory, so copy the log into the message first.
                return Err(format!(
                    "the throwaway PostgreSQL cluster did not accept connections within \
                     {START_TIMEOUT:?} (last error: {last_error}).\ncommand: {command}\n\
                     connection: {url}\nlog: {}\n--- log ---\n{}",
                    log.display(),
                    read_log(&log)
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The child handle is dropped without killing or waiting: the watchdog lives on
        // until the test process exits.
        drop(child);
        Ok(PgServer {
            redacted: base.clone(),
            base,
            maintenance_db: "postgres".to_owned(),
            cluster: Some(Cluster {
                dir,
                log,
                _keepalive: keepalive,
            }),
        })
    }
}

/// Builds `host=... port=... user=... [password=...]` from a parsed config (and the same
/// without the password).
fn base_from_config(config: &Config) -> (String, String) {
    let mut parts: Vec<String> = Vec::new();
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

/// Quotes a value for a libpq key=value connection string when needed.
fn conn_value(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\');
    if plain {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Quotes an SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn read_log(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) if text.len() > 20_000 => format!("...{}", &text[text.len() - 20_000..]),
        Ok(text) => text,
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

/// Whether this process runs as root (owner of `/proc/self` is the effective uid).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A command that runs `program` as the `postgres` user when we are root (initdb and
/// postgres refuse to run as root).
fn pg_command(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Finds the directory holding `initdb` and `postgres`: `$TESTKIT_PG_BIN_DIR`, then `PATH`,
/// then the newest `/usr/lib/postgresql/<version>/bin`.
fn find_pg_bin_dir() -> Result<PathBuf, String> {
    let has_binaries = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("TESTKIT_PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        if !has_binaries(&dir) {
            return Err(format!(
                "TESTKIT_PG_BIN_DIR={} does not contain initdb and postgres",
                dir.display()
            ));
        }
        return Ok(dir);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in on_path {
        if has_binaries(&dir) {
            // Resolve symlinks (e.g. /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin).
            return Ok(std::fs::canonicalize(dir.join("initdb"))
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .filter(|d| has_binaries(d))
                .unwrap_or(dir));
        }
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = entry.path().join("bin");
            has_binaries(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir).ok_or_else(|| {
        "PostgreSQL server binaries (initdb, postgres) not found on PATH nor under \
         /usr/lib/postgresql/*/bin; install the PostgreSQL server or set TESTKIT_PG_BIN_DIR"
            .to_owned()
    })
}

/// A freshly spawned throwaway cluster.
struct Spawned {
    /// The temporary directory (data, socket, logs).
    dir: PathBuf,
    /// The watchdog (`runuser` or `sh`), stdin piped.
    child: std::process::Child,
    /// The command, for messages.
    command: String,
}

/// Creates the temporary directory, runs initdb and spawns postgres under the watchdog.
/// Blocking. On failure the directory is removed and an actionable message returned.
fn init_and_spawn_cluster() -> Result<Spawned, String> {
    let bin = find_pg_bin_dir()?;
    let as_postgres = running_as_root();

    // Unix socket paths are limited to ~107 bytes: fall back to /tmp if TMPDIR is long.
    let mut builder = tempfile::Builder::new();
    builder.prefix("testkit-pg-");
    let tmp = builder
        .tempdir()
        .ok()
        .filter(|t| t.path().as_os_str().len() <= 80)
        .map_or_else(|| builder.tempdir_in("/tmp"), Ok)
        .map_err(|e| format!("could not create a temporary directory: {e}"))?;
    // Kept for the life of the process; the watchdog deletes it after postgres stopped.
    let dir = tmp.keep();
    let result = init_and_spawn_in(&bin, &dir, as_postgres);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map(|(child, command)| Spawned {
        dir,
        child,
        command,
    })
}

fn init_and_spawn_in(
    bin: &Path,
    dir: &Path,
    as_postgres: bool,
) -> Result<(std::process::Child, String), String> {
    let data = dir.join("data");
    let log = dir.join("postgres.log");

    if as_postgres {
        let mut chown = Command::new("chown");
        chown.arg("postgres").arg(dir);
        match chown.output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                return Err(format!(
                    "running as root, could not give the cluster directory to the postgres \
                     user: {chown:?} failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Err(e) => return Err(format!("could not run {chown:?}: {e}")),
        }
    }

    let mut initdb = pg_command(as_postgres, &bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .current_dir(dir)
        .stdin(Stdio::null());
    match initdb.output() {
        Ok(out) if out.status.success() => {
            let _ = std::fs::write(dir.join("initdb.log"), [out.stdout, out.stderr].concat());
        }
        Ok(out) => {
            return Err(format!(
                "initdb failed ({}): {initdb:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            ));
        }
        Err(e) => {
            return Err(format!(
                "could not run {initdb:?}: {e}{}",
                if as_postgres {
                    " (running as root: runuser and a `postgres` user are required)"
                } else {
                    ""
                }
            ));
        }
    }

    let postgres = bin.join("postgres");
    let command = format!(
        "{}{} -D {} -k {} -p {CLUSTER_PORT} -c listen_addresses= -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
         (under a watchdog shell)",
        if as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        },
        postgres.display(),
        data.display(),
        dir.display()
    );
    let mut watchdog = pg_command(as_postgres, Path::new("/bin/sh"));
    watchdog
        .arg("-c")
        .arg(WATCHDOG_SCRIPT)
        .arg("testkit-pg-watchdog")
        .arg(&postgres)
        .arg(&data)
        .arg(dir)
        .arg(&log)
        .arg(dir)
        .arg(CLUSTER_PORT.to_string())
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = watchdog
        .spawn()
        .map_err(|e| format!("could not start postgres: {command}: {e}"))?;
    Ok((child, command))
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

static SWEPT: OnceCell<()> = OnceCell::const_new();
/// Serializes `CREATE DATABASE` (cloning fails if the template is in use).
static CREATE_LOCK: Mutex<()> = Mutex::const_new(());
/// Per-process template database names, by template key.
static TEMPLATES: std::sync::Mutex<BTreeMap<String, Arc<OnceCell<String>>>> =
    std::sync::Mutex::new(BTreeMap::new());
static COUNTER: AtomicU64 = AtomicU64::new(1);

/// The server, after leftovers of dead test processes have been dropped.
async fn prepared_server() -> &'static PgServer {
    let server = pg_server().await;
    SWEPT.get_or_init(|| sweep(server)).await;
    server
}

/// Drops `vt_<pid>_*` databases whose process no longer runs (or that carry our own pid,
/// which can only come from an earlier process with a reused pid: this runs before we
/// create anything). Best effort.
async fn sweep(server: &PgServer) {
    let admin = server.admin().await;
    let Ok(rows) = admin
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'vt\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    let me = std::process::id();
    for row in rows {
        let name: String = row.get(0);
        let Some(pid) = name
            .strip_prefix("vt_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me || !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    ident(&name)
                ))
                .await;
        }
    }
}

/// Connects and spawns the connection task on the current runtime.
async fn connect(url: &str, what: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("testkit: could not connect to the {what}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// `CREATE DATABASE name TEMPLATE template`, serialized within the process.
async fn create_database(server: &PgServer, name: &str, template: &str) {
    let admin = server.admin().await;
    let sql = format!(
        "CREATE DATABASE {} TEMPLATE {}",
        ident(name),
        ident(template)
    );
    let _guard = CREATE_LOCK.lock().await;
    if let Err(e) = admin.batch_execute(&sql).await {
        let detail = e
            .as_db_error()
            .map(|d| {
                format!(
                    "{}{}",
                    d.message(),
                    d.detail().map(|s| format!(" ({s})")).unwrap_or_default()
                )
            })
            .unwrap_or_else(|| e.to_string());
        let hint = if detail.contains("being accessed by other users") {
            "\nhint: the template's migrate closure must close every connection it opened \
             (drop the client and await the connection task) before returning"
        } else {
            ""
        };
        panic!(
            "testkit: `{sql}` failed on {}: {detail}{hint}",
            server.describe()
        );
    }
}

/// Template database name for a key: `vt_<pid>_tpl_<key>` with the key reduced to
/// `[a-z0-9_]` (plus a hash of the original when that changed it or it was too long).
fn template_name(key: &str) -> String {
    let mut clean: String = key
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_') => c,
            _ => '_',
        })
        .collect();
    if clean != key || clean.is_empty() || clean.len() > 40 {
        let mut hasher = std::hash::DefaultHasher::new();
        key.hash(&mut hasher);
        clean.truncate(30);
        clean = format!("{clean}_{:08x}", hasher.finish() as u32);
    }
    format!("vt_{}_tpl_{clean}", std::process::id())
}

/// A fresh database for one test, cloned from a per-process template migrated once.
/// Dropping it drops the database.
pub struct TestDb {
    name: String,
    url: String,
    admin_url: String,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb").field("name", &self.name).finish()
    }
}

impl TestDb {
    /// A database cloned from the template named by `template_key` (e.g. `"credentials"`).
    ///
    /// `migrate` is called once per process per key, with the template database's
    /// connection string; it must leave no connection open (a template cannot be cloned
    /// while in use). If it panics, the next `create` with the same key starts over.
    pub async fn create<F, Fut>(template_key: &str, migrate: F) -> TestDb
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = ()>,
    {
        let server = prepared_server().await;
        let cell = TEMPLATES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(template_key.to_owned())
            .or_default()
            .clone();
        let template = cell
            .get_or_init(|| async {
                let template = template_name(template_key);
                // A previous attempt in this process may have panicked half-way.
                let admin = server.admin().await;
                let _ = admin
                    .batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        ident(&template)
                    ))
                    .await;
                drop(admin);
                create_database(server, &template, "template0").await;
                migrate(server.url(&template)).await;
                template
            })
            .await;
        Self::clone_from(server, template).await
    }

    /// A database with nothing in it (a copy of `template0`).
    pub async fn empty() -> TestDb {
        let server = prepared_server().await;
        Self::clone_from(server, "template0").await
    }

    async fn clone_from(server: &'static PgServer, template: &str) -> TestDb {
        let name = format!(
            "vt_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        create_database(server, &name, template).await;
        TestDb {
            url: server.url(&name),
            admin_url: server.url(&server.maintenance_db),
            name,
        }
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connection string (libpq key=value form) for this database.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A client connected to this database; its connection task is spawned on the current
    /// runtime.
    pub async fn client(&self) -> Client {
        connect(&self.url, &format!("test database {}", self.name)).await
    }
}

impl Drop for TestDb {
    /// Drops the database (`WITH (FORCE)`, so open connections do not prevent it), from a
    /// separate thread with its own runtime so it works whatever runtime the test used.
    /// Waits for it (at most 30 s). Best effort: failures are reported on stderr.
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin_url = self.admin_url.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("testkit-dropdb".to_owned())
            .spawn(move || {
                let result = drop_database(&admin_url, &name);
                let _ = tx.send(result);
            });
        let outcome = match spawned {
            Err(e) => Err(format!("could not spawn a thread: {e}")),
            Ok(_) => match rx.recv_timeout(DROP_TIMEOUT) {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {DROP_TIMEOUT:?}")),
            },
        };
        if let Err(e) = outcome {
            let _ = writeln!(
                std::io::stderr(),
                "testkit: could not drop test database {}: {e}",
                self.name
            );
        }
    }
}

fn drop_database(admin_url: &str, name: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not build a runtime: {e}"))?;
    runtime.block_on(async {
        let (client, conn) = tokio_postgres::connect(admin_url, NoTls)
            .await
            .map_err(|e| format!("could not connect: {e}"))?;
        let conn = tokio::spawn(conn);
        let result = client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                ident(name)
            ))
            .await
            .map_err(|e| e.to_string());
        drop(client);
        let _ = conn.await;
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_with_password_keeps_it_and_replaces_dbname() {
        let config = Config::from_str("postgresql://alice:p%40ss%20w'o%5Crd@db.example:6543/maint")
            .expect("valid url");
        let (base, redacted) = base_from_config(&config);
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
        let (base, _) = base_from_config(&config);
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
    fn template_names_are_sanitized_and_distinct() {
        let pid = std::process::id();
        assert_eq!(
            template_name("credentials"),
            format!("vt_{pid}_tpl_credentials")
        );
        let a = template_name("Cred-Store");
        let b = template_name("cred_store");
        assert_ne!(a, b);
        for name in [&a, &b, &template_name(&"x".repeat(200)), &template_name("")] {
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
        }
    }
}
