//! Server reflection (`grpc.reflection.v1` and `v1alpha`, what `grpcurl`
//! and other tools ask), describing the inference service, the health
//! service and reflection itself.

use tonic::service::RoutesBuilder;
use tonic_reflection::server::{Builder, Error};

use super::proto::FILE_DESCRIPTOR_SET;

fn builder() -> Builder<'static> {
    Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Adds both reflection services to `routes`.
pub(crate) fn add_to(routes: &mut RoutesBuilder) -> Result<(), Error> {
    routes.add_service(builder().build_v1()?);
    routes.add_service(builder().build_v1alpha()?);
    Ok(())
}
