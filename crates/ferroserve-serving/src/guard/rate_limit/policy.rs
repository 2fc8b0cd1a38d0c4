//! What a rate limit is (a token bucket's rate and burst), where it comes
//! from (server flags, a model's serving config), and what a refusal says.

use std::time::Duration;

use ferroserve_core::{ErrorKind, InferError};
use serde::{Deserialize, Serialize};

/// One token bucket: a sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Tokens added per second (fractions allowed: 0.5 is one every 2 s).
    pub requests_per_s: f64,
    /// Most tokens the bucket holds: requests allowed at once after a pause.
    pub burst: u32,
}

impl Limit {
    /// Checks that the rate is a finite number above 0 and the burst at
    /// least 1; `what` names the setting in the message (`rate_limit.model`).
    pub fn validate(&self, what: &str) -> Result<(), InferError> {
        if !self.requests_per_s.is_finite() || self.requests_per_s <= 0.0 {
            return Err(InferError::invalid(format!(
                "{what}.requests_per_s must be a finite number above 0, got {}",
                ferroserve_core::json::float_text(self.requests_per_s)
            )));
        }
        if self.burst == 0 {
            return Err(InferError::invalid(format!(
                "{what}.burst must be at least 1, got 0"
            )));
        }
        Ok(())
    }

    /// Time for one token to come back, kept within what a bucket can
    /// represent (1 ns to a year) so that an unvalidated limit cannot panic.
    pub(crate) fn period(&self) -> Duration {
        const LONGEST: Duration = Duration::from_secs(365 * 24 * 3600);
        let rate = if self.requests_per_s.is_nan() {
            0.0
        } else {
            self.requests_per_s
        };
        Duration::try_from_secs_f64(1.0 / rate)
            .unwrap_or(LONGEST)
            .clamp(Duration::from_nanos(1), LONGEST)
    }

    /// The burst, at least 1.
    pub(crate) fn burst(&self) -> u32 {
        self.burst.max(1)
    }
}

/// A model's own limits ("rate_limit" in its serving config). Unset: server defaults.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelRateLimit {
    /// All requests to the model, whoever sends them (replaces the server's
    /// per-model default).
    pub model: Option<Limit>,
    /// Each client's requests to the model.
    pub per_client: Option<Limit>,
}

impl ModelRateLimit {
    /// Checks both limits, naming the bad one.
    pub fn validate(&self) -> Result<(), InferError> {
        if let Some(limit) = &self.model {
            limit.validate("rate_limit.model")?;
        }
        if let Some(limit) = &self.per_client {
            limit.validate("rate_limit.per_client")?;
        }
        Ok(())
    }
}

/// Server-wide limits (flags / config file).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RateLimitConfig {
    /// Each client across all models.
    pub per_client: Option<Limit>,
    /// Each model that sets no `rate_limit.model` of its own.
    pub per_model: Option<Limit>,
}

/// Which bucket refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// The client's bucket across all models (server-wide).
    Client,
    /// The model's bucket, shared by all its clients.
    Model,
    /// The client's bucket for this model.
    ModelClient,
}

impl LimitScope {
    /// Label used in metrics and logs.
    pub fn as_label(self) -> &'static str {
        match self {
            LimitScope::Client => "client",
            LimitScope::Model => "model",
            LimitScope::ModelClient => "model_client",
        }
    }
}

/// A refusal: HTTP 429 with `Retry-After`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimited {
    /// The bucket that refused.
    pub scope: LimitScope,
    /// When that bucket will have a token again.
    pub retry_after: Duration,
}

impl RateLimited {
    /// The error the client sees (429, [`ErrorKind::RateLimited`], with
    /// the wait as its `Retry-After`).
    pub fn into_error(self, model: &str) -> InferError {
        let wait = format_secs(self.retry_after);
        let message = match self.scope {
            LimitScope::Model => {
                format!(
                    "rate limit of model '{model}' exceeded (model limit); retry after {wait} s"
                )
            }
            LimitScope::ModelClient => format!(
                "rate limit of model '{model}' exceeded (per-client limit); retry after {wait} s"
            ),
            LimitScope::Client => format!(
                "rate limit of this client exceeded (server-wide per-client limit, \
                 request to model '{model}'); retry after {wait} s"
            ),
        };
        InferError::new(ErrorKind::RateLimited, message).with_retry_after(self.retry_after)
    }
}

