//! The floor's command line.

use clap::Parser;
use std::{net::SocketAddr, time::Duration};

/// `bench-floor`: answers GetCredential with the API's point select and nothing else.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Config {
    /// Address to listen on (port 0 picks a free one; the address is printed on stderr).
    #[arg(long, env = "BENCH_FLOOR_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// The credentials database: a libpq URL or key=value string (the API's DATABASE_URL).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// Most connections in the pool; the API's default, so both wait for Postgres alike.
    #[arg(long, env = "BENCH_FLOOR_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: usize,

    /// How long a request waits for a free connection before UNAVAILABLE (the API's default).
    #[arg(long, env = "BENCH_FLOOR_DB_WAIT_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub db_wait_timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Config::command().debug_assert();
        // Every flag has an environment fallback, as every other binary here.
        for arg in Config::command().get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            assert!(arg.get_env().is_some(), "--{id} has no env fallback");
            assert!(arg.get_help().is_some(), "--{id} has no help");
        }
    }
}
