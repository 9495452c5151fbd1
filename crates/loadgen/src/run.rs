//! Seeding, finding credentials to pick from, and the timed run itself.

use crate::client::{Clients, Failure, authed, code_name, describe, secret_value};
use crate::config::Cli;
use crate::mix::{Mix, Op};
use crate::rng::Rng;
use crate::stats::{DepthBand, Label, Recorder, Report, RunInfo};
use credentials_proto::credentials::v1::{
    AccessCredentialRequest, GetCredentialRequest, ListCredentialsRequest, UpdateCredentialRequest,
    access_credential_request::Selector,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinSet;
use tonic::Status;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

/// What every worker shares.
struct Shared {
    workspaces: Vec<String>,
    authorizations: Vec<MetadataValue<Ascii>>,
    /// Credential ids to pick from, per workspace (empty when the mix needs none).
    ids: Vec<Vec<String>>,
    mix: Mix,
    page_size: u32,
    list_depth: u32,
    credential_type: String,
    /// Makes created names unique across runs against the same database.
    run_id: String,
    warm_end: Instant,
    /// End of the measured window in duration mode.
    end: Option<Instant>,
    /// Measured requests still to start in request-count mode.
    remaining: Option<AtomicU64>,
}

/// The state of one list walk: the page to fetch next and how deep this walk goes.
struct Walk {
    token: String,
    depth: u32,
    target: u32,
}

/// One worker: one workspace, one request in flight.
struct Worker {
    shared: Arc<Shared>,
    workspace: usize,
    index: usize,
    clients: Clients,
    rng: Rng,
    walk: Option<Walk>,
    sequence: u64,
}

impl Worker {
    async fn run(mut self) -> Recorder {
        let mut recorder = Recorder::default();
        loop {
            let start = Instant::now();
            if self.shared.end.is_some_and(|end| start >= end) {
                break;
            }
            let measured = start >= self.shared.warm_end;
            if measured
                && let Some(remaining) = &self.shared.remaining
                && remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_err()
            {
                break;
            }
            let op = self.shared.mix.pick(self.rng.next_u64());
            let (label, result) = self.perform(op).await;
            let done = Instant::now();
            if measured {
                match result {
                    Ok(()) => recorder.ok(label, done - start, done),
                    Err(status) => recorder.error(label, code_name(status.code()), done),
                }
            }
        }
        recorder
    }

    fn pick_id(&mut self) -> String {
        let ids = &self.shared.ids[self.workspace];
        ids[self.rng.below(ids.len() as u64) as usize].clone()
    }

    async fn perform(&mut self, op: Op) -> (Label, Result<(), Status>) {
        let shared = Arc::clone(&self.shared);
        let workspace = &shared.workspaces[self.workspace];
        let authorization = &shared.authorizations[self.workspace];
        let plain = Label { op, band: None };
        match op {
            Op::Access => {
                let request = AccessCredentialRequest {
                    workspace_id: workspace.clone(),
                    selector: Some(Selector::Id(self.pick_id())),
                };
                let result = self
                    .clients
                    .access
                    .access_credential(authed(request, authorization))
                    .await
                    .and_then(|r| {
                        if r.get_ref().secret.is_empty() {
                            Err(Status::internal(
                                "AccessCredential answered without a secret",
                            ))
                        } else {
                            Ok(())
                        }
                    });
                (plain, result)
            }
            Op::Get => {
                let request = GetCredentialRequest {
                    workspace_id: workspace.clone(),
                    id: self.pick_id(),
                };
                let result = self
                    .clients
                    .credentials
                    .get_credential(authed(request, authorization))
                    .await
                    .map(drop);
                (plain, result)
            }
            Op::HttpGet => {
                let path = format!("/v1/workspaces/{workspace}/credentials/{}", self.pick_id());
                (plain, self.clients.http.get(&path, authorization).await)
            }
            Op::Update => {
                let request = UpdateCredentialRequest {
                    workspace_id: workspace.clone(),
                    id: self.pick_id(),
                    value: Some(secret_value(&mut self.rng)),
                    ..Default::default()
                };
                let result = self
                    .clients
                    .credentials
                    .update_credential(authed(request, authorization))
                    .await
                    .map(drop);
                (plain, result)
            }
            Op::Create => {
                self.sequence += 1;
                let name = format!("lg-{}-{}-{}", shared.run_id, self.index, self.sequence);
                let result = self
                    .clients
                    .create(
                        authorization,
                        workspace,
                        name,
                        &shared.credential_type,
                        &mut self.rng,
                    )
                    .await
                    .map(drop);
                (plain, result)
            }
            Op::List => {
                let (token, depth, target) = match self.walk.take() {
                    Some(walk) => (walk.token, walk.depth, walk.target),
                    None => (
                        String::new(),
                        0,
                        self.rng.below(u64::from(shared.list_depth) + 1) as u32,
                    ),
                };
                let request = ListCredentialsRequest {
                    workspace_id: workspace.clone(),
                    page_size: shared.page_size as i32,
                    page_token: token,
                    ..Default::default()
                };
                let result = self
                    .clients
                    .credentials
                    .list_credentials(authed(request, authorization))
                    .await
                    .map(|page| {
                        let next = page.into_inner().next_page_token;
                        if depth < target && !next.is_empty() {
                            self.walk = Some(Walk {
                                token: next,
                                depth: depth + 1,
                                target,
                            });
                        }
                    });
                let band = (shared.list_depth > 0).then(|| DepthBand::of(depth));
                (Label { op, band }, result)
            }
        }
    }
}

/// A name part unique to this process run.
fn run_id() -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or_default();
    format!("{:x}{:x}", micros, std::process::id())
}

