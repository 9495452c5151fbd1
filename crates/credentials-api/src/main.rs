//! The `credentials-api` binary.

#![forbid(unsafe_code)]

mod auth_layer;
mod caller;
mod checks;
mod config;
mod error;
mod grpc;
mod lifecycle;
mod metrics;
mod paging;
mod server;
mod vault;

use clap::Parser;
use config::{Cli, Command, DevTokenArgs};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

fn dev_token(args: DevTokenArgs) -> Result<(), String> {
    let secret = zeroize::Zeroizing::new(
        std::fs::read(&args.hs256_secret_file)
            .map_err(|e| format!("cannot read {}: {e}", args.hs256_secret_file.display()))?,
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    for p in &args.permissions {
        if auth::Permission::parse(p).is_none() {
            return Err(format!(
                "unknown permission {p:?}: use read, write, access, admin"
            ));
        }
    }
    let claims = auth::Claims {
        sub: args.subject,
        iss: args.issuer,
        aud: args.audience,
        exp: now + args.ttl.as_secs(),
        nbf: Some(now),
        iat: Some(now),
        workspaces: args.workspaces,
        permissions: args.permissions,
    };
    let key = auth::SigningKey::Hs256(zeroize::Zeroizing::new(secret.trim_ascii_end().to_vec()));
    let token = key.mint(&claims).map_err(|e| e.to_string())?;
    eprintln!(
        "credentials-api: a DEVELOPMENT token (HS256, shared secret) for {:?} with {:?}, valid {}",
        claims.workspaces,
        claims.permissions,
        humantime::format_duration(std::time::Duration::from_secs(claims.exp - now))
    );
    println!("{token}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::DevToken(args) => dev_token(args),
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
                        Command::Serve(config) => server::run(*config).await,
                        Command::Migrate(args) => server::store(&args, true).await.map(|store| {
                            store.close();
                            tracing::info!("migrations applied");
                        }),
                        Command::DevToken(_) => unreachable!("handled above"),
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
