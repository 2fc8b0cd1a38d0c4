//! The rollout gates: each compares the canary's figures against stable's
//! over the same window and passes, fails or finds the window too small
//! ([`judge`]); [`GateTracker`] turns successive checks into a decision
//! (hold, advance, roll back).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::settings::{Gate, LatencyGate, RolloutSettings};
use super::window::SideFigures;

/// Least stable requests a window needs (or `step_min_requests`, when lower).
pub const STABLE_MIN_REQUESTS: u64 = 20;

/// Canary requests after which a rate gate may fail before the window is
/// full (or `step_min_requests`, when lower).
pub const EARLY_FAIL_MIN_REQUESTS: u64 = 50;

/// Outcome of one gate over one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The canary is within the gate's limit.
    Pass,
    /// The canary is beyond the gate's limit.
    Fail,
    /// Too few requests to judge; never counts as a pass.
    Insufficient,
}

/// One gate's verdict with the figures behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateResult {
    /// `error_rate`, `p99_ratio`, `fallback_rate` or `prediction_psi`.
    pub gate: &'static str,
    /// Pass, fail or insufficient.
    pub verdict: Verdict,
    /// The compared figure (rate difference, latency ratio, PSI); none when
    /// a side has nothing to compare yet or the gate does not apply.
    pub value: Option<f64>,
    /// Largest value that passes.
    pub limit: f64,
    /// A failure rolls back at once.
    pub critical: bool,
    /// The figures in a sentence.
    pub detail: String,
}

/// How many requests each side needs before a window can be judged.
struct Minimums {
    canary: u64,
    stable: u64,
    early_fail: u64,
}

impl Minimums {
    fn of(settings: &RolloutSettings) -> Self {
        let needed = settings.step_min_requests;
        Minimums {
            canary: needed,
            stable: needed.min(STABLE_MIN_REQUESTS),
            early_fail: needed.min(EARLY_FAIL_MIN_REQUESTS),
        }
    }

    fn met(&self, stable: &SideFigures, canary: &SideFigures) -> bool {
        canary.requests >= self.canary && stable.requests >= self.stable
    }

    fn shortfall(&self, stable: &SideFigures, canary: &SideFigures) -> String {
        format!(
            "too few requests to judge: canary {} of {} needed, stable {} of {} needed",
            canary.requests, self.canary, stable.requests, self.stable
        )
    }
}

/// Judges the canary against stable on the four gates, in the order
/// `error_rate`, `p99_ratio`, `fallback_rate`, `prediction_psi`.
///
/// A gate is [`Verdict::Insufficient`] while the canary has fewer than
/// `step_min_requests` requests or stable fewer than
/// `min(step_min_requests, 20)`, with one exception: a rate gate fails
/// early once the canary has `min(step_min_requests, 50)` requests and its
/// count is so high that, even if every request still missing from the
/// window succeeded, its rate would exceed stable's by more than the limit.
pub fn judge(
    settings: &RolloutSettings,
    stable: &SideFigures,
    canary: &SideFigures,
) -> Vec<GateResult> {
    let minimums = Minimums::of(settings);
    let gates = &settings.gates;
    vec![
        rate_gate(
            "error_rate",
            "errors",
            gates.error_rate,
            RateSide::errors,
            (stable, canary),
            &minimums,
        ),
        p99_gate(gates.p99_ratio, stable, canary, &minimums),
        rate_gate(
            "fallback_rate",
            "fallback answers",
            gates.fallback_rate,
            RateSide::fallbacks,
            (stable, canary),
            &minimums,
        ),
        psi_gate(gates.prediction_psi, stable, canary, &minimums),
    ]
}

/// One side's count and rate for a rate gate.
struct RateSide {
    count: u64,
    requests: u64,
    rate: f64,
}

impl RateSide {
    fn errors(figures: &SideFigures) -> Self {
        RateSide {
            count: figures.errors,
            requests: figures.requests,
            rate: figures.error_rate,
        }
    }

