use tonic_reflection::server::{v1, v1alpha};

/// gRPC reflection v1 over every proto of the vault.
pub fn reflection_v1() -> v1::ServerReflectionServer<impl v1::ServerReflection> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(vault_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the descriptor set is generated at build time and always parses")
}

/// gRPC reflection v1alpha, which grpcurl 1.8 still asks for.
pub fn reflection_v1alpha() -> v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(vault_proto::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the descriptor set is generated at build time and always parses")
}
