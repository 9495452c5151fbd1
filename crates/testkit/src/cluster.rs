//! The one launcher of throwaway PostgreSQL clusters: `initdb` into a temporary directory, then
//! `postgres` under a watchdog shell that stops it and deletes the directory when the test
//! process exits, however it exits.
//!
//! The watchdog's stdin is a pipe whose write end only the test process holds (Rust opens pipes
//! close-on-exec, so no other child inherits it); end-of-file on it means the test process is
//! gone. Both clusters of testkit (the trust one of [`crate::pg_server`] and the password one of
//! [`crate::password_pg`]) start here and differ only in their [`Spec`].

use crate::quote::conn_value;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

/// How long to wait for a throwaway cluster to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The port of a cluster that listens on its Unix socket only: nothing else listens in its
/// private directory, so the default port never clashes.
const SOCKET_ONLY_PORT: u16 = 5432;

/// Runs postgres and stops it when the test process exits.
///
/// Positional parameters: `$1` postgres binary, `$2` data directory, `$3` socket directory,
/// `$4` log file, `$5` directory to delete after postgres stopped, `$6` port, `$7` TCP listen
/// addresses (none when empty).
///
/// The background subshell blocks reading our stdin; end-of-file means the test process exited
/// (normally, by panic, or by SIGKILL). It then sends SIGINT (fast shutdown) to postgres, waits
/// for it to exit (escalating to SIGQUIT after 10 s) and removes the temporary directory. The
/// foreground shell waits for postgres, so the test process sees this process exit if postgres
/// dies on its own.
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

/// What differs between the clusters testkit starts.
pub(crate) struct Spec {
    /// Prefix of the temporary directory's name (it shows in `ps` and in messages).
    pub prefix: &'static str,
    /// The superuser's password: `None` for `trust` authentication, `Some` for
    /// `scram-sha-256` (a server that trusts connections ignores passwords).
    pub password: Option<String>,
    /// Listen on a free TCP port of 127.0.0.1 too, not only on the Unix socket.
    pub tcp: bool,
}

/// A throwaway cluster started by this process; it lives until the process exits.
pub(crate) struct Cluster {
    /// Temporary directory: `data/`, the socket, `postgres.log`, `initdb.log`.
    pub dir: PathBuf,
    /// The postgres log.
    pub log: PathBuf,
    /// Connection string of the superuser without `dbname`.
    pub base: String,
    /// The TCP port on 127.0.0.1 (with [`Spec::tcp`]), else the socket's port number.
    pub port: u16,
    /// Write end of the watchdog's stdin; never dropped, so the pipe closes when the process
    /// exits.
    _keepalive: ChildStdin,
}

/// A cluster spawned, not yet accepting connections.
struct Spawned {
    dir: PathBuf,
    port: u16,
    /// The watchdog (`runuser` or `sh`), stdin piped.
    child: Child,
    /// The command, for messages.
    command: String,
}