/// Creates `cli.seed` credentials round-robin over the workspaces with `cli.seed_concurrency`
/// requests in flight; returns the ids per workspace. The first failure stops everything.
pub async fn seed(
    cli: &Cli,
    channels: &[Channel],
    workspaces: &[String],
    authorizations: &[MetadataValue<Ascii>],
) -> Result<Vec<Vec<String>>, Failure> {
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let run = Arc::new(run_id());
    let workspaces_arc: Arc<Vec<String>> = Arc::new(workspaces.to_vec());
    let auths: Arc<Vec<MetadataValue<Ascii>>> = Arc::new(authorizations.to_vec());
    let mut tasks = JoinSet::new();
    for task in 0..cli.seed_concurrency as usize {
        let mut clients = Clients::new(channels[task % channels.len()].clone(), &cli.http_target);
        let next = Arc::clone(&next);
        let run = Arc::clone(&run);
        let workspaces = Arc::clone(&workspaces_arc);
        let auths = Arc::clone(&auths);
        let total = cli.seed;
        let credential_type = cli.credential_type.clone();
        let mut rng = Rng::new(cli.rng_seed.unwrap_or(0) ^ 0x5eed ^ task as u64);
        tasks.spawn(async move {
            let mut made: Vec<(usize, String)> = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= total {
                    return Ok(made);
                }
                let w = (k % workspaces.len() as u64) as usize;
                let name = format!("seed-{run}-{k}");
                let id = clients
                    .create(&auths[w], &workspaces[w], name, &credential_type, &mut rng)
                    .await
                    .map_err(|s| {
                        format!("seeding in workspace {}: {}", workspaces[w], describe(&s))
                    })?;
                made.push((w, id));
            }
        });
    }
    let mut ids = vec![Vec::new(); workspaces.len()];
    while let Some(joined) = tasks.join_next().await {
        let made = joined
            .map_err(|e| Failure::setup(format!("a seeding task failed: {e}")))?
            .map_err(|message: String| {
                Failure::setup(format!(
                    "{message} (after {} of {} credentials)",
                    next.load(Ordering::Relaxed).min(cli.seed),
                    cli.seed
                ))
            });
        let made = match made {
            Ok(made) => made,
            Err(failure) => {
                tasks.abort_all();
                return Err(failure);
            }
        };
        for (w, id) in made {
            ids[w].push(id);
        }
    }
    if cli.verbose {
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "loadgen: seeded {} credentials across {} workspaces in {secs:.2} s ({:.0}/s)",
            cli.seed,
            workspaces.len(),
            cli.seed as f64 / secs.max(f64::MIN_POSITIVE)
        );
    }
    Ok(ids)
}

/// Up to `cli.pick_from` existing ids per workspace, listed concurrently.
async fn discover(
    cli: &Cli,
    channel: &Channel,
    workspaces: &[String],
    authorizations: &[MetadataValue<Ascii>],
) -> Result<Vec<Vec<String>>, Failure> {
    let mut tasks = JoinSet::new();
    for (w, workspace) in workspaces.iter().enumerate() {
        let mut clients = Clients::new(channel.clone(), &cli.http_target);
        let workspace = workspace.clone();
        let authorization = authorizations[w].clone();
        let limit = cli.pick_from as usize;
        tasks.spawn(async move {
            let ids = clients.list_ids(&authorization, &workspace, limit).await;
            (w, workspace, ids)
        });
    }
    let mut ids = vec![Vec::new(); workspaces.len()];
    while let Some(joined) = tasks.join_next().await {
        let (w, workspace, found) =
            joined.map_err(|e| Failure::setup(format!("a listing task failed: {e}")))?;
        let found = found.map_err(|s| {
            Failure::setup(format!(
                "cannot list the credentials of workspace {workspace}: {}",
                describe(&s)
            ))
        })?;
        if found.is_empty() {
            return Err(Failure::setup(format!(
                "workspace {workspace} has no credentials for get, update or access to pick \
                 from: pass --seed N"
            )));
        }
        ids[w] = found;
    }
    Ok(ids)
}

