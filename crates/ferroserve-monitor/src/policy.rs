//! A model's monitoring settings, the `monitoring` section of its serving
//! config: window sizes, drift tests, the data contract, alert rules and
//! the webhook alerts go to.

use serde::{Deserialize, Serialize};

use super::drift::{DEFAULT_DRIFT_SHARE_THRESHOLD, PSI_SIGNIFICANT};
use super::webhook::WebhookConfig;

/// Largest `window_rows`, `min_rows` and `feedback_window`: a window keeps
/// every row (and the quality window every pair) until it closes.
pub const MAX_WINDOW_ROWS: u64 = 100_000;

/// Longest `window_seconds`: one day.
pub const MAX_WINDOW_SECONDS: u64 = 86_400;

/// Largest `max_observed_rows_per_s`.
pub const MAX_OBSERVED_ROWS_PER_S_LIMIT: u64 = 10_000;

/// Most alert rules one model may have.
pub const MAX_ALERT_RULES: usize = 32;

/// How one model is watched. Every field has a default, so `{}` is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorPolicy {
    /// `true`: watch every served version; `false`: none; unset: the
    /// versions that have a reference profile.
    pub enabled: Option<bool>,
    /// A window closes when it holds this many rows.
    pub window_rows: usize,
    /// A window also closes this many seconds after it opened, once it
    /// holds `min_rows`.
    pub window_seconds: u64,
    /// Rows a window needs before it is evaluated on time.
    pub min_rows: usize,
    /// Share of drifted features at which the dataset counts as drifted.
    pub drift_share: f64,
    /// A numeric feature drifted when its KS p-value is below this.
    pub ks_p_value: f64,
    /// A categorical feature drifted when its Jensen–Shannon distance is at
    /// least this.
    pub js_threshold: f64,
    /// Refuse (400) requests that break the data contract instead of only
    /// counting them.
    pub reject_contract_violations: bool,
    /// Labeled predictions the online quality metrics are computed over.
    pub feedback_window: usize,
    /// Rows observed per second at most (per version); requests beyond
    /// are served but not observed (nor can they be given feedback), which
    /// bounds what monitoring costs under heavy load.
    pub max_observed_rows_per_s: u64,
    /// Rules that raise alerts; by default PSI above 0.25 on any feature
    /// for 3 windows in a row.
    pub alerts: Vec<AlertRule>,
    /// Where alerts are POSTed; without one they are logged and audited only.
    pub webhook: Option<WebhookConfig>,
}

impl Default for MonitorPolicy {
    fn default() -> Self {
        MonitorPolicy {
            enabled: None,
            window_rows: 1000,
            window_seconds: 300,
            min_rows: 30,
            drift_share: DEFAULT_DRIFT_SHARE_THRESHOLD,
            ks_p_value: 0.05,
            js_threshold: 0.1,
            reject_contract_violations: false,
            feedback_window: 1000,
            max_observed_rows_per_s: DEFAULT_MAX_OBSERVED_ROWS_PER_S,
            alerts: vec![AlertRule::FeaturePsi {
                above: PSI_SIGNIFICANT,
                windows: DEFAULT_ALERT_WINDOWS,
            }],
            webhook: None,
        }
    }
}

/// Rows observed per second and version at most, unless configured.
pub const DEFAULT_MAX_OBSERVED_ROWS_PER_S: u64 = 2000;

/// Consecutive windows a drift condition must hold before it alerts.
pub const DEFAULT_ALERT_WINDOWS: u32 = 3;

fn default_windows() -> u32 {
    DEFAULT_ALERT_WINDOWS
}

fn default_min_count() -> usize {
    30
}

