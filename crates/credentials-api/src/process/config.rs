//! The `credentials-api` command line. Every flag has an environment-variable fallback and a
//! doc line that `--help` shows.

use clap::{Args, Parser, Subcommand};
use service_kit::LogFormat;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// The credentials vault's API: stores encrypted credentials in Postgres and serves the
/// management and access gRPC APIs.
#[derive(Debug, Parser)]
#[command(name = "credentials-api", version)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        env = "CREDENTIALS_LOG_FORMAT",
        value_enum,
        default_value = "json",
        global = true
    )]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gRPC APIs until SIGTERM.
    Serve(Box<ServeConfig>),
    /// Apply the database migrations and exit (for a migration Job; `serve` also migrates).
    Migrate(DatabaseArgs),
    /// DEVELOPMENT ONLY: mint an HS256 token for local use.
    DevToken(DevTokenArgs),
    /// Print the OpenAPI 3.1 document of the HTTP/JSON port (what GET /openapi.json serves).
    Openapi,
}

/// How to reach Postgres.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Postgres connection string (URL or key=value).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// PEM CA certificates trusted (besides the public roots) when the connection string has
    /// sslmode=require, e.g. your managed Postgres's CA.
    #[arg(long, env = "DATABASE_CA_FILE")]
    pub database_ca_file: Option<PathBuf>,

    /// Most connections in the pool.
    #[arg(long, env = "CREDENTIALS_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: usize,

    /// How long a request waits for a free connection before UNAVAILABLE.
    #[arg(long, env = "CREDENTIALS_DB_WAIT_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub db_wait_timeout: Duration,

    /// How long to wait for Postgres at startup before giving up.
    #[arg(long, env = "CREDENTIALS_STARTUP_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub startup_timeout: Duration,
}

