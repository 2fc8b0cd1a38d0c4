//! A blocking client of a server's management API (`/api/v1/...`): the
//! actor goes in the `X-Ferroserve-Actor` header, and an error status
//! becomes an error carrying the server's `error` text. Remote mode of
//! `ferroserve models` and of `ferroserve profile` both go through it.

use std::time::Duration;

use anyhow::{bail, Context};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::files::percent_encode;

/// Header naming who makes a change.
const ACTOR_HEADER: &str = "X-Ferroserve-Actor";

/// A server's management API, called as one actor.
pub struct ApiClient {
    client: Client,
    base: String,
    actor: String,
}

impl ApiClient {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`)
    /// that makes its changes as `actor`.
    pub fn new(base: &str, actor: String) -> anyhow::Result<Self> {
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
            actor,
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

    /// Sends `method path`, as `build` completes it, as this client's actor;
    /// an error status becomes an error carrying the server's `error` text
    /// (else the start of the answer).
    pub fn send(
        &self,
        method: &Method,
        path: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> anyhow::Result<Response> {
        let url = self.url(path);
        let request = self
            .client
            .request(method.clone(), &url)
            .header(ACTOR_HEADER, &self.actor);
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
        bail!("{method} {url} answered {status}: {message}");
    }

    /// The full URL of `path`.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A name as one path segment: names are `[A-Za-z0-9_.-]`, but a typo
/// must not turn into another route.
pub fn segment(name: &str) -> String {
    percent_encode(name, b"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_escape_everything_but_name_characters() {
        assert_eq!(segment("iris-v2_x.1"), "iris-v2_x.1");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
