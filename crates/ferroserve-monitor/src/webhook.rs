//! Alert delivery: POSTs an alert (drift, accuracy floor) as JSON to a
//! team's webhook, retrying connection errors, timeouts, 5xx, 408 and 429
//! with capped exponential backoff and jitter, to public addresses or those
//! the allow list names, a bounded number at once. What a webhook is (its
//! config and checks) lives in [`crate::webhook_config`].

use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use ferroserve_core::secrets::redacted_url;
use ferroserve_core::telemetry::ALERT_WEBHOOK_DELIVERIES;
use tokio::sync::Semaphore;

use crate::webhook_target::WebhookAllowList;

/// Deliveries in flight at once, server-wide; an alert beyond is not
/// delivered (it is still logged and audited).
pub const MAX_IN_FLIGHT_DELIVERIES: usize = 64;

pub use crate::webhook_config::{
    WebhookConfig, BACKOFF_JITTER, DEFAULT_INITIAL_BACKOFF_MS, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_BACKOFF_MS, DEFAULT_TIMEOUT_MS, MAX_ATTEMPTS, MAX_BACKOFF_MS, MAX_HEADERS,
    MAX_TIMEOUT_MS,
};

/// The outcome of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Attempts it took, the successful one included.
    pub attempts: u32,
    /// HTTP status of the successful answer (2xx).
    pub status: u16,
}

/// Why an alert was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The webhook answered with a status that retrying will not change
    /// (4xx other than 408 and 429, or a redirect, which is not followed).
    #[error("webhook rejected the alert with HTTP {status} on attempt {attempts}; not retried")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// Attempts made, the rejected one included.
        attempts: u32,
    },
    /// Every attempt failed with a retryable error.
    #[error("gave up on the webhook after {attempts} attempts; last error: {last_error}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// What went wrong on the last attempt.
        last_error: String,
    },
    /// The [`WebhookConfig`] does not pass [`WebhookConfig::validate`].
    #[error("invalid webhook config: {0}")]
    InvalidConfig(String),
    /// The webhook's host is internal and not on the allow list.
    #[error("webhook target refused: {0}")]
    Refused(String),
    /// [`MAX_IN_FLIGHT_DELIVERIES`] deliveries are already under way.
    #[error(
        "too many alert deliveries in flight ({MAX_IN_FLIGHT_DELIVERIES}); alert not delivered"
    )]
    Busy,
}

/// Sends alerts to webhooks; cheap to clone (the allow list and the
/// in-flight limit are shared).
#[derive(Debug, Clone)]
pub struct WebhookSender {
    allow: Arc<WebhookAllowList>,
    in_flight: Arc<Semaphore>,
}

impl Default for WebhookSender {
    fn default() -> Self {
        Self::new()
    }
}

impl WebhookSender {
    /// A sender that reaches public hosts only (see [`WebhookAllowList`]).
    pub fn new() -> Self {
        Self::with_allow_list(WebhookAllowList::default())
    }

