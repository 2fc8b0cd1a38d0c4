//! What a webhook is: the URL, time limits, retry budget and headers a
//! model's serving config gives its alerts, checked against the server's
//! bounds, turned into a request target, and shown with its secrets hidden.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use reqwest::Url;
use serde::{Deserialize, Serialize};

use ferroserve_core::secrets::redacted_url;

use crate::webhook_target::WebhookAllowList;

/// Default time limit of one attempt in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Default number of attempts, the first one included.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// Default wait before the first retry in milliseconds.
pub const DEFAULT_INITIAL_BACKOFF_MS: u64 = 500;
/// Default longest wait between two attempts in milliseconds.
pub const DEFAULT_MAX_BACKOFF_MS: u64 = 30_000;
/// A backoff varies at random by up to this share either way, so that
/// senders that failed together do not retry together.
pub const BACKOFF_JITTER: f64 = 0.2;
/// Most attempts a webhook may ask for.
pub const MAX_ATTEMPTS: u32 = 10;
/// Longest time limit of one attempt a webhook may ask for, in ms.
pub const MAX_TIMEOUT_MS: u64 = 30_000;
/// Longest wait between two attempts a webhook may ask for, in ms.
pub const MAX_BACKOFF_MS: u64 = 300_000;
/// Most extra headers a webhook may set.
pub const MAX_HEADERS: usize = 16;
const USER_AGENT_VALUE: &str = concat!("ferroserve/", env!("CARGO_PKG_VERSION"));

/// Where and how alerts are delivered; part of a model's serving config.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// URL the alerts are POSTed to (http or https).
    pub url: String,
    /// Time limit of one attempt in milliseconds, from connecting to the end
    /// of the answer.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Attempts before giving up, the first one included (at least 1).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait before the first retry in milliseconds; it doubles after every
    /// failed retry.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Longest wait between two attempts in milliseconds, `Retry-After`
    /// included.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Extra request headers (e.g. `Authorization`); they replace the
    /// default `content-type` / `user-agent` if they name them.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn default_max_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}

fn default_initial_backoff_ms() -> u64 {
    DEFAULT_INITIAL_BACKOFF_MS
}

fn default_max_backoff_ms() -> u64 {
    DEFAULT_MAX_BACKOFF_MS
}

impl WebhookConfig {
    /// A config for `url` with every other field at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff_ms: DEFAULT_INITIAL_BACKOFF_MS,
            max_backoff_ms: DEFAULT_MAX_BACKOFF_MS,
            headers: BTreeMap::new(),
        }
    }

    /// Checks that the URL is an absolute http(s) URL, that attempts,
    /// timeout and backoffs are at least 1 and at most [`MAX_ATTEMPTS`],
    /// [`MAX_TIMEOUT_MS`] and [`MAX_BACKOFF_MS`] (and the initial backoff at
    /// most the maximum), that there are at most [`MAX_HEADERS`] headers and
    /// that every header name and value is valid HTTP. Messages never
    /// repeat the URL's path or a header value, which may be secrets.
    pub fn validate(&self) -> Result<(), String> {
        self.prepare().map(|_| ())
    }

    /// [`WebhookConfig::validate`], then the address the URL's host
    /// resolves to, if `allow` lets webhooks go there (see
    /// [`WebhookAllowList::resolve`]).
    pub async fn check_target(&self, allow: &WebhookAllowList) -> Result<SocketAddr, String> {
        let (url, _) = self.prepare()?;
        allow.resolve(&url).await
    }

    /// The parsed URL and the full header set of a request.
    pub(crate) fn prepare(&self) -> Result<(Url, HeaderMap), String> {
        let url =
            Url::parse(&self.url).map_err(|e| format!("webhook url is not a valid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "webhook url must be http or https, not {}",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("webhook url has no host".to_owned());
        }
        in_range(
            "max_attempts",
            self.max_attempts.into(),
            MAX_ATTEMPTS.into(),
        )?;
        in_range("timeout_ms", self.timeout_ms, MAX_TIMEOUT_MS)?;
        in_range(
            "initial_backoff_ms",
            self.initial_backoff_ms,
            MAX_BACKOFF_MS,
        )?;
        in_range("max_backoff_ms", self.max_backoff_ms, MAX_BACKOFF_MS)?;
        if self.headers.len() > MAX_HEADERS {
            return Err(format!(
                "webhook has {} headers; at most {MAX_HEADERS} are allowed",
                self.headers.len()
            ));
        }
        if self.max_backoff_ms < self.initial_backoff_ms {
            return Err(format!(
                "webhook max_backoff_ms ({}) must be at least initial_backoff_ms ({})",
                self.max_backoff_ms, self.initial_backoff_ms
            ));
        }

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        for (name, value) in &self.headers {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                format!("webhook header name {name:?} is not a valid HTTP header name")
            })?;
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                format!("webhook header {name:?} has a value that is not valid in HTTP")
            })?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        Ok((url, headers))
    }
}