/// `credentials-api serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to serve gRPC on. Off loopback it needs --tls-cert and --tls-key (or
    /// --insecure-plaintext).
    #[arg(long, env = "CREDENTIALS_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// PEM certificate chain (leaf first) to serve gRPC with over TLS. SIGHUP reloads it, the
    /// key and the client CA without dropping connections.
    #[arg(long, env = "CREDENTIALS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "CREDENTIALS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificates that client certificates must chain to: mutual TLS, clients without
    /// such a certificate are refused.
    #[arg(long, env = "CREDENTIALS_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// DEVELOPMENT ONLY: serve plaintext gRPC (h2c) on a --listen address that is not loopback;
    /// tokens and secrets then cross the network in clear (logs a warning).
    #[arg(
        long,
        env = "CREDENTIALS_INSECURE_PLAINTEXT",
        conflicts_with = "tls_cert"
    )]
    pub insecure_plaintext: bool,

    /// Address to serve HTTP/JSON on (HTTP/1.1 and h2): the JSON mapping of every RPC, the
    /// /api/v1/credentials surface and GET /openapi.json; `off` for none. Same TLS and the same
    /// loopback rule as --listen.
    #[arg(long, env = "CREDENTIALS_HTTP_LISTEN", default_value = "127.0.0.1:8080", value_parser = parse_http_listen)]
    pub http_listen: HttpListen,

    /// Also serve grpc.health.v1 alone, in plaintext, on this TCP address: for kubelet gRPC
    /// probes, which cannot speak TLS.
    #[arg(long, env = "CREDENTIALS_HEALTH_ADDR")]
    pub health_addr: Option<SocketAddr>,

    /// The database connection.
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Where the kms listens: unix:///path (the sidecar default) or https://host:port (with the
    /// --kms-tls-* flags).
    #[arg(
        long,
        env = "CREDENTIALS_KMS_ENDPOINT",
        default_value = "unix:///run/kms/kms.sock"
    )]
    pub kms_endpoint: String,

    /// PEM CA that signed the kms's certificate (https endpoints).
    #[arg(long, env = "CREDENTIALS_KMS_TLS_CA")]
    pub kms_tls_ca: Option<PathBuf>,

    /// PEM client certificate presented to the kms (https endpoints).
    #[arg(long, env = "CREDENTIALS_KMS_TLS_CERT")]
    pub kms_tls_cert: Option<PathBuf>,

    /// PEM private key of --kms-tls-cert.
    #[arg(long, env = "CREDENTIALS_KMS_TLS_KEY")]
    pub kms_tls_key: Option<PathBuf>,

    /// Name to check the kms's certificate against, when not the endpoint's host.
    #[arg(long, env = "CREDENTIALS_KMS_SERVER_NAME")]
    pub kms_server_name: Option<String>,

    /// Deadline of each kms call.
    #[arg(long, env = "CREDENTIALS_KMS_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub kms_timeout: Duration,

    /// Master key for new data keys; the kms's default key when unset.
    #[arg(long, env = "CREDENTIALS_MASTER_KEY_ID")]
    pub master_key_id: Option<String>,

    /// How long an unwrapped data key may be kept in memory after the kms unwrapped it, so
    /// reads of the same credential skip the kms round trip; 0 turns the cache off. Writes
    /// never use it.
    #[arg(long, env = "CREDENTIALS_DATA_KEY_CACHE_MAX_AGE", default_value = "5m", value_parser = humantime::parse_duration)]
    pub data_key_cache_max_age: Duration,

    /// How many unwrapped data keys may be kept (about 200 bytes each); 0 turns the cache off.
    #[arg(long, env = "CREDENTIALS_DATA_KEY_CACHE_SIZE", default_value_t = crate::service::data_key_cache::DEFAULT_CAPACITY)]
    pub data_key_cache_size: usize,

    /// How bearer tokens are verified.
    #[command(flatten)]
    pub jwt: JwtArgs,

    /// Address ranges validation and discovery may reach although the egress guard refuses
    /// them by default (loopback, private, link-local, unique-local, metadata), e.g.
    /// 10.20.0.0/16 for an internal database. Comma-separated or repeated.
    #[arg(long, env = "CREDENTIALS_EGRESS_ALLOW", value_delimiter = ',')]
    pub egress_allow: Vec<credentials_probe::IpRange>,

    /// Address ranges validation and discovery may reach only as they reach public addresses:
    /// with verified TLS, never a password in cleartext (e.g. a VPC whose path you do not
    /// trust). Comma-separated or repeated.
    #[arg(long, env = "CREDENTIALS_EGRESS_ALLOW_VERIFIED", value_delimiter = ',')]
    pub egress_allow_verified: Vec<credentials_probe::IpRange>,

    /// The cluster's local NAT64 prefix (RFC 6052: an IPv6 /32, /40, /48, /56, /64 or /96, e.g.
    /// 64:ff9b:1:fffe::/96): the egress guard judges addresses under it as the IPv4 address they
    /// embed. The well-known 64:ff9b::/96 is always judged so. Comma-separated or repeated.
    #[arg(long, env = "CREDENTIALS_EGRESS_NAT64_PREFIX", value_delimiter = ',')]
    pub egress_nat64_prefix: Vec<credentials_probe::Nat64Prefix>,

    /// PEM CA certificates that validation and discovery trust besides the public roots, for
    /// targets whose certificates a private CA signs (Amazon RDS, Cloud SQL, an in-house CA).
    #[arg(long, env = "CREDENTIALS_PROBE_CA_FILE")]
    pub probe_ca_file: Option<PathBuf>,

    /// Deadline of one validation probe.
    #[arg(long, env = "CREDENTIALS_PROBE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub probe_timeout: Duration,

    /// Most validations and tests running at once, over all workspaces.
    #[arg(long, env = "CREDENTIALS_PROBE_CONCURRENCY", default_value_t = 16)]
    pub probe_concurrency: usize,

    /// Most validations and tests running at once for one workspace; more wait, then
    /// RESOURCE_EXHAUSTED.
    #[arg(
        long,
        env = "CREDENTIALS_PROBE_CONCURRENCY_PER_WORKSPACE",
        default_value_t = 4
    )]
    pub probe_concurrency_per_workspace: usize,

    /// Most schema discoveries running at once, over all workspaces (a budget apart from
    /// validations', so long discoveries cannot starve them).
    #[arg(long, env = "CREDENTIALS_DISCOVERY_CONCURRENCY", default_value_t = 4)]
    pub discovery_concurrency: usize,

    /// Most schema discoveries running at once for one workspace.
    #[arg(
        long,
        env = "CREDENTIALS_DISCOVERY_CONCURRENCY_PER_WORKSPACE",
        default_value_t = 2
    )]
    pub discovery_concurrency_per_workspace: usize,

    /// Longest wait for a probe slot (less when the call's deadline or the probe's leaves
    /// less) before RESOURCE_EXHAUSTED with a retry delay.
    #[arg(long, env = "CREDENTIALS_PROBE_QUEUE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub probe_queue_timeout: Duration,

    /// Base URL of a provider's API, replacing the real one (e.g. for a proxy, a regional
    /// endpoint, or tests): TYPE=URL, comma-separated or repeated.
    #[arg(long, env = "CREDENTIALS_PROVIDER_URLS", value_delimiter = ',', value_parser = parse_provider_url)]
    pub provider_url: Vec<(String, String)>,

    /// Credentials per batch of the re-wrap sweep.
    #[arg(long, env = "CREDENTIALS_REWRAP_BATCH_SIZE", default_value_t = 100)]
    pub rewrap_batch_size: i64,

    /// Pause between batches of the re-wrap sweep (bounds its load on Postgres and the kms).
    #[arg(long, env = "CREDENTIALS_REWRAP_PAUSE", default_value = "50ms", value_parser = humantime::parse_duration)]
    pub rewrap_pause: Duration,

    /// How often to sweep by itself when credentials are left on old key versions; 0 for on
    /// demand only (AdminService/StartRewrap).
    #[arg(long, env = "CREDENTIALS_REWRAP_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub rewrap_interval: Duration,

    /// How long a workspace's write seed (the kms-wrapped key each new value's data key is
    /// derived from) is used before the kms is asked for another; 0 asks for one per write.
    #[arg(long, env = "CREDENTIALS_WRITE_SEED_MAX_AGE", default_value = "5m", value_parser = humantime::parse_duration)]
    pub write_seed_max_age: Duration,

    /// How many values' data keys one write seed may derive before it is replaced.
    #[arg(long, env = "CREDENTIALS_WRITE_SEED_MAX_USES", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub write_seed_max_uses: u64,

    /// How long the kms's primary key versions are trusted by the write seeds before being
    /// asked again (a seed on an older primary is replaced); 0 asks before every reuse.
    #[arg(long, env = "CREDENTIALS_WRITE_SEED_KEYRING_CHECK", default_value = "2s", value_parser = humantime::parse_duration)]
    pub write_seed_keyring_check: Duration,

    /// Do not apply migrations at startup (when a migration Job does).
    #[arg(long, env = "CREDENTIALS_NO_MIGRATE")]
    pub no_migrate: bool,

    /// How long in-flight requests may take to finish after SIGTERM.
    #[arg(long, env = "CREDENTIALS_SHUTDOWN_GRACE", default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Serve Prometheus metrics on GET /metrics on this plaintext TCP address (off when unset).
    #[arg(long, env = "CREDENTIALS_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,

    /// Longest a request may run on the server: the client's grpc-timeout when shorter. Past
    /// it the caller gets DEADLINE_EXCEEDED (nothing changed) or UNAVAILABLE (a commit was
    /// under way: the outcome is unknown). Validation and discovery get at least 125s.
    #[arg(long, env = "CREDENTIALS_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Connection limits: keepalive, handshake, idle and age.
    #[command(flatten)]
    pub connections: ConnectionArgs,

    /// Rate limits per principal.
    #[command(flatten)]
    pub rate_limits: RateLimitArgs,
}

