//! Compiles the protos with protox (no system protoc) and writes the descriptor set that the
//! servers hand to gRPC reflection and read their HTTP routes from (the `google.api.http`
//! options, with the comments as documentation). Writes only to OUT_DIR.
//!
//! Two passes, because clients and servers need different codecs: the messages and clients with
//! prost's codec, then the servers alone (into OUT_DIR/server, the messages referred to as
//! extern) with `codec::RequestCodec`, which answers INVALID_ARGUMENT for a malformed request;
//! and so is the server of `grpc.health.v1`, from tonic-health's descriptors.

use prost::Message;
use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let third_party = root.join("third_party");
    let files = [
        "kms/v1/kms.proto",
        "credentials/v1/resources.proto",
        "credentials/v1/credentials_service.proto",
        "credentials/v1/access_service.proto",
        "credentials/v1/admin_service.proto",
        // Not imported by ours, but needed to write a status's details as JSON.
        "google/rpc/status.proto",
        "google/rpc/error_details.proto",
    ];
    let mut compiler = protox::Compiler::new([&root, &third_party])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(files)?;
    let fds = compiler.file_descriptor_set();
    let out = PathBuf::from(env::var("OUT_DIR")?);
    // Encoded by protox itself, which keeps the `google.api.http` options (prost's own
    // MethodOptions would drop them as unknown fields): the HTTP routes are read from here.
    fs::write(
        out.join("descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(fds.clone())?;
    let servers = out.join("server");
    fs::create_dir_all(&servers)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .codec_path("crate::codec::RequestCodec")
        .extern_path(".kms.v1", "crate::kms::v1")
        .extern_path(".credentials.v1", "crate::credentials::v1")
        .out_dir(&servers)
        .compile_fds(fds)?;
    // grpc.health.v1's server as well (its messages stay tonic-health's): a health check needs
    // no token, so it is the first place anyone would send bad bytes.
    let health = prost_types::FileDescriptorSet::decode(tonic_health::pb::FILE_DESCRIPTOR_SET)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .codec_path("crate::codec::RequestCodec")
        .extern_path(".grpc.health.v1", "::tonic_health::pb")
        .out_dir(&servers)
        .compile_fds(health)?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
