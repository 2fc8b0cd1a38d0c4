//! Settings of one rollout: the canary's steps, how long and how many
//! requests each step lasts, how often the gates are checked and what each
//! gate allows. Stored as JSON in the registry's rollout row; every field
//! is optional there and in the start request, and so is each gate field.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Most steps a rollout may list.
pub const MAX_STEPS: usize = 10;

/// Longest `sticky_header` name, in bytes.
pub const MAX_STICKY_HEADER_BYTES: usize = 64;

/// How a rollout moves the canary from its first share to 100 % and what
/// its gates allow on the way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutSettings {
    /// Canary percents of the requests that name no version, one per step,
    /// strictly increasing; a last step below 100 gets 100 implied (the
    /// promotion).
    pub steps: Vec<u32>,
    /// Least time a step lasts, in seconds.
    pub step_seconds: u64,
    /// Least canary requests a step needs before its gates can pass.
    pub step_min_requests: u64,
    /// How often the gates are checked, in milliseconds.
    pub check_interval_ms: u64,
    /// Consecutive failed checks of a non-critical gate that roll back.
    pub failure_threshold: u32,
    /// Request header whose value keeps one caller on one version.
    pub sticky_header: Option<String>,
    /// Wait for a manual promote before the last step.
    pub approve_final: bool,
    /// What each gate allows.
    pub gates: GateSettings,
}

impl Default for RolloutSettings {
    fn default() -> Self {
        RolloutSettings {
            steps: vec![10, 50, 100],
            step_seconds: 60,
            step_min_requests: 200,
            check_interval_ms: 5000,
            failure_threshold: 2,
            sticky_header: None,
            approve_final: false,
            gates: GateSettings::default(),
        }
    }
}

/// Limits of the four gates comparing canary against stable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateSettings {
    /// Largest rise of the 5xx rate over stable's (a fraction: 0.01 is one
    /// point); critical by default.
    #[serde(deserialize_with = "error_rate_gate")]
    pub error_rate: Gate,
    /// Largest canary/stable p99 latency ratio, ignored while the p99s
    /// differ by `slack_ms` or less.
    #[serde(deserialize_with = "p99_ratio_gate")]
    pub p99_ratio: LatencyGate,
    /// Largest rise of the fallback-answer rate over stable's.
    #[serde(deserialize_with = "fallback_rate_gate")]
    pub fallback_rate: Gate,
    /// Largest PSI of the canary's predicted classes against stable's
    /// (classifiers only).
    #[serde(deserialize_with = "prediction_psi_gate")]
    pub prediction_psi: Gate,
}

impl Default for GateSettings {
    fn default() -> Self {
        GateSettings {
            error_rate: Gate::ERROR_RATE,
            p99_ratio: LatencyGate::P99_RATIO,
            fallback_rate: Gate::FALLBACK_RATE,
            prediction_psi: Gate::PREDICTION_PSI,
        }
    }
}

/// Limit of one gate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Gate {
    /// Largest value that passes.
    pub max: f64,
    /// One failed check rolls back at once (else `failure_threshold` in a row).
    pub critical: bool,
}

impl Gate {
    /// Default of the `error_rate` gate.
    pub const ERROR_RATE: Gate = Gate {
        max: 0.01,
        critical: true,
    };
    /// Default of the `fallback_rate` gate.
    pub const FALLBACK_RATE: Gate = Gate {
        max: 0.01,
        critical: false,
    };
    /// Default of the `prediction_psi` gate.
    pub const PREDICTION_PSI: Gate = Gate {
        max: 0.2,
        critical: false,
    };
}

/// Limit of the latency gate, with the slack below which a ratio does not
/// count (at sub-millisecond latencies a large ratio is noise).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyGate {
    /// Largest canary/stable p99 ratio that passes.
    pub max: f64,
    /// One failed check rolls back at once (else `failure_threshold` in a row).
    pub critical: bool,
    /// The gate fails only when canary's p99 exceeds stable's by more than
    /// this many milliseconds.
    pub slack_ms: f64,
}

impl LatencyGate {
    /// Default of the `p99_ratio` gate.
    pub const P99_RATIO: LatencyGate = LatencyGate {
        max: 1.5,
        critical: false,
        slack_ms: 5.0,
    };
}

