//! Settings of one model version's batcher, as read from the configuration file.

use serde::{Deserialize, Serialize};

use ferroserve_core::InferError;

/// Longest accepted `max_queue_delay_us`: one minute. Longer waits only hold
/// requests back; they are a configuration mistake, not a tuning choice.
pub const MAX_QUEUE_DELAY_US_LIMIT: u64 = 60_000_000;

/// Most engine instances (each a whole engine session with its own worker
/// thread) one version may run: every instance is created before serving
/// starts, so an unbounded count exhausts memory.
pub const MAX_INSTANCE_COUNT: usize = 64;

/// Largest accepted `max_queue_size`, in rows (and so `max_batch_size`,
/// which may not exceed it).
pub const MAX_QUEUE_SIZE_LIMIT: usize = 65_536;

/// How requests to one model version are queued and grouped into batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatcherConfig {
    /// Largest batch sent to the engine, in rows. A single request with more
    /// rows still runs, alone in its own batch.
    pub max_batch_size: usize,
    /// How long the oldest waiting request may wait for more requests to
    /// join its batch, in microseconds. 0 (the default) sends whatever is
    /// waiting at once, which is best under load: batches form by themselves
    /// while the engine is busy.
    pub max_queue_delay_us: u64,
    /// Batch sizes, in rows, that the engine runs best. A batch that reaches
    /// one is sent without waiting for the delay, and a batch that is sent is
    /// cut at the largest of these sizes it contains. Empty (the default)
    /// means no preference.
    pub preferred_batch_sizes: Vec<usize>,
    /// Most rows that may wait in the queue; a request that would go beyond
    /// it is refused at once with a "queue full" error (HTTP 429).
    pub max_queue_size: usize,
    /// Engine instances (worker threads, each with its own runner) serving
    /// this model version.
    pub instance_count: usize,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        BatcherConfig {
            max_batch_size: 32,
            max_queue_delay_us: 0,
            preferred_batch_sizes: Vec::new(),
            max_queue_size: 1024,
            instance_count: 1,
        }
    }
}

