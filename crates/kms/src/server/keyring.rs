//! The keyring: named master keys with numbered versions, loaded from (and written to) one JSON
//! file that only its owner may read.
//!
//! ```json
//! { "format": 1, "default_key": "default",
//!   "keys": [ { "id": "default", "primary_version": 2, "versions": [
//!       { "version": 1, "state": "disabled", "created_at": "2026-01-01T00:00:00Z", "material": "<base64 of 32 bytes>" },
//!       { "version": 2, "state": "enabled",  "created_at": "2026-06-01T00:00:00Z", "material": "<base64 of 32 bytes>" } ] } ] }
//! ```

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use ring::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    fmt,
    fs::{self, OpenOptions},
    io::{Read, Write},
    os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::SystemTime,
};
use zeroize::Zeroizing;

/// The only keyring file format this build reads and writes.
pub const FORMAT: u32 = 1;
/// Master keys are AES-256 keys.
pub const MATERIAL_LEN: usize = 32;

/// Why a keyring file cannot be used. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The file cannot be read or written.
    #[error("keyring file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Group or others may read or write the file.
    #[error(
        "keyring file {path} has mode {mode:o}: group and others must have no access (chmod 600), or start with --allow-insecure-keyring-permissions for development"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The path is not a regular file.
    #[error("keyring file {0} is not a regular file")]
    NotAFile(PathBuf),
    /// The file is not valid JSON of the keyring's shape.
    #[error("keyring file {path}: line {line} column {column}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What the parser expected, with any quoted value removed.
        message: String,
    },
    /// The file's `format` is not one this build knows.
    #[error("keyring format {0} is not supported (this build reads format {FORMAT})")]
    UnsupportedFormat(u32),
    /// The keyring holds no key.
    #[error("keyring has no keys")]
    NoKeys,
    /// A key id is malformed.
    #[error("keys[{index}]: {reason}")]
    BadKeyId {
        /// Position of the key in the file.
        index: usize,
        /// What is wrong with the id.
        reason: String,
    },
    /// Two keys share an id.
    #[error("key {0:?} appears more than once")]
    DuplicateKey(String),
    /// A key has no versions.
    #[error("key {0:?} has no versions")]
    NoVersions(String),
    /// A version number is 0 or repeated.
    #[error("key {key:?}: version {version} is {problem}")]
    BadVersion {
        /// The key.
        key: String,
        /// The version number.
        version: u32,
        /// `0, versions start at 1` or `repeated`.
        problem: &'static str,
    },
    /// A version's material is not base64 of exactly 32 bytes.
    #[error(
        "key {key:?} version {version}: material must be base64 of {MATERIAL_LEN} bytes ({problem})"
    )]
    BadMaterial {
        /// The key.
        key: String,
        /// The version.
        version: u32,
        /// What is wrong, without the material.
        problem: String,
    },
    /// A version's creation time is not RFC 3339.
    #[error("key {key:?} version {version}: created_at is not an RFC 3339 time")]
    BadTimestamp {
        /// The key.
        key: String,
        /// The version.
        version: u32,
    },
    /// The primary version does not exist or is disabled.
    #[error("key {key:?}: primary_version {version} {problem}")]
    BadPrimary {
        /// The key.
        key: String,
        /// The primary version named in the file.
        version: u32,
        /// `is not one of its versions` or `is disabled`.
        problem: &'static str,
    },
    /// `default_key` names no key of the keyring.
    #[error("default_key {0:?} is not a key of the keyring")]
    UnknownDefaultKey(String),
    /// An offline command named a key the keyring does not hold.
    #[error("key {0:?} is not in the keyring")]
    UnknownKey(String),
    /// An offline command named a version the key does not have.
    #[error("key {key:?} has no version {version}")]
    UnknownVersion {
        /// The key.
        key: String,
        /// The version.
        version: u32,
    },
    /// An offline command tried to add a key that exists.
    #[error("key {0:?} already exists")]
    KeyExists(String),
    /// An offline command tried to disable the default key, which every workspace without a key
    /// of its own depends on.
    #[error("key {0:?} is the default key; it cannot be disabled")]
    DisableDefault(String),
    /// An offline command tried to disable the version used for new wraps.
    #[error("key {key:?}: version {version} is the primary; rotate first, then disable it")]
    DisablePrimary {
        /// The key.
        key: String,
        /// The version.
        version: u32,
    },
    /// `create` found a file already there.
    #[error("keyring file {0} already exists; refusing to overwrite key material")]
    AlreadyExists(PathBuf),
    /// The system RNG failed.
    #[error("the system random number generator failed")]
    Rng,
}

