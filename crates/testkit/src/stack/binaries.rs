//! The workspace's binaries as child processes: where they are, and small process helpers.

use std::{
    path::PathBuf,
    process::{Command, Output},
    time::{Duration, Instant},
};

/// Path of a workspace binary in the target directory this test was built into.
pub fn bin(name: &str) -> PathBuf {
    // A test executable lives in target/<profile>/deps/, a harness binary such as `test-stack`
    // beside the others in target/<profile>/.
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("an executable is in a directory");
    let profile_dir = match dir.file_name() {
        Some(name) if name == "deps" => dir.parent().expect("target/<profile>/deps"),
        _ => dir,
    };
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// Runs `kms keyring <args...>` and returns its output.
pub fn kms_keyring(args: &[&str]) -> Output {
    Command::new(bin("kms"))
        .arg("keyring")
        .args(args)
        .output()
        .expect("run kms keyring")
}

/// Sends a signal (`HUP`, `TERM`, ...) to a process with the system's `kill`.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Polls `check` every 20 ms until it is true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The `address` field of a JSON log line.
pub fn logged_address(line: &str) -> Option<String> {
    let entry: serde_json::Value = serde_json::from_str(line).ok()?;
    entry["address"].as_str().map(str::to_owned)
}
