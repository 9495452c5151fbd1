//! Generated protobuf and gRPC code for the vault's two APIs, and the encoded file descriptor set
//! that both servers register with gRPC reflection.

mod codec;

pub use codec::{RequestCodec, RequestDecoder};

/// `kms.v1`: the key management service (master keys, data-key wrapping).
pub mod kms {
    /// Version 1 of the kms API.
    #[allow(missing_docs, clippy::all, clippy::pedantic, clippy::unwrap_used)]
    pub mod v1 {
        tonic::include_proto!("kms.v1");
        include!(concat!(env!("OUT_DIR"), "/server/kms.v1.rs"));
    }
}

/// `credentials.v1`: the management and access APIs of the credentials service.
pub mod credentials {
    /// Version 1 of the credentials API.
    #[allow(missing_docs, clippy::all, clippy::pedantic, clippy::unwrap_used)]
    pub mod v1 {
        tonic::include_proto!("credentials.v1");
        include!(concat!(env!("OUT_DIR"), "/server/credentials.v1.rs"));
    }
}

/// `grpc.health.v1`'s server, generated with [`RequestCodec`]; its messages and the service that
/// answers are tonic-health's.
pub mod health {
    #[allow(missing_docs, clippy::all, clippy::pedantic, clippy::unwrap_used)]
    mod generated {
        include!(concat!(env!("OUT_DIR"), "/server/grpc.health.v1.rs"));
    }
    pub use generated::health_server::{Health, HealthServer};
}

/// The encoded `FileDescriptorSet` of every proto above, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));