    fn fallbacks(figures: &SideFigures) -> Self {
        RateSide {
            count: figures.fallbacks,
            requests: figures.requests,
            rate: figures.fallback_rate,
        }
    }
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

fn points(difference: f64) -> String {
    format!("{:+.1}", difference * 100.0)
}

fn rate_gate(
    name: &'static str,
    what: &str,
    gate: Gate,
    pick: fn(&SideFigures) -> RateSide,
    (stable_figures, canary_figures): (&SideFigures, &SideFigures),
    minimums: &Minimums,
) -> GateResult {
    let (stable, canary) = (pick(stable_figures), pick(canary_figures));
    let value = (stable.requests > 0 && canary.requests > 0).then_some(canary.rate - stable.rate);
    let result = |verdict, detail| GateResult {
        gate: name,
        verdict,
        value,
        limit: gate.max,
        critical: gate.critical,
        detail,
    };
    if minimums.met(stable_figures, canary_figures) {
        let difference = canary.rate - stable.rate;
        let verdict = if difference > gate.max {
            Verdict::Fail
        } else {
            Verdict::Pass
        };
        return result(
            verdict,
            format!(
                "canary {} {what} vs stable {}: {} points, limit {}",
                percent(canary.rate),
                percent(stable.rate),
                points(difference),
                points(gate.max)
            ),
        );
    }
    if canary.requests >= minimums.early_fail {
        // The lowest rate the canary can still end the window with.
        let best_rate = canary.count as f64 / canary.requests.max(minimums.canary) as f64;
        if best_rate - stable.rate > gate.max {
            let missing = minimums.canary.saturating_sub(canary.requests);
            return result(
                Verdict::Fail,
                format!(
                    "canary {} {what} in {} requests: at least {} even if the next {missing} \
                     succeed, vs stable {}: {} points or more, limit {}",
                    canary.count,
                    canary.requests,
                    percent(best_rate),
                    percent(stable.rate),
                    points(best_rate - stable.rate),
                    points(gate.max)
                ),
            );
        }
    }
    result(
        Verdict::Insufficient,
        minimums.shortfall(stable_figures, canary_figures),
    )
}

fn p99_gate(
    gate: LatencyGate,
    stable: &SideFigures,
    canary: &SideFigures,
    minimums: &Minimums,
) -> GateResult {
    let (stable_p99, canary_p99) = match (stable.p99_ms, canary.p99_ms) {
        (Some(stable_p99), Some(canary_p99)) if stable_p99 > 0.0 => (stable_p99, canary_p99),
        _ => {
            return GateResult {
                gate: "p99_ratio",
                verdict: Verdict::Insufficient,
                value: None,
                limit: gate.max,
                critical: gate.critical,
                detail: minimums.shortfall(stable, canary),
            }
        }
    };
    let ratio = canary_p99 / stable_p99;
    let slower_ms = canary_p99 - stable_p99;
    let (verdict, detail) = if !minimums.met(stable, canary) {
        (Verdict::Insufficient, minimums.shortfall(stable, canary))
    } else {
        let verdict = if ratio > gate.max && slower_ms > gate.slack_ms {
            Verdict::Fail
        } else {
            Verdict::Pass
        };
        let within_slack = if ratio > gate.max && verdict == Verdict::Pass {
            format!(", but within the {:.1} ms slack", gate.slack_ms)
        } else {
            String::new()
        };
        (
            verdict,
            format!(
                "canary p99 {canary_p99:.2} ms vs stable {stable_p99:.2} ms: ratio {ratio:.2}, \
                 limit {:.2}{within_slack}",
                gate.max
            ),
        )
    };
    GateResult {
        gate: "p99_ratio",
        verdict,
        value: Some(ratio),
        limit: gate.max,
        critical: gate.critical,
        detail,
    }
}

fn psi_gate(
    gate: Gate,
    stable: &SideFigures,
    canary: &SideFigures,
    minimums: &Minimums,
) -> GateResult {
    let result = |verdict, value, detail| GateResult {
        gate: "prediction_psi",
        verdict,
        value,
        limit: gate.max,
        critical: gate.critical,
        detail,
    };
    if !minimums.met(stable, canary) {
        return result(
            Verdict::Insufficient,
            None,
            minimums.shortfall(stable, canary),
        );
    }
    if stable.classes.is_empty() || canary.classes.is_empty() {
        return result(Verdict::Pass, None, "not a classifier".to_string());
    }
    let (expected, actual) = class_proportions(&stable.classes, &canary.classes);
    match ferroserve_monitor::drift::psi(&expected, &actual) {
        Ok(value) => {
            let verdict = if value > gate.max {
                Verdict::Fail
            } else {
                Verdict::Pass
            };
            result(
                verdict,
                Some(value),
                format!(
                    "PSI {value:.3} of canary's predicted classes against stable's over {} \
                     classes, limit {:.3}",
                    expected.len(),
                    gate.max
                ),
            )
        }
        Err(e) => result(
            Verdict::Insufficient,
            None,
            format!("PSI of the predicted classes cannot be computed: {e}"),
        ),
    }
}

/// Proportions of each class over the union of both sides' classes
/// (stable's, canary's), in the same order. A class one side never
/// predicted has proportion 0 there, which PSI floors to a small share.
fn class_proportions(
    stable: &BTreeMap<String, u64>,
    canary: &BTreeMap<String, u64>,
) -> (Vec<f64>, Vec<f64>) {
    let union: std::collections::BTreeSet<&String> = stable.keys().chain(canary.keys()).collect();
    let shares = |counts: &BTreeMap<String, u64>| {
        let total = counts.values().sum::<u64>().max(1) as f64;
        union
            .iter()
            .map(|class| counts.get(*class).copied().unwrap_or(0) as f64 / total)
            .collect::<Vec<f64>>()
    };
    (shares(stable), shares(canary))
}

/// What a rollout does after one gate check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Keep the current step.
    Hold,
    /// Every gate passed; the step may end once its time and request
    /// minima are met ([`step_done`]).
    Advance,
    /// Send all traffic back to stable.
    Rollback {
        /// The gate that failed.
        gate: &'static str,
        /// Why, with the figures.
        reason: String,
    },
}