/// How long connections may live and stay silent.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// Interval of HTTP/2 keepalive PINGs (and the TCP keepalive time).
    #[arg(long, env = "CREDENTIALS_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub keepalive_interval: Duration,

    /// How long a keepalive PING may go unanswered before the connection is closed.
    #[arg(long, env = "CREDENTIALS_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub keepalive_timeout: Duration,

    /// How long a new connection may take to send the HTTP/2 preface (after TLS, which has
    /// its own 10s).
    #[arg(long, env = "CREDENTIALS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,

    /// How long a connection may send nothing at all (live clients answer keepalive PINGs)
    /// before it is closed; longer than the keepalive interval plus its timeout.
    #[arg(long, env = "CREDENTIALS_IDLE_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// Age after which a connection is sent GOAWAY (clients reconnect).
    #[arg(long, env = "CREDENTIALS_MAX_CONNECTION_AGE", default_value = "1h", value_parser = humantime::parse_duration)]
    pub max_connection_age: Duration,

    /// How long a connection past its age may finish its calls before it is closed.
    #[arg(long, env = "CREDENTIALS_MAX_CONNECTION_AGE_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub max_connection_age_grace: Duration,
}

impl ConnectionArgs {
    /// The limits, checked.
    pub fn limits(&self) -> Result<service_kit::ConnectionLimits, String> {
        let limits = service_kit::ConnectionLimits {
            keepalive_interval: self.keepalive_interval,
            keepalive_timeout: self.keepalive_timeout,
            handshake_timeout: self.handshake_timeout,
            idle_timeout: self.idle_timeout,
            max_age: self.max_connection_age,
            max_age_grace: self.max_connection_age_grace,
        };
        limits.check()?;
        Ok(limits)
    }
}

