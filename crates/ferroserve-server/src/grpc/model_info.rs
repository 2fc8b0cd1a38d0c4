//! Triton's `ModelConfig` and `ModelStatistics` over gRPC: the same values
//! as the HTTP `/config` and `/stats` routes, converted from their JSON
//! form ([`triton_json`](super::triton_json)).

use ferroserve_core::InferError;
use serde::Serialize;
use tonic::Status;

use super::access::{named_model, Incoming, Method, Models};
use super::errors::status_of;
use super::models::optional;
use super::proto::{
    ModelConfigRequest, ModelConfigResponse, ModelStatisticsRequest, ModelStatisticsResponse,
};
use super::triton_json;
use crate::state::AppState;
use crate::triton::{model_config_of, statistics};

/// `ModelConfig`: the configuration of the version a call naming none
/// reaches, or of the version named.
pub(crate) async fn model_config(
    state: &AppState,
    incoming: &Incoming,
    request: ModelConfigRequest,
) -> Result<ModelConfigResponse, Status> {
    let model = named_model(&request.name, "name")?;
    incoming.authorize(state, Method::ModelConfig, Models::One(model))?;
    let config = model_config_of(state, model, optional(&request.version))
        .await
        .map_err(|e| status_of(&e))?;
    Ok(ModelConfigResponse {
        config: Some(triton_json::model_config(&as_json(&config)?)),
    })
}

/// `ModelStatistics`: of one version, every served version of a model, or
/// (no name) every served version of the models the caller may use.
pub(crate) async fn model_statistics(
    state: &AppState,
    incoming: &Incoming,
    request: ModelStatisticsRequest,
) -> Result<ModelStatisticsResponse, Status> {
    let model = optional(&request.name);
    let models = model.map_or(Models::NoneInParticular, Models::One);
    let requester = incoming.authorize(state, Method::ModelStatistics, models)?;
    let mut stats = statistics(state, model, optional(&request.version))
        .await
        .map_err(|e| status_of(&e))?;
    if let Some(principal) = &requester.principal {
        stats.retain(|s| principal.may_use(&s.name));
    }
    let model_stats = stats
        .iter()
        .map(|s| as_json(s).map(|json| triton_json::model_statistics(&json)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ModelStatisticsResponse { model_stats })
}

fn as_json(value: &impl Serialize) -> Result<serde_json::Value, Status> {
    serde_json::to_value(value).map_err(|e| {
        status_of(&InferError::internal(format!(
            "cannot encode Triton's model information: {e}"
        )))
    })
}
