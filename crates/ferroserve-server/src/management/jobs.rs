//! Batch jobs: `POST /api/v1/jobs` takes a file (CSV, JSON lines,
//! Parquet) to score, uploaded or in the artifact store, and answers with
//! the job; `GET /api/v1/jobs[/{id}]`
//! reports state, rows done of total, rate and time left;
//! `GET .../result` and `GET .../errors` return the results and the bad
//! rows; `DELETE /api/v1/jobs/{id}` cancels; `POST .../resume` takes up
//! an interrupted job whose runner is gone.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferroserve_core::InferError;
use ferroserve_jobs::{BatchJobSpec, JobResult, JobService, JobStatus, OutputFormat};
use ferroserve_registry::{ArtifactStore, JobFilter, JobState};
use ferroserve_tabular::Format;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::io::StreamReader;

use super::extract::{parse_json, registry_disabled, PathOf, QueryOf, MAX_JSON_BYTES};
use crate::auth::Caller;
use crate::body::{read_limited, Upload};
use crate::client::ClientId;
use crate::error::ApiError;
use crate::state::SharedState;

/// Jobs listed when the query sets no limit.
const DEFAULT_LIST_LIMIT: i64 = 100;
/// Most jobs one list returns.
const MAX_LIST_LIMIT: i64 = 1000;

/// The job service; 503 when this server runs without a registry.
pub(crate) fn service(state: &SharedState) -> Result<&Arc<JobService>, ApiError> {
    state.jobs.as_ref().ok_or_else(registry_disabled)
}

/// A job as the API shows it: its status and where to find its parts.
pub(crate) fn view(status: &JobStatus) -> Value {
    let mut value = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    let base = format!("/api/v1/jobs/{}", status.id);
    let mut links = json!({ "self": base, "result": format!("{base}/result") });
    if status.kind.parse() == Ok(ferroserve_jobs::JobKind::Batch) {
        links["errors"] = json!(format!("{base}/errors"));
    }
    value["links"] = links;
    value
}

/// `POST /api/v1/jobs` query, when the body is the input file.
#[derive(Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitQuery {
    /// Model to run.
    model: Option<String>,
    /// Version; the serving one when absent.
    version: Option<String>,
    /// Input format; else from the content type.
    format: Option<Format>,
    /// Result format (csv, jsonl).
    output_format: Option<OutputFormat>,
    /// Outputs to write, comma-separated.
    outputs: Option<String>,
    /// Input columns that are not features, comma-separated.
    exclude: Option<String>,
    /// Rows per chunk and checkpoint.
    chunk_rows: Option<usize>,
    /// Stop at the first bad row.
    fail_on_error: Option<bool>,
    /// Name of the uploaded file, which bad-row reports name.
    source: Option<String>,
}

/// `POST /api/v1/jobs` JSON body, when the input is in the artifact store.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitBody {
    /// Model to run.
    model: String,
    /// Version; the serving one when absent.
    version: Option<String>,
    /// `artifacts:/PATH`, or the store's location followed by the path.
    input_uri: String,
    /// Input format; else from the path's extension.
    format: Option<Format>,
    /// Result format (csv, jsonl).
    output_format: Option<OutputFormat>,
    /// Outputs to write.
    #[serde(default)]
    outputs: Vec<String>,
    /// Input columns that are not features.
    #[serde(default)]
    exclude: Vec<String>,
    /// Rows per chunk and checkpoint.
    chunk_rows: Option<usize>,
    /// Stop at the first bad row.
    fail_on_error: Option<bool>,
}

/// Where the input of a new job comes from.
enum Input {
    /// The request body, streamed.
    Body(Body),
    /// A data object of the artifact store, at this path inside it.
    Stored { path: String },
}

/// A job to create: the model, its settings and its input.
struct Submission {
    model: String,
    version: Option<String>,
    spec: BatchJobSpec,
    input: Input,
}

