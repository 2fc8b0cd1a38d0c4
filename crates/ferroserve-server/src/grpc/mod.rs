//! The gRPC front end: KServe v2 `inference.GRPCInferenceService` with the
//! Triton extensions, `grpc.health.v1.Health` and server reflection, onto
//! the same pipeline, authentication and limits as the HTTP server.

pub mod proto;
