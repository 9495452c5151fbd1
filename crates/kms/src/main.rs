//! The `kms` binary: the key management server and its offline keyring commands.

#![forbid(unsafe_code)]

mod server;

use clap::Parser;
use server::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keyring(command) => server::cli::keyring(command),
        Command::Serve(config) => match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => {
                // Inside the runtime: the trace exporter's connection is spawned on it.
                let telemetry = runtime
                    .block_on(async { service_kit::init_telemetry(cli.log_format, "info", "kms") });
                let result = runtime.block_on(server::run(config));
                // The runtime is still alive here, so the last spans can be flushed.
                telemetry.shutdown();
                result
            }
            Err(e) => Err(format!("cannot start the async runtime: {e}")),
        },
    };
    service_kit::exit_code("kms", result)
}
