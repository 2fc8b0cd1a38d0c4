//! Model artifacts: streamed uploads (`POST /api/v1/artifacts`) checked by
//! an engine before they are kept, and downloads of a version's artifact
//! checked against its digest.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferroserve_serving::lifecycle::ArtifactInfo;
use serde::Deserialize;
use tokio_util::io::{ReaderStream, StreamReader};

use super::extract::{Ctl, PathOf, QueryOf};
use super::VersionPath;
use crate::body::Upload;
use crate::error::ApiError;
use crate::state::SharedState;

/// Response header carrying the sha256 of a downloaded artifact.
const SHA256_HEADER: &str = "x-ferroserve-artifact-sha256";

/// `POST /api/v1/artifacts` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadQuery {
    /// Expected sha256 of the body; the upload is refused when it differs.
    sha256: Option<String>,
}

/// `POST /api/v1/artifacts[?sha256=HEX]`: the raw body is streamed into the
/// artifact store (never held whole in memory) and loaded once by an engine
/// to read its signature. Past `max_artifact_bytes` the upload stops with 413.
pub(crate) async fn upload(
    Ctl(c): Ctl,
    State(state): State<SharedState>,
    QueryOf(query): QueryOf<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ArtifactInfo>), ApiError> {
    let upload = Upload {
        what: "artifact upload",
        setting: "max_artifact_bytes",
        limit: state.config.max_artifact_bytes,
    };
    upload.check_declared(&headers)?;
    // Why reading stopped early, when it was the body's fault rather than
    // the store's: the store only sees an I/O error.
    let stopped = Arc::new(OnceLock::new());
    let reader = StreamReader::new(upload.stream(body, stopped.clone()));
    match c.lifecycle().upload(reader, query.sha256.as_deref()).await {
        Ok(info) => Ok((StatusCode::CREATED, Json(info))),
        Err(e) => Err(ApiError(stopped.get().cloned().unwrap_or_else(|| e.into()))),
    }
}

/// `GET /api/v1/models/{model}/versions/{version}/artifact`: the bytes,
/// after checking they still hash to the version's digest. The check reads
/// the blob a chunk at a time (within an artifact slot) and the body streams
/// from the same open file, so a download holds a few chunks in memory
/// whatever the model's size.
pub(crate) async fn download(
    Ctl(c): Ctl,
    PathOf(path): PathOf<VersionPath>,
) -> Result<Response, ApiError> {
    let version = path.fetch(&c).await?;
    let artifact = c
        .lifecycle()
        .fetch_artifact(&version.artifact_digest)
        .await?;
    let size = artifact.size();
    let file = tokio::fs::File::from_std(artifact.into_file());
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
            (
                header::HeaderName::from_static(SHA256_HEADER),
                version.artifact_digest,
            ),
        ],
        Body::from_stream(ReaderStream::new(file)),
    )
        .into_response())
}
