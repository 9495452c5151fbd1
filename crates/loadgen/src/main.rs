//! `loadgen`: a load generator for credentials-api. It drives a running stack over gRPC with
//! real tokens and reports throughput, exact latency percentiles and errors by status code.

#![forbid(unsafe_code)]

mod client;
mod config;
mod mix;
mod rng;
mod run;
mod stats;

use clap::Parser;
use config::Cli;
use run::Outcome;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = cli.threads {
        builder.worker_threads(threads as usize);
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("loadgen: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    let max_error_rate = cli.max_error_rate;
    match runtime.block_on(run::main(cli)) {
        Ok(Outcome::Seeded {
            count,
            workspaces,
            seconds,
        }) => {
            let rate = count as f64 / seconds.max(f64::MIN_POSITIVE);
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "seeded": count,
                        "workspaces": workspaces,
                        "seconds": seconds,
                        "rate_per_s": rate,
                    })
                );
            } else {
                println!(
                    "seeded {count} credentials across {workspaces} workspaces in {seconds:.2} s ({rate:.0}/s)"
                );
            }
            ExitCode::SUCCESS
        }
        Ok(Outcome::Ran(report)) => {
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_table());
            }
            match max_error_rate {
                Some(limit) if report.error_rate() > limit => {
                    eprintln!(
                        "loadgen: {:.2}% of requests failed, above --max-error-rate {:.2}%",
                        100.0 * report.error_rate(),
                        100.0 * limit
                    );
                    ExitCode::from(3)
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(failure) => {
            eprintln!("loadgen: {}", failure.message);
            ExitCode::from(failure.exit)
        }
    }
}
