//! Compiles the protos with protox (no system protoc) and writes the descriptor set that the
//! servers hand to gRPC reflection. Writes only to OUT_DIR.

use prost::Message;
use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "kms/v1/kms.proto",
        "credentials/v1/resources.proto",
        "credentials/v1/credentials_service.proto",
        "credentials/v1/access_service.proto",
        "credentials/v1/admin_service.proto",
    ];
    let fds = protox::compile(files, [&root])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