/// Calls each principal (token subject) may make, per class of RPC.
#[derive(Debug, Clone, Args)]
pub struct RateLimitArgs {
    /// AccessCredential calls per principal: N/s, N/m or N/h (bursts of up to N); 0/s turns
    /// the limit off.
    #[arg(long, env = "CREDENTIALS_ACCESS_RATE_LIMIT", default_value = "1000/s", value_parser = crate::service::Rate::parse)]
    pub access_rate_limit: crate::service::Rate,

    /// ValidateCredential, TestCredential and DiscoverSchema calls per principal, together:
    /// N/s, N/m or N/h (bursts of up to N); 0/s turns the limit off.
    #[arg(long, env = "CREDENTIALS_PROBE_RATE_LIMIT", default_value = "60/m", value_parser = crate::service::Rate::parse)]
    pub probe_rate_limit: crate::service::Rate,
}

/// How bearer tokens are verified. At least one key source is required.
#[derive(Debug, Clone, Args)]
pub struct JwtArgs {
    /// Required `iss` claim.
    #[arg(
        long,
        env = "CREDENTIALS_JWT_ISSUER",
        default_value = "credentials-vault"
    )]
    pub jwt_issuer: String,

    /// Required `aud` claim.
    #[arg(
        long,
        env = "CREDENTIALS_JWT_AUDIENCE",
        default_value = "credentials-api"
    )]
    pub jwt_audience: String,

    /// File holding an HS256 shared secret (at least 32 bytes): for development.
    #[arg(long, env = "CREDENTIALS_JWT_HS256_SECRET_FILE")]
    pub jwt_hs256_secret_file: Option<PathBuf>,

    /// PEM file of public keys (Ed25519 or P-256) that sign EdDSA / ES256 tokens: for production.
    #[arg(long, env = "CREDENTIALS_JWT_PUBLIC_KEYS_FILE")]
    pub jwt_public_keys_file: Option<PathBuf>,

    /// JWKS file of public keys (OKP Ed25519 or EC P-256, with kid): for production.
    #[arg(long, env = "CREDENTIALS_JWT_JWKS_FILE")]
    pub jwt_jwks_file: Option<PathBuf>,

    /// Clock skew allowed on exp and nbf.
    #[arg(long, env = "CREDENTIALS_JWT_LEEWAY", default_value = "30s", value_parser = humantime::parse_duration)]
    pub jwt_leeway: Duration,

    /// How many verified tokens are remembered (each until its exp) so a long-lived token is
    /// not parsed and checked again on every call; 0 turns the cache off.
    #[arg(long, env = "CREDENTIALS_JWT_TOKEN_CACHE_SIZE", default_value_t = auth::DEFAULT_TOKEN_CACHE_CAPACITY)]
    pub jwt_token_cache_size: usize,
}

