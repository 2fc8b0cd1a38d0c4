//! The one blocking client of the CLI's calls to a server (`predict`,
//! `drift`, `rollout`, and `models`, `profile`, `jobs`, `batch`, `keys` with `--url`):
//! paths are joined to the server's base URL here, the API key (see
//! [`crate::credentials::api_key`]) goes in `Authorization: Bearer`, and
//! an error status becomes an
//! [`ApiError`] carrying the server's `{"error": ...}` text. (`bench`
//! keeps an async client of its own to drive load.)

use std::fmt;
use std::time::Duration;

use anyhow::Context;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A server's API, called with the CLI's API key (if it has one).
pub struct ApiClient {
    client: Client,
    base: String,
    token: Option<String>,
}

/// A server's refusal: the request, the error status and the server's
/// own message.
#[derive(Debug)]
pub struct ApiError {
    /// The request's method.
    pub method: Method,
    /// The request's full URL.
    pub url: String,
    /// The status the server answered.
    pub status: StatusCode,
    /// The server's `error` text, else the start of its answer.
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ApiError {
            method,
            url,
            status,
            message,
        } = self;
        write!(f, "{method} {url} answered {status}: {message}")
    }
}

impl std::error::Error for ApiError {}

impl ApiClient {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`);
    /// the server records its changes as the key's principal.
    pub fn new(base: &str) -> anyhow::Result<Self> {
        // No overall timeout: uploads, registrations (which load the model)
        // and artifact downloads take as long as the artifact needs.
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(None)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(ApiClient {
            client,
            base: base.trim_end_matches('/').to_owned(),
            token: crate::credentials::api_key(),
        })
    }

    /// The server's base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `method path`, as `build` completes it, and decodes the JSON
    /// answer.
    pub fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> anyhow::Result<T> {
        let response = self.send(&method, path, build)?;
        let status = response.status();
        let url = self.url(path);
        let text = response
            .text()
            .with_context(|| format!("{method} {url}: answer cut off ({status})"))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {url} answered {status} with unexpected JSON"))
    }

    /// `GET path`, answered by JSON.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call(Method::GET, path, |r| r)
    }

    /// `body` sent as JSON to `path`, answered by JSON.
    pub fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<T> {
        self.call(method, path, |r| r.json(body))
    }

    /// `GET path`, answered by raw bytes (an artifact).
    pub fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let bytes = self
            .send(&Method::GET, path, |r| r)?
            .bytes()
            .with_context(|| format!("GET {}: download cut off", self.url(path)))?;
        Ok(bytes.into())
    }

    /// `PUT path` with `body` as JSON, to an endpoint that answers with no
    /// body (204 No Content); a body in a success answer is ignored.
    pub fn put_json_no_content(&self, path: &str, body: &Value) -> anyhow::Result<()> {
        self.send(&Method::PUT, path, |r| r.json(body))?;
        Ok(())
    }

    /// Sends `method path`, as `build` completes it, with this client's
    /// key; an error status becomes an [`ApiError`].
    pub fn send(
        &self,
        method: &Method,
        path: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> anyhow::Result<Response> {
        let url = self.url(path);
        let mut request = self.client.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = build(request)
            .send()
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response
            .text()
            .with_context(|| format!("{method} {url}: answer cut off ({status})"))?;
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| text.trim().chars().take(200).collect());
        Err(ApiError {
            method: method.clone(),
            url,
            status,
            message,
        }
        .into())
    }

    /// The full URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A name as one path segment: names are `[A-Za-z0-9_.-]`, but a typo
/// must not turn into another route.
pub fn segment(name: &str) -> String {
    percent_encode(name, b"")
}

/// Percent-encodes every byte but URI-unreserved ones and those in `keep`.
pub fn percent_encode(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_escape_everything_but_name_characters() {
        assert_eq!(segment("iris-v2_x.1"), "iris-v2_x.1");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn paths_join_the_base_without_a_double_slash() {
        let api = ApiClient::new("http://127.0.0.1:8080/").expect("client");
        assert_eq!(
            api.url("/v2/models/iris"),
            "http://127.0.0.1:8080/v2/models/iris"
        );
        assert_eq!(api.base(), "http://127.0.0.1:8080");
    }

    #[test]
    fn a_refusal_reads_as_one_sentence() {
        let error = ApiError {
            method: Method::GET,
            url: "http://h/api/v1/models/x".into(),
            status: StatusCode::NOT_FOUND,
            message: "unknown model 'x'".into(),
        };
        assert_eq!(
            error.to_string(),
            "GET http://h/api/v1/models/x answered 404 Not Found: unknown model 'x'"
        );
    }
}
