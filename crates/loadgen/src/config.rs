//! The `loadgen` command line. The main flags have environment-variable fallbacks; every flag
//! has a doc line that `--help` shows.

use crate::mix::{Mix, Op};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// Drives a running credentials-api over gRPC with real tokens at a given concurrency, and
/// reports throughput, latency percentiles (p50/p90/p99/p99.9/max) and errors by status code.
///
/// Each worker keeps one request in flight and belongs to one workspace (worker i acts in
/// workspace i mod M). get, update and access pick a random credential of the worker's
/// workspace: the ones --seed created, or else up to --pick-from existing ones found by listing.
/// Requests that start during --warmup are sent but not counted.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    version,
    after_help = "Exit status: 0 done; 1 bad arguments or a failed setup step (token, seeding, \
                  no credentials to pick from); 2 the target is unreachable at start; 3 more \
                  requests failed than --max-error-rate allows.\n\n\
                  Examples:\n  \
                  loadgen --hs256-secret-file .dev/jwt-secret --seed 1000 --op access -c 8 -d 30s\n  \
                  loadgen --hs256-secret-file .dev/jwt-secret --mix access=90,create=10 --json\n  \
                  loadgen --token \"$TOKEN\" --workspace dev --op list --list-depth 20"
)]
pub struct Cli {
    /// The credentials-api to drive: http://host:port.
    #[arg(long, env = "LOADGEN_TARGET", default_value = "http://127.0.0.1:50051")]
    pub target: String,

    /// The HTTP/JSON port of the same credentials-api, for http-get: http://host:port.
    #[arg(
        long,
        env = "LOADGEN_HTTP_TARGET",
        default_value = "http://127.0.0.1:8080"
    )]
    pub http_target: String,

    /// One operation to run; the same as --mix OP=1. Default: access.
    #[arg(long, env = "LOADGEN_OP", value_enum, conflicts_with = "mix")]
    pub op: Option<Op>,

    /// A weighted mix of operations, e.g. access=90,create=10 (relative whole-number weights).
    #[arg(long, env = "LOADGEN_MIX", value_parser = Mix::parse)]
    pub mix: Option<Mix>,

    /// Concurrent workers, each with one request in flight at a time.
    #[arg(
        short = 'c',
        long,
        env = "LOADGEN_CONCURRENCY",
        default_value_t = 8,
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    pub concurrency: u32,

    /// How long to measure after the warm-up (e.g. 30s, 2m).
    #[arg(short = 'd', long, env = "LOADGEN_DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// Measure exactly this many requests after the warm-up instead of running for --duration.
    #[arg(short = 'n', long, env = "LOADGEN_REQUESTS", value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,

    /// Run this long before measuring; requests started in it are excluded from every figure.
    #[arg(long, env = "LOADGEN_WARMUP", default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,

    /// How many workspaces to act in, named PREFIX-0 .. PREFIX-(M-1) (see --workspace-prefix).
    #[arg(
        long,
        env = "LOADGEN_WORKSPACES",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    pub workspaces: u32,

    /// Prefix of the generated workspace names.
    #[arg(long, env = "LOADGEN_WORKSPACE_PREFIX", default_value = "loadgen")]
    pub workspace_prefix: String,

    /// Act in exactly these workspaces (comma-separated or repeated) instead of generated names.
    #[arg(long = "workspace", env = "LOADGEN_WORKSPACE", value_delimiter = ',')]
    pub workspace_names: Vec<String>,

    /// Create this many credentials through the API before the run, spread evenly over the
    /// workspaces; get, update and access then pick among them.
    #[arg(long, env = "LOADGEN_SEED", default_value_t = 0)]
    pub seed: u64,

    /// Concurrent create requests while seeding.
    #[arg(long, env = "LOADGEN_SEED_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub seed_concurrency: u32,

    /// Seed, report how long it took, and exit without a run.
    #[arg(long)]
    pub seed_only: bool,

    /// Without --seed: at most this many existing credentials per workspace (newest first) are
    /// loaded by listing for get, update and access to pick from.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub pick_from: u32,

    /// Without --seed: list the ids to pick from on this server (http://host:port) instead of
    /// --target, e.g. the API's when --target is the benchmark's floor (bench-floor), which
    /// answers only GetCredential. The run itself still goes to --target only.
    #[arg(long, env = "LOADGEN_DISCOVER_FROM", conflicts_with = "seed")]
    pub discover_from: Option<String>,

    /// A bearer token to send as is (it must allow the operations and name the workspaces).
    #[arg(
        long,
        env = "LOADGEN_TOKEN",
        hide_env_values = true,
        conflicts_with = "hs256_secret_file",
        required_unless_present = "hs256_secret_file"
    )]
    pub token: Option<String>,

    /// File with the server's HS256 shared secret: mint one token per workspace with read,
    /// write and access (trailing whitespace ignored, as the server does).
    #[arg(long, env = "LOADGEN_HS256_SECRET_FILE")]
    pub hs256_secret_file: Option<PathBuf>,

    /// `iss` of minted tokens.
    #[arg(long, env = "LOADGEN_ISSUER", default_value = "credentials-vault")]
    pub issuer: String,

    /// `aud` of minted tokens.
    #[arg(long, env = "LOADGEN_AUDIENCE", default_value = "credentials-api")]
    pub audience: String,

    /// `sub` of minted tokens (it shows in the audit log).
    #[arg(long, default_value = "loadgen")]
    pub subject: String,

    /// HTTP/2 connections the workers share round-robin: 1 makes all share one, a value equal to
    /// --concurrency gives each its own. Default: one per 100 workers (shared connections were
    /// measured faster than one per worker, and cheaper for loadgen; see docs/benchmarks.md).
    #[arg(long, env = "LOADGEN_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: Option<u32>,

    /// Credentials per list page.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub page_size: u32,

    /// list walks: each walk picks a depth d uniformly in 0..=N and follows next_page_token d
    /// times (stopping at the last page); every page is one measured request, reported by depth.
    /// 0: every list request is a first page.
    #[arg(long, env = "LOADGEN_LIST_DEPTH", default_value_t = 0)]
    pub list_depth: u32,

    /// Credential type of created and seeded credentials (a single-secret type).
    #[arg(long, default_value = "openai")]
    pub credential_type: String,

    /// Deadline of each request; a request past it counts as an error.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// How long to wait for the target at start before exiting with status 2.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,

    /// Print the report as JSON on stdout instead of a table.
    #[arg(long, env = "LOADGEN_JSON")]
    pub json: bool,

    /// Exit with status 3 when more than this fraction (0-1) of measured requests failed.
    #[arg(long, value_parser = fraction)]
    pub max_error_rate: Option<f64>,

    /// Seed of the random choices (credentials, operations, depths), for repeatable load shapes.
    #[arg(long, env = "LOADGEN_RNG_SEED")]
    pub rng_seed: Option<u64>,

    /// Runtime threads of loadgen itself. Default: the number of CPUs.
    #[arg(long, env = "LOADGEN_THREADS", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,

    /// A label printed with the report (and put in the JSON), e.g. the scenario's name.
    #[arg(long)]
    pub label: Option<String>,

    /// Print seeding and setup progress on stderr.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// Workers per connection by default. Sharing was faster than one connection per worker (fewer
