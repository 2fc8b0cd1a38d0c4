//! The generated KServe v2 / Triton protocol types, server trait and client
//! (`inference` package), and the encoded descriptor set for reflection.

#![allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]

tonic::include_proto!("inference");

/// The encoded `FileDescriptorSet` of `grpc_service.proto` and
/// `model_config.proto`, registered with server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/inference_descriptor.bin"));