/// One alert rule, e.g. `{"rule": "feature_psi", "above": 0.25, "windows": 3}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertRule {
    /// PSI above `above` on any feature for `windows` windows in a row.
    FeaturePsi {
        /// PSI threshold.
        above: f64,
        /// Consecutive windows.
        #[serde(default = "default_windows")]
        windows: u32,
    },
    /// PSI of the predictions above `above` for `windows` windows in a row.
    PredictionPsi {
        /// PSI threshold.
        above: f64,
        /// Consecutive windows.
        #[serde(default = "default_windows")]
        windows: u32,
    },
    /// The dataset drifted (share of drifted features) for `windows`
    /// windows in a row.
    DatasetDrift {
        /// Consecutive windows.
        #[serde(default = "default_windows")]
        windows: u32,
    },
    /// Online accuracy below `floor`, once `min_count` labeled predictions
    /// are in the window.
    AccuracyBelow {
        /// Lowest acceptable accuracy.
        floor: f64,
        /// Labeled predictions needed before the rule is checked.
        #[serde(default = "default_min_count")]
        min_count: usize,
    },
    /// Online RMSE (regressors) above `above`, once `min_count` labeled
    /// predictions are in the window.
    RmseAbove {
        /// Highest acceptable RMSE.
        above: f64,
        /// Labeled predictions needed before the rule is checked.
        #[serde(default = "default_min_count")]
        min_count: usize,
    },
}

impl AlertRule {
    /// The rule's name in alerts and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            AlertRule::FeaturePsi { .. } => "feature_psi",
            AlertRule::PredictionPsi { .. } => "prediction_psi",
            AlertRule::DatasetDrift { .. } => "dataset_drift",
            AlertRule::AccuracyBelow { .. } => "accuracy_below",
            AlertRule::RmseAbove { .. } => "rmse_above",
        }
    }

    /// Whether the rule reads drift windows (else online quality).
    pub fn is_drift_rule(&self) -> bool {
        matches!(
            self,
            AlertRule::FeaturePsi { .. }
                | AlertRule::PredictionPsi { .. }
                | AlertRule::DatasetDrift { .. }
        )
    }

    fn validate(&self) -> Result<(), String> {
        let positive = |what: &str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(format!("{what} must be a finite number >= 0, got {value}"))
            }
        };
        match *self {
            AlertRule::FeaturePsi { above, windows }
            | AlertRule::PredictionPsi { above, windows } => {
                positive("above", above)?;
                at_least_one("windows", windows as usize)
            }
            AlertRule::DatasetDrift { windows } => at_least_one("windows", windows as usize),
            AlertRule::AccuracyBelow { floor, min_count } => {
                if !(0.0..=1.0).contains(&floor) {
                    return Err(format!("floor must be within [0, 1], got {floor}"));
                }
                at_least_one("min_count", min_count)
            }
            AlertRule::RmseAbove { above, min_count } => {
                positive("above", above)?;
                at_least_one("min_count", min_count)
            }
        }
    }
}

fn at_least_one(what: &str, value: usize) -> Result<(), String> {
    if value == 0 {
        Err(format!("{what} must be at least 1"))
    } else {
        Ok(())
    }
}

/// `value` is between 1 and `max`, else why not.
fn within(value: u64, max: u64) -> Result<(), String> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!("must be between 1 and {max}, got {value}"))
    }
}