/// A gate as written in JSON: each field optional, the missing ones taken
/// from that gate's own default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GateFields {
    max: Option<f64>,
    critical: Option<bool>,
}

/// The latency gate as written in JSON, each field optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyGateFields {
    max: Option<f64>,
    critical: Option<bool>,
    slack_ms: Option<f64>,
}

fn gate_over<'de, D: Deserializer<'de>>(deserializer: D, default: Gate) -> Result<Gate, D::Error> {
    let fields = GateFields::deserialize(deserializer)?;
    Ok(Gate {
        max: fields.max.unwrap_or(default.max),
        critical: fields.critical.unwrap_or(default.critical),
    })
}

fn error_rate_gate<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Gate, D::Error> {
    gate_over(deserializer, Gate::ERROR_RATE)
}

fn fallback_rate_gate<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Gate, D::Error> {
    gate_over(deserializer, Gate::FALLBACK_RATE)
}

fn prediction_psi_gate<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Gate, D::Error> {
    gate_over(deserializer, Gate::PREDICTION_PSI)
}

fn p99_ratio_gate<'de, D: Deserializer<'de>>(deserializer: D) -> Result<LatencyGate, D::Error> {
    let fields = LatencyGateFields::deserialize(deserializer)?;
    let default = LatencyGate::P99_RATIO;
    Ok(LatencyGate {
        max: fields.max.unwrap_or(default.max),
        critical: fields.critical.unwrap_or(default.critical),
        slack_ms: fields.slack_ms.unwrap_or(default.slack_ms),
    })
}

impl RolloutSettings {
    /// Parses settings as stored in the registry or sent to start a
    /// rollout, and checks them ([`RolloutSettings::validate`]); an error
    /// names the offending field, e.g. `field 'gates.error_rate.max'`.
    pub fn from_value(value: &Value) -> Result<Self, String> {
        if !value.is_object() {
            return Err(
                "rollout settings must be a JSON object, e.g. {\"steps\": [10, 50, 100]}".into(),
            );
        }
        let settings: RolloutSettings = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            format!("rollout settings: field '{path}': {}", e.into_inner())
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every field's range; an error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let fail =
            |field: &str, why: String| Err(format!("rollout settings: field '{field}': {why}"));
        if self.steps.is_empty() {
            return fail(
                "steps",
                "must list at least one canary percent, e.g. [10, 50, 100]".into(),
            );
        }
        if self.steps.len() > MAX_STEPS {
            return fail(
                "steps",
                format!("{} steps, at most {MAX_STEPS} allowed", self.steps.len()),
            );
        }
        if let Some(bad) = self.steps.iter().find(|&&p| !(1..=100).contains(&p)) {
            return fail("steps", format!("{bad} is not a percent between 1 and 100"));
        }
        if let Some(pair) = self.steps.windows(2).find(|pair| pair[0] >= pair[1]) {
            return fail(
                "steps",
                format!(
                    "must increase strictly, but {} is followed by {}",
                    pair[0], pair[1]
                ),
            );
        }
        check_range("step_seconds", self.step_seconds, 1, 86_400)?;
        check_range("step_min_requests", self.step_min_requests, 1, 10_000_000)?;
        check_range("check_interval_ms", self.check_interval_ms, 100, 600_000)?;
        check_range(
            "failure_threshold",
            u64::from(self.failure_threshold),
            1,
            100,
        )?;
        if let Some(header) = &self.sticky_header {
            check_header_name(header).or_else(|why| fail("sticky_header", why))?;
        }
        let gates = &self.gates;
        check_limit("gates.error_rate.max", gates.error_rate.max, 0.0)?;
        check_limit("gates.p99_ratio.max", gates.p99_ratio.max, 1.0)?;
        check_limit("gates.fallback_rate.max", gates.fallback_rate.max, 0.0)?;
        check_limit("gates.prediction_psi.max", gates.prediction_psi.max, 0.0)?;
        let slack = gates.p99_ratio.slack_ms;
        if !(slack.is_finite() && (0.0..=60_000.0).contains(&slack)) {
            return fail(
                "gates.p99_ratio.slack_ms",
                format!("{slack} is not between 0 and 60000 milliseconds"),
            );
        }
        Ok(())
    }