/// Consecutive failed checks per gate over the checks of one rollout.
#[derive(Debug, Clone)]
pub struct GateTracker {
    failure_threshold: u32,
    consecutive: BTreeMap<&'static str, u32>,
}

impl GateTracker {
    /// A tracker rolling back when a non-critical gate fails
    /// `failure_threshold` checks in a row (0 reads as 1).
    pub fn new(failure_threshold: u32) -> Self {
        GateTracker {
            failure_threshold: failure_threshold.max(1),
            consecutive: BTreeMap::new(),
        }
    }

    /// Counts one check's results: a failure adds one to its gate's run, a
    /// pass or an insufficient window ends it. Rolls back at once on a
    /// failed critical gate, or when a gate's run reaches the threshold;
    /// advances only when every gate passed; else holds.
    pub fn observe(&mut self, results: &[GateResult]) -> Decision {
        for result in results {
            let count = self.consecutive.entry(result.gate).or_insert(0);
            *count = match result.verdict {
                Verdict::Fail => count.saturating_add(1),
                Verdict::Pass | Verdict::Insufficient => 0,
            };
        }
        let failed = || results.iter().filter(|r| r.verdict == Verdict::Fail);
        if let Some(result) = failed().find(|r| r.critical) {
            return Decision::Rollback {
                gate: result.gate,
                reason: format!(
                    "{} failed (a critical gate): {}",
                    result.gate, result.detail
                ),
            };
        }
        if let Some(result) = failed().find(|r| self.consecutive(r.gate) >= self.failure_threshold)
        {
            return Decision::Rollback {
                gate: result.gate,
                reason: format!(
                    "{} failed {} checks in a row: {}",
                    result.gate,
                    self.consecutive(result.gate),
                    result.detail
                ),
            };
        }
        if !results.is_empty() && results.iter().all(|r| r.verdict == Verdict::Pass) {
            Decision::Advance
        } else {
            Decision::Hold
        }
    }

    /// Failed checks of `gate` in a row up to the last one.
    pub fn consecutive(&self, gate: &str) -> u32 {
        self.consecutive.get(gate).copied().unwrap_or(0)
    }

    /// Forgets every run of failures (a new step starts a new window).
    pub fn reset(&mut self) {
        self.consecutive.clear();
    }
}

