//! Refuses what a web page could make a browser send to the server (CSRF
//! and DNS rebinding): on a loopback listener, requests for a host that is
//! not a loopback name (421); requests that change state from another
//! origin than the server's own or a `--cors-origin` (403); and requests
//! that change state with a body that is not JSON, multipart, binary, a
//! batch job input or a Markdown model card (415), since a page can send `text/plain` or a form
//! without asking first (inference requests may also send none, as KServe
//! clients do).

use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::json_error;
use crate::state::SharedState;
use ferroserve_core::request::INFERENCE_HEADER_CONTENT_LENGTH;

/// Content types (without parameters) a state-changing body may have.
pub const ACCEPTED_CONTENT_TYPES: [&str; 10] = [
    "application/json",
    "multipart/form-data",
    "application/octet-stream",
    "text/csv",
    "application/x-ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/vnd.apache.parquet",
    "application/x-parquet",
    // A model card (`PUT .../card`); not a type a page can send unasked.
    "text/markdown",
];

/// Host names a loopback listener answers to (with any port).
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Middleware: the checks above, before anything else runs.
pub async fn guard(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    if let Err(refused) = check(&state, &request) {
        return json_error(refused.status, &refused.message);
    }
    next.run(request).await
}

/// Why a request is refused, and with which status.
struct Refusal {
    status: StatusCode,
    message: String,
}

fn check(state: &SharedState, request: &Request) -> Result<(), Refusal> {
    let headers = request.headers();
    if state.config.http.ip().is_loopback() {
        check_loopback_host(headers)?;
    }
    if !changes_state(request.method()) {
        return Ok(());
    }
    check_origin(headers, &state.config.limits.cors_origins)?;
    let empty = request.body().size_hint().exact() == Some(0);
    let binary_tensors = headers.contains_key(INFERENCE_HEADER_CONTENT_LENGTH);
    // KServe clients (tritonclient among them) send inference JSON with no
    // content type; a browser cannot reach these routes cross-site (the
    // origin check above), and inference changes no stored state.
    let untyped_inference =
        !headers.contains_key(header::CONTENT_TYPE) && is_inference(request.uri().path());
    // MLflow's client uploads artifacts with their own types (text/plain,
    // image/png...); a PUT is never a simple cross-site request, so a page
    // cannot send one without the CORS approval checked above.
    let artifact_upload =
        request.method() == Method::PUT && request.uri().path().starts_with(MLFLOW_ARTIFACTS);
    if !empty && !binary_tensors && !untyped_inference && !artifact_upload {
        check_content_type(request.method(), headers)?;
    }
    Ok(())
}

/// Where MLflow's artifact proxy takes uploads.
const MLFLOW_ARTIFACTS: &str = "/api/2.0/mlflow-artifacts/artifacts/";

/// Whether `path` is an inference route (KServe v2 or v1).
fn is_inference(path: &str) -> bool {
    (path.starts_with("/v2/models/") && path.ends_with("/infer")) || path.starts_with("/v1/models/")
}

fn changes_state(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// The host name of a `Host` value, without the port, in lower case.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.split(':').next().unwrap_or(host)
    };
    name.to_ascii_lowercase()
}

fn check_loopback_host(headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(host) = headers.get(header::HOST) else {
        return Ok(());
    };
    let text = host.to_str().unwrap_or("");
    if LOOPBACK_HOSTS.contains(&host_name(text).as_str()) {
        return Ok(());
    }
    Err(Refusal {
        status: StatusCode::MISDIRECTED_REQUEST,
        message: format!(
            "this server listens on a loopback address and answers only requests for \
             localhost, 127.0.0.1 or [::1]; Host {text:?} is refused (a page may be \
             rebinding its name to this machine); listen on another address to serve other names"
        ),
    })
}

fn check_origin(headers: &HeaderMap, allowed: &[axum::http::HeaderValue]) -> Result<(), Refusal> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    if allowed.iter().any(|a| a == origin) {
        return Ok(());
    }
    let text = origin.to_str().unwrap_or("");
    let origin_host = text.split_once("://").map(|(_, host)| host);
    let own_host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if origin_host.is_some() && origin_host == own_host {
        return Ok(());
    }
    Err(Refusal {
        status: StatusCode::FORBIDDEN,
        message: format!(
            "a request that changes state from origin {text:?} is refused: it is not this \
             server's own origin; the server operator can allow it with --cors-origin {text}"
        ),
    })
}

fn check_content_type(method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = given
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let accepted = ACCEPTED_CONTENT_TYPES.contains(&essence.as_str())
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if accepted {
        return Ok(());
    }
    let given = if given.is_empty() { "none" } else { given };
    Err(Refusal {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        message: format!(
            "a {method} body needs Content-Type application/json, multipart/form-data or \
             application/octet-stream (batch job inputs: text/csv, application/x-ndjson or \
             application/vnd.apache.parquet; model cards: text/markdown); got {given}"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("LocalHost:8080"), "localhost");
        assert_eq!(host_name("[::1]:80"), "[::1]");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("evil.example:8080"), "evil.example");
    }

    #[test]
    fn inference_routes_are_known() {
        assert!(is_inference("/v2/models/iris/infer"));
        assert!(is_inference("/v2/models/iris/versions/2/infer"));
        assert!(is_inference("/v1/models/iris:predict"));
        assert!(!is_inference("/v2/repository/models/iris/load"));
        assert!(!is_inference("/api/v1/models"));
    }
}
