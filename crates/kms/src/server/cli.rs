//! The `kms` command line: `serve`, and the offline `keyring` subcommands operators use to
//! manage the keyring file.

use super::ServeConfig;
use super::keyring::{Keyring, KeyringError, VersionState};
use clap::{Args, Parser, Subcommand};
use ring::rand::SystemRandom;
use service_kit::LogFormat;
use std::path::PathBuf;

/// The key management service of the credentials vault: holds the master keys and wraps and
/// unwraps data keys for credentials-api.
#[derive(Debug, Parser)]
#[command(name = "kms", version)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        env = "KMS_LOG_FORMAT",
        value_enum,
        default_value = "json",
        global = true
    )]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The kms's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve kms.v1 (plus health and reflection) until SIGTERM; SIGHUP reloads the keyring.
    Serve(ServeConfig),
    /// Manage the keyring file offline (the running kms loads changes on SIGHUP).
    #[command(subcommand)]
    Keyring(KeyringCommand),
}

/// Offline keyring commands.
#[derive(Debug, Subcommand)]
pub enum KeyringCommand {
    /// Create a new keyring file (mode 0600) with one key of one fresh version.
    Create {
        #[command(flatten)]
        file: KeyringFileArg,
        /// Id of the first key, which becomes the default key.
        #[arg(long, default_value = "default")]
        key_id: String,
    },
    /// Add a fresh version to a key and make it the primary (new data keys are wrapped under it;
    /// older versions still unwrap). With several kms replicas, use --stage, reload them all,
    /// then `promote`.
    Rotate {
        #[command(flatten)]
        file: KeyringFileArg,
        /// The key to rotate.
        #[arg(long, default_value = "default")]
        key_id: String,
        /// Add the version without making it primary: it unwraps at once, wraps only after
        /// `promote`.
        #[arg(long)]
        stage: bool,
    },
    /// Make a staged version the primary.
    Promote {
        #[command(flatten)]
        file: KeyringFileArg,
        /// The key.
        #[arg(long, default_value = "default")]
        key_id: String,
        /// The version to make primary.
        #[arg(long)]
        version: u32,
    },
    /// Add a new named key (for example a workspace's own key) with one fresh version.
    AddKey {
        #[command(flatten)]
        file: KeyringFileArg,
        /// Id of the new key: 1-64 of [a-z0-9_-].
        #[arg(long)]
        key_id: String,
    },
    /// Disable a non-primary version: data keys wrapped under it stop unwrapping.
    Disable {
        #[command(flatten)]
        file: KeyringFileArg,
        /// The key.
        #[arg(long, default_value = "default")]
        key_id: String,
        /// The version to disable.
        #[arg(long)]
        version: u32,
    },
    /// Enable a disabled version again.
    Enable {
        #[command(flatten)]
        file: KeyringFileArg,
        /// The key.
        #[arg(long, default_value = "default")]
        key_id: String,
        /// The version to enable.
        #[arg(long)]
        version: u32,
    },
    /// Disable a whole key (not the default key): nothing wrapped under any of its versions
    /// unwraps, and nothing new is wrapped under it.
    DisableKey {
        #[command(flatten)]
        file: KeyringFileArg,
        /// The key.
        #[arg(long)]
        key_id: String,
    },
    /// Enable a disabled key again.
    EnableKey {
        #[command(flatten)]
        file: KeyringFileArg,
        /// The key.
        #[arg(long)]
        key_id: String,
    },
    /// Print key ids, versions, states and creation times (never key material).
    Show {
        #[command(flatten)]
        file: KeyringFileArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// The keyring file an offline command works on.
#[derive(Debug, Args)]
pub struct KeyringFileArg {
    /// The keyring file.
    #[arg(long = "file", env = "KMS_KEYRING")]
    pub path: PathBuf,
    /// DEVELOPMENT ONLY: accept a keyring file that group or others can read.
    #[arg(long, env = "KMS_ALLOW_INSECURE_KEYRING_PERMISSIONS")]
    pub allow_insecure_keyring_permissions: bool,
}

impl KeyringFileArg {
    fn load(&self) -> Result<Keyring, KeyringError> {
        Keyring::load(&self.path, self.allow_insecure_keyring_permissions)
    }

    /// Changes the file under its exclusive edit lock.
    fn edit<T>(
        &self,
        change: impl FnOnce(&mut Keyring) -> Result<T, KeyringError>,
    ) -> Result<T, KeyringError> {
        Keyring::edit(&self.path, self.allow_insecure_keyring_permissions, change)
    }
}

/// Runs an offline keyring command, printing what it did to stdout.
pub fn keyring(command: KeyringCommand) -> Result<(), String> {
    let rng = SystemRandom::new();
    let reload_hint = "send SIGHUP to the running kms to load it";
    let result: Result<(), KeyringError> = (|| {
        match command {
            KeyringCommand::Create { file, key_id } => {
                Keyring::generate(&key_id, &rng)?.create_file(&file.path)?;
                println!(
                    "created keyring {} with key {key_id:?} version 1",
                    file.path.display()
                );
            }
            KeyringCommand::Rotate {
                file,
                key_id,
                stage,
            } => {
                let version = file.edit(|keyring| keyring.add_version(&key_id, &rng, !stage))?;
                if stage {
                    println!(
                        "key {key_id:?}: version {version} staged (unwraps, not yet primary); {reload_hint} on every replica, then `kms keyring promote --version {version}`"
                    );
                } else {
                    println!("key {key_id:?}: version {version} is now primary; {reload_hint}");
                }
            }
            KeyringCommand::Promote {
                file,
                key_id,
                version,
            } => {
                file.edit(|keyring| keyring.promote(&key_id, version))?;
                println!("key {key_id:?}: version {version} is now primary; {reload_hint}");
            }
            KeyringCommand::AddKey { file, key_id } => {
                file.edit(|keyring| keyring.add_key(&key_id, &rng))?;
                println!("added key {key_id:?} version 1; {reload_hint}");
            }
            KeyringCommand::Disable {
                file,
                key_id,
                version,
            } => {
                file.edit(|keyring| keyring.set_state(&key_id, version, VersionState::Disabled))?;
                println!("key {key_id:?}: version {version} disabled; {reload_hint}");
            }
            KeyringCommand::Enable {
                file,
                key_id,
                version,
            } => {
                file.edit(|keyring| keyring.set_state(&key_id, version, VersionState::Enabled))?;
                println!("key {key_id:?}: version {version} enabled; {reload_hint}");
            }
            KeyringCommand::DisableKey { file, key_id } => {
                file.edit(|keyring| keyring.set_key_state(&key_id, VersionState::Disabled))?;
                println!("key {key_id:?} disabled; {reload_hint}");
            }
            KeyringCommand::EnableKey { file, key_id } => {
                file.edit(|keyring| keyring.set_key_state(&key_id, VersionState::Enabled))?;
                println!("key {key_id:?} enabled; {reload_hint}");
            }
            KeyringCommand::Show { file, json } => show(&file.load()?, json),
        }
        Ok(())
    })();
    result.map_err(|e| e.to_string())
}

fn show(keyring: &Keyring, json: bool) {
    if json {
        let keys: Vec<serde_json::Value> = keyring
            .keys()
            .map(|k| {
                serde_json::json!({
                    "id": k.id,
                    "state": k.state,
                    "primary_version": k.primary,
                    "versions": k.versions.values().map(|v| serde_json::json!({
                        "version": v.version,
                        "state": v.state,
                        "created_at": humantime::format_rfc3339_seconds(v.created_at).to_string(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let doc = serde_json::json!({ "default_key": keyring.default_key(), "keys": keys });
        println!("{doc:#}");
        return;
    }
    println!("default key: {}", keyring.default_key());
    println!(
        "{:<24} {:>7} {:<9} {:<8} created",
        "key", "version", "state", "primary"
    );
    for key in keyring.keys() {
        for v in key.versions.values() {
            let state = match (key.state, v.state) {
                (VersionState::Disabled, _) => "key off",
                (_, VersionState::Enabled) => "enabled",
                (_, VersionState::Disabled) => "disabled",
            };
            let primary = if v.version == key.primary { "yes" } else { "" };
            println!(
                "{:<24} {:>7} {:<9} {:<8} {}",
                key.id,
                v.version,
                state,
                primary,
                humantime::format_rfc3339_seconds(v.created_at)
            );
        }
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
    fn every_serve_flag_has_an_env_fallback_and_help() {
        let cli = Cli::command();
        let serve = cli.find_subcommand("serve").unwrap();
        assert_eq!(service_kit::undocumented_flags(serve), Vec::<String>::new());
    }
}