    /// A sender that also reaches the internal hosts and networks of `allow`.
    pub fn with_allow_list(allow: WebhookAllowList) -> Self {
        Self {
            allow: Arc::new(allow),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT_DELIVERIES)),
        }
    }

    /// A client that connects to `address` for the URL's host, whatever DNS
    /// says later. Redirects are not followed: a webhook that moved is a
    /// config error, and following would resend the credentials in
    /// `headers` elsewhere.
    fn pinned_client(url: &Url, address: SocketAddr) -> Result<reqwest::Client, WebhookError> {
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(host) = url.host_str() {
            builder = builder.resolve(host, address);
        }
        builder
            .build()
            .map_err(|e| WebhookError::InvalidConfig(format!("cannot build the HTTP client: {e}")))
    }

    /// POSTs `body` to `config.url`, retrying as [`WebhookConfig`] says, and
    /// counts the outcome in `ferroserve_alert_webhook_deliveries_total`.
    pub async fn deliver(
        &self,
        config: &WebhookConfig,
        body: &serde_json::Value,
    ) -> Result<Delivery, WebhookError> {
        let Ok(_permit) = self.in_flight.clone().try_acquire_owned() else {
            count("busy");
            return Err(WebhookError::Busy);
        };
        let (url, headers) = config.prepare().map_err(WebhookError::InvalidConfig)?;
        let target = redacted_url(&config.url);
        let address = self.allow.resolve(&url).await.map_err(|reason| {
            count("refused");
            tracing::warn!(webhook = %target, %reason, "webhook target refused");
            WebhookError::Refused(reason)
        })?;
        let client = Self::pinned_client(&url, address)?;
        let body = body.to_string();
        let timeout = Duration::from_millis(config.timeout_ms);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let sent = client
                .post(url.clone())
                .headers(headers.clone())
                .timeout(timeout)
                .body(body.clone())
                .send()
                .await;
            let (last_error, retry_after) = match sent {
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        count("delivered");
                        tracing::debug!(webhook = %target, attempts, %status, "alert delivered");
                        return Ok(Delivery {
                            attempts,
                            status: status.as_u16(),
                        });
                    }
                    if !is_retryable(status) {
                        count("rejected");
                        tracing::warn!(webhook = %target, attempts, %status, "webhook rejected the alert");
                        return Err(WebhookError::Rejected {
                            status: status.as_u16(),
                            attempts,
                        });
                    }
                    let retry_after = if matches!(
                        status,
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                    ) {
                        retry_after(response.headers())
                    } else {
                        None
                    };
                    (format!("HTTP {status}"), retry_after)
                }
                Err(error) => (describe(error), None),
            };

            if attempts >= config.max_attempts {
                count("gave_up");
                tracing::warn!(webhook = %target, attempts, error = %last_error, "gave up delivering the alert");
                return Err(WebhookError::GaveUp {
                    attempts,
                    last_error,
                });
            }
            let delay = retry_delay(config, attempts, retry_after, random_jitter());
            tracing::warn!(
                webhook = %target,
                attempts,
                max_attempts = config.max_attempts,
                delay_ms = delay.as_millis() as u64,
                error = %last_error,
                "alert delivery failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

fn count(outcome: &'static str) {
    metrics::counter!(ALERT_WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
}

/// 5xx, 408 (request timeout) and 429 (too many requests) may pass on a
/// later attempt; any other failure status will not.
fn is_retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// A `Retry-After` given in seconds; the HTTP-date form is ignored.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// A uniform number in [-1, 1] to scale [`BACKOFF_JITTER`] by.
fn random_jitter() -> f64 {
    rand::rng().random_range(-1.0..=1.0)
}

/// How long to wait after failed attempt number `attempt` (1-based).
///
/// A server's `retry_after` wins, capped at `max_backoff_ms`. Otherwise
/// `initial_backoff_ms · 2^(attempt-1)`, capped at `max_backoff_ms`, then
/// scaled by `1 + BACKOFF_JITTER · jitter` (`jitter` in [-1, 1]) and capped
/// again, so no wait is ever longer than `max_backoff_ms`.
fn retry_delay(
    config: &WebhookConfig,
    attempt: u32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let max = Duration::from_millis(config.max_backoff_ms);
    if let Some(retry_after) = retry_after {
        return retry_after.min(max);
    }
    let doublings = attempt.saturating_sub(1).min(63);
    let base_ms = config
        .initial_backoff_ms
        .saturating_mul(1_u64 << doublings)
        .min(config.max_backoff_ms);
    let scale = 1.0 + BACKOFF_JITTER * jitter.clamp(-1.0, 1.0);
    // `as` saturates, and the scaled value is never negative.
    let micros = (base_ms as f64 * 1_000.0 * scale).round() as u64;
    Duration::from_micros(micros).min(max)
}

/// The error and its causes ("error sending request: client error
/// (Connect): tcp connect error: Connection refused"), without the URL,
/// which may hold a secret.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::HeaderMap as AxumHeaders;
    use axum::response::{IntoResponse, Response};
    use reqwest::header::HeaderValue;
    use serde_json::json;

    use super::*;

    /// What the test server answers (in order; 200 once the script runs
    /// out) and what it saw.
    #[derive(Default)]
    struct Server {
        script: Mutex<VecDeque<(u16, Option<&'static str>)>>,
        seen: Mutex<Vec<(AxumHeaders, Bytes)>>,
    }

    async fn record(
        State(server): State<Arc<Server>>,
        headers: AxumHeaders,
        body: Bytes,
    ) -> Response {
        server.seen.lock().unwrap().push((headers, body));
        let (status, retry_after) = server
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or((200, None));
        let status = StatusCode::from_u16(status).unwrap();
        match retry_after {
            Some(seconds) => (status, [(RETRY_AFTER, seconds)]).into_response(),
            None => status.into_response(),
        }
    }

    /// Starts a real HTTP server on a free local port; returns its hook URL.
    async fn serve(script: &[(u16, Option<&'static str>)]) -> (String, Arc<Server>) {
        let server = Arc::new(Server {
            script: Mutex::new(script.iter().copied().collect()),
            seen: Mutex::default(),
        });
        let app = axum::Router::new()
            .route("/hooks/secret-token", axum::routing::post(record))
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/hooks/secret-token"), server)
    }

    fn fast(url: String) -> WebhookConfig {
        WebhookConfig {
            timeout_ms: 2_000,
            initial_backoff_ms: 1,
            max_backoff_ms: 5,
            ..WebhookConfig::new(url)
        }
    }

    /// A sender allowed to reach the test servers on 127.0.0.1.
    fn local_sender() -> WebhookSender {
        WebhookSender::with_allow_list(WebhookAllowList::parse(["127.0.0.1"]).unwrap())
    }

    fn alert() -> serde_json::Value {
        json!({"kind": "drift", "model": "iris", "version": 3, "psi": 0.31, "features": ["a", "b"]})
    }

    #[tokio::test]
    async fn retries_503_then_delivers_exact_body_and_headers() {
        let (url, server) = serve(&[(503, Some("0")), (503, None)]).await;
        let mut config = fast(url);
        config
            .headers
            .insert("Authorization".into(), "Bearer t0ken".into());
        config.headers.insert("X-Team".into(), "search".into());

        let delivery = local_sender().deliver(&config, &alert()).await.unwrap();

        assert_eq!(
            delivery,
            Delivery {
                attempts: 3,
                status: 200
            }
        );
        let seen = server.seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        for (headers, body) in seen.iter() {
            assert_eq!(body.as_ref(), alert().to_string().as_bytes());
            assert_eq!(
                serde_json::from_slice::<serde_json::Value>(body).unwrap(),
                alert()
            );
            assert_eq!(headers["content-type"], "application/json");
            assert_eq!(
                headers["user-agent"],
                concat!("ferroserve/", env!("CARGO_PKG_VERSION"))
            );
            assert_eq!(headers["authorization"], "Bearer t0ken");
            assert_eq!(headers["x-team"], "search");
        }
    }

    #[tokio::test]
    async fn retries_408_and_429() {
        let (url, server) = serve(&[(408, None), (429, Some("0")), (500, None)]).await;
        let delivery = local_sender().deliver(&fast(url), &alert()).await.unwrap();
        assert_eq!(
            delivery,
            Delivery {
                attempts: 4,
                status: 200
            }
        );
        assert_eq!(server.seen.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn client_error_is_not_retried() {
        let (url, server) = serve(&[(400, None)]).await;
        let error = local_sender()
            .deliver(&fast(url), &alert())
            .await
            .unwrap_err();
        assert_eq!(
            error,
            WebhookError::Rejected {
                status: 400,
                attempts: 1
            }
        );
        assert_eq!(server.seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn gives_up_when_nothing_listens() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let config = WebhookConfig {
            max_attempts: 2,
            ..fast(format!("http://{addr}/hooks/secret-token"))
        };

        let error = local_sender().deliver(&config, &alert()).await.unwrap_err();

        let WebhookError::GaveUp {
            attempts,
            last_error,
        } = error
        else {
            panic!("expected GaveUp, got {error:?}");
        };
        assert_eq!(attempts, 2);
        assert!(!last_error.contains("secret-token"), "{last_error}");
    }

    #[tokio::test]
    async fn internal_target_is_refused_unless_allowed() {
        let (url, server) = serve(&[]).await;
        let error = WebhookSender::new()
            .deliver(&fast(url.clone()), &alert())
            .await
            .unwrap_err();
        let WebhookError::Refused(reason) = &error else {
            panic!("expected Refused, got {error:?}");
        };
        assert!(reason.contains("--webhook-allow 127.0.0.1"), "{reason}");
        assert!(server.seen.lock().unwrap().is_empty());

        // Allowed by host name: the name is resolved once and pinned.
        let by_name =
            WebhookSender::with_allow_list(WebhookAllowList::parse(["localhost"]).unwrap());
        let url = url.replace("127.0.0.1", "localhost");
        by_name.deliver(&fast(url), &alert()).await.unwrap();
        assert_eq!(server.seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn the_connection_goes_to_the_pinned_address_not_to_dns() {
        let (url, server) = serve(&[]).await;
        let address: SocketAddr = Url::parse(&url).unwrap().socket_addrs(|| None).unwrap()[0];
        // `.invalid` never resolves: only the pinned address can be reached.
        let unresolvable = Url::parse(&url.replace("127.0.0.1", "hooks.invalid")).unwrap();
        let client = WebhookSender::pinned_client(&unresolvable, address).unwrap();
        let answer = client.post(unresolvable).body("{}").send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(server.seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn deliveries_in_flight_are_capped() {
        let (url, server) = serve(&[]).await;
        let sender = local_sender();
        let held = sender
            .in_flight
            .clone()
            .try_acquire_many_owned(MAX_IN_FLIGHT_DELIVERIES as u32)
            .unwrap();
        let error = sender
            .deliver(&fast(url.clone()), &alert())
            .await
            .unwrap_err();
        assert_eq!(error, WebhookError::Busy);
        assert!(server.seen.lock().unwrap().is_empty());
        drop(held);
        sender.deliver(&fast(url), &alert()).await.unwrap();
    }

    #[tokio::test]
    async fn invalid_config_is_refused_before_sending() {
        let config = WebhookConfig {
            max_attempts: 0,
            ..WebhookConfig::new("http://127.0.0.1:9/")
        };
        let error = local_sender().deliver(&config, &alert()).await.unwrap_err();
        assert!(matches!(error, WebhookError::InvalidConfig(_)), "{error:?}");
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let config = WebhookConfig {
            initial_backoff_ms: 500,
            max_backoff_ms: 3_000,
            ..WebhookConfig::new("http://h/")
        };
        let ms = |attempt, jitter| retry_delay(&config, attempt, None, jitter).as_secs_f64() * 1e3;
        assert_eq!(
            [ms(1, 0.0), ms(2, 0.0), ms(3, 0.0), ms(4, 0.0), ms(5, 0.0)],
            [500.0, 1_000.0, 2_000.0, 3_000.0, 3_000.0]
        );
        assert_eq!(ms(1, 1.0), 600.0);
        assert_eq!(ms(1, -1.0), 400.0);
        assert_eq!(ms(3, 1.0), 2_400.0);
        assert_eq!(ms(4, 1.0), 3_000.0, "jitter never goes past the cap");
        assert_eq!(ms(4, -1.0), 2_400.0);
        assert_eq!(ms(u32::MAX, 0.0), 3_000.0, "no overflow");
        for _ in 0..100 {
            let delay = ms(2, random_jitter());
            assert!((800.0..=1_200.0).contains(&delay), "{delay}");
        }
    }

    #[test]
    fn retry_after_wins_up_to_the_cap() {
        let config = WebhookConfig {
            initial_backoff_ms: 500,
            max_backoff_ms: 3_000,
            ..WebhookConfig::new("http://h/")
        };
        let secs = |s| retry_delay(&config, 1, Some(Duration::from_secs(s)), 1.0);
        assert_eq!(secs(0), Duration::ZERO);
        assert_eq!(secs(2), Duration::from_secs(2));
        assert_eq!(secs(60), Duration::from_secs(3));

        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static(" 7 "));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn retryable_statuses() {
        for status in [500, 502, 503, 504, 408, 429] {
            assert!(
                is_retryable(StatusCode::from_u16(status).unwrap()),
                "{status}"
            );
        }
        for status in [301, 400, 401, 403, 404, 409, 422] {
            assert!(
                !is_retryable(StatusCode::from_u16(status).unwrap()),
                "{status}"
            );
        }
    }
}
