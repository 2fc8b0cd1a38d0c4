//! Request ids: the caller's `x-request-id` is kept (or one is generated),
//! attached to the request's tracing span and echoed in the response.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::trace_context;

/// Header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// A fresh id of 122 random bits (a version 4 UUID, in 32 hex digits): ids
/// name predictions for feedback, so one client must not be able to guess
/// another's from its own.
fn generate() -> HeaderValue {
    let id = uuid::Uuid::new_v4().simple().to_string();
    HeaderValue::from_str(&id).expect("hex digits are a valid header")
}

/// Middleware: ensures a request id, runs the request in a span carrying it
/// (the traced request span, parented on the caller's `traceparent`, when
/// traces are exported), and echoes the id, and the trace context, in the
/// response headers.
pub async fn request_id_layer(mut request: Request, next: Next) -> Response {
    let id = match request.headers().get(REQUEST_ID) {
        Some(v) if !v.is_empty() && v.len() <= 128 => v.clone(),
        _ => {
            let v = generate();
            request.headers_mut().insert(REQUEST_ID, v.clone());
            v
        }
    };
    let id_text = id.to_str().unwrap_or("");
    let span = span_for(&request, id_text);
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    trace_context::record_status(&span, status.as_u16(), status.is_server_error());
    let headers = response.headers_mut();
    headers.extend(trace_context::response_headers(&span));
    headers.insert(REQUEST_ID, id);
    response
}

/// The traced request span named after the route (`POST
/// /v2/models/{model_name}/infer`: the template, not the path, so that
/// names stay few); without traces, the debug span logs have always had.
fn span_for(request: &Request, id: &str) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched route", MatchedPath::as_str);
    let span = trace_context::request_span(
        request.headers(),
        format_args!("{} {route}", request.method()),
        "http",
    );
    if span.is_disabled() {
        return tracing::debug_span!("request", request_id = id, method = %request.method(), path = %request.uri().path());
    }
    span.record("request_id", id);
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_random_not_a_count() {
        let ids: Vec<String> = (0..3)
            .map(|_| generate().to_str().expect("ascii").to_owned())
            .collect();
        for id in &ids {
            assert_eq!(id.len(), 32, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
        // A prefix and a counter share all but the last few digits.
        let shared = ids[0]
            .bytes()
            .zip(ids[1].bytes())
            .take_while(|(a, b)| a == b)
            .count();
        assert!(shared < 16, "{ids:?}");
        assert_ne!(ids[1], ids[2]);
    }
}