/// Starts a cluster as `spec` says. `configure` runs after `initdb` and before the start, with
/// the data directory and whether the server runs as the `postgres` user (we are root), and
/// returns what the caller needs (e.g. a CA). On failure returns an actionable message.
pub(crate) async fn launch<T, F>(spec: Spec, configure: F) -> Result<(Cluster, T), String>
where
    T: Send + 'static,
    F: FnOnce(&Path, bool) -> Result<T, String> + Send + 'static,
{
    let started = Instant::now();
    let password = spec.password.clone();
    let tcp = spec.tcp;
    let (spawned, extra) = tokio::task::spawn_blocking(move || init_and_spawn(&spec, configure))
        .await
        .map_err(|e| format!("the cluster start-up task failed: {e}"))??;
    let Spawned {
        dir,
        port,
        mut child,
        command,
    } = spawned;
    let log = dir.join("postgres.log");
    let host = if tcp {
        "127.0.0.1".to_owned()
    } else {
        conn_value(&dir.to_string_lossy())
    };
    let mut base = format!("host={host} port={port} user=postgres");
    if let Some(password) = &password {
        base.push_str(&format!(" password={}", conn_value(password)));
    }
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
            // Dropping `keepalive` makes the watchdog stop postgres and delete the directory,
            // so copy the log into the message first.
            return Err(format!(
                "the throwaway PostgreSQL cluster did not accept connections within \
                 {START_TIMEOUT:?} (last error: {last_error}).\ncommand: {command}\n\
                 log: {}\n--- log ---\n{}",
                log.display(),
                read_log(&log)
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The child handle is dropped without killing or waiting: the watchdog lives on until the
    // test process exits.
    drop(child);
    let cluster = Cluster {
        dir,
        log,
        base,
        port,
        _keepalive: keepalive,
    };
    Ok((cluster, extra))
}

/// Creates the temporary directory, runs initdb and `configure`, and spawns postgres under the
/// watchdog. Blocking. On failure the directory is removed.
fn init_and_spawn<T>(
    spec: &Spec,
    configure: impl FnOnce(&Path, bool) -> Result<T, String>,
) -> Result<(Spawned, T), String> {
    let bin = find_pg_bin_dir()?;
    let as_postgres = running_as_root();

    // Unix socket paths are limited to ~107 bytes: fall back to /tmp if TMPDIR is long.
    let mut builder = tempfile::Builder::new();
    builder.prefix(spec.prefix);
    let tmp = builder
        .tempdir()
        .ok()
        .filter(|t| t.path().as_os_str().len() <= 80)
        .map_or_else(|| builder.tempdir_in("/tmp"), Ok)
        .map_err(|e| format!("could not create a temporary directory: {e}"))?;
    // Kept for the life of the process; the watchdog deletes it after postgres stopped.
    let dir = tmp.keep();
    let result = init_and_spawn_in(spec, &bin, &dir, as_postgres, configure);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map(|(child, port, command, extra)| {
        (
            Spawned {
                dir,
                port,
                child,
                command,
            },
            extra,
        )
    })
}

fn init_and_spawn_in<T>(
    spec: &Spec,
    bin: &Path,
    dir: &Path,
    as_postgres: bool,
    configure: impl FnOnce(&Path, bool) -> Result<T, String>,
) -> Result<(Child, u16, String, T), String> {
    let data = dir.join("data");
    let log = dir.join("postgres.log");
    let pwfile = dir.join("pwfile");
    if let Some(password) = &spec.password {
        std::fs::write(&pwfile, format!("{password}\n"))
            .map_err(|e| format!("could not write {}: {e}", pwfile.display()))?;
    }
    if as_postgres {
        run(Command::new("chown").arg("-R").arg("postgres").arg(dir)).map_err(|e| {
            format!(
                "running as root, could not give the cluster directory to the postgres user: {e}"
            )
        })?;
    }

    let mut initdb = pg_command(as_postgres, &bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"])
        .current_dir(dir)
        .stdin(Stdio::null());
    match &spec.password {
        Some(_) => initdb
            .args(["-A", "scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display())),
        None => initdb.args(["-A", "trust"]),
    };
    let out = initdb.output().map_err(|e| {
        format!(
            "could not run {initdb:?}: {e}{}",
            if as_postgres {
                " (running as root: runuser and a `postgres` user are required)"
            } else {
                ""
            }
        )
    })?;
    let _ = std::fs::remove_file(&pwfile);
    if !out.status.success() {
        return Err(format!(
            "initdb failed ({}): {initdb:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        ));
    }
    let _ = std::fs::write(dir.join("initdb.log"), [out.stdout, out.stderr].concat());

    let extra = configure(&data, as_postgres)?;

    let (port, listen) = if spec.tcp {
        // A free port: bound then released; postgres takes it a moment later.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("could not find a free port: {e}"))?
            .port();
        (port, "127.0.0.1")
    } else {
        (SOCKET_ONLY_PORT, "")
    };
    let postgres = bin.join("postgres");
    let command = format!(
        "{}{} -D {} -k {} -p {port} -c listen_addresses={listen} -c fsync=off \
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
    let child = pg_command(as_postgres, Path::new("/bin/sh"))
        .arg("-c")
        .arg(WATCHDOG_SCRIPT)
        .arg("testkit-pg-watchdog")
        .arg(&postgres)
        .arg(&data)
        .arg(dir)
        .arg(&log)
        .arg(dir)
        .arg(port.to_string())
        .arg(listen)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start postgres: {command}: {e}"))?;
    Ok((child, port, command, extra))
}

/// Runs a command to completion; a failure carries its output.
pub(crate) fn run(cmd: &mut Command) -> Result<(), String> {
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("could not run {cmd:?}: {e}")),
    }
}

/// The last 20 kB of a log, for messages.
pub(crate) fn read_log(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) if text.len() > 20_000 => {
            let mut start = text.len() - 20_000;
            while !text.is_char_boundary(start) {
                start += 1;
            }
            format!("...{}", &text[start..])
        }
        Ok(text) => text,
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

/// Whether this process runs as root (owner of `/proc/self` is the effective uid).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A command that runs `program` as the `postgres` user when we are root (initdb and postgres
/// refuse to run as root).
fn pg_command(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// What to do when the server binaries are missing; the tests cannot install a system package
/// themselves (it needs root and the machine's package manager), so the message says how.
const MISSING_BINARIES: &str = "PostgreSQL server binaries (initdb, postgres) not found on PATH \
     nor under /usr/lib/postgresql/*/bin. Install the server: `apt-get install -y postgresql` \
     (Debian, Ubuntu), `dnf install -y postgresql-server` (Fedora, RHEL) or \
     `brew install postgresql@15` (macOS); or set TESTKIT_PG_BIN_DIR to the directory holding \
     initdb and postgres";

/// Finds the directory holding `initdb` and `postgres`: `$TESTKIT_PG_BIN_DIR`, then `PATH`,
/// then the newest `/usr/lib/postgresql/<version>/bin`.
fn find_pg_bin_dir() -> Result<PathBuf, String> {
    bin_dir_in(
        std::env::var_os("TESTKIT_PG_BIN_DIR"),
        std::env::var_os("PATH"),
        Path::new("/usr/lib/postgresql"),
    )
}

/// [`find_pg_bin_dir`] with its inputs given.
fn bin_dir_in(
    override_dir: Option<OsString>,
    path: Option<OsString>,
    versions_dir: &Path,
) -> Result<PathBuf, String> {
    let has_binaries = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = override_dir {
        let dir = PathBuf::from(dir);
        if !has_binaries(&dir) {
            return Err(format!(
                "TESTKIT_PG_BIN_DIR={} does not contain initdb and postgres",
                dir.display()
            ));
        }
        return Ok(dir);
    }
    let on_path = path
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
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(versions_dir)
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
    versions
        .pop()
        .map(|(_, dir)| dir)
        .ok_or_else(|| MISSING_BINARIES.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_bin(dir: &Path) {
        std::fs::create_dir_all(dir).expect("mkdir");
        for name in ["initdb", "postgres"] {
            std::fs::write(dir.join(name), "").expect("write");
        }
    }

    #[test]
    fn missing_binaries_say_how_to_install_them() {
        let empty = tempfile::tempdir().expect("tempdir");
        let err = bin_dir_in(None, Some(empty.path().into()), empty.path()).unwrap_err();
        assert_eq!(err, MISSING_BINARIES);
        assert!(err.contains("apt-get install -y postgresql"), "{err}");

        let err = bin_dir_in(Some(empty.path().into()), None, empty.path()).unwrap_err();
        assert!(
            err.contains("does not contain initdb and postgres"),
            "{err}"
        );
    }

    #[test]
    fn the_override_then_path_then_the_newest_version_is_used() {
        let root = tempfile::tempdir().expect("tempdir");
        let lib = root.path().join("lib");
        for version in ["9.6", "15", "13"] {
            fake_bin(&lib.join(version).join("bin"));
        }
        let newest = bin_dir_in(None, None, &lib).expect("found");
        assert_eq!(newest, lib.join("15").join("bin"));

        let on_path = root.path().join("path-bin");
        fake_bin(&on_path);
        let path =
            std::env::join_paths([root.path().join("nothing"), on_path.clone()]).expect("join");
        assert_eq!(bin_dir_in(None, Some(path), &lib).expect("found"), on_path);

        let chosen = root.path().join("chosen");
        fake_bin(&chosen);
        assert_eq!(
            bin_dir_in(Some(chosen.clone().into()), None, &lib).expect("found"),
            chosen
        );
    }
}
