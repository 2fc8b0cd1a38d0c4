//! Cross-origin calls from browsers: none by default; the origins given
//! with `--cors-origin` may call the API (and read its answers).

use axum::http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// Parses origins such as `https://app.example.com` or
/// `http://localhost:3000` (a trailing `/` is dropped); an error names the
/// entry.
pub fn parse_origins(origins: &[String]) -> Result<Vec<HeaderValue>, String> {
    origins
        .iter()
        .map(|origin| {
            let trimmed = origin.trim().trim_end_matches('/');
            let host = trimmed
                .strip_prefix("http://")
                .or_else(|| trimmed.strip_prefix("https://"));
            match host {
                Some(host) if !host.is_empty() && !host.contains('/') => {
                    HeaderValue::from_str(trimmed).map_err(|_| bad(origin))
                }
                _ => Err(bad(origin)),
            }
        })
        .collect()
}

fn bad(origin: &str) -> String {
    format!("{origin:?} is not an origin: write it as http(s)://HOST[:PORT]")
}

/// The CORS layer for `origins`, or `None` when there are none.
pub fn layer(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers([
                header::RETRY_AFTER,
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("x-ferroserve-cache"),
                HeaderName::from_static("x-ferroserve-fallback"),
            ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        let parsed = parse_origins(&[
            "https://app.example.com/".into(),
            "http://localhost:3000".into(),
        ])
        .unwrap();
        assert_eq!(parsed[0], "https://app.example.com");
        assert_eq!(parsed[1], "http://localhost:3000");
        for bad in ["app.example.com", "https://", "https://a/b", "*"] {
            let error = parse_origins(&[bad.into()]).unwrap_err();
            assert!(error.contains(bad), "{error}");
        }
    }
}
