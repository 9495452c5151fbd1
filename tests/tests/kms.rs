#![allow(clippy::unwrap_used)]
//! End-to-end tests of the real `kms` binary: its transports, its error codes on the wire, the
//! keyring's life cycle through the offline commands and SIGHUP, and shutdown.

use hyper_util::rt::TokioIo;
use kms::{ClientConfig, EncryptionContext, Error, KmsClient, KmsEndpoint, pb};
use pb::key_management_service_client::KeyManagementServiceClient;
use std::{fs, os::unix::fs::PermissionsExt, path::Path, time::Duration};
use tests::{KmsProcess, kms_keyring, send_signal, wait_until};
use tonic::{
    Code,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Uri},
};

fn ctx(credential: &str) -> EncryptionContext {
    EncryptionContext::new()
        .with("workspace_id", "ws-1")
        .with("credential_id", credential)
}

/// The generated client over the socket, for requests the typed client never sends.
async fn raw_client(kms: &KmsProcess) -> KeyManagementServiceClient<Channel> {
    KeyManagementServiceClient::new(socket_channel(kms).await)
}

/// A channel over the kms's socket.
async fn socket_channel(kms: &KmsProcess) -> Channel {
    let path = kms.socket.clone();
    Endpoint::from_static("http://kms.local")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .unwrap()
}

fn keyring_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn unix_socket_is_owner_only_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = KmsProcess::create_keyring(dir.path());
    let mut kms = KmsProcess::start(dir.path(), &keyring, &[]).await;

    let mode = fs::metadata(&kms.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");

    let client = kms.client();
    let key = client.generate_data_key(None, &ctx("c1")).await.unwrap();
    assert_eq!(key.plaintext.len(), 32);
    assert_eq!((key.key_id.as_str(), key.key_version), ("default", 1));
    assert!(!format!("{key:?}").contains(&format!("{:?}", &key.plaintext[..4])));

    let opened = client
        .unwrap_data_key(&key.wrapped, &ctx("c1"))
        .await
        .unwrap();
    assert_eq!(opened.plaintext, key.plaintext);

    let described = client.describe_keys().await.unwrap();
    assert_eq!(described.default_key_id, "default");
    assert_eq!(described.keys[0].primary_version, 1);

    assert!(kms.stop().await.success());
    assert!(!kms.socket.exists(), "socket removed on shutdown");
    assert!(kms.logs().contains("drained"), "{}", kms.logs());
    assert!(kms.error_lines().is_empty(), "{:?}", kms.error_lines());
}

