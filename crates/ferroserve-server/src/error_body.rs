//! Gives every error answer the JSON body `{"error": "..."}` that the
//! handlers' own errors have: answers made by the router or by axum's
//! extractors (405 with no body, 415 or a path rejection in plain text, a
//! bare 413) get one saying what was wrong.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Longest plain-text error body kept as the message, in bytes.
const MAX_TEXT_BYTES: usize = 16 * 1024;

/// Middleware: passes answers through, and rewrites an error answer that
/// is not JSON into one that is, keeping its status and headers.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    rewrite(response, &method, &uri).await
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let essence = v.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")
        })
}

async fn rewrite(response: Response, method: &Method, uri: &Uri) -> Response {
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_TEXT_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = message(parts.status, &parts.headers, &text, method, uri.path());
    let body = serde_json::to_vec(&serde_json::json!({ "error": message }))
        .expect("serializing a string map cannot fail");
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (parts, Body::from(body)).into_response()
}

/// What the answer means, from its status, its `Allow` header and the text
/// axum gave it (kept when there is one: it names the problem).
fn message(
    status: StatusCode,
    headers: &HeaderMap,
    text: &str,
    method: &Method,
    path: &str,
) -> String {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .unwrap_or("none");
            format!("method {method} is not allowed on {path}; allowed: {allowed}")
        }
        _ if !text.is_empty() => text.to_owned(),
        StatusCode::NOT_FOUND => format!("no route for {path}"),
        StatusCode::PAYLOAD_TOO_LARGE => format!("the request body to {path} is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            format!("unsupported Content-Type for {method} {path}")
        }
        _ => format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("error")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_was_wrong() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
        let m = message(
            StatusCode::METHOD_NOT_ALLOWED,
            &headers,
            "",
            &Method::GET,
            "/v2/models/iris/infer",
        );
        assert_eq!(
            m,
            "method GET is not allowed on /v2/models/iris/infer; allowed: POST"
        );
        let none = HeaderMap::new();
        let m = message(
            StatusCode::BAD_REQUEST,
            &none,
            "bad path",
            &Method::GET,
            "/x",
        );
        assert_eq!(m, "bad path");
        let m = message(StatusCode::IM_A_TEAPOT, &none, "", &Method::GET, "/x");
        assert_eq!(m, "418 I'm a teapot");
    }

    #[test]
    fn json_content_types_are_recognised() {
        let mut headers = HeaderMap::new();
        for (value, json) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("application/problem+json", true),
            ("text/plain; charset=utf-8", false),
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_json(&headers), json, "{value}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