impl MonitorPolicy {
    /// Checks values that parse but cannot work; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let field = |name: &str, result: Result<(), String>| {
            result.map_err(|e| format!("monitoring.{name}: {e}"))
        };
        let rows = |n: usize| within(u64::try_from(n).unwrap_or(u64::MAX), MAX_WINDOW_ROWS);
        field("window_rows", rows(self.window_rows))?;
        field(
            "window_seconds",
            within(self.window_seconds, MAX_WINDOW_SECONDS),
        )?;
        field("min_rows", rows(self.min_rows))?;
        field("feedback_window", rows(self.feedback_window))?;
        field(
            "max_observed_rows_per_s",
            within(self.max_observed_rows_per_s, MAX_OBSERVED_ROWS_PER_S_LIMIT),
        )?;
        if self.alerts.len() > MAX_ALERT_RULES {
            return Err(format!(
                "monitoring.alerts: {} rules; at most {MAX_ALERT_RULES}",
                self.alerts.len()
            ));
        }
        for (name, value) in [
            ("drift_share", self.drift_share),
            ("ks_p_value", self.ks_p_value),
            ("js_threshold", self.js_threshold),
        ] {
            if !(value > 0.0 && value <= 1.0) {
                return Err(format!(
                    "monitoring.{name}: must be within (0, 1], got {value}"
                ));
            }
        }
        for (i, rule) in self.alerts.iter().enumerate() {
            field(&format!("alerts[{i}] ({})", rule.name()), rule.validate())?;
        }
        if let Some(webhook) = &self.webhook {
            field("webhook", webhook.validate())?;
        }
        Ok(())
    }

    /// Whether a version with (`true`) or without a reference profile is watched.
    pub fn watches(&self, has_profile: bool) -> bool {
        self.enabled.unwrap_or(has_profile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<MonitorPolicy, String> {
        let policy: MonitorPolicy = serde_json::from_value(value).map_err(|e| e.to_string())?;
        policy.validate()?;
        Ok(policy)
    }

    #[test]
    fn empty_config_takes_the_defaults() {
        let policy = parse(json!({})).expect("valid");
        assert_eq!(policy, MonitorPolicy::default());
        assert_eq!(policy.alerts[0].name(), "feature_psi");
        assert!(policy.watches(true));
        assert!(!policy.watches(false));
    }

    #[test]
    fn rules_parse_with_default_windows() {
        let policy = parse(json!({"alerts": [
            {"rule": "feature_psi", "above": 0.2},
            {"rule": "accuracy_below", "floor": 0.9, "min_count": 10},
            {"rule": "dataset_drift", "windows": 2}
        ]}))
        .expect("valid");
        assert_eq!(
            policy.alerts,
            vec![
                AlertRule::FeaturePsi {
                    above: 0.2,
                    windows: 3
                },
                AlertRule::AccuracyBelow {
                    floor: 0.9,
                    min_count: 10
                },
                AlertRule::DatasetDrift { windows: 2 },
            ]
        );
    }

    #[test]
    fn bad_values_name_the_field() {
        let err = |value| parse(value).unwrap_err();
        assert!(err(json!({"window_rows": 0})).contains("monitoring.window_rows"));
        assert!(err(json!({"drift_share": 1.5})).contains("monitoring.drift_share"));
        assert!(
            err(json!({"alerts": [{"rule": "accuracy_below", "floor": 2.0}]}))
                .contains("alerts[0] (accuracy_below): floor")
        );
        assert!(err(json!({"alerts": [{"rule": "psi"}]})).contains("unknown variant"));
        assert!(err(json!({"window": 3})).contains("unknown field"));
    }

    #[test]
    fn values_past_the_server_limits_are_refused_with_the_bound() {
        let err = |value| parse(value).unwrap_err();
        for (value, message) in [
            (
                json!({"window_rows": 1_000_000_000_000u64}),
                "monitoring.window_rows: must be between 1 and 100000, got 1000000000000",
            ),
            (
                json!({"min_rows": 100_001}),
                "monitoring.min_rows: must be between 1 and 100000",
            ),
            (
                json!({"feedback_window": 100_001}),
                "monitoring.feedback_window: must be between 1 and 100000",
            ),
            (
                json!({"window_seconds": 86_401}),
                "monitoring.window_seconds: must be between 1 and 86400",
            ),
            (
                json!({"max_observed_rows_per_s": 1_000_000_000}),
                "monitoring.max_observed_rows_per_s: must be between 1 and 10000",
            ),
        ] {
            let got = err(value.clone());
            assert!(got.contains(message), "{value}: {got}");
        }
        let rules: Vec<_> = (0..=MAX_ALERT_RULES)
            .map(|_| json!({"rule": "dataset_drift"}))
            .collect();
        assert!(err(json!({ "alerts": rules })).contains("monitoring.alerts: 33 rules; at most 32"));
        parse(
            json!({"window_rows": MAX_WINDOW_ROWS, "window_seconds": MAX_WINDOW_SECONDS,
            "max_observed_rows_per_s": MAX_OBSERVED_ROWS_PER_S_LIMIT}),
        )
        .expect("at the limits");
    }
}
