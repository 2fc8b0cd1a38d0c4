//! Server and model information over gRPC: `ServerMetadata`,
//! `ModelReady` and `ModelMetadata`, answered from the same sources as
//! their HTTP routes (`GET /v2`, `/v2/models/{m}[/ready]`).

use ferroserve_core::{ErrorKind, TensorSpec};
use tonic::Status;

use super::access::{named_model, Incoming, Method, Models};
use super::errors::status_of;
use super::proto::model_metadata_response::TensorMetadata;
use super::proto::{
    ModelMetadataRequest, ModelMetadataResponse, ModelReadyRequest, ModelReadyResponse,
    ServerMetadataResponse,
};
use crate::kserve::routes::{platform_of, served_versions, server_extensions, SERVER_NAME};
use crate::state::AppState;

/// `ServerMetadata`: name, version and protocol extensions.
pub(crate) fn server_metadata(
    state: &AppState,
    incoming: &Incoming,
) -> Result<ServerMetadataResponse, Status> {
    incoming.authorize(state, Method::ServerMetadata, Models::NoneInParticular)?;
    Ok(ServerMetadataResponse {
        name: SERVER_NAME.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        extensions: server_extensions(state)
            .into_iter()
            .map(str::to_owned)
            .collect(),
    })
}

/// `ModelReady`: whether the model (version) serves. A model that is
/// unknown or not loaded is not ready, as Triton answers; other errors
/// (a malformed version) are errors.
pub(crate) async fn model_ready(
    state: &AppState,
    incoming: &Incoming,
    request: ModelReadyRequest,
) -> Result<ModelReadyResponse, Status> {
    let model = named_model(&request.name, "name")?;
    incoming.authorize(state, Method::ModelReady, Models::One(model))?;
    let ready = version_ready(state, model, optional(&request.version)).await?;
    Ok(ModelReadyResponse { ready })
}

/// Whether `model` (`version`) serves: `false` when it is unknown or not
/// loaded, an error for any other reason it cannot be looked up.
pub(crate) async fn version_ready(
    state: &AppState,
    model: &str,
    version: Option<&str>,
) -> Result<bool, Status> {
    match state.pipeline.find(model, version).await {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::Unavailable) => Ok(false),
        Err(e) => Err(status_of(&e)),
    }
}

/// `ModelMetadata`: the served signature, versions and platform.
pub(crate) async fn model_metadata(
    state: &AppState,
    incoming: &Incoming,
    request: ModelMetadataRequest,
) -> Result<ModelMetadataResponse, Status> {
    let model = named_model(&request.name, "name")?;
    incoming.authorize(state, Method::ModelMetadata, Models::One(model))?;
    let served = state
        .pipeline
        .find(model, optional(&request.version))
        .await
        .map_err(|e| status_of(&e))?;
    let signature = served.signature();
    Ok(ModelMetadataResponse {
        name: served.name().to_owned(),
        versions: served_versions(state, model),
        platform: platform_of(&served),
        inputs: signature.inputs.iter().map(tensor_metadata).collect(),
        outputs: signature.outputs.iter().map(tensor_metadata).collect(),
    })
}

fn tensor_metadata(spec: &TensorSpec) -> TensorMetadata {
    TensorMetadata {
        name: spec.name.clone(),
        datatype: spec.datatype.as_str().to_owned(),
        shape: spec.shape.iter().map(|d| d.as_i64()).collect(),
    }
}

/// A version field: empty means none chosen.
pub(crate) fn optional(version: &str) -> Option<&str> {
    Some(version).filter(|v| !v.is_empty())
}
