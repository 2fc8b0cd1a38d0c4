//! Alert rules over drift windows and online quality: a drift rule fires
//! when its condition holds for N windows in a row, a quality rule when the
//! metric crosses its bound; either fires once per episode and re-arms when
//! the condition clears.

use std::collections::VecDeque;

use serde::Serialize;
use serde_json::{json, Value};

use super::policy::AlertRule;
use super::quality::QualityReport;
use super::window::WindowReport;

/// An alert as delivered to the webhook and recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Model name.
    pub model: String,
    /// Version label.
    pub version: String,
    /// Rule name, e.g. `feature_psi`.
    pub rule: &'static str,
    /// The rule as configured.
    pub condition: AlertRule,
    /// A sentence saying what happened.
    pub message: String,
    /// The figures that made the rule fire.
    pub figures: Value,
    /// When it fired, in milliseconds since the Unix epoch.
    pub fired_at_ms: u64,
}

/// Where one rule stands, for reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleStatus {
    /// Rule name.
    pub rule: &'static str,
    /// The rule as configured.
    pub condition: AlertRule,
    /// Windows in a row that met a drift condition.
    pub consecutive: u32,
    /// Whether the rule fired and its condition still holds.
    pub firing: bool,
    /// Times it fired.
    pub fired: u64,
}

/// A rule that fired: its name, message and figures.
pub(crate) struct Fired {
    pub(crate) rule: AlertRule,
    pub(crate) message: String,
    pub(crate) figures: Value,
}

#[derive(Debug, Clone)]
struct RuleState {
    rule: AlertRule,
    consecutive: u32,
    firing: bool,
    fired: u64,
    /// The watched figure of the last windows, newest last.
    recent: VecDeque<f64>,
}

/// The state of a version's alert rules.
#[derive(Debug, Clone)]
pub(crate) struct AlertTracker {
    rules: Vec<RuleState>,
}

impl AlertTracker {
    pub(crate) fn new(rules: &[AlertRule]) -> Self {
        AlertTracker {
            rules: rules
                .iter()
                .map(|rule| RuleState {
                    rule: rule.clone(),
                    consecutive: 0,
                    firing: false,
                    fired: 0,
                    recent: VecDeque::new(),
                })
                .collect(),
        }
    }

    /// Feeds a closed window to the drift rules; returns those that fire now.
    pub(crate) fn on_window(&mut self, report: &WindowReport) -> Vec<Fired> {
        let mut fired = Vec::new();
        for state in self.rules.iter_mut().filter(|s| s.rule.is_drift_rule()) {
            let (met, figure, windows) = match &state.rule {
                AlertRule::FeaturePsi { above, windows } => {
                    let max = report.max_feature_psi().map_or(0.0, |(_, psi)| psi);
                    (max > *above, max, *windows)
                }
                AlertRule::PredictionPsi { above, windows } => {
                    let psi = report
                        .prediction
                        .as_ref()
                        .and_then(|p| p.psi)
                        .unwrap_or(0.0);
                    (psi > *above, psi, *windows)
                }
                AlertRule::DatasetDrift { windows } => {
                    (report.dataset_drift, report.drift_share, *windows)
                }
                _ => continue,
            };
            state.recent.push_back(figure);
            while state.recent.len() > windows as usize {
                state.recent.pop_front();
            }
            if !met {
                state.consecutive = 0;
                state.firing = false;
                continue;
            }
            state.consecutive += 1;
            if state.consecutive >= windows && !state.firing {
                state.firing = true;
                state.fired += 1;
                fired.push(drift_alert(state, report));
            }
        }
        fired
    }

    /// Feeds the latest online quality to the quality rules; returns those
    /// that fire now.
    pub(crate) fn on_quality(&mut self, quality: &QualityReport) -> Vec<Fired> {
        let mut fired = Vec::new();
        for state in self.rules.iter_mut().filter(|s| !s.rule.is_drift_rule()) {
            let (met, message) = match &state.rule {
                AlertRule::AccuracyBelow { floor, min_count } => match quality.accuracy {
                    Some(accuracy) if quality.count >= *min_count => (
                        accuracy < *floor,
                        format!(
                            "online accuracy {accuracy:.4} over {} labeled predictions is below the floor {floor}",
                            quality.count
                        ),
                    ),
                    _ => continue,
                },
                AlertRule::RmseAbove { above, min_count } => match quality.rmse {
                    Some(rmse) if quality.count >= *min_count => (
                        rmse > *above,
                        format!(
                            "online RMSE {rmse:.4} over {} labeled predictions is above {above}",
                            quality.count
                        ),
                    ),
                    _ => continue,
                },
                _ => continue,
            };
            if !met {
                state.firing = false;
                continue;
            }
            if !state.firing {
                state.firing = true;
                state.fired += 1;
                fired.push(Fired {
                    rule: state.rule.clone(),
                    message,
                    figures: json!({ "quality": quality }),
                });
            }
        }
        fired
    }