fn list_param(text: Option<String>) -> Vec<String> {
    text.map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// The content type, without parameters, in lower case.
fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The input format a content type stands for.
fn format_of(content_type: &str) -> Result<Format, InferError> {
    match content_type {
        "text/csv" => Ok(Format::Csv),
        "application/x-ndjson" | "application/jsonl" | "application/x-jsonlines" => {
            Ok(Format::Jsonl)
        }
        "application/vnd.apache.parquet" | "application/x-parquet" => Ok(Format::Parquet),
        other => Err(InferError::invalid(format!(
            "cannot tell the input format from content type '{other}': send text/csv, \
             application/x-ndjson or application/vnd.apache.parquet, or set ?format=csv|jsonl|parquet \
             (or send application/json with an input_uri)"
        ))),
    }
}

/// The settings of a job reading `format` input.
fn spec(
    input_format: Format,
    input_source: String,
    output_format: Option<OutputFormat>,
    outputs: Vec<String>,
    exclude: Vec<String>,
    chunk_rows: Option<usize>,
    fail_on_error: Option<bool>,
) -> Result<BatchJobSpec, InferError> {
    let spec = BatchJobSpec {
        input_format,
        input_source,
        output_path: None,
        output_format: output_format.unwrap_or_default(),
        outputs,
        exclude,
        chunk_rows: chunk_rows.unwrap_or(ferroserve_jobs::DEFAULT_CHUNK_ROWS),
        fail_on_error: fail_on_error.unwrap_or(false),
    };
    spec.validate()?;
    Ok(spec)
}

/// The job a request describes: an uploaded body with settings in the
/// query, or a JSON body naming a data object of the artifact store.
async fn submission(
    state: &SharedState,
    query: SubmitQuery,
    headers: &HeaderMap,
    body: Body,
) -> Result<Submission, ApiError> {
    let kind = content_type(headers);
    if kind != "application/json" {
        let model = query
            .model
            .ok_or_else(|| InferError::invalid("say which model runs the job: ?model=NAME"))?;
        let format = match query.format {
            Some(format) => format,
            None => format_of(&kind)?,
        };
        let source = query
            .source
            .map(|s| {
                s.trim()
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(256)
                    .collect::<String>()
            })
            .filter(|s| !s.is_empty());
        let spec = spec(
            format,
            source.unwrap_or_else(|| "upload".to_owned()),
            query.output_format,
            list_param(query.outputs),
            list_param(query.exclude),
            query.chunk_rows,
            query.fail_on_error,
        )?;
        return Ok(Submission {
            model,
            version: query.version,
            spec,
            input: Input::Body(body),
        });
    }
    if query != SubmitQuery::default() {
        return Err(ApiError(InferError::invalid(
            "a JSON job request carries its settings in the body, not in the query",
        )));
    }
    let bytes = read_limited(headers, body, MAX_JSON_BYTES, &state.body_budget).await?;
    let request: SubmitBody = parse_json(&bytes)?;
    let format = match request.format {
        Some(format) => format,
        None => Format::from_path(Path::new(&request.input_uri))
            .map_err(|e| InferError::invalid(format!("{e}; or set \"format\"")))?,
    };
    let spec = spec(
        format,
        request.input_uri.clone(),
        request.output_format,
        request.outputs,
        request.exclude,
        request.chunk_rows,
        request.fail_on_error,
    )?;
    let path = stored_data(state)?.data_path(&request.input_uri)?;
    Ok(Submission {
        model: request.model,
        version: request.version,
        spec,
        input: Input::Stored { path },
    })
}

/// `POST /api/v1/jobs`: either the body is the input file (CSV, JSON
/// lines, Parquet; settings in the query: `?model=M[&version=&format=&output_format=&outputs=&exclude=&chunk_rows=&fail_on_error=]`),
/// streamed to the job's folder up to `max_job_input_bytes`; or a JSON body
/// names a data object of the artifact store (`input_uri`) with the same
/// settings. The input is checked against the model before the job is
/// accepted (201, `Location: /api/v1/jobs/{id}`).
pub(crate) async fn submit(
    State(state): State<SharedState>,
    caller: Caller,
    client: ClientId,
    QueryOf(query): QueryOf<SubmitQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let jobs = service(&state)?;
    let job = submission(&state, query, &headers, body).await?;
    caller.may_use(&job.model)?;
    // The job belongs to the client that submits it.
    let actor = client.to_string();
    // Refuse an unknown model before taking the input.
    state
        .pipeline
        .find(&job.model, job.version.as_deref())
        .await?;
    let limit = state.config.max_job_input_bytes;
    let upload = Upload {
        what: "job input",
        setting: "max_job_input_bytes",
        limit,
    };
    if matches!(job.input, Input::Body(_)) {
        upload.check_declared(&headers)?;
    }

    jobs.admit(&actor).await?;
    let id = JobService::new_id();
    let files = jobs.files(&id);
    files.create().await?;
    let destination = files.input(job.spec.input_format);
    let stored = match job.input {
        Input::Body(body) => store_body(upload, body, &destination).await,
        Input::Stored { path } => stored_data(&state)?
            .download_data(&path, &destination, limit as u64)
            .await
            .map(|_| ())
            .map_err(|e| InferError::new(e.kind(), e.to_string())),
    };
    if let Err(e) = stored {
        let _ = files.remove().await;
        return Err(ApiError(e));
    }
    let status = jobs
        .submit_batch(id, &job.model, job.version.as_deref(), job.spec, &actor)
        .await?;
    Ok(created(StatusCode::CREATED, &status))
}

/// The artifact store that `input_uri` points into.
fn stored_data(state: &SharedState) -> Result<&ArtifactStore, ApiError> {
    let controller = state.controller.as_ref().ok_or_else(registry_disabled)?;
    Ok(controller.lifecycle().artifacts())
}

/// Streams the uploaded input to `path`, under the upload's limit.
async fn store_body(upload: Upload, body: Body, path: &Path) -> Result<(), InferError> {
    let stopped = Arc::new(OnceLock::new());
    let mut reader = StreamReader::new(upload.stream(body, stopped.clone()));
    let stored = async {
        let mut file = tokio::fs::File::create(path).await?;
        tokio::io::copy(&mut reader, &mut file).await?;
        file.sync_all().await?;
        // The file's name, too, must be on disk before the job counts on it.
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || ferroserve_registry::durable::fsync_parent(&path))
            .await
            .map_err(std::io::Error::other)?
    }
    .await;
    stored.map_err(|e| {
        stopped
            .get()
            .cloned()
            .unwrap_or_else(|| InferError::internal(format!("cannot store the job input: {e}")))
    })
}