    /// Canary percent of each step: `steps`, with 100 appended when the
    /// last is below 100.
    pub fn weights(&self) -> Vec<u32> {
        let mut weights = self.steps.clone();
        if weights.last().is_none_or(|&last| last < 100) {
            weights.push(100);
        }
        weights
    }

    /// Index of the step at 100 %, the promotion.
    pub fn final_step(&self) -> u32 {
        let last = self.weights().len().saturating_sub(1);
        u32::try_from(last).unwrap_or(u32::MAX)
    }

    /// Canary percent at `step`; 100 past the last step.
    pub fn weight_at(&self, step: u32) -> u32 {
        usize::try_from(step)
            .ok()
            .and_then(|index| self.weights().get(index).copied())
            .unwrap_or(100)
    }
}

fn check_range(field: &str, value: u64, low: u64, high: u64) -> Result<(), String> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "rollout settings: field '{field}': {value} is not between {low} and {high}"
        ))
    }
}

fn check_limit(field: &str, max: f64, least: f64) -> Result<(), String> {
    if max.is_finite() && max >= least {
        Ok(())
    } else {
        Err(format!(
            "rollout settings: field '{field}': {max} must be a finite number of at least {least}"
        ))
    }
}

/// A header name as RFC 9110 allows it: a non-empty token (letters, digits
/// and ``!#$%&'*+-.^_`|~``), at most [`MAX_STICKY_HEADER_BYTES`] bytes.
pub fn check_header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a header name cannot be empty".into());
    }
    if name.len() > MAX_STICKY_HEADER_BYTES {
        return Err(format!(
            "header name of {} bytes, at most {MAX_STICKY_HEADER_BYTES} allowed",
            name.len()
        ));
    }
    let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    match name.chars().find(|&c| !is_token(c)) {
        Some(bad) => Err(format!(
            "'{name}' is not a header name: {bad:?} is not allowed in one"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error_of(value: Value) -> String {
        match RolloutSettings::from_value(&value) {
            Ok(settings) => panic!("{value} was accepted as {settings:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn defaults_round_trip_through_json() {
        let defaults = RolloutSettings::default();
        let text = serde_json::to_value(&defaults).expect("settings serialise");
        assert_eq!(
            text,
            json!({
                "steps": [10, 50, 100], "step_seconds": 60, "step_min_requests": 200,
                "check_interval_ms": 5000, "failure_threshold": 2, "sticky_header": null,
                "approve_final": false,
                "gates": {"error_rate": {"max": 0.01, "critical": true},
                          "p99_ratio": {"max": 1.5, "critical": false, "slack_ms": 5.0},
                          "fallback_rate": {"max": 0.01, "critical": false},
                          "prediction_psi": {"max": 0.2, "critical": false}}
            })
        );
        assert_eq!(RolloutSettings::from_value(&text), Ok(defaults.clone()));
        assert_eq!(RolloutSettings::from_value(&json!({})), Ok(defaults));
    }

    #[test]
    fn partial_gate_keeps_that_gates_other_defaults() {
        let settings = RolloutSettings::from_value(&json!({
            "gates": {"error_rate": {"max": 0.05},
                      "fallback_rate": {"critical": true},
                      "p99_ratio": {"slack_ms": 2}}
        }))
        .expect("partial gates are accepted");
        assert_eq!(
            settings.gates.error_rate,
            Gate {
                max: 0.05,
                critical: true
            }
        );
        assert_eq!(
            settings.gates.fallback_rate,
            Gate {
                max: 0.01,
                critical: true
            }
        );
        assert_eq!(
            settings.gates.p99_ratio,
            LatencyGate {
                max: 1.5,
                critical: false,
                slack_ms: 2.0
            }
        );
        assert_eq!(settings.gates.prediction_psi, Gate::PREDICTION_PSI);
        assert_eq!(settings.steps, vec![10, 50, 100]);
    }

    #[test]
    fn unknown_and_mistyped_fields_are_named() {
        assert!(error_of(json!({"step": [10]})).contains("step"));
        let e = error_of(json!({"gates": {"error_rate": {"maximum": 0.1}}}));
        assert!(e.contains("gates.error_rate"), "{e}");
        let e = error_of(json!({"gates": {"p99_ratio": {"max": "high"}}}));
        assert!(e.contains("gates.p99_ratio.max"), "{e}");
        let e = error_of(json!({"step_seconds": -1}));
        assert!(e.contains("step_seconds"), "{e}");
        assert!(error_of(json!([10, 50])).contains("JSON object"));
    }

    #[test]
    fn each_range_error_names_its_field() {
        let cases = [
            (json!({"steps": []}), "'steps'"),
            (json!({"steps": [0, 50]}), "'steps'"),
            (json!({"steps": [10, 101]}), "'steps'"),
            (json!({"steps": [50, 50, 100]}), "'steps'"),
            (json!({"steps": [60, 30]}), "'steps'"),
            (
                json!({"steps": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}),
                "'steps'",
            ),
            (json!({"step_seconds": 0}), "'step_seconds'"),
            (json!({"step_seconds": 86_401}), "'step_seconds'"),
            (json!({"step_min_requests": 0}), "'step_min_requests'"),
            (
                json!({"step_min_requests": 10_000_001}),
                "'step_min_requests'",
            ),
            (json!({"check_interval_ms": 99}), "'check_interval_ms'"),
            (json!({"check_interval_ms": 600_001}), "'check_interval_ms'"),
            (json!({"failure_threshold": 0}), "'failure_threshold'"),
            (json!({"failure_threshold": 101}), "'failure_threshold'"),
            (json!({"sticky_header": ""}), "'sticky_header'"),
            (json!({"sticky_header": "X User"}), "'sticky_header'"),
            (json!({"sticky_header": "x-".repeat(33)}), "'sticky_header'"),
            (
                json!({"gates": {"error_rate": {"max": -0.1}}}),
                "'gates.error_rate.max'",
            ),
            (
                json!({"gates": {"p99_ratio": {"max": 0.9}}}),
                "'gates.p99_ratio.max'",
            ),
            (
                json!({"gates": {"p99_ratio": {"slack_ms": -1}}}),
                "'gates.p99_ratio.slack_ms'",
            ),
            (
                json!({"gates": {"p99_ratio": {"slack_ms": 60_001}}}),
                "'gates.p99_ratio.slack_ms'",
            ),
            (
                json!({"gates": {"fallback_rate": {"max": -1}}}),
                "'gates.fallback_rate.max'",
            ),
            (
                json!({"gates": {"prediction_psi": {"max": -0.2}}}),
                "'gates.prediction_psi.max'",
            ),
        ];
        for (value, field) in cases {
            let e = error_of(value.clone());
            assert!(e.contains(field), "{value}: '{e}' does not name {field}");
        }
        let mut settings = RolloutSettings::default();
        settings.gates.error_rate.max = f64::NAN;
        let e = settings.validate().expect_err("NaN limit is refused");
        assert!(e.contains("'gates.error_rate.max'"), "{e}");
    }

    #[test]
    fn edge_values_are_accepted() {
        let settings = RolloutSettings::from_value(&json!({
            "steps": [1, 2, 3, 4, 5, 6, 7, 8, 9, 100], "step_seconds": 86_400,
            "step_min_requests": 1, "check_interval_ms": 100, "failure_threshold": 100,
            "sticky_header": "X-User-ID", "approve_final": true,
            "gates": {"p99_ratio": {"max": 1, "slack_ms": 0}, "error_rate": {"max": 0}}
        }))
        .expect("edge values are in range");
        assert_eq!(settings.sticky_header.as_deref(), Some("X-User-ID"));
        assert!(settings.approve_final);
    }

    #[test]
    fn weights_imply_the_final_hundred() {
        let mut settings = RolloutSettings::default();
        assert_eq!(settings.weights(), vec![10, 50, 100]);
        assert_eq!(settings.final_step(), 2);
        settings.steps = vec![5, 25];
        assert_eq!(settings.weights(), vec![5, 25, 100]);
        assert_eq!(settings.final_step(), 2);
        assert_eq!(settings.weight_at(0), 5);
        assert_eq!(settings.weight_at(1), 25);
        assert_eq!(settings.weight_at(2), 100);
        assert_eq!(settings.weight_at(7), 100);
        settings.steps = vec![100];
        assert_eq!(settings.weights(), vec![100]);
        assert_eq!(settings.final_step(), 0);
    }
}