/// CPU seconds this process has used (user + system), from /proc/self/stat.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux architecture loadgen runs on.
    Some((utime + stime) / 100.0)
}

/// What a successful invocation did.
#[derive(Debug)]
pub enum Outcome {
    /// `--seed-only`: created credentials, no run.
    Seeded {
        /// Credentials created.
        count: u64,
        /// Over this many workspaces.
        workspaces: usize,
        /// How long it took.
        seconds: f64,
    },
    /// A measured run.
    Ran(Report),
}

/// Everything: connect, tokens, seed, find credentials, run, report.
pub async fn main(cli: Cli) -> Result<Outcome, Failure> {
    let mix = cli.effective_mix();
    let workspaces = cli.workspace_list();
    let connections = cli.effective_connections();
    let channels = connect(&cli, connections).await?;
    let authorizations = crate::client::authorizations(&cli, &workspaces)?;

    let needs_ids = Op::ALL
        .iter()
        .any(|op| op.needs_existing() && mix.contains(*op));
    let ids = if cli.seed > 0 {
        let started = Instant::now();
        let ids = seed(&cli, &channels, &workspaces, &authorizations).await?;
        if cli.seed_only {
            return Ok(Outcome::Seeded {
                count: cli.seed,
                workspaces: workspaces.len(),
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        ids
    } else if cli.seed_only {
        return Err(Failure::setup("--seed-only needs --seed N"));
    } else if needs_ids {
        // The benchmark's floor answers only GetCredential: its ids come from the API.
        let listing = match &cli.discover_from {
            Some(url) => crate::client::connect(&cli, "discover-from", url, 1).await?,
            None => vec![channels[0].clone()],
        };
        discover(&cli, &listing[0], &workspaces, &authorizations).await?
    } else {
        vec![Vec::new(); workspaces.len()]
    };
    if needs_ids {
        // Only the workspaces that have workers need credentials.
        let used = workspaces.len().min(cli.concurrency as usize);
        if let Some(empty) = ids[..used].iter().position(Vec::is_empty) {
            return Err(Failure::setup(format!(
                "workspace {} got no seeded credentials: seed at least one per workspace",
                workspaces[empty]
            )));
        }
    }

    let t0 = Instant::now();
    let warm_end = t0 + cli.warmup;
    let shared = Arc::new(Shared {
        workspaces: workspaces.clone(),
        authorizations,
        ids,
        mix: mix.clone(),
        page_size: cli.page_size,
        list_depth: cli.list_depth,
        credential_type: cli.credential_type.clone(),
        run_id: run_id(),
        warm_end,
        end: cli.requests.is_none().then_some(warm_end + cli.duration),
        remaining: cli.requests.map(AtomicU64::new),
    });
    let base_seed = cli.rng_seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let mut workers = JoinSet::new();
    for index in 0..cli.concurrency as usize {
        let worker = Worker {
            shared: Arc::clone(&shared),
            workspace: index % workspaces.len(),
            index,
            clients: Clients::new(channels[index % channels.len()].clone(), &cli.http_target),
            rng: Rng::new(base_seed ^ (index as u64).wrapping_mul(0xA24B_AED4_963E_E407)),
            walk: None,
            sequence: 0,
        };
        workers.spawn(worker.run());
    }
    let cpu_at_warm_end = tokio::spawn(async move {
        tokio::time::sleep_until(warm_end.into()).await;
        process_cpu_seconds()
    });

    let mut recorder = Recorder::default();
    while let Some(joined) = workers.join_next().await {
        let worker = joined.map_err(|e| Failure::setup(format!("a worker failed: {e}")))?;
        recorder.merge(worker);
    }
    let cpu_end = process_cpu_seconds();
    let cpu_start = cpu_at_warm_end.await.ok().flatten();
    let window = recorder.last_done.map_or(cli.duration, |last| {
        last.saturating_duration_since(warm_end)
    });
    let client_cpu_s = cpu_start.zip(cpu_end).map(|(a, b)| (b - a).max(0.0));
    let info = RunInfo {
        label: cli.label.clone(),
        target: cli.target.clone(),
        mix: mix.to_string(),
        concurrency: cli.concurrency,
        connections,
        warmup: cli.warmup,
        list_depth: cli.list_depth,
        page_size: cli.page_size,
    };
    Ok(Outcome::Ran(Report::new(
        info,
        &recorder,
        window,
        client_cpu_s,
    )))
}

async fn connect(cli: &Cli, connections: u32) -> Result<Vec<Channel>, Failure> {
    let channels = crate::client::connect(cli, "target", &cli.target, connections).await?;
    if cli.verbose {
        eprintln!(
            "loadgen: {} connection(s) open to {}",
            channels.len(),
            cli.target
        );
    }
    Ok(channels)
}
