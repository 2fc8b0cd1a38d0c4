//! Sending one pre-encoded request (over HTTP or gRPC) and classifying its
//! outcome; the optional client-side delay held before sending.

use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};

use crate::bench::args::Protocol;
use crate::bench::encode::Body;
use crate::bench::settings::{parse_header, InjectDelay, Settings};

use super::grpc::{Connections, StreamPool};

/// KServe v2 header giving the length of the JSON part of a binary request.
use ferroserve_core::request::INFERENCE_HEADER_CONTENT_LENGTH;

/// How inference requests travel.
#[derive(Debug)]
enum Transport {
    /// POSTs to the infer URL.
    Http,
    /// `ModelInfer` calls.
    Grpc(Connections),
    /// Requests over `ModelStreamInfer` streams.
    GrpcStream(StreamPool),
}

/// The clients set up for the run: HTTP (metadata, metrics and the HTTP
/// protocols) and, with a gRPC protocol, the gRPC connections.
#[derive(Debug)]
pub struct BenchClient {
    http: reqwest::Client,
    transport: Transport,
    timeout: Duration,
    inject: Option<InjectDelay>,
}

impl BenchClient {
    /// Builds the client: HTTP/1.1 keep-alive connections, no proxy, the
    /// API key (`token`, unless an extra header sets `Authorization`), the
    /// extra headers and the content type of the protocol on every request.
    pub fn new(
        settings: &Settings,
        headers: &[String],
        token: Option<&str>,
    ) -> anyhow::Result<BenchClient> {
        let mut defaults = HeaderMap::new();
        if let Some(token) = token {
            let value = HeaderValue::try_from(format!("Bearer {token}"))
                .context("the API key is not a valid header value")?;
            defaults.insert(AUTHORIZATION, value);
        }
        let content_type = match settings.protocol {
            Protocol::HttpBinary => "application/octet-stream",
            _ => "application/json",
        };
        defaults.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        for header in headers {
            let (name, value) = parse_header(header)?;
            let name = HeaderName::try_from(name.as_str())
                .with_context(|| format!("--header {name:?} is not a valid header name"))?;
            let value = HeaderValue::try_from(value).with_context(|| {
                format!("--header {name}: the value is not a valid header value")
            })?;
            defaults.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(usize::MAX)
            .default_headers(defaults)
            .build()
            .context("cannot build the HTTP client")?;
        let grpc = |target: &crate::bench::settings::GrpcTarget| {
            Connections::new(&target.url, target.connections, headers, token)
        };
        let transport = match (settings.protocol, &settings.grpc) {
            (Protocol::Grpc, Some(target)) => Transport::Grpc(grpc(target)?),
            (Protocol::GrpcStream, Some(target)) => {
                Transport::GrpcStream(StreamPool::new(grpc(target)?))
            }
            _ => Transport::Http,
        };
        Ok(BenchClient {
            http,
            transport,
            timeout: settings.timeout(),
            inject: settings.inject_delay,
        })
    }

    /// The plain client, for metadata and metrics.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// How long to hold the next request, if at all.
    pub fn roll_delay(&self, rng: &mut impl Rng) -> Option<Duration> {
        let inject = self.inject?;
        rng.random_bool(inject.probability)
            .then(|| Duration::from_secs_f64(inject.delay_ms / 1e3))
    }

    /// Sends `body` (to `url` over HTTP, else over gRPC) and reads the
    /// whole answer. `Err` holds the failure kind: the HTTP status code or
    /// gRPC status code name, `timeout`, `connect`, `stream error` (an
    /// error answer on a stream) or `other`.
    pub async fn send(&self, url: &reqwest::Url, body: &Body) -> Result<(), String> {
        let exchange = match &self.transport {
            Transport::Http => return self.send_http(url, body).await,
            Transport::Grpc(connections) => {
                tokio::time::timeout(self.timeout, connections.unary(body.bytes.clone())).await
            }
            Transport::GrpcStream(pool) => {
                tokio::time::timeout(self.timeout, pool.send(body.bytes.clone())).await
            }
        };
        exchange.unwrap_or_else(|_| Err("timeout".to_string()))
    }

    async fn send_http(&self, url: &reqwest::Url, body: &Body) -> Result<(), String> {
        let mut request = self.http.post(url.clone()).body(body.bytes.clone());
        if let Some(len) = body.header_len {
            request = request.header(INFERENCE_HEADER_CONTENT_LENGTH, len);
        }
        let exchange = async {
            let response = request.send().await?;
            let status = response.status();
            response.bytes().await?;
            Ok::<_, reqwest::Error>(status)
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Err("timeout".to_string()),
            Ok(Ok(status)) if status.is_success() => Ok(()),
            Ok(Ok(status)) => Err(status.as_u16().to_string()),
            Ok(Err(e)) if e.is_timeout() => Err("timeout".to_string()),
            Ok(Err(e)) if e.is_connect() => Err("connect".to_string()),
            Ok(Err(_)) => Err("other".to_string()),
        }
    }
}