/// reads and writes on both sides for the same requests); the cap keeps well below the 100
/// concurrent streams per connection that HTTP/2 servers commonly allow.
const WORKERS_PER_CONNECTION: u32 = 100;

fn fraction(s: &str) -> Result<f64, String> {
    let x: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(format!("{x} is not between 0 and 1"))
    }
}

impl Cli {
    /// The mix to run: --mix, else --op, else access.
    pub fn effective_mix(&self) -> Mix {
        match (&self.mix, self.op) {
            (Some(mix), _) => mix.clone(),
            (None, Some(op)) => Mix::single(op),
            (None, None) => Mix::single(Op::Access),
        }
    }

    /// The workspaces to act in.
    pub fn workspace_list(&self) -> Vec<String> {
        if self.workspace_names.is_empty() {
            (0..self.workspaces)
                .map(|i| format!("{}-{i}", self.workspace_prefix))
                .collect()
        } else {
            self.workspace_names.clone()
        }
    }

    /// How many connections to open.
    pub fn effective_connections(&self) -> u32 {
        self.connections
            .unwrap_or_else(|| self.concurrency.div_ceil(WORKERS_PER_CONNECTION))
            .min(self.concurrency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_has_help() {
        for arg in Cli::command().get_arguments() {
            if ["help", "version"].contains(&arg.get_id().as_str()) {
                continue;
            }
            assert!(arg.get_help().is_some(), "--{} has no help", arg.get_id());
        }
    }

    #[test]
    fn defaults_and_derived_settings() {
        let cli = Cli::try_parse_from(["loadgen", "--token", "t"]).unwrap();
        assert_eq!(cli.effective_mix(), Mix::single(Op::Access));
        assert_eq!(cli.workspace_list()[9], "loadgen-9");
        assert_eq!(cli.workspace_list().len(), 10);
        assert_eq!(cli.effective_connections(), 1);
        let many = Cli::try_parse_from(["loadgen", "--token", "t", "-c", "250"]).unwrap();
        assert_eq!(many.effective_connections(), 3);
        assert_eq!(cli.duration, Duration::from_secs(10));

        let cli = Cli::try_parse_from([
            "loadgen",
            "--hs256-secret-file",
            "s",
            "--mix",
            "access=90,create=10",
            "--workspace",
            "a,b",
            "-c",
            "4",
            "--connections",
            "9",
        ])
        .unwrap();
        assert_eq!(cli.effective_mix().to_string(), "access=90,create=10");
        assert_eq!(cli.workspace_list(), ["a", "b"]);
        assert_eq!(cli.effective_connections(), 4);

        assert!(
            Cli::try_parse_from(["loadgen"]).is_err(),
            "a token source is required"
        );
        assert!(
            Cli::try_parse_from(["loadgen", "--token", "t", "--op", "get", "--mix", "get"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["loadgen", "--token", "t", "--max-error-rate", "2"]).is_err());
        assert!(Cli::try_parse_from(["loadgen", "--token", "t", "--mix", "read=1"]).is_err());
    }
}
