//! The `bench-floor` binary: start-up and shutdown around [`bench_floor::serve`].

#![forbid(unsafe_code)]

use bench_floor::{Config, Floor, pool, serve};
use clap::Parser;
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let config = Config::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
        .and_then(|runtime| runtime.block_on(run(config)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("bench-floor: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// In order: the pool (lazy: the first request connects, as in the API), bind, print the
/// address (scripts/bench.sh reads it), serve until SIGTERM or SIGINT.
async fn run(config: Config) -> Result<(), String> {
    let pool = pool(&config)?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))?;
    eprintln!("bench-floor: listening on {address}");
    let stop = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    serve(listener, Floor::new(pool.clone()), stop)
        .await
        .map_err(|e| format!("serving: {e}"))?;
    pool.close();
    Ok(())
}