    /// Where each rule stands.
    pub(crate) fn statuses(&self) -> Vec<RuleStatus> {
        self.rules
            .iter()
            .map(|s| RuleStatus {
                rule: s.rule.name(),
                condition: s.rule.clone(),
                consecutive: s.consecutive,
                firing: s.firing,
                fired: s.fired,
            })
            .collect()
    }
}

fn drift_alert(state: &RuleState, report: &WindowReport) -> Fired {
    let recent: Vec<f64> = state.recent.iter().copied().collect();
    let (message, figures) = match &state.rule {
        AlertRule::FeaturePsi { above, windows } => {
            let over: serde_json::Map<String, Value> = report
                .features
                .iter()
                .filter_map(|f| {
                    f.psi
                        .filter(|psi| psi > above)
                        .map(|psi| (f.name.clone(), json!(psi)))
                })
                .collect();
            let (feature, max) = report.max_feature_psi().unwrap_or(("", 0.0));
            (
                format!(
                    "feature PSI above {above} for {windows} windows in a row (latest: {feature} at {max:.4})"
                ),
                json!({
                    "feature_psi": over,
                    "max_psi": max,
                    "max_psi_feature": feature,
                    "max_psi_by_window": recent,
                }),
            )
        }
        AlertRule::PredictionPsi { above, windows } => (
            format!("prediction PSI above {above} for {windows} windows in a row"),
            json!({ "prediction_psi_by_window": recent }),
        ),
        AlertRule::DatasetDrift { windows } => (
            format!(
                "dataset drift ({} of {} features drifted) for {windows} windows in a row",
                report.drifted_features,
                report.features.len()
            ),
            json!({
                "drift_share_by_window": recent,
                "drifted_features": report
                    .features
                    .iter()
                    .filter(|f| f.drifted)
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>(),
            }),
        ),
        _ => (String::new(), Value::Null),
    };
    let mut figures = figures;
    figures["window"] = json!(report);
    Fired {
        rule: state.rule.clone(),
        message,
        figures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::FeatureKind;
    use crate::quality::Task;
    use crate::window::FeatureDrift;

    fn report(psi: f64) -> WindowReport {
        WindowReport {
            index: 1,
            rows: 10,
            opened_at_ms: 0,
            closed_at_ms: 1,
            closed_by: "rows",
            features: vec![FeatureDrift {
                name: "x".into(),
                kind: FeatureKind::Numeric,
                count: 10,
                nulls: 0,
                psi: Some(psi),
                psi_level: None,
                ks_statistic: None,
                ks_p_value: None,
                js_distance: None,
                drifted: psi > 0.25,
                distribution: None,
            }],
            prediction: None,
            drifted_features: usize::from(psi > 0.25),
            drift_share: if psi > 0.25 { 1.0 } else { 0.0 },
            dataset_drift: psi > 0.25,
        }
    }

    #[test]
    fn drift_rules_fire_after_consecutive_windows_once_per_episode() {
        let mut tracker = AlertTracker::new(&[AlertRule::FeaturePsi {
            above: 0.25,
            windows: 3,
        }]);
        let fires: Vec<usize> = [0.5, 0.6, 0.01, 0.5, 0.6, 0.7, 0.8, 0.01, 0.4, 0.4, 0.4]
            .iter()
            .map(|&psi| tracker.on_window(&report(psi)).len())
            .collect();
        assert_eq!(fires, vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
        let status = &tracker.statuses()[0];
        assert_eq!(
            (status.fired, status.consecutive, status.firing),
            (2, 3, true)
        );
    }

    #[test]
    fn drift_alerts_carry_the_figures() {
        let mut tracker = AlertTracker::new(&[AlertRule::FeaturePsi {
            above: 0.25,
            windows: 1,
        }]);
        let fired = tracker.on_window(&report(0.9));
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].figures["feature_psi"]["x"], json!(0.9));
        assert_eq!(fired[0].figures["max_psi_by_window"], json!([0.9]));
        assert_eq!(fired[0].figures["window"]["rows"], json!(10));
        assert!(
            fired[0].message.contains("x at 0.9000"),
            "{}",
            fired[0].message
        );
    }

    #[test]
    fn accuracy_floor_needs_enough_labels_and_re_arms() {
        let mut tracker = AlertTracker::new(&[AlertRule::AccuracyBelow {
            floor: 0.9,
            min_count: 10,
        }]);
        let quality = |count, accuracy| QualityReport {
            task: Task::Classification,
            count,
            accuracy: Some(accuracy),
            precision: None,
            recall: None,
            f1: None,
            mae: None,
            rmse: None,
        };
        assert!(
            tracker.on_quality(&quality(5, 0.1)).is_empty(),
            "too few labels"
        );
        assert_eq!(tracker.on_quality(&quality(10, 0.5)).len(), 1);
        assert!(
            tracker.on_quality(&quality(11, 0.5)).is_empty(),
            "still firing"
        );
        assert!(tracker.on_quality(&quality(12, 0.95)).is_empty());
        assert_eq!(tracker.on_quality(&quality(13, 0.5)).len(), 1, "re-armed");
        assert!(
            tracker.on_window(&report(0.9)).is_empty(),
            "not a drift rule"
        );
    }
}
