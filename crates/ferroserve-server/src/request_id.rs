//! Request ids: the caller's `x-request-id` is kept (or one is generated),
//! attached to the request's tracing span and echoed in the response.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// Header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// A fresh id of 122 random bits (a version 4 UUID, in 32 hex digits): ids
/// name predictions for feedback, so one client must not be able to guess
/// another's from its own.
fn generate() -> HeaderValue {
    let id = uuid::Uuid::new_v4().simple().to_string();
    HeaderValue::from_str(&id).expect("hex digits are a valid header")
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