/// Seconds with at most 3 decimals and no trailing zeros ("0.25", "2").
fn format_secs(duration: Duration) -> String {
    let millis = duration.as_nanos().div_ceil(1_000_000);
    let text = format!("{}.{:03}", millis / 1000, millis % 1000);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(requests_per_s: f64, burst: u32) -> Limit {
        Limit {
            requests_per_s,
            burst,
        }
    }

    #[test]
    fn validation_names_the_setting_and_the_value() {
        assert!(limit(0.5, 1).validate("x").is_ok());
        let error = limit(0.0, 3).validate("rate_limit.model").unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidInput);
        assert_eq!(
            error.message,
            "rate_limit.model.requests_per_s must be a finite number above 0, got 0"
        );
        let error = limit(f64::INFINITY, 3)
            .validate("rate_limit.model")
            .unwrap_err();
        assert!(error.message.contains("got inf"), "{}", error.message);
        let error = limit(f64::NAN, 3).validate("rate_limit.model").unwrap_err();
        assert!(error.message.contains("got NaN"), "{}", error.message);
        let error = limit(-1.0, 3).validate("rate_limit.model").unwrap_err();
        assert!(error.message.contains("got -1"), "{}", error.message);
        let error = limit(1.0, 0).validate("rate_limit.per_client").unwrap_err();
        assert_eq!(
            error.message,
            "rate_limit.per_client.burst must be at least 1, got 0"
        );
        let policy = ModelRateLimit {
            model: Some(limit(1.0, 1)),
            per_client: Some(limit(1.0, 0)),
        };
        assert!(policy
            .validate()
            .unwrap_err()
            .message
            .starts_with("rate_limit.per_client.burst"));
        assert!(ModelRateLimit::default().validate().is_ok());
    }

    #[test]
    fn model_policy_reads_from_config() {
        let policy: ModelRateLimit =
            serde_json::from_str(r#"{"per_client": {"requests_per_s": 0.5, "burst": 2}}"#)
                .expect("parses");
        assert_eq!(policy.model, None);
        assert_eq!(policy.per_client, Some(limit(0.5, 2)));
        assert!(serde_json::from_str::<ModelRateLimit>(r#"{"global": null}"#).is_err());
        assert!(serde_json::from_str::<Limit>(r#"{"requests_per_s": 1}"#).is_err());
    }

    #[test]
    fn periods_stay_representable() {
        assert_eq!(limit(0.5, 1).period(), Duration::from_secs(2));
        assert_eq!(limit(4.0, 1).period(), Duration::from_millis(250));
        assert_eq!(limit(1e300, 1).period(), Duration::from_nanos(1));
        assert_eq!(
            limit(1e-300, 1).period(),
            Duration::from_secs(365 * 24 * 3600)
        );
        assert_eq!(limit(0.0, 0).period(), Duration::from_secs(365 * 24 * 3600));
        assert_eq!(limit(f64::NAN, 0).burst(), 1);
    }

    #[test]
    fn refusals_become_429_with_the_wait() {
        let refused = RateLimited {
            scope: LimitScope::ModelClient,
            retry_after: Duration::from_millis(250),
        };
        let error = refused.into_error("iris");
        assert_eq!(error.kind.http_status(), 429);
        assert_eq!(error.retry_after_secs(), Some(1));
        assert_eq!(
            error.message,
            "rate limit of model 'iris' exceeded (per-client limit); retry after 0.25 s"
        );
        let refused = RateLimited {
            scope: LimitScope::Model,
            retry_after: Duration::from_millis(2000),
        };
        assert!(refused
            .into_error("iris")
            .message
            .ends_with("retry after 2 s"));
        assert_eq!(LimitScope::Client.as_label(), "client");
        assert_eq!(LimitScope::Model.as_label(), "model");
        assert_eq!(LimitScope::ModelClient.as_label(), "model_client");
    }
}