impl BatcherConfig {
    /// These settings with the fields of `overrides` on top (the shape of
    /// a `[batching]` table or a serving config's `batching` object), checked.
    pub fn with_overrides<T: Serialize>(&self, overrides: &T) -> Result<BatcherConfig, InferError> {
        let mut merged = serde_json::to_value(self)
            .map_err(|e| InferError::internal(format!("batcher settings: {e}")))?;
        let overrides = serde_json::to_value(overrides)
            .map_err(|e| InferError::invalid(format!("batcher: {e}")))?;
        match (&mut merged, overrides) {
            (serde_json::Value::Object(fields), serde_json::Value::Object(extra)) => {
                fields.extend(extra)
            }
            (_, other) => {
                return Err(InferError::invalid(format!(
                    "batcher: settings must be a table of fields, got {other}"
                )))
            }
        }
        let config: BatcherConfig = serde_json::from_value(merged)
            .map_err(|e| InferError::invalid(format!("batcher: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that every value is usable and that the values agree with
    /// each other; the error names the field and what it should be.
    pub fn validate(&self) -> Result<(), InferError> {
        let invalid = |message: String| Err(InferError::invalid(format!("batcher: {message}")));
        if self.max_batch_size == 0 {
            return invalid("max_batch_size must be at least 1".into());
        }
        if self.max_queue_size == 0 {
            return invalid("max_queue_size must be at least 1".into());
        }
        if self.instance_count == 0 {
            return invalid("instance_count must be at least 1".into());
        }
        if self.instance_count > MAX_INSTANCE_COUNT {
            return invalid(format!(
                "instance_count ({}) is more than the limit of {MAX_INSTANCE_COUNT}",
                self.instance_count
            ));
        }
        if self.max_queue_size > MAX_QUEUE_SIZE_LIMIT {
            return invalid(format!(
                "max_queue_size ({}) is more than the limit of {MAX_QUEUE_SIZE_LIMIT}",
                self.max_queue_size
            ));
        }
        if self.max_queue_size < self.max_batch_size {
            return invalid(format!(
                "max_queue_size ({}) is smaller than max_batch_size ({}), so a full batch could never form",
                self.max_queue_size, self.max_batch_size
            ));
        }
        if self.max_queue_delay_us > MAX_QUEUE_DELAY_US_LIMIT {
            return invalid(format!(
                "max_queue_delay_us ({}) is more than the limit of {MAX_QUEUE_DELAY_US_LIMIT} (one minute)",
                self.max_queue_delay_us
            ));
        }
        for (i, &size) in self.preferred_batch_sizes.iter().enumerate() {
            if size == 0 || size > self.max_batch_size {
                return invalid(format!(
                    "preferred_batch_sizes[{i}] is {size}; each preferred size must be between 1 and max_batch_size ({})",
                    self.max_batch_size
                ));
            }
            if self.preferred_batch_sizes[..i].contains(&size) {
                return invalid(format!("preferred_batch_sizes lists {size} twice"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_documentation() {
        let config = BatcherConfig::default();
        config.validate().expect("defaults are valid");
        assert_eq!(config.max_batch_size, 32);
        assert_eq!(config.max_queue_delay_us, 0);
        assert!(config.preferred_batch_sizes.is_empty());
        assert_eq!(config.max_queue_size, 1024);
        assert_eq!(config.instance_count, 1);
    }

    #[test]
    fn missing_fields_take_defaults_and_unknown_fields_are_rejected() {
        let config: BatcherConfig =
            serde_json::from_str(r#"{"max_batch_size": 8, "preferred_batch_sizes": [4, 8]}"#)
                .expect("valid config");
        assert_eq!(config.max_batch_size, 8);
        assert_eq!(config.preferred_batch_sizes, vec![4, 8]);
        assert_eq!(config.max_queue_size, 1024);
        let err = serde_json::from_str::<BatcherConfig>(r#"{"max_batch": 8}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `max_batch`"),
            "{err}"
        );
    }

    fn rejected(config: BatcherConfig) -> String {
        config.validate().expect_err("invalid config").message
    }

    #[test]
    fn zeros_are_rejected_with_the_field_name() {
        let base = BatcherConfig::default;
        let message = rejected(BatcherConfig {
            max_batch_size: 0,
            ..base()
        });
        assert_eq!(message, "batcher: max_batch_size must be at least 1");
        let message = rejected(BatcherConfig {
            max_queue_size: 0,
            ..base()
        });
        assert!(
            message.contains("max_queue_size must be at least 1"),
            "{message}"
        );
        let message = rejected(BatcherConfig {
            instance_count: 0,
            ..base()
        });
        assert!(
            message.contains("instance_count must be at least 1"),
            "{message}"
        );
    }

    #[test]
    fn values_past_the_limits_are_rejected_with_the_field_and_the_limit() {
        let base = BatcherConfig::default;
        let message = rejected(BatcherConfig {
            instance_count: MAX_INSTANCE_COUNT + 1,
            ..base()
        });
        assert_eq!(
            message,
            "batcher: instance_count (65) is more than the limit of 64"
        );
        let message = rejected(BatcherConfig {
            max_queue_size: MAX_QUEUE_SIZE_LIMIT + 1,
            ..base()
        });
        assert!(
            message.contains("max_queue_size (65537) is more than the limit of 65536"),
            "{message}"
        );
        let message = rejected(BatcherConfig {
            max_batch_size: MAX_QUEUE_SIZE_LIMIT + 1,
            max_queue_size: MAX_QUEUE_SIZE_LIMIT,
            ..base()
        });
        assert!(message.contains("smaller than max_batch_size"), "{message}");
        BatcherConfig {
            instance_count: MAX_INSTANCE_COUNT,
            max_queue_size: MAX_QUEUE_SIZE_LIMIT,
            max_batch_size: MAX_QUEUE_SIZE_LIMIT,
            ..base()
        }
        .validate()
        .expect("at the limits");
    }

    #[test]
    fn inconsistent_values_are_rejected() {
        let base = BatcherConfig::default;
        let message = rejected(BatcherConfig {
            preferred_batch_sizes: vec![8, 64],
            ..base()
        });
        assert!(
            message.contains("preferred_batch_sizes[1] is 64"),
            "{message}"
        );
        let message = rejected(BatcherConfig {
            preferred_batch_sizes: vec![8, 8],
            ..base()
        });
        assert!(message.contains("lists 8 twice"), "{message}");
        let message = rejected(BatcherConfig {
            max_queue_size: 16,
            ..base()
        });
        assert!(
            message.contains("smaller than max_batch_size (32)"),
            "{message}"
        );
        let message = rejected(BatcherConfig {
            max_queue_delay_us: MAX_QUEUE_DELAY_US_LIMIT + 1,
            ..base()
        });
        assert!(message.contains("max_queue_delay_us"), "{message}");
    }
}