/// A response holding `status` with its `Location`.
pub(crate) fn created(code: StatusCode, status: &JobStatus) -> Response {
    let mut response = (code, Json(view(status))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/jobs/{}", status.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// `{id}` path parameter.
#[derive(Deserialize)]
pub(crate) struct JobPath {
    id: String,
}

/// `GET /api/v1/jobs` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    state: Option<String>,
    model: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/jobs[?state=&model=&limit=]`: newest first.
pub(crate) async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    client: ClientId,
    QueryOf(query): QueryOf<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let jobs = service(&state)?;
    let job_state = match query.state.as_deref() {
        Some(text) => Some(text.parse::<JobState>().map_err(|_| {
            InferError::invalid(format!(
                "unknown job state '{text}'; expected queued, running, succeeded, failed or cancelled"
            ))
        })?),
        None => None,
    };
    let limit = query.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(ApiError(InferError::invalid(format!(
            "limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}"
        ))));
    }
    let filter = JobFilter {
        state: job_state,
        model: query.model,
        limit,
    };
    let listed = jobs.list(&filter).await?;
    let visible = listed
        .iter()
        .filter(|job| {
            caller
                .may_see_job(job.actor == client.as_str(), &job.model)
                .is_ok()
        })
        .map(view)
        .collect::<Vec<_>>();
    Ok(Json(json!({ "jobs": visible })))
}

/// `GET /api/v1/jobs/{id}`.
pub(crate) async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    client: ClientId,
    PathOf(path): PathOf<JobPath>,
) -> Result<Json<Value>, ApiError> {
    let status = visible_job(&state, (&caller, &client), &path.id).await?;
    Ok(Json(view(&status)))
}

/// `DELETE /api/v1/jobs/{id}`: a queued job is cancelled at once, a
/// running one at its next checkpoint.
pub(crate) async fn cancel(
    State(state): State<SharedState>,
    caller: Caller,
    client: ClientId,
    PathOf(path): PathOf<JobPath>,
) -> Result<Json<Value>, ApiError> {
    let job = visible_job(&state, (&caller, &client), &path.id).await?;
    caller.may_change_job(job.actor == client.as_str(), &job.model)?;
    let status = service(&state)?.cancel(&path.id, caller.0.name()).await?;
    Ok(Json(view(&status)))
}

/// `POST /api/v1/jobs/{id}/resume`: takes up an unfinished job whose
/// runner is gone (interrupted, or a process that died) on this server,
/// from its last checkpoint; a finished job, or one this server runs, is
/// answered as it is. 409 names the runner while a live one holds the job.
pub(crate) async fn resume(
    State(state): State<SharedState>,
    caller: Caller,
    client: ClientId,
    PathOf(path): PathOf<JobPath>,
) -> Result<Json<Value>, ApiError> {
    let job = visible_job(&state, (&caller, &client), &path.id).await?;
    caller.may_change_job(job.actor == client.as_str(), &job.model)?;
    let status = service(&state)?.resume(&path.id).await?;
    Ok(Json(view(&status)))
}

/// `GET /api/v1/jobs/{id}/result`: the results of a succeeded job,
/// streamed (409 while it runs).
pub(crate) async fn result(
    State(state): State<SharedState>,
    caller: Caller,
    client: ClientId,
    PathOf(path): PathOf<JobPath>,
) -> Result<Response, ApiError> {
    visible_job(&state, (&caller, &client), &path.id).await?;
    let result = service(&state)?.result(&path.id).await?;
    Ok(send(result))
}

/// `GET /api/v1/jobs/{id}/errors`: the bad rows so far, one JSON object
/// per line (`row`, `at`, `error`).
pub(crate) async fn errors(
    State(state): State<SharedState>,
    caller: Caller,
    client: ClientId,
    PathOf(path): PathOf<JobPath>,
) -> Result<Response, ApiError> {
    visible_job(&state, (&caller, &client), &path.id).await?;
    let report = service(&state)?.bad_rows(&path.id).await?;
    Ok(send(report))
}

/// Job `id` when the caller may see it; a job it may not see is "not
/// found", as one that does not exist.
async fn visible_job(
    state: &SharedState,
    (caller, client): (&Caller, &ClientId),
    id: &str,
) -> Result<JobStatus, ApiError> {
    let status = service(state)?.status(id).await?;
    caller
        .may_see_job(status.actor == client.as_str(), &status.model)
        .map_err(|_| ApiError(InferError::not_found(format!("job '{id}' does not exist"))))?;
    Ok(status)
}

/// Streams a job's file from the job store.
fn send(result: JobResult) -> Response {
    let body = Body::from_stream(result.body);
    ([(header::CONTENT_TYPE, result.content_type)], body).into_response()
}