#[tokio::test]
async fn each_failure_has_its_own_code_and_a_generic_message() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = KmsProcess::create_keyring(dir.path());
    let kms = KmsProcess::start(dir.path(), &keyring, &[]).await;
    let client = kms.client();
    let key = client.generate_data_key(None, &ctx("c1")).await.unwrap();

    // Wrong context: another credential, another workspace.
    for wrong in [
        ctx("c2"),
        EncryptionContext::new()
            .with("workspace_id", "ws-2")
            .with("credential_id", "c1"),
    ] {
        let err = client
            .unwrap_data_key(&key.wrapped, &wrong)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::CannotUnwrap), "{err:?}");
    }
    // A tampered blob gets the same generic answer on the wire.
    let mut tampered = key.wrapped.clone();
    *tampered.last_mut().unwrap() ^= 1;
    let err = client
        .unwrap_data_key(&tampered, &ctx("c1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CannotUnwrap), "{err:?}");

    let mut raw = raw_client(&kms).await;
    let unwrap = |wrapped: Vec<u8>| pb::UnwrapDataKeyRequest {
        wrapped_key: wrapped,
        encryption_context: ctx("c1").entries().clone().into_iter().collect(),
    };
    let status = raw.unwrap_data_key(unwrap(tampered)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.message(),
        "the wrapped key does not open under this encryption context"
    );

    // Unknown format.
    let mut future = key.wrapped.clone();
    future[0] = 9;
    let status = raw.unwrap_data_key(unwrap(future)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("wrapped_key:"),
        "{}",
        status.message()
    );

    // Unknown key (a blob from a keyring with another key).
    let other_dir = tempfile::tempdir().unwrap();
    let other_keyring = KmsProcess::create_keyring(other_dir.path());
    let out = kms_keyring(&[
        "add-key",
        "--file",
        keyring_arg(&other_keyring),
        "--key-id",
        "ws-acme",
    ]);
    assert!(out.status.success());
    let other = KmsProcess::start(other_dir.path(), &other_keyring, &[]).await;
    let foreign = other
        .client()
        .generate_data_key(Some("ws-acme"), &ctx("c1"))
        .await
        .unwrap();
    let status = raw
        .unwrap_data_key(unwrap(foreign.wrapped))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(status.message(), "the master key is not in the keyring");
    let err = client
        .generate_data_key(Some("ws-acme"), &ctx("c1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::KeyUnavailable(_)), "{err:?}");

    // Limits name the field.
    let many: std::collections::HashMap<String, String> =
        (0..17).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    let status = raw
        .generate_data_key(pb::GenerateDataKeyRequest {
            encryption_context: many,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("encryption_context:"),
        "{}",
        status.message()
    );
    let status = raw
        .generate_data_key(pb::GenerateDataKeyRequest {
            key_length_bytes: 8,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("key_length_bytes:"),
        "{}",
        status.message()
    );
    let status = raw
        .generate_data_key(pb::GenerateDataKeyRequest {
            key_id: "Bad Id".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("key_id:"),
        "{}",
        status.message()
    );
    let status = raw
        .unwrap_data_key(unwrap(vec![1; 2000]))
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("wrapped_key:"),
        "{}",
        status.message()
    );
    let long = ctx("c1").with("note", "x".repeat(300));
    let err = client.generate_data_key(None, &long).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.starts_with("encryption_context[note]")),
        "{err:?}"
    );

    // Oversized request bodies are refused before decoding.
    let status = raw
        .unwrap_data_key(unwrap(vec![1; 100 * 1024]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    // So are oversized health checks (64 KiB: health and reflection, like the key service).
    let mut health = tonic_health::pb::health_client::HealthClient::new(socket_channel(&kms).await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "s".repeat(64 * 1024 + 1),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");

    // The wire never carried key material in a message, and nothing here was an ERROR.
    assert!(kms.error_lines().is_empty(), "{:?}", kms.error_lines());
}

/// The operator's rotation procedure: wrap under v1, rotate, SIGHUP, new keys under v2, old blobs
/// still open, rewrap moves them, disable v1, SIGHUP, v1 blobs refused.
#[tokio::test]
async fn rotation_with_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = KmsProcess::create_keyring(dir.path());
    let kms = KmsProcess::start(dir.path(), &keyring, &[]).await;
    let client = kms.client();
    let v1 = client.generate_data_key(None, &ctx("c1")).await.unwrap();
    assert_eq!(v1.key_version, 1);

    let out = kms_keyring(&["rotate", "--file", keyring_arg(&keyring)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("version 2 is now primary"));
    send_signal(kms.pid(), "HUP");
    kms.wait_for_log("keyring reloaded").await;

    let v2 = client.generate_data_key(None, &ctx("c2")).await.unwrap();
    assert_eq!(v2.key_version, 2);
    let old = client
        .unwrap_data_key(&v1.wrapped, &ctx("c1"))
        .await
        .unwrap();
    assert_eq!((old.key_version, &old.plaintext), (1, &v1.plaintext));

    let moved = client
        .rewrap_data_key(&v1.wrapped, &ctx("c1"), None)
        .await
        .unwrap();
    assert_eq!((moved.key_id.as_str(), moved.key_version), ("default", 2));
    // Rewrap is bound to the same context.
    let err = client
        .rewrap_data_key(&v1.wrapped, &ctx("c2"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CannotUnwrap), "{err:?}");

    let load_before = client.describe_keys().await.unwrap().load_id;
    let out = kms_keyring(&["disable", "--file", keyring_arg(&keyring), "--version", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    send_signal(kms.pid(), "HUP");
    wait_until(Duration::from_secs(5), || async {
        kms.logs().matches("keyring reloaded").count() >= 2
    })
    .await;
    // A reload is a new load: clients that keep unwrapped keys learn of it from this id.
    let load_after = client.describe_keys().await.unwrap().load_id;
    assert!(!load_before.is_empty());
    assert_ne!(load_before, load_after);

    let err = client
        .unwrap_data_key(&v1.wrapped, &ctx("c1"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::KeyUnavailable(m) if m.contains("disabled")),
        "{err:?}"
    );
    let reopened = client
        .unwrap_data_key(&moved.wrapped, &ctx("c1"))
        .await
        .unwrap();
    assert_eq!(reopened.plaintext, v1.plaintext);

    // `show` lists states and never material.
    let out = kms_keyring(&["show", "--file", keyring_arg(&keyring), "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["keys"][0]["primary_version"], 2);
    assert_eq!(shown["keys"][0]["versions"][0]["state"], "disabled");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("material"));
    assert!(kms.error_lines().is_empty(), "{:?}", kms.error_lines());
}

#[tokio::test]
async fn a_bad_keyring_on_sighup_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = KmsProcess::create_keyring(dir.path());
    let kms = KmsProcess::start(dir.path(), &keyring, &[]).await;
    kms.expect_error("keyring reload failed");
    let client = kms.client();
    let before = client.generate_data_key(None, &ctx("c1")).await.unwrap();

    fs::write(
        &keyring,
        b"{\"format\": 1, \"default_key\": \"default\", \"keys\": [",
    )
    .unwrap();
    send_signal(kms.pid(), "HUP");
    let line = kms.wait_for_log("keyring reload failed").await;
    assert!(line.contains("\"level\":\"ERROR\""), "{line}");
    assert!(
        line.contains("line 1"),
        "the error names the problem: {line}"
    );

    // Still serving the old keyring.
    let opened = client
        .unwrap_data_key(&before.wrapped, &ctx("c1"))
        .await
        .unwrap();
    assert_eq!(opened.plaintext, before.plaintext);
    assert!(client.is_serving().await.unwrap());

    // A file others can read is refused on reload too.
    let good_dir = tempfile::tempdir().unwrap();
    let good = KmsProcess::create_keyring(good_dir.path());
    fs::copy(&good, &keyring).unwrap();
    fs::set_permissions(&keyring, fs::Permissions::from_mode(0o644)).unwrap();
    send_signal(kms.pid(), "HUP");
    wait_until(Duration::from_secs(5), || async {
        kms.logs().matches("keyring reload failed").count() >= 2
    })
    .await;
    assert!(kms.logs().contains("mode 644"), "{}", kms.logs());
    assert!(
        client
            .unwrap_data_key(&before.wrapped, &ctx("c1"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn startup_refuses_unsafe_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = KmsProcess::create_keyring(dir.path());

    fs::set_permissions(&keyring, fs::Permissions::from_mode(0o640)).unwrap();
    let mut kms = KmsProcess::spawn(dir.path(), &keyring, &[]);
    kms.expect_error("kms failed");
    let status = kms.wait_exit(Duration::from_secs(10)).await.expect("exits");
    assert!(!status.success());
    assert!(kms.logs().contains("mode 640"), "{}", kms.logs());

    // The development flag lets it start, with a warning.
    let kms = KmsProcess::start(
        dir.path(),
        &keyring,
        &["--allow-insecure-keyring-permissions"],
    )
    .await;
    assert!(
        kms.logs().contains("readable by group or others"),
        "{}",
        kms.logs()
    );
    drop(kms);

    // TCP without TLS material is refused unless the development flag is given.
    fs::set_permissions(&keyring, fs::Permissions::from_mode(0o600)).unwrap();
    let mut kms = KmsProcess::spawn(dir.path(), &keyring, &["--tcp", "127.0.0.1:0"]);
    kms.expect_error("kms failed");
    assert!(
        !kms.wait_exit(Duration::from_secs(10))
            .await
            .expect("exits")
            .success()
    );
    assert!(kms.logs().contains("--tls-cert"), "{}", kms.logs());

    let kms = KmsProcess::spawn(
        dir.path(),
        &keyring,
        &["--tcp", "127.0.0.1:0", "--insecure-plaintext-tcp"],
    );
    let line = kms.wait_for_log("PLAINTEXT").await;
    assert!(line.contains("\"level\":\"WARN\""), "{line}");
}

struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn new_pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client_cert = CertificateParams::new(vec!["credentials-api".into()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();
    Pki {
        ca: ca.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    }
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_valid_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = KmsProcess::create_keyring(dir.path());
    let pki = new_pki();
    // Same shape, another CA.
    let stranger = new_pki();
    let write = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        fs::write(&path, pem).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (cert, key, ca) = (
        write("server.pem", &pki.server_cert),
        write("server.key", &pki.server_key),
        write("ca.pem", &pki.ca),
    );
    let kms = KmsProcess::spawn(
        dir.path(),
        &keyring,
        &[
            "--tcp",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &ca,
        ],
    );
    let line = kms.wait_for_log("\"message\":\"listening\"").await;
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    let addr = entry["address"].as_str().unwrap().to_owned();
    assert_eq!(entry["mutual_tls"], true);
    let uri = format!("https://{addr}");

    let client_with = |cert: &str, key: &str| {
        let mut config = ClientConfig::new(KmsEndpoint::Tls {
            uri: uri.clone(),
            ca_pem: pki.ca.clone().into_bytes(),
            cert_pem: cert.as_bytes().to_vec(),
            key_pem: key.as_bytes().to_vec().into(),
            server_name: Some("localhost".into()),
        });
        config.timeout = Duration::from_secs(3);
        KmsClient::new(config).unwrap()
    };

    // A client certificate signed by the configured CA works.
    let good = client_with(&pki.client_cert, &pki.client_key);
    let ready = wait_until(Duration::from_secs(10), || {
        let good = good.clone();
        async move { matches!(good.is_serving().await, Ok(true)) }
    })
    .await;
    assert!(ready, "{}", kms.logs());
    let key_material = good.generate_data_key(None, &ctx("c1")).await.unwrap();
    assert_eq!(
        good.unwrap_data_key(&key_material.wrapped, &ctx("c1"))
            .await
            .unwrap()
            .plaintext,
        key_material.plaintext
    );

    // A certificate from another CA is refused.
    let bad = client_with(&stranger.client_cert, &stranger.client_key);
    let err = bad.generate_data_key(None, &ctx("c1")).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");

    // No certificate at all is refused.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(uri.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap();
    let refused = match channel.connect().await {
        Err(_) => true,
        Ok(channel) => KeyManagementServiceClient::new(channel)
            .describe_keys(pb::DescribeKeysRequest {})
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate must be refused");
}

#[tokio::test]
async fn a_stopped_kms_is_unavailable_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = KmsProcess::create_keyring(dir.path());
    let mut kms = KmsProcess::start(dir.path(), &keyring, &[]).await;
    let client = kms.client();
    let key = client.generate_data_key(None, &ctx("c1")).await.unwrap();
    assert!(kms.stop().await.success());

    let err = client
        .unwrap_data_key(&key.wrapped, &ctx("c1"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");

    // Same keyring, same socket: the same client reconnects.
    let _kms = KmsProcess::start(dir.path(), &keyring, &[]).await;
    let opened = client
        .unwrap_data_key(&key.wrapped, &ctx("c1"))
        .await
        .unwrap();
    assert_eq!(opened.plaintext, key.plaintext);
}

#[tokio::test]
async fn health_port_for_probes() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = KmsProcess::create_keyring(dir.path());
    let kms = KmsProcess::start(dir.path(), &keyring, &["--health-addr", "127.0.0.1:0"]).await;
    let line = kms.wait_for_log("health listening").await;
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    let addr = entry["address"].as_str().unwrap();
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in ["", "kms.v1.KeyManagementService"] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            status.status(),
            tonic_health::pb::health_check_response::ServingStatus::Serving
        );
    }
    // The health port serves nothing else.
    let err = KeyManagementServiceClient::new(channel)
        .describe_keys(pb::DescribeKeysRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
}
