//! Request ids: the caller's `x-request-id` is kept (or one is generated),
//! attached to the request's tracing span and echoed in the response.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// Header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A process-unique id: a random prefix chosen at start plus a counter,
/// cheaper than a UUID per request.
fn generate() -> HeaderValue {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_fields().0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    HeaderValue::from_str(&format!("{prefix:08x}-{n:012x}")).expect("hex digits are a valid header")
}

/// Middleware: ensures a request id, runs the request in a span carrying it,
/// and echoes it in the response headers.
pub async fn request_id_layer(mut request: Request, next: Next) -> Response {
    let id = match request.headers().get(REQUEST_ID) {
        Some(v) if !v.is_empty() && v.len() <= 128 => v.clone(),
        _ => {
            let v = generate();
            request.headers_mut().insert(REQUEST_ID, v.clone());
            v
        }
    };
    let span = tracing::debug_span!("request", request_id = id.to_str().unwrap_or(""), method = %request.method(), path = %request.uri().path());
    let mut response = next.run(request).instrument(span).await;
    response.headers_mut().insert(REQUEST_ID, id);
    response
}
