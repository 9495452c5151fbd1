use tonic_reflection::server::{Builder, v1, v1alpha};

const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";
const HEALTH: &str = "grpc.health.v1.Health";

/// Largest request message health and reflection decode, in bytes: their requests are a
/// service or file name, and tonic's own default (4 MiB) would let one call make the server
/// buffer that much.
pub const MAX_PLUMBING_MESSAGE_BYTES: usize = 64 * 1024;

/// A reflection builder that describes exactly the services this server serves (`services`,
/// plus health and reflection itself), so `grpcurl list` shows what can really be called.
fn builder(services: &[&str]) -> Builder<'static> {
    let mut builder = Builder::configure()
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(credentials_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // google.rpc.BadRequest and friends, so grpcurl can print error details.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET);
    for name in services
        .iter()
        .copied()
        .chain([HEALTH, REFLECTION_V1, REFLECTION_V1ALPHA])
    {
        builder = builder.with_service_name(name);
    }
    builder
}

/// gRPC reflection v1 for `services` (fully qualified names, e.g. `kms.v1.KeyManagementService`).
pub fn reflection_v1(services: &[&str]) -> v1::ServerReflectionServer<impl v1::ServerReflection> {
    builder(services)
        .build_v1()
        .expect("the descriptor sets are generated at build time and always parse")
        .max_decoding_message_size(MAX_PLUMBING_MESSAGE_BYTES)
}

/// gRPC reflection v1alpha for `services`: grpcurl 1.8 speaks only this version.
pub fn reflection_v1alpha(
    services: &[&str],
) -> v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection> {
    builder(services)
        .build_v1alpha()
        .expect("the descriptor sets are generated at build time and always parse")
        .max_decoding_message_size(MAX_PLUMBING_MESSAGE_BYTES)
}
