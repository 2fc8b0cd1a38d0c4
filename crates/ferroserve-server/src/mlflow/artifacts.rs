//! `/api/2.0/mlflow-artifacts/artifacts`: MLflow's artifact proxy, which
//! the `mlflow` client uses for `mlflow-artifacts:/` URIs (the default
//! artifact location of experiments here). Files are kept in the
//! `mlflow/` area of ferroserve's artifact store, under the path the
//! client gives (`EXPERIMENT/RUN/artifacts/...`), so every replica sharing
//! the store serves them.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferroserve_registry::NamedFiles;
use ferroserve_serving::lifecycle::Controller;
use serde::Deserialize;
use serde_json::{json, Value};

use super::protocol::{MlflowError, MlflowQuery, MlflowResult};
use crate::body::Upload;
use crate::management::extract::Ctl;
use crate::state::SharedState;

/// The area of the artifact store MLflow's artifacts live in.
pub(crate) const AREA: &str = "mlflow";

/// The files of the proxy.
pub(crate) fn files(c: &Controller) -> NamedFiles {
    c.lifecycle().artifacts().named(AREA)
}

/// A path as the client sends it, without the slashes around it.
fn clean(path: &str) -> &str {
    path.trim_matches('/')
}

/// `PUT /api/2.0/mlflow-artifacts/artifacts/{path}`: stores the body as
/// the file `path`, up to `max_artifact_bytes`.
pub(super) async fn upload(
    Ctl(c): Ctl,
    State(state): State<SharedState>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> MlflowResult {
    let upload = Upload {
        what: "artifact upload",
        setting: "max_artifact_bytes",
        limit: state.config.max_artifact_bytes,
    };
    upload
        .check_declared(&headers)
        .map_err(|e| MlflowError::from(crate::error::ApiError(e)))?;
    let limit = upload.limit as u64;
    let stopped = Arc::new(OnceLock::new());
    let stream = upload.stream(body, stopped.clone());
    match files(&c).put_stream(clean(&path), stream, limit).await {
        Ok(_) => Ok(Json(json!({}))),
        Err(e) => Err(match stopped.get() {
            Some(reason) => crate::error::ApiError(reason.clone()).into(),
            None => e.into(),
        }),
    }
}

/// `GET /api/2.0/mlflow-artifacts/artifacts/{path}`: the file, streamed.
pub(super) async fn download(
    Ctl(c): Ctl,
    Path(path): Path<String>,
) -> Result<Response, MlflowError> {
    let path = clean(&path);
    let stream = files(&c)
        .open(path)
        .await?
        .ok_or_else(|| MlflowError::not_found(format!("artifact '{path}' does not exist")))?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `DELETE /api/2.0/mlflow-artifacts/artifacts/{path}`: the file, or the
/// folder and everything in it.
pub(super) async fn delete(Ctl(c): Ctl, Path(path): Path<String>) -> MlflowResult {
    files(&c).remove_all(clean(&path)).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    path: String,
}

/// `GET /api/2.0/mlflow-artifacts/artifacts?path=`: the files and folders
/// directly under `path`.
pub(super) async fn list(Ctl(c): Ctl, MlflowQuery(query): MlflowQuery<ListQuery>) -> MlflowResult {
    let children = files(&c).children(clean(&query.path)).await?;
    let files: Vec<Value> = children
        .iter()
        .map(|child| {
            if child.is_dir {
                json!({"path": child.name, "is_dir": true})
            } else {
                json!({"path": child.name, "is_dir": false, "file_size": child.size})
            }
        })
        .collect();
    Ok(Json(json!({ "files": files })))
}
