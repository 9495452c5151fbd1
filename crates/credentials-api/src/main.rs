//! The `credentials-api` binary.

#![forbid(unsafe_code)]

use clap::Parser;
use credentials_api::{Cli, Command, dev_token, run, store};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::DevToken(args) => dev_token(args),
        Command::Openapi => credentials_api::openapi_json().map(|json| println!("{json}")),
        command => match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => {
                // Inside the runtime: the trace exporter's connection is spawned on it.
                let telemetry = runtime.block_on(async {
                    service_kit::init_telemetry(cli.log_format, "info", "credentials-api")
                });
                let result = runtime.block_on(async {
                    match command {
                        Command::Serve(config) => run(*config).await,
                        Command::Migrate(args) => store(&args, true).await.map(|store| {
                            store.close();
                            tracing::info!("migrations applied");
                        }),
                        Command::DevToken(_) | Command::Openapi => unreachable!("handled above"),
                    }
                });
                // The runtime is still alive here, so the last spans can be flushed.
                telemetry.shutdown();
                result
            }
            Err(e) => Err(format!("cannot start the async runtime: {e}")),
        },
    };
    service_kit::exit_code("credentials-api", result)
}
