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
        Command::Serve(config) => {
            service_kit::init_logging(cli.log_format, "info");
            match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(server::run(config)),
                Err(e) => Err(format!("cannot start the async runtime: {e}")),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!(error = %message, "kms failed");
            eprintln!("kms: {message}");
            ExitCode::FAILURE
        }
    }
}