/// Whether a key version may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionState {
    /// Wraps (when primary) and unwraps.
    Enabled,
    /// Neither wraps nor unwraps.
    Disabled,
}

/// One version of a master key. The material is zeroized on drop and never printed.
pub struct KeyVersion {
    /// Version number, from 1.
    pub version: u32,
    /// Whether it may be used.
    pub state: VersionState,
    /// When it was created.
    pub created_at: SystemTime,
    material: Zeroizing<[u8; MATERIAL_LEN]>,
    aead: LessSafeKey,
}

impl fmt::Debug for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVersion")
            .field("version", &self.version)
            .field("state", &self.state)
            .field(
                "created_at",
                &humantime::format_rfc3339_seconds(self.created_at),
            )
            .finish_non_exhaustive()
    }
}

impl KeyVersion {
    fn new(
        version: u32,
        state: VersionState,
        created_at: SystemTime,
        material: Zeroizing<[u8; MATERIAL_LEN]>,
    ) -> Self {
        let aead = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, material.as_slice())
                .expect("a 32-byte slice is always a valid AES-256 key"),
        );
        Self {
            version,
            state,
            created_at,
            material,
            aead,
        }
    }

    /// The AEAD key of this version.
    pub fn aead(&self) -> &LessSafeKey {
        &self.aead
    }
}

/// A named master key.
#[derive(Debug)]
pub struct MasterKey {
    /// The key's id.
    pub id: String,
    /// A disabled key neither wraps nor unwraps, whatever its versions' states.
    pub state: VersionState,
    /// The version used for new wraps.
    pub primary: u32,
    /// Every version, by number.
    pub versions: BTreeMap<u32, KeyVersion>,
}

impl MasterKey {
    /// The primary version (always present and enabled in a validated keyring).
    pub fn primary(&self) -> &KeyVersion {
        &self.versions[&self.primary]
    }
}

/// A validated keyring.
#[derive(Debug)]
pub struct Keyring {
    default_key: String,
    keys: BTreeMap<String, MasterKey>,
}

impl Keyring {
    /// The key used when a request names none.
    pub fn default_key(&self) -> &str {
        &self.default_key
    }

    /// A key by id.
    pub fn key(&self, id: &str) -> Option<&MasterKey> {
        self.keys.get(id)
    }

    /// Every key, by id.
    pub fn keys(&self) -> impl Iterator<Item = &MasterKey> {
        self.keys.values()
    }

    /// A new keyring with one key of one fresh version.
    pub fn generate(default_key: &str, rng: &SystemRandom) -> Result<Self, KeyringError> {
        kms::validate_key_id("default_key", default_key).map_err(|e| KeyringError::BadKeyId {
            index: 0,
            reason: e.reason,
        })?;
        let mut keyring = Self {
            default_key: default_key.to_owned(),
            keys: BTreeMap::new(),
        };
        keyring.add_key(default_key, rng)?;
        Ok(keyring)
    }

    /// Adds a new key with one fresh version.
    pub fn add_key(&mut self, id: &str, rng: &SystemRandom) -> Result<(), KeyringError> {
        kms::validate_key_id("key_id", id).map_err(|e| KeyringError::BadKeyId {
            index: self.keys.len(),
            reason: e.reason,
        })?;
        if self.keys.contains_key(id) {
            return Err(KeyringError::KeyExists(id.to_owned()));
        }
        let first = KeyVersion::new(
            1,
            VersionState::Enabled,
            SystemTime::now(),
            fresh_material(rng)?,
        );
        self.keys.insert(
            id.to_owned(),
            MasterKey {
                id: id.to_owned(),
                state: VersionState::Enabled,
                primary: 1,
                versions: BTreeMap::from([(1, first)]),
            },
        );
        Ok(())
    }

    /// Adds a fresh version; with `make_primary` it also becomes the primary. A staged version
    /// (not primary) already unwraps, so every kms replica can load it before any of them wraps
    /// under it. Returns the new version number.
    pub fn add_version(
        &mut self,
        id: &str,
        rng: &SystemRandom,
        make_primary: bool,
    ) -> Result<u32, KeyringError> {
        let key = self.key_mut(id)?;
        let next = key.versions.keys().next_back().copied().unwrap_or(0) + 1;
        let version = KeyVersion::new(
            next,
            VersionState::Enabled,
            SystemTime::now(),
            fresh_material(rng)?,
        );
        key.versions.insert(next, version);
        if make_primary {
            key.primary = next;
        }
        Ok(next)
    }