/// `credentials-api dev-token`.
#[derive(Debug, Clone, Args)]
pub struct DevTokenArgs {
    /// The HS256 secret file the server uses.
    #[arg(long, env = "CREDENTIALS_JWT_HS256_SECRET_FILE")]
    pub hs256_secret_file: PathBuf,

    /// `iss` claim.
    #[arg(
        long,
        env = "CREDENTIALS_JWT_ISSUER",
        default_value = "credentials-vault"
    )]
    pub issuer: String,

    /// `aud` claim.
    #[arg(
        long,
        env = "CREDENTIALS_JWT_AUDIENCE",
        default_value = "credentials-api"
    )]
    pub audience: String,

    /// `sub` claim.
    #[arg(long, default_value = "developer")]
    pub subject: String,

    /// A workspace the token may act in (repeat for several).
    #[arg(long = "workspace", required = true)]
    pub workspaces: Vec<String>,

    /// Permissions, comma-separated: read, write, access, admin.
    #[arg(long, value_delimiter = ',', default_value = "read,write,access")]
    pub permissions: Vec<String>,

    /// How long the token is valid.
    #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,

    /// Adds the `platform_admin` claim: with `admin`, every workspace, sweeps and the
    /// security log.
    #[arg(long)]
    pub platform_admin: bool,
}

fn parse_provider_url(s: &str) -> Result<(String, String), String> {
    let (type_id, url) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not TYPE=URL"))?;
    if credentials_core::catalogue::lookup(type_id).is_none() {
        return Err(format!("{type_id:?} is not a credential type"));
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!("{url:?} is not an http(s) URL"));
    }
    Ok((type_id.to_owned(), url.trim_end_matches('/').to_owned()))
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
    fn egress_flags_parse_ranges_and_nat64_prefixes() {
        let serve = |extra: &[&str]| {
            let mut args = vec![
                "credentials-api",
                "serve",
                "--database-url",
                "postgres://u@h/db",
                "--jwt-hs256-secret-file",
                "/dev/null",
            ];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args)
        };
        let ok = serve(&[
            "--egress-nat64-prefix",
            "64:ff9b:1:fffe::/96,2001:db8:100::/40",
            "--egress-allow-verified",
            "10.0.0.0/8",
        ])
        .unwrap();
        let Command::Serve(config) = ok.command else {
            unreachable!("the subcommand is serve")
        };
        assert_eq!(config.egress_nat64_prefix.len(), 2);
        assert_eq!(config.egress_allow_verified.len(), 1);
        for bad in ["10.0.0.0/8", "64:ff9b::/95", "nope"] {
            assert!(serve(&["--egress-nat64-prefix", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_serve_flag_has_an_env_fallback_and_help() {
        let cli = Cli::command();
        let serve = cli.find_subcommand("serve").unwrap();
        assert_eq!(service_kit::undocumented_flags(serve), Vec::<String>::new());
    }
}

/// `--http-listen`: an address, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpListen(pub Option<SocketAddr>);

fn parse_http_listen(text: &str) -> Result<HttpListen, String> {
    match text {
        "off" => Ok(HttpListen(None)),
        _ => text
            .parse()
            .map(|addr| HttpListen(Some(addr)))
            .map_err(|e| format!("{e}: give host:port or off")),
    }
}
