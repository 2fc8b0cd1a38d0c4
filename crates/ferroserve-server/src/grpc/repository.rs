//! The model repository calls over gRPC (`RepositoryIndex`,
//! `RepositoryModelLoad`, `RepositoryModelUnload`), through the same
//! operations as `/v2/repository/...` and audited the same way. Only the
//! server's one repository exists: a `repository_name` other than empty is
//! not found.

use std::sync::Arc;

use ferroserve_core::InferError;
use ferroserve_serving::lifecycle::Controller;
use tonic::Status;

use super::access::{named_model, Incoming, Method, Models};
use super::errors::status_of;
use super::proto::repository_index_response::ModelIndex;
use super::proto::{
    RepositoryIndexRequest, RepositoryIndexResponse, RepositoryModelLoadRequest,
    RepositoryModelUnloadRequest,
};
use crate::management::registry_disabled;
use crate::management::repository::{index_rows, load_model, unload_model};
use crate::state::AppState;

/// `RepositoryIndex`: every model and version, or the ready ones.
pub(crate) async fn index(
    state: &AppState,
    incoming: &Incoming,
    request: RepositoryIndexRequest,
) -> Result<RepositoryIndexResponse, Status> {
    incoming.authorize(state, Method::RepositoryIndex, Models::All)?;
    let controller = controller(state, &request.repository_name)?;
    let rows = index_rows(&controller, request.ready)
        .await
        .map_err(|e| status_of(&e))?;
    let models = rows
        .into_iter()
        .map(|row| ModelIndex {
            name: row.name,
            version: row.version.unwrap_or_default(),
            state: row.state.to_owned(),
            reason: row.reason,
        })
        .collect();
    Ok(RepositoryIndexResponse { models })
}

/// `RepositoryModelLoad`: serves the model again, or reloads it.
pub(crate) async fn load(
    state: &AppState,
    incoming: &Incoming,
    request: RepositoryModelLoadRequest,
) -> Result<(), Status> {
    let model = named_model(&request.model_name, "model_name")?;
    let requester = incoming.authorize(state, Method::RepositoryModelLoad, Models::One(model))?;
    let controller = controller(state, &request.repository_name)?;
    load_model(&controller, model, &actor(&requester))
        .await
        .map_err(|e| status_of(&e))
}

/// `RepositoryModelUnload`: stops serving the model; calls in flight finish.
pub(crate) async fn unload(
    state: &AppState,
    incoming: &Incoming,
    request: RepositoryModelUnloadRequest,
) -> Result<(), Status> {
    let model = named_model(&request.model_name, "model_name")?;
    let requester = incoming.authorize(state, Method::RepositoryModelUnload, Models::One(model))?;
    let controller = controller(state, &request.repository_name)?;
    unload_model(&controller, model, &actor(&requester))
        .await
        .map_err(|e| status_of(&e))
}

/// The lifecycle controller, when the registry is enabled and the request
/// names no other repository than the server's.
fn controller(state: &AppState, repository: &str) -> Result<Arc<Controller>, Status> {
    if !repository.is_empty() {
        return Err(status_of(&InferError::not_found(format!(
            "no repository named '{repository}'; this server has one, named by an empty repository_name"
        ))));
    }
    state
        .controller
        .clone()
        .ok_or_else(|| status_of(&registry_disabled().0))
}

/// Who the audit log records for a change.
fn actor(requester: &crate::inference::Requester) -> String {
    requester
        .principal
        .as_ref()
        .map_or_else(|| "anonymous".to_owned(), |p| p.name().to_owned())
}
