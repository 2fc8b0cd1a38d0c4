//! The `traffic.shadow` part of a model's serving config: which version
//! answers a copy of live traffic, how much of it, and how many copies may
//! wait for it.

use ferroserve_core::json::float_text;
use serde::{Deserialize, Serialize};

/// Most shadow requests one lane may hold waiting.
pub const MAX_SHADOW_QUEUE: usize = 65_536;

/// Shadow requests one lane holds waiting unless the config says otherwise.
pub const DEFAULT_SHADOW_QUEUE: usize = 256;

/// Mirror a share of a model's traffic to another version, whose answers
/// are compared with the primary's and never returned, e.g.
/// `{"version": 4, "percent": 10, "queue": 256}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowPolicy {
    /// The version that answers the copies (registry version number).
    pub version: i64,
    /// Percent of the answered requests copied to it (0 < percent <= 100).
    pub percent: f64,
    /// Copies that may wait for it; more are dropped, never waited for
    /// (1 to 65536, default 256).
    #[serde(default = "default_queue")]
    pub queue: usize,
}

fn default_queue() -> usize {
    DEFAULT_SHADOW_QUEUE
}

impl ShadowPolicy {
    /// Checks the values; errors name the field as it appears in the
    /// serving config (`traffic.shadow.percent`).
    pub fn validate(&self) -> Result<(), String> {
        if self.version < 1 {
            return Err(format!(
                "traffic.shadow.version must be >= 1, got {}",
                self.version
            ));
        }
        // Written so that NaN fails too.
        if !(self.percent > 0.0 && self.percent <= 100.0) {
            return Err(format!(
                "traffic.shadow.percent must be > 0 and <= 100, got {}",
                float_text(self.percent)
            ));
        }
        if !(1..=MAX_SHADOW_QUEUE).contains(&self.queue) {
            return Err(format!(
                "traffic.shadow.queue must be between 1 and {MAX_SHADOW_QUEUE}, got {}",
                self.queue
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ShadowPolicy, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn the_queue_defaults_and_whole_percents_read_as_numbers() {
        let policy = parse(r#"{"version": 4, "percent": 10}"#).expect("parses");
        assert_eq!(
            policy,
            ShadowPolicy {
                version: 4,
                percent: 10.0,
                queue: DEFAULT_SHADOW_QUEUE,
            }
        );
        policy.validate().expect("valid");
        let round_trip = serde_json::to_value(&policy).expect("serializes");
        assert_eq!(
            round_trip,
            serde_json::json!({"version": 4, "percent": 10.0, "queue": 256})
        );
    }

    #[test]
    fn unknown_and_missing_fields_are_refused() {
        let unknown = parse(r#"{"version": 4, "percent": 10, "queu": 5}"#).unwrap_err();
        assert!(unknown.to_string().contains("queu"), "{unknown}");
        let missing = parse(r#"{"version": 4}"#).unwrap_err();
        assert!(missing.to_string().contains("percent"), "{missing}");
    }

    #[test]
    fn out_of_range_values_are_named_with_their_field() {
        let valid = ShadowPolicy {
            version: 2,
            percent: 100.0,
            queue: 1,
        };
        valid.validate().expect("the edges are valid");
        let cases = [
            (
                ShadowPolicy {
                    version: 0,
                    ..valid.clone()
                },
                "traffic.shadow.version must be >= 1, got 0",
            ),
            (
                ShadowPolicy {
                    percent: 0.0,
                    ..valid.clone()
                },
                "traffic.shadow.percent must be > 0 and <= 100, got 0",
            ),
            (
                ShadowPolicy {
                    percent: 100.5,
                    ..valid.clone()
                },
                "traffic.shadow.percent must be > 0 and <= 100, got 100.5",
            ),
            (
                ShadowPolicy {
                    percent: f64::NAN,
                    ..valid.clone()
                },
                "traffic.shadow.percent must be > 0 and <= 100, got NaN",
            ),
            (
                ShadowPolicy {
                    queue: 0,
                    ..valid.clone()
                },
                "traffic.shadow.queue must be between 1 and 65536, got 0",
            ),
            (
                ShadowPolicy {
                    queue: MAX_SHADOW_QUEUE + 1,
                    ..valid.clone()
                },
                "traffic.shadow.queue must be between 1 and 65536, got 65537",
            ),
        ];
        for (policy, message) in cases {
            assert_eq!(policy.validate(), Err(message.to_string()), "{policy:?}");
        }
    }
}