    /// Makes an enabled version the primary.
    pub fn promote(&mut self, id: &str, version: u32) -> Result<(), KeyringError> {
        let key = self.key_mut(id)?;
        match key.versions.get(&version) {
            None => Err(KeyringError::UnknownVersion {
                key: id.to_owned(),
                version,
            }),
            Some(v) if v.state == VersionState::Disabled => Err(KeyringError::BadPrimary {
                key: id.to_owned(),
                version,
                problem: "is disabled",
            }),
            Some(_) => {
                key.primary = version;
                Ok(())
            }
        }
    }

    /// Disables or enables a non-primary version.
    pub fn set_state(
        &mut self,
        id: &str,
        version: u32,
        state: VersionState,
    ) -> Result<(), KeyringError> {
        let key = self.key_mut(id)?;
        if state == VersionState::Disabled && key.primary == version {
            return Err(KeyringError::DisablePrimary {
                key: id.to_owned(),
                version,
            });
        }
        let entry = key
            .versions
            .get_mut(&version)
            .ok_or_else(|| KeyringError::UnknownVersion {
                key: id.to_owned(),
                version,
            })?;
        entry.state = state;
        Ok(())
    }

    /// Disables or enables a whole key (not the default key).
    pub fn set_key_state(&mut self, id: &str, state: VersionState) -> Result<(), KeyringError> {
        if state == VersionState::Disabled && id == self.default_key {
            return Err(KeyringError::DisableDefault(id.to_owned()));
        }
        self.key_mut(id)?.state = state;
        Ok(())
    }

    fn key_mut(&mut self, id: &str) -> Result<&mut MasterKey, KeyringError> {
        self.keys
            .get_mut(id)
            .ok_or_else(|| KeyringError::UnknownKey(id.to_owned()))
    }

