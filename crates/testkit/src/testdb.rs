//! A fresh database per test: `CREATE DATABASE ... TEMPLATE` from a template migrated once per
//! process and key, dropped when the test's [`TestDb`] is dropped.
//!
//! Databases are named `vt_<pid>_<n>`, templates `vt_<pid>_tpl_<key>`. Before the first
//! database of a process is created, leftovers of test processes that no longer run are
//! dropped (the sweep).

use crate::quote::ident;
use crate::server::{PgServer, connect, pg_server};
use std::collections::BTreeMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::sync::{Mutex, OnceCell};
use tokio_postgres::{Client, NoTls};

/// How long `Drop for TestDb` waits for `DROP DATABASE` before giving up.
const DROP_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// connection string. A template cannot be cloned while in use, so `create` then waits
    /// until the connections `migrate` opened are gone (a closed pool ends them
    /// asynchronously). If it panics, the next `create` with the same key starts over.
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
                wait_until_unused(server, &template).await;
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

/// Waits until no session is connected to `dbname`: it is about to be cloned.
async fn wait_until_unused(server: &PgServer, dbname: &str) {
    let admin = server.admin().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let sessions: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                &[&dbname],
            )
            .await
            .unwrap_or_else(|e| panic!("testkit: count the sessions of {dbname}: {e}"))
            .get(0);
        if sessions == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "testkit: {dbname} still has {sessions} session(s) after its migration: \
             close every connection the migration opened"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
