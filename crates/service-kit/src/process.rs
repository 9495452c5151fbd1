//! The edges of a server process that both binaries share: how the process exits, and the
//! rule that every flag is documented with an environment fallback.

use std::process::ExitCode;

/// The exit code of `program` for `result`; a failure is logged and printed in one line.
pub fn exit_code(program: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!(error = %message, "{program} failed");
            eprintln!("{program}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Flags of `command` (a subcommand) lacking an environment-variable fallback or a help line;
/// `--help` and `--version` are exempt. A `verify_cli` test asserts this is empty.
pub fn undocumented_flags(command: &clap::Command) -> Vec<String> {
    command
        .get_arguments()
        .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
        .filter(|arg| arg.get_env().is_none() || arg.get_help().is_none())
        .map(|arg| format!("--{}", arg.get_id()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undocumented_flags_are_listed() {
        let command = clap::Command::new("x")
            .arg(
                clap::Arg::new("good")
                    .long("good")
                    .env("X_GOOD")
                    .help("documented"),
            )
            .arg(clap::Arg::new("no-env").long("no-env").help("documented"))
            .arg(clap::Arg::new("no-help").long("no-help").env("X_NO_HELP"));
        assert_eq!(undocumented_flags(&command), ["--no-env", "--no-help"]);
    }
}