/// Refuses a webhook setting outside `1..=max`.
fn in_range(field: &str, value: u64, max: u64) -> Result<(), String> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "webhook {field} is {value}; it must be between 1 and {max}"
        ))
    }
}

/// Hides header values and everything after the host of the URL: both may
/// carry credentials (tokens in `Authorization`, Slack-style secret paths).
impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .headers
            .keys()
            .map(|name| (name.as_str(), "<redacted>"))
            .collect();
        f.debug_struct("WebhookConfig")
            .field("url", &redacted_url(&self.url))
            .field("timeout_ms", &self.timeout_ms)
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff_ms", &self.initial_backoff_ms)
            .field("max_backoff_ms", &self.max_backoff_ms)
            .field("headers", &headers)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_unknown_fields() {
        let config: WebhookConfig =
            toml::from_str(r#"url = "https://hooks.example.com/x""#).unwrap();
        assert_eq!(config, WebhookConfig::new("https://hooks.example.com/x"));
        assert_eq!(
            (
                config.timeout_ms,
                config.max_attempts,
                config.initial_backoff_ms,
                config.max_backoff_ms
            ),
            (5_000, 5, 500, 30_000)
        );
        assert!(config.headers.is_empty());
        config.validate().unwrap();

        let error =
            toml::from_str::<WebhookConfig>("url = \"http://h/\"\nretries = 3").unwrap_err();
        assert!(error.to_string().contains("retries"), "{error}");
        assert!(
            toml::from_str::<WebhookConfig>("timeout_ms = 3").is_err(),
            "url is required"
        );
    }

    #[test]
    fn validate_refuses_bad_configs() {
        let ok = WebhookConfig::new("http://hooks.example.com/x");
        ok.validate().unwrap();
        let with_header = |name: &str, value: &str| {
            let mut config = ok.clone();
            config.headers.insert(name.into(), value.into());
            config
        };
        let bad = [
            WebhookConfig::new("hooks.example.com/x"),
            WebhookConfig::new("ftp://hooks.example.com/x"),
            WebhookConfig::new("http://"),
            WebhookConfig::new("unix:/run/hook.sock"),
            WebhookConfig {
                max_attempts: 0,
                ..ok.clone()
            },
            WebhookConfig {
                timeout_ms: 0,
                ..ok.clone()
            },
            WebhookConfig {
                initial_backoff_ms: 0,
                ..ok.clone()
            },
            WebhookConfig {
                initial_backoff_ms: 10,
                max_backoff_ms: 9,
                ..ok.clone()
            },
            WebhookConfig {
                max_attempts: MAX_ATTEMPTS + 1,
                ..ok.clone()
            },
            WebhookConfig {
                max_attempts: u32::MAX,
                ..ok.clone()
            },
            WebhookConfig {
                timeout_ms: MAX_TIMEOUT_MS + 1,
                ..ok.clone()
            },
            WebhookConfig {
                max_backoff_ms: MAX_BACKOFF_MS + 1,
                ..ok.clone()
            },
            WebhookConfig {
                headers: (0..=MAX_HEADERS)
                    .map(|i| (format!("X-H{i}"), "v".to_owned()))
                    .collect(),
                ..ok.clone()
            },
            with_header("bad header", "x"),
            with_header("X-Token", "line\nbreak"),
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?} should be refused");
        }
        with_header("Authorization", "Bearer abc")
            .validate()
            .unwrap();
    }

    #[test]
    fn debug_hides_secrets() {
        let mut config = WebhookConfig::new("https://hooks.example.com/services/T0/B0/s3cr3t?k=v");
        config
            .headers
            .insert("Authorization".into(), "Bearer s3cr3t".into());
        let text = format!("{config:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("https://hooks.example.com"), "{text}");
        assert!(text.contains("Authorization"), "{text}");
    }
}