    /// Reads and validates a keyring file, refusing one that group or others can access unless
    /// `allow_insecure_permissions`.
    pub fn load(path: &Path, allow_insecure_permissions: bool) -> Result<Self, KeyringError> {
        let io = |source| KeyringError::Io {
            path: path.to_owned(),
            source,
        };
        // One descriptor for the checks and the read, so the file checked is the file read.
        let mut file = fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(KeyringError::NotAFile(path.to_owned()));
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            if !allow_insecure_permissions {
                return Err(KeyringError::Permissions {
                    path: path.to_owned(),
                    mode,
                });
            }
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "keyring file is readable by group or others; allowed only because of --allow-insecure-keyring-permissions"
            );
        }
        let capacity = usize::try_from(meta.len()).unwrap_or(0);
        let mut bytes = Zeroizing::new(Vec::with_capacity(capacity + 1));
        file.read_to_end(&mut bytes).map_err(io)?;
        Self::parse(path, &bytes)
    }

    /// Parses and validates keyring JSON; `path` only labels errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, KeyringError> {
        let file: KeyringFile =
            serde_json::from_slice(bytes).map_err(|e| KeyringError::Syntax {
                path: path.to_owned(),
                line: e.line(),
                column: e.column(),
                message: redact_quoted(&e.to_string()),
            })?;
        Self::from_file(file)
    }

    fn from_file(file: KeyringFile) -> Result<Self, KeyringError> {
        if file.format != FORMAT {
            return Err(KeyringError::UnsupportedFormat(file.format));
        }
        if file.keys.is_empty() {
            return Err(KeyringError::NoKeys);
        }
        let mut keys = BTreeMap::new();
        for (index, key) in file.keys.into_iter().enumerate() {
            kms::validate_key_id("id", &key.id).map_err(|e| KeyringError::BadKeyId {
                index,
                reason: e.reason,
            })?;
            if key.versions.is_empty() {
                return Err(KeyringError::NoVersions(key.id));
            }
            let mut versions = BTreeMap::new();
            for v in key.versions {
                let bad = |problem| KeyringError::BadVersion {
                    key: key.id.clone(),
                    version: v.version,
                    problem,
                };
                if v.version == 0 {
                    return Err(bad("0, but versions start at 1"));
                }
                if versions.contains_key(&v.version) {
                    return Err(bad("repeated"));
                }
                let created_at = humantime::parse_rfc3339_weak(&v.created_at).map_err(|_| {
                    KeyringError::BadTimestamp {
                        key: key.id.clone(),
                        version: v.version,
                    }
                })?;
                let material =
                    decode_material(&v.material).map_err(|problem| KeyringError::BadMaterial {
                        key: key.id.clone(),
                        version: v.version,
                        problem,
                    })?;
                versions.insert(
                    v.version,
                    KeyVersion::new(v.version, v.state, created_at, material),
                );
            }
            let primary_problem = match versions.get(&key.primary_version) {
                None => Some("is not one of its versions"),
                Some(v) if v.state == VersionState::Disabled => Some("is disabled"),
                Some(_) => None,
            };
            if let Some(problem) = primary_problem {
                return Err(KeyringError::BadPrimary {
                    key: key.id,
                    version: key.primary_version,
                    problem,
                });
            }
            if keys.contains_key(&key.id) {
                return Err(KeyringError::DuplicateKey(key.id));
            }
            if key.state == VersionState::Disabled && key.id == file.default_key {
                return Err(KeyringError::DisableDefault(key.id));
            }
            keys.insert(
                key.id.clone(),
                MasterKey {
                    id: key.id,
                    state: key.state,
                    primary: key.primary_version,
                    versions,
                },
            );
        }
        if !keys.contains_key(&file.default_key) {
            return Err(KeyringError::UnknownDefaultKey(file.default_key));
        }
        Ok(Self {
            default_key: file.default_key,
            keys,
        })
    }

    /// Serializes the keyring, material included. The buffer is zeroized on drop.
    fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let file = KeyringFile {
            format: FORMAT,
            default_key: self.default_key.clone(),
            keys: self
                .keys
                .values()
                .map(|k| KeyFile {
                    id: k.id.clone(),
                    state: k.state,
                    primary_version: k.primary,
                    versions: k
                        .versions
                        .values()
                        .map(|v| VersionFile {
                            version: v.version,
                            state: v.state,
                            created_at: humantime::format_rfc3339_seconds(v.created_at).to_string(),
                            material: Zeroizing::new(B64.encode(v.material.as_slice())),
                        })
                        .collect(),
                })
                .collect(),
        };
        // Sized up front so the buffer holding material is not reallocated (leaving copies).
        let mut out = Zeroizing::new(Vec::with_capacity(4096 + 256 * self.version_count()));
        serde_json::to_writer_pretty(&mut *out, &file)
            .expect("serializing plain structs to memory cannot fail");
        out.push(b'\n');
        out
    }

    fn version_count(&self) -> usize {
        self.keys.values().map(|k| k.versions.len()).sum()
    }

    /// Writes a new keyring file with mode 0600, refusing to replace an existing one.
    pub fn create_file(&self, path: &Path) -> Result<(), KeyringError> {
        let io = |source| KeyringError::Io {
            path: path.to_owned(),
            source,
        };
        let (dir, tmp) = temp_path(path)?;
        let json = self.to_json();
        let written = (|| {
            write_synced(&tmp, &json)?;
            // A hard link never replaces its target: a file created meanwhile makes it fail.
            fs::hard_link(&tmp, path)
        })();
        let _ = fs::remove_file(&tmp);
        match written {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(KeyringError::AlreadyExists(path.to_owned()))
            }
            other => other.map_err(io),
        }?;
        fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io)
    }

    /// Loads the keyring at `path`, applies `change` and writes the result back, all under an
    /// exclusive lock on a lock file next to it: a concurrent edit waits for this one and then
    /// sees its result, so two rotations never both make the same version.
    pub fn edit<T>(
        path: &Path,
        allow_insecure_permissions: bool,
        change: impl FnOnce(&mut Keyring) -> Result<T, KeyringError>,
    ) -> Result<T, KeyringError> {
        let lock_path = sibling(path, "lock")?;
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .and_then(|f| {
                rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
                Ok(f)
            })
            .map_err(|source| KeyringError::Io {
                path: lock_path,
                source,
            })?;
        let mut keyring = Self::load(path, allow_insecure_permissions)?;
        let out = change(&mut keyring)?;
        keyring.write_atomically(path)?;
        drop(lock);
        Ok(out)
    }

    /// Why `next` may not replace this (running) keyring on a reload: it drops a version this one
    /// holds, or gives one of its versions other material. `None` when it only adds or
    /// changes states and primaries. Names keys and versions, never material.
    pub fn unsafe_replacement(&self, next: &Keyring) -> Option<String> {
        let mut problems = Vec::new();
        for key in self.keys.values() {
            for version in key.versions.values() {
                match next
                    .key(&key.id)
                    .and_then(|k| k.versions.get(&version.version))
                {
                    None => problems.push(format!(
                        "key {:?} version {} is gone",
                        key.id, version.version
                    )),
                    Some(v) if *v.material != *version.material => problems.push(format!(
                        "key {:?} version {} has different material",
                        key.id, version.version
                    )),
                    Some(_) => {}
                }
            }
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }

    /// Replaces the keyring file atomically (write a 0600 temporary file, fsync, rename), so the
    /// kms never reads a half-written keyring.
    pub fn write_atomically(&self, path: &Path) -> Result<(), KeyringError> {
        let io = |source| KeyringError::Io {
            path: path.to_owned(),
            source,
        };
        let (dir, tmp) = temp_path(path)?;
        let json = self.to_json();
        let result = (|| {
            write_synced(&tmp, &json)?;
            fs::rename(&tmp, path)?;
            fs::File::open(&dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(io)?;
        // A file that existed keeps its mode through rename of a new inode; make sure.
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io)
    }
}

/// A hidden file next to `path`, `.<name>.<suffix>`.
fn sibling(path: &Path, suffix: &str) -> Result<PathBuf, KeyringError> {
    let file_name = path
        .file_name()
        .ok_or_else(|| KeyringError::NotAFile(path.to_owned()))?;
    Ok(parent_dir(path).join(format!(".{}.{suffix}", file_name.to_string_lossy())))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The directory of `path` and a temporary file in it, unique to this process.
fn temp_path(path: &Path) -> Result<(PathBuf, PathBuf), KeyringError> {
    let tmp = sibling(path, &format!("tmp-{}", std::process::id()))?;
    Ok((parent_dir(path), tmp))
}

/// Writes `bytes` to a new 0600 file at `path` and syncs it to disk.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn fresh_material(rng: &SystemRandom) -> Result<Zeroizing<[u8; MATERIAL_LEN]>, KeyringError> {
    let mut material = Zeroizing::new([0u8; MATERIAL_LEN]);
    rng.fill(material.as_mut_slice())
        .map_err(|_| KeyringError::Rng)?;
    Ok(material)
}

fn decode_material(b64: &str) -> Result<Zeroizing<[u8; MATERIAL_LEN]>, String> {
    let bytes = Zeroizing::new(
        B64.decode(b64.trim())
            .map_err(|_| "not valid base64".to_owned())?,
    );
    if bytes.len() != MATERIAL_LEN {
        return Err(format!("got {} bytes", bytes.len()));
    }
    let mut material = Zeroizing::new([0u8; MATERIAL_LEN]);
    material.copy_from_slice(&bytes);
    Ok(material)
}

/// serde_json quotes the offending value in type errors; a misplaced material string must not
/// reach a log, so quoted runs are cut out of the message.
fn redact_quoted(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    let mut out = String::with_capacity(message.len());
    let mut in_quote = false;
    for c in message.chars() {
        if c == '"' {
            if !in_quote {
                out.push_str("\"…\"");
            }
            in_quote = !in_quote;
        } else if !in_quote {
            out.push(c);
        }
    }
    out
}

fn enabled() -> VersionState {
    VersionState::Enabled
}

fn is_enabled(state: &VersionState) -> bool {
    *state == VersionState::Enabled
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    format: u32,
    default_key: String,
    keys: Vec<KeyFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    id: String,
    // Optional in the file: keys written before key-level states existed are enabled.
    #[serde(default = "enabled", skip_serializing_if = "is_enabled")]
    state: VersionState,
    primary_version: u32,
    versions: Vec<VersionFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionFile {
    version: u32,
    state: VersionState,
    created_at: String,
    material: Zeroizing<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const M1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // bytes 0..32

    fn json(body: &str) -> Result<Keyring, KeyringError> {
        Keyring::parse(Path::new("test.json"), body.as_bytes())
    }

    fn one_key(versions: &str, primary: u32) -> String {
        format!(
            r#"{{"format":1,"default_key":"default","keys":[{{"id":"default","primary_version":{primary},"versions":[{versions}]}}]}}"#
        )
    }

    fn version(n: u32, state: &str, material: &str) -> String {
        format!(
            r#"{{"version":{n},"state":"{state}","created_at":"2026-01-01T00:00:00Z","material":"{material}"}}"#
        )
    }

    #[test]
    fn parses_a_valid_keyring() {
        let body = one_key(
            &format!(
                "{},{}",
                version(1, "disabled", M1),
                version(2, "enabled", M1)
            ),
            2,
        );
        let keyring = json(&body).unwrap();
        assert_eq!(keyring.default_key(), "default");
        let key = keyring.key("default").unwrap();
        assert_eq!(key.primary, 2);
        assert_eq!(key.versions[&1].state, VersionState::Disabled);
    }

    #[test]
    fn each_problem_gets_its_own_error() {
        let v1 = version(1, "enabled", M1);
        type Expect = fn(&KeyringError) -> bool;
        let cases: Vec<(String, Expect)> = vec![
            ("not json".into(), |e| {
                matches!(e, KeyringError::Syntax { line: 1, .. })
            }),
            (
                one_key(&v1, 1).replace("\"format\":1", "\"format\":2"),
                |e| matches!(e, KeyringError::UnsupportedFormat(2)),
            ),
            (
                r#"{"format":1,"default_key":"default","keys":[]}"#.into(),
                |e| matches!(e, KeyringError::NoKeys),
            ),
            (
                one_key(&v1, 1).replace("\"id\":\"default\"", "\"id\":\"Bad Id\""),
                |e| matches!(e, KeyringError::BadKeyId { index: 0, .. }),
            ),
            (one_key("", 1), |e| matches!(e, KeyringError::NoVersions(_))),
            (one_key(&version(0, "enabled", M1), 0), |e| {
                matches!(e, KeyringError::BadVersion { version: 0, .. })
            }),
            (one_key(&format!("{v1},{v1}"), 1), |e| {
                matches!(
                    e,
                    KeyringError::BadVersion {
                        problem: "repeated",
                        ..
                    }
                )
            }),
            (one_key(&version(1, "enabled", "AAEC"), 1), |e| {
                matches!(e, KeyringError::BadMaterial { version: 1, .. })
            }),
            (one_key(&version(1, "enabled", "!!not base64!!"), 1), |e| {
                matches!(e, KeyringError::BadMaterial { .. })
            }),
            (
                one_key(&v1.replace("2026-01-01T00:00:00Z", "yesterday"), 1),
                |e| matches!(e, KeyringError::BadTimestamp { .. }),
            ),
            (one_key(&v1, 7), |e| {
                matches!(e, KeyringError::BadPrimary { version: 7, .. })
            }),
            (one_key(&version(1, "disabled", M1), 1), |e| {
                matches!(
                    e,
                    KeyringError::BadPrimary {
                        problem: "is disabled",
                        ..
                    }
                )
            }),
            (
                one_key(&v1, 1).replace("\"default_key\":\"default\"", "\"default_key\":\"other\""),
                |e| matches!(e, KeyringError::UnknownDefaultKey(_)),
            ),
            (
                one_key(&v1, 1).replace("\"format\":1", "\"format\":1,\"extra\":true"),
                |e| matches!(e, KeyringError::Syntax { .. }),
            ),
            (
                format!(
                    r#"{{"format":1,"default_key":"default","keys":[{k},{k}]}}"#,
                    k = format!(r#"{{"id":"default","primary_version":1,"versions":[{v1}]}}"#)
                ),
                |e| matches!(e, KeyringError::DuplicateKey(_)),
            ),
        ];
        for (body, expected) in cases {
            let err = json(&body).expect_err(&body);
            assert!(expected(&err), "{body}\n gave {err:?}");
        }
    }

    #[test]
    fn errors_never_echo_material() {
        // Material placed where a number belongs: serde would quote it in its message.
        let body = one_key(&version(1, "enabled", M1), 1)
            .replace("\"version\":1", &format!("\"version\":\"{M1}\""));
        let err = json(&body).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, KeyringError::Syntax { .. }));
        assert!(!text.contains(M1), "{text}");
        assert!(text.contains("line 1"), "{text}");
    }

    #[test]
    fn debug_never_prints_material() {
        let keyring = Keyring::generate("default", &SystemRandom::new()).unwrap();
        let material = B64.encode(
            keyring.key("default").unwrap().versions[&1]
                .material
                .as_slice(),
        );
        let debug = format!("{keyring:?}");
        assert!(!debug.contains(&material));
        assert!(debug.contains("default"));
    }

    #[test]
    fn files_round_trip_and_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let rng = SystemRandom::new();
        let mut keyring = Keyring::generate("default", &rng).unwrap();
        keyring.create_file(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert!(matches!(
            keyring.create_file(&path),
            Err(KeyringError::AlreadyExists(_))
        ));

        assert_eq!(keyring.add_version("default", &rng, true).unwrap(), 2);
        keyring.add_key("ws-acme", &rng).unwrap();
        keyring
            .set_state("default", 1, VersionState::Disabled)
            .unwrap();
        keyring.write_atomically(&path).unwrap();

        let loaded = Keyring::load(&path, false).unwrap();
        let key = loaded.key("default").unwrap();
        assert_eq!(key.primary, 2);
        assert_eq!(key.versions[&1].state, VersionState::Disabled);
        assert_eq!(
            key.versions[&2].material.as_slice(),
            keyring.key("default").unwrap().versions[&2]
                .material
                .as_slice()
        );
        assert!(loaded.key("ws-acme").is_some());
    }

    #[test]
    fn staged_versions_unwrap_before_they_are_promoted() {
        let rng = SystemRandom::new();
        let mut keyring = Keyring::generate("default", &rng).unwrap();
        assert_eq!(keyring.add_version("default", &rng, false).unwrap(), 2);
        assert_eq!(keyring.key("default").unwrap().primary, 1);
        keyring.promote("default", 2).unwrap();
        assert_eq!(keyring.key("default").unwrap().primary, 2);
        assert!(matches!(
            keyring.promote("default", 7),
            Err(KeyringError::UnknownVersion { version: 7, .. })
        ));
        keyring
            .set_state("default", 1, VersionState::Disabled)
            .unwrap();
        assert!(matches!(
            keyring.promote("default", 1),
            Err(KeyringError::BadPrimary {
                problem: "is disabled",
                ..
            })
        ));
    }

    #[test]
    fn offline_commands_refuse_mistakes() {
        let rng = SystemRandom::new();
        let mut keyring = Keyring::generate("default", &rng).unwrap();
        assert!(matches!(
            keyring.set_state("default", 1, VersionState::Disabled),
            Err(KeyringError::DisablePrimary { version: 1, .. })
        ));
        assert!(matches!(
            keyring.set_state("default", 9, VersionState::Enabled),
            Err(KeyringError::UnknownVersion { version: 9, .. })
        ));
        assert!(matches!(
            keyring.add_version("nope", &rng, true),
            Err(KeyringError::UnknownKey(_))
        ));
        assert!(matches!(
            keyring.add_key("default", &rng),
            Err(KeyringError::KeyExists(_))
        ));
    }

    #[test]
    fn whole_keys_can_be_disabled_but_not_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let rng = SystemRandom::new();
        let mut keyring = Keyring::generate("default", &rng).unwrap();
        keyring.add_key("ws-acme", &rng).unwrap();
        assert!(matches!(
            keyring.set_key_state("default", VersionState::Disabled),
            Err(KeyringError::DisableDefault(_))
        ));
        keyring
            .set_key_state("ws-acme", VersionState::Disabled)
            .unwrap();
        keyring.create_file(&path).unwrap();
        let loaded = Keyring::load(&path, false).unwrap();
        assert_eq!(loaded.key("ws-acme").unwrap().state, VersionState::Disabled);
        assert_eq!(loaded.key("default").unwrap().state, VersionState::Enabled);
        // Files without key states (format 1 as first written) still load.
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.matches("\"state\": \"disabled\"").count(),
            1,
            "{}",
            text.len()
        );
    }

    #[test]
    fn refuses_files_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        Keyring::generate("default", &SystemRandom::new())
            .unwrap()
            .create_file(&path)
            .unwrap();
        for mode in [0o640, 0o604, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            match Keyring::load(&path, false) {
                Err(KeyringError::Permissions { mode: m, .. }) => assert_eq!(m, mode),
                other => panic!("mode {mode:o}: {other:?}"),
            }
            assert!(Keyring::load(&path, true).is_ok());
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(Keyring::load(&path, false).is_ok());

        assert!(matches!(
            Keyring::load(dir.path(), false),
            Err(KeyringError::NotAFile(_))
        ));
        assert!(matches!(
            Keyring::load(&dir.path().join("missing"), false),
            Err(KeyringError::Io { .. })
        ));
    }
}
