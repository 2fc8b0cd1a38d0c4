//! The MLflow-compatible REST API under `/api/2.0/mlflow` and its artifact
//! proxy under `/api/2.0/mlflow-artifacts`: the official `mlflow` client's
//! tracking calls (experiments, runs, what they log, logged models) on
//! ferroserve's registry database, and its model registry calls on
//! ferroserve's own models and versions, with MLflow's JSON shapes and
//! error format. Reads need the reader role, logging and registry writes
//! the deployer role, deleting a model or version the admin role
//! (MLflow's clients send their token as a bearer token).

mod artifacts;
mod experiments;
mod logged_models;
mod mlmodel;
mod model_versions;
mod protocol;
mod registered_models;
mod runs;
mod search;

pub(crate) use protocol::MlflowError;

use axum::handler::Handler;
use axum::http::Method;
use ferroserve_core::Access;

use crate::routes::{route, Route};
use crate::state::SharedState;

/// A POST route of the MLflow API (its messages as JSON bodies).
fn post<H: Handler<T, SharedState>, T: 'static>(
    path: &'static str,
    access: Access,
    handler: H,
) -> Route {
    route(Method::POST, path, access, handler)
}

/// A GET route of the MLflow API (its messages as query strings).
fn get<H: Handler<T, SharedState>, T: 'static>(
    path: &'static str,
    access: Access,
    handler: H,
) -> Route {
    route(Method::GET, path, access, handler)
}

/// A registered model's aliases.
const ALIAS: &str = "/api/2.0/mlflow/registered-models/alias";

/// A logged model, by id.
const LOGGED_MODEL: &str = "/api/2.0/mlflow/logged-models/{model_id}";

/// An artifact of the proxy, by path.
const ARTIFACT: &str = "/api/2.0/mlflow-artifacts/artifacts/{*path}";