/// Whether a step may end: it has lasted `step_seconds`, the canary has
/// answered `step_min_requests` in the window, and every gate passed.
pub fn step_done(
    settings: &RolloutSettings,
    window_age: Duration,
    canary_requests: u64,
    all_pass: bool,
) -> bool {
    all_pass
        && window_age >= Duration::from_secs(settings.step_seconds)
        && canary_requests >= settings.step_min_requests
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(requests: u64, errors: u64, p99_ms: f64) -> SideFigures {
        let rate = |count: u64| {
            if requests == 0 {
                0.0
            } else {
                count as f64 / requests as f64
            }
        };
        SideFigures {
            requests,
            errors,
            error_rate: rate(errors),
            fallbacks: 0,
            fallback_rate: 0.0,
            p99_ms: (requests > 0).then_some(p99_ms),
            classes: BTreeMap::new(),
        }
    }

    fn with_classes(mut figures: SideFigures, classes: &[(&str, u64)]) -> SideFigures {
        figures.classes = classes.iter().map(|(c, n)| (c.to_string(), *n)).collect();
        figures
    }

    fn gate<'a>(results: &'a [GateResult], name: &str) -> &'a GateResult {
        results
            .iter()
            .find(|r| r.gate == name)
            .unwrap_or_else(|| panic!("no {name} gate in {results:?}"))
    }

    fn verdicts(results: &[GateResult]) -> Vec<Verdict> {
        results.iter().map(|r| r.verdict).collect()
    }

    #[test]
    fn healthy_canary_passes_every_gate_in_order() {
        let settings = RolloutSettings::default();
        let results = judge(&settings, &side(2000, 2, 10.0), &side(200, 0, 11.0));
        let names: Vec<_> = results.iter().map(|r| r.gate).collect();
        assert_eq!(
            names,
            ["error_rate", "p99_ratio", "fallback_rate", "prediction_psi"]
        );
        assert_eq!(verdicts(&results), vec![Verdict::Pass; 4]);
        assert_eq!(gate(&results, "prediction_psi").detail, "not a classifier");
        assert_eq!(gate(&results, "prediction_psi").value, None);
        assert!(gate(&results, "error_rate").critical);
    }

    #[test]
    fn error_rate_detail_states_the_figures() {
        let settings = RolloutSettings::default();
        let results = judge(&settings, &side(1000, 0, 5.0), &side(200, 40, 5.0));
        let errors = gate(&results, "error_rate");
        assert_eq!(errors.verdict, Verdict::Fail);
        assert_eq!(
            errors.detail,
            "canary 20.0% errors vs stable 0.0%: +20.0 points, limit +1.0"
        );
        assert!((errors.value.expect("both sides answered") - 0.2).abs() < 1e-12);
        assert_eq!(errors.limit, 0.01);
    }

    #[test]
    fn error_rate_compares_against_stable() {
        let settings = RolloutSettings::default();
        // 2.0% vs 0.5%: 1.5 points above, beyond 1.
        let results = judge(&settings, &side(1000, 5, 5.0), &side(200, 4, 5.0));
        assert_eq!(gate(&results, "error_rate").verdict, Verdict::Fail);
        // 1.0% vs 0.5%: 0.5 points above.
        let results = judge(&settings, &side(1000, 5, 5.0), &side(200, 2, 5.0));
        assert_eq!(gate(&results, "error_rate").verdict, Verdict::Pass);
    }

    #[test]
    fn clearly_bad_canary_fails_before_the_window_fills() {
        let settings = RolloutSettings::default();
        let stable = side(450, 0, 5.0);
        // 20% errors in the first 50 of 200: at least 5% at the end.
        let results = judge(&settings, &stable, &side(50, 10, 5.0));
        let errors = gate(&results, "error_rate");
        assert_eq!(errors.verdict, Verdict::Fail, "{}", errors.detail);
        assert!(
            errors.detail.contains("next 150 succeed"),
            "{}",
            errors.detail
        );
        // The other gates still wait for the window.
        assert_eq!(gate(&results, "p99_ratio").verdict, Verdict::Insufficient);
        // One error in 50 could still end at 0.5%.
        let results = judge(&settings, &stable, &side(50, 1, 5.0));
        assert_eq!(gate(&results, "error_rate").verdict, Verdict::Insufficient);
        // Before 50 requests nothing fails, however bad.
        let results = judge(&settings, &stable, &side(49, 49, 5.0));
        assert_eq!(gate(&results, "error_rate").verdict, Verdict::Insufficient);
    }

    #[test]
    fn insufficient_windows_never_pass() {
        let settings = RolloutSettings::default();
        let perfect = |requests| side(requests, 0, 5.0);
        let cases = [
            (perfect(5000), perfect(199)),
            (perfect(19), perfect(5000)),
            (perfect(0), perfect(0)),
        ];
        for (stable, canary) in cases {
            let results = judge(&settings, &stable, &canary);
            assert_eq!(
                verdicts(&results),
                vec![Verdict::Insufficient; 4],
                "{results:?}"
            );
            assert!(results[0].detail.starts_with("too few requests"));
            let mut tracker = GateTracker::new(2);
            assert_eq!(tracker.observe(&results), Decision::Hold);
        }
        // A small step minimum lowers stable's minimum with it.
        let settings = RolloutSettings {
            step_min_requests: 10,
            ..RolloutSettings::default()
        };
        let results = judge(&settings, &perfect(10), &perfect(10));
        assert_eq!(verdicts(&results), vec![Verdict::Pass; 4]);
    }

    #[test]
    fn five_times_slower_canary_fails_p99() {
        let settings = RolloutSettings::default();
        let results = judge(&settings, &side(1000, 0, 20.0), &side(200, 0, 100.0));
        let latency = gate(&results, "p99_ratio");
        assert_eq!(latency.verdict, Verdict::Fail, "{}", latency.detail);
        assert!((latency.value.expect("both p99s") - 5.0).abs() < 1e-12);
        assert!(!latency.critical);
        assert_eq!(
            latency.detail,
            "canary p99 100.00 ms vs stable 20.00 ms: ratio 5.00, limit 1.50"
        );
    }

    #[test]
    fn small_latency_differences_pass_through_the_slack() {
        let mut settings = RolloutSettings::default();
        settings.gates.p99_ratio.max = 1.2;
        let stable = side(1000, 0, 0.8);
        let canary = side(200, 0, 1.2);
        let results = judge(&settings, &stable, &canary);
        let latency = gate(&results, "p99_ratio");
        assert!(latency.value.expect("both p99s") > 1.2);
        assert_eq!(latency.verdict, Verdict::Pass, "{}", latency.detail);
        assert!(latency.detail.contains("within the 5.0 ms slack"));

        settings.gates.p99_ratio.slack_ms = 0.1;
        let results = judge(&settings, &stable, &canary);
        assert_eq!(gate(&results, "p99_ratio").verdict, Verdict::Fail);
    }

    #[test]
    fn fallback_rate_compares_against_stable() {
        let settings = RolloutSettings::default();
        let stable = side(1000, 0, 5.0);
        let mut canary = side(200, 0, 5.0);
        canary.fallbacks = 10;
        canary.fallback_rate = 0.05;
        let results = judge(&settings, &stable, &canary);
        let fallbacks = gate(&results, "fallback_rate");
        assert_eq!(fallbacks.verdict, Verdict::Fail);
        assert!(!fallbacks.critical);
        assert_eq!(
            fallbacks.detail,
            "canary 5.0% fallback answers vs stable 0.0%: +5.0 points, limit +1.0"
        );
        canary.fallbacks = 2;
        canary.fallback_rate = 0.01;
        let results = judge(&settings, &stable, &canary);
        assert_eq!(gate(&results, "fallback_rate").verdict, Verdict::Pass);
    }

    #[test]
    fn psi_of_identical_classes_is_near_zero_and_of_shifted_ones_high() {
        let settings = RolloutSettings::default();
        let stable = with_classes(
            side(1000, 0, 5.0),
            &[("setosa", 500), ("versicolor", 300), ("virginica", 200)],
        );
        let same = with_classes(
            side(200, 0, 5.0),
            &[("setosa", 100), ("versicolor", 60), ("virginica", 40)],
        );
        let results = judge(&settings, &stable, &same);
        let drift = gate(&results, "prediction_psi");
        assert_eq!(drift.verdict, Verdict::Pass);
        assert!(drift.value.expect("classifier").abs() < 1e-9);

        let shifted = with_classes(
            side(200, 0, 5.0),
            &[
                ("setosa", 20),
                ("versicolor", 60),
                ("virginica", 100),
                ("unseen", 20),
            ],
        );
        let results = judge(&settings, &stable, &shifted);
        let drift = gate(&results, "prediction_psi");
        assert_eq!(drift.verdict, Verdict::Fail, "{}", drift.detail);
        let value = drift.value.expect("classifier");
        assert!(value > 1.0, "PSI {value}");
        assert!(drift.detail.contains("over 4 classes"), "{}", drift.detail);
    }

    #[test]
    fn tracker_rolls_back_at_the_threshold_or_at_once_when_critical() {
        let settings = RolloutSettings::default();
        let good = judge(&settings, &side(1000, 0, 10.0), &side(200, 0, 10.0));
        let slow = judge(&settings, &side(1000, 0, 10.0), &side(200, 0, 50.0));
        let small = judge(&settings, &side(1000, 0, 10.0), &side(10, 0, 10.0));
        let failing = judge(&settings, &side(1000, 0, 10.0), &side(200, 40, 10.0));

        let mut tracker = GateTracker::new(settings.failure_threshold);
        assert_eq!(tracker.observe(&slow), Decision::Hold);
        assert_eq!(tracker.consecutive("p99_ratio"), 1);
        assert_eq!(tracker.observe(&good), Decision::Advance);
        assert_eq!(tracker.consecutive("p99_ratio"), 0);
        assert_eq!(tracker.observe(&slow), Decision::Hold);
        assert_eq!(tracker.observe(&small), Decision::Hold);
        assert_eq!(tracker.consecutive("p99_ratio"), 0);
        assert_eq!(tracker.observe(&slow), Decision::Hold);
        match tracker.observe(&slow) {
            Decision::Rollback { gate, reason } => {
                assert_eq!(gate, "p99_ratio");
                assert!(reason.starts_with("p99_ratio failed 2 checks in a row: canary p99"));
            }
            other => panic!("expected a rollback, got {other:?}"),
        }
        assert_eq!(tracker.consecutive("p99_ratio"), 2);

        let mut tracker = GateTracker::new(3);
        match tracker.observe(&failing) {
            Decision::Rollback { gate, reason } => {
                assert_eq!(gate, "error_rate");
                assert!(reason.contains("critical"), "{reason}");
            }
            other => panic!("expected a rollback, got {other:?}"),
        }

        let mut tracker = GateTracker::new(3);
        assert_eq!(tracker.observe(&slow), Decision::Hold);
        assert_eq!(tracker.observe(&slow), Decision::Hold);
        tracker.reset();
        assert_eq!(tracker.consecutive("p99_ratio"), 0);
        assert_eq!(tracker.observe(&slow), Decision::Hold);
        assert_eq!(tracker.observe(&slow), Decision::Hold);
        assert!(matches!(
            tracker.observe(&slow),
            Decision::Rollback {
                gate: "p99_ratio",
                ..
            }
        ));
        assert_eq!(GateTracker::new(2).observe(&[]), Decision::Hold);
    }

    #[test]
    fn step_ends_only_with_time_requests_and_passing_gates() {
        let settings = RolloutSettings::default();
        let minute = Duration::from_secs(60);
        assert!(step_done(&settings, minute, 200, true));
        assert!(!step_done(&settings, minute, 200, false));
        assert!(!step_done(&settings, Duration::from_secs(59), 200, true));
        assert!(!step_done(&settings, minute, 199, true));
    }

    #[test]
    fn results_serialise_as_the_status_shows_them() {
        let settings = RolloutSettings::default();
        let results = judge(&settings, &side(1000, 0, 10.0), &side(5, 0, 10.0));
        let json = serde_json::to_value(&results[0]).expect("serialises");
        assert_eq!(json["gate"], "error_rate");
        assert_eq!(json["verdict"], "insufficient");
        assert_eq!(json["limit"], 0.01);
        assert_eq!(json["critical"], true);
        assert_eq!(json["value"], 0.0);
        let json = serde_json::to_value(&results[3]).expect("serialises");
        assert!(json["value"].is_null());
    }
}
