#![allow(clippy::unwrap_used)]
//! The keyring file cannot lose a master key: offline edits are serialized by a lock, `create`
//! never replaces a file, and a SIGHUP reload that would drop or change a version in use is
//! refused.

use kms::EncryptionContext;
use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};
use tests::{KmsProcess, bin, http_get, kms_keyring, send_signal, wait_until};

fn ctx() -> EncryptionContext {
    EncryptionContext::new()
        .with("workspace_id", "ws-1")
        .with("credential_id", "c1")
}

fn shown(keyring: &Path) -> serde_json::Value {
    let out = kms_keyring(&["show", "--json", "--file", keyring.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn versions(keyring: &Path) -> Vec<u64> {
    shown(keyring)["keys"][0]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect()
}

#[test]
fn concurrent_rotations_make_distinct_versions() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = KmsProcess::create_keyring(dir.path());
    let rotations = 8;
    // Spawned all before any is waited for, so their read-change-write cycles overlap.
    let children: Vec<_> = (0..rotations)
        .map(|_| {
            Command::new(bin("kms"))
                .args(["keyring", "rotate", "--file", keyring.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let children: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for out in &children {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let expected: Vec<u64> = (1..=1 + rotations).collect();
    assert_eq!(
        versions(&keyring),
        expected,
        "every rotation kept its version"
    );
}

#[test]
fn create_never_replaces_a_keyring() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = KmsProcess::create_keyring(dir.path());
    let before = fs::read(&keyring).unwrap();
    let out = kms_keyring(&["create", "--file", keyring.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(&keyring).unwrap(), before);

    // Racing creates of one new file: exactly one writes it, the others are told it exists.
    let fresh = dir.path().join("fresh.json");
    let creates: Vec<_> = (0..8)
        .map(|_| {
            Command::new(bin("kms"))
                .args(["keyring", "create", "--file", fresh.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = creates
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let created = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(created, 1, "only one create may claim the file");
    for out in outputs.iter().filter(|o| !o.status.success()) {
        assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    }
}

async fn reloads(kms: &KmsProcess, result: &str) -> String {
    let (_, text) = http_get(&kms.admin_addr().await, "/metrics").await;
    let line = format!("kms_keyring_reloads_total{{result=\"{result}\"}}");
    text.lines()
        .find(|l| l.starts_with(&line))
        .map(|l| l[line.len()..].trim().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_reload_that_drops_or_changes_a_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = KmsProcess::create_keyring(dir.path());
    let kms = KmsProcess::start(dir.path(), &keyring, &["--admin-addr", "127.0.0.1:0"]).await;
    kms.expect_error("keyring reload refused");
    let client = kms.client();
    let v1 = client.generate_data_key(None, &ctx()).await.unwrap();
    kms.keyring_and_reload(&["rotate"]).await;

    // Another keyring in its place: version 1 has other material, version 2 is gone.
    let other_dir = tempfile::tempdir().unwrap();
    let other = KmsProcess::create_keyring(other_dir.path());
    fs::copy(&other, &keyring).unwrap();
    send_signal(kms.pid(), "HUP");
    let line = kms.wait_for_log("keyring reload refused").await;
    assert!(line.contains("\"level\":\"ERROR\""), "{line}");
    assert!(line.contains("version 1 has different material"), "{line}");
    assert!(line.contains("version 2 is gone"), "{line}");
    assert!(!line.contains("material\":"), "{line}");
    assert_eq!(reloads(&kms, "refused").await, "1");

    // Still the old keyring: v1 blobs open, new keys under v2.
    let opened = client.unwrap_data_key(&v1.wrapped, &ctx()).await.unwrap();
    assert_eq!(opened.plaintext, v1.plaintext);
    assert_eq!(
        client
            .generate_data_key(None, &ctx())
            .await
            .unwrap()
            .key_version,
        2
    );
}

#[tokio::test]
async fn a_shrinking_reload_passes_with_the_explicit_override() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = KmsProcess::create_keyring(dir.path());
    let kms = KmsProcess::start(
        dir.path(),
        &keyring,
        &["--allow-keyring-shrink", "--admin-addr", "127.0.0.1:0"],
    )
    .await;
    let client = kms.client();
    let v1 = client.generate_data_key(None, &ctx()).await.unwrap();

    let other_dir = tempfile::tempdir().unwrap();
    let other = KmsProcess::create_keyring(other_dir.path());
    fs::copy(&other, &keyring).unwrap();
    send_signal(kms.pid(), "HUP");
    assert!(
        wait_until(Duration::from_secs(10), || async {
            kms.logs().contains("keyring reloaded")
        })
        .await
    );
    assert!(kms.logs().contains("allowed by --allow-keyring-shrink"));
    assert_eq!(reloads(&kms, "success").await, "1");
    assert!(client.unwrap_data_key(&v1.wrapped, &ctx()).await.is_err());
}