/// Every route of the MLflow API.
pub(crate) fn table() -> Vec<Route> {
    use Access::{Admin, Deploy, Read};
    vec![
        post(
            "/api/2.0/mlflow/experiments/create",
            Deploy,
            experiments::create,
        ),
        get("/api/2.0/mlflow/experiments/get", Read, experiments::get),
        get(
            "/api/2.0/mlflow/experiments/get-by-name",
            Read,
            experiments::get_by_name,
        ),
        post(
            "/api/2.0/mlflow/experiments/search",
            Read,
            experiments::search,
        ),
        post(
            "/api/2.0/mlflow/experiments/update",
            Deploy,
            experiments::update,
        ),
        post(
            "/api/2.0/mlflow/experiments/delete",
            Deploy,
            experiments::delete,
        ),
        post(
            "/api/2.0/mlflow/experiments/restore",
            Deploy,
            experiments::restore,
        ),
        post(
            "/api/2.0/mlflow/experiments/set-experiment-tag",
            Deploy,
            experiments::set_tag,
        ),
        post(
            "/api/2.0/mlflow/experiments/delete-experiment-tag",
            Deploy,
            experiments::delete_tag,
        ),
        post("/api/2.0/mlflow/runs/create", Deploy, runs::create),
        get("/api/2.0/mlflow/runs/get", Read, runs::get),
        post("/api/2.0/mlflow/runs/update", Deploy, runs::update),
        post("/api/2.0/mlflow/runs/delete", Deploy, runs::delete),
        post("/api/2.0/mlflow/runs/restore", Deploy, runs::restore),
        post("/api/2.0/mlflow/runs/search", Read, runs::search),
        post("/api/2.0/mlflow/runs/log-metric", Deploy, runs::log_metric),
        post(
            "/api/2.0/mlflow/runs/log-parameter",
            Deploy,
            runs::log_param,
        ),
        post("/api/2.0/mlflow/runs/log-batch", Deploy, runs::log_batch),
        post("/api/2.0/mlflow/runs/log-inputs", Deploy, runs::log_inputs),
        post("/api/2.0/mlflow/runs/log-model", Deploy, runs::log_model),
        post("/api/2.0/mlflow/runs/outputs", Deploy, runs::log_outputs),
        post("/api/2.0/mlflow/runs/set-tag", Deploy, runs::set_tag),
        post("/api/2.0/mlflow/runs/delete-tag", Deploy, runs::delete_tag),
        get(
            "/api/2.0/mlflow/metrics/get-history",
            Read,
            runs::metric_history,
        ),
        post(
            "/api/2.0/mlflow/logged-models",
            Deploy,
            logged_models::create,
        ),
        post(
            "/api/2.0/mlflow/logged-models/search",
            Read,
            logged_models::search,
        ),
        get(LOGGED_MODEL, Read, logged_models::get),
        route(Method::PATCH, LOGGED_MODEL, Deploy, logged_models::finalize),
        route(Method::DELETE, LOGGED_MODEL, Deploy, logged_models::delete),
        route(
            Method::PATCH,
            "/api/2.0/mlflow/logged-models/{model_id}/tags",
            Deploy,
            logged_models::set_tags,
        ),
        route(
            Method::DELETE,
            "/api/2.0/mlflow/logged-models/{model_id}/tags/{tag_key}",
            Deploy,
            logged_models::delete_tag,
        ),
        post(
            "/api/2.0/mlflow/logged-models/{model_id}/params",
            Deploy,
            logged_models::log_params,
        ),
        post(
            "/api/2.0/mlflow/registered-models/create",
            Deploy,
            registered_models::create,
        ),
        get(
            "/api/2.0/mlflow/registered-models/get",
            Read,
            registered_models::get,
        ),
        get(
            "/api/2.0/mlflow/registered-models/search",
            Read,
            registered_models::search,
        ),
        post(
            "/api/2.0/mlflow/registered-models/rename",
            Admin,
            registered_models::rename,
        ),
        route(
            Method::PATCH,
            "/api/2.0/mlflow/registered-models/update",
            Deploy,
            registered_models::update,
        ),
        route(
            Method::DELETE,
            "/api/2.0/mlflow/registered-models/delete",
            Admin,
            registered_models::delete,
        ),
        post(
            "/api/2.0/mlflow/registered-models/set-tag",
            Deploy,
            registered_models::set_tag,
        ),
        route(
            Method::DELETE,
            "/api/2.0/mlflow/registered-models/delete-tag",
            Deploy,
            registered_models::delete_tag,
        ),
        post(ALIAS, Deploy, registered_models::set_alias),
        route(
            Method::DELETE,
            ALIAS,
            Deploy,
            registered_models::delete_alias,
        ),
        get(ALIAS, Read, registered_models::get_by_alias),
        post(
            "/api/2.0/mlflow/registered-models/get-latest-versions",
            Read,
            registered_models::latest_versions,
        ),
        post(
            "/api/2.0/mlflow/model-versions/create",
            Deploy,
            model_versions::create,
        ),
        get(
            "/api/2.0/mlflow/model-versions/get",
            Read,
            model_versions::get,
        ),
        route(
            Method::PATCH,
            "/api/2.0/mlflow/model-versions/update",
            Deploy,
            model_versions::update,
        ),
        route(
            Method::DELETE,
            "/api/2.0/mlflow/model-versions/delete",
            Admin,
            model_versions::delete,
        ),
        post(
            "/api/2.0/mlflow/model-versions/transition-stage",
            Deploy,
            model_versions::transition_stage,
        ),
        get(
            "/api/2.0/mlflow/model-versions/search",
            Read,
            model_versions::search,
        ),
        post(
            "/api/2.0/mlflow/model-versions/set-tag",
            Deploy,
            model_versions::set_tag,
        ),
        route(
            Method::DELETE,
            "/api/2.0/mlflow/model-versions/delete-tag",
            Deploy,
            model_versions::delete_tag,
        ),
        get(
            "/api/2.0/mlflow/model-versions/get-download-uri",
            Read,
            model_versions::download_uri,
        ),
        get("/api/2.0/mlflow-artifacts/artifacts", Read, artifacts::list),
        get(ARTIFACT, Read, artifacts::download),
        route(Method::PUT, ARTIFACT, Deploy, artifacts::upload).streaming_body(),
        route(Method::DELETE, ARTIFACT, Deploy, artifacts::delete),
    ]
}
