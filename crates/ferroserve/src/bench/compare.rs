//! `ferroserve bench compare A.json B.json`: per metric, A's and B's values,
//! B − A, a Welch t-test and 95 % confidence interval over the repeated runs,
//! and a plain verdict.

use std::fmt::Write as _;

use anyhow::{bail, Context};
use serde::Serialize;

use super::args::CompareArgs;
use super::report::{decode_histogram, Report, RunSummary};
use super::stats::{welch, Summary};

/// Confidence of the printed interval.
const CONFIDENCE: f64 = 0.95;

/// A compared figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    Mean,
    P50,
    P90,
    P99,
    P999,
    Throughput,
}

impl Metric {
    const ALL: [Metric; 6] = [
        Metric::Mean,
        Metric::P50,
        Metric::P90,
        Metric::P99,
        Metric::P999,
        Metric::Throughput,
    ];

    fn name(self) -> &'static str {
        match self {
            Metric::Mean => "mean latency (ms)",
            Metric::P50 => "p50 latency (ms)",
            Metric::P90 => "p90 latency (ms)",
            Metric::P99 => "p99 latency (ms)",
            Metric::P999 => "p99.9 latency (ms)",
            Metric::Throughput => "throughput (requests/s)",
        }
    }

    /// The figure of one run; `None` when no request succeeded.
    fn of(self, run: &RunSummary) -> Option<f64> {
        if self == Metric::Throughput {
            return Some(run.throughput_rps);
        }
        let l = run.latency_ms.as_ref()?;
        Some(match self {
            Metric::Mean => l.mean,
            Metric::P50 => l.p50,
            Metric::P90 => l.p90,
            Metric::P99 => l.p99,
            Metric::P999 => l.p99_9,
            Metric::Throughput => run.throughput_rps,
        })
    }
}

/// The comparison of one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricComparison {
    /// What is compared, with its unit.
    pub metric: String,
    /// A's value: the mean over A's runs.
    pub a: f64,
    /// B's value: the mean over B's runs.
    pub b: f64,
    /// B − A.
    pub difference: f64,
    /// (B − A) / A.
    pub relative: f64,
    /// What the test was run on: `runs` (per-run values), `requests`
    /// (request latencies, mean only, with one run on a side) or `none`.
    pub test: &'static str,
    /// Welch t-test p-value.
    pub p_value: Option<f64>,
    /// 95 % confidence interval of B − A.
    pub ci: Option<[f64; 2]>,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: Option<f64>,
    /// faster / slower / higher / lower / no significant difference / not tested.
    pub verdict: String,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Runs in A.
    pub runs_a: usize,
    /// Runs in B.
    pub runs_b: usize,
    /// Significance level.
    pub alpha: f64,
    /// Settings that differ between A and B.
    pub differing_settings: Vec<String>,
    /// One entry per metric.
    pub metrics: Vec<MetricComparison>,
}

/// Compares B with A.
pub fn compare(a: &Report, b: &Report, alpha: f64) -> anyhow::Result<Comparison> {
    let metrics = Metric::ALL
        .iter()
        .map(|&m| compare_metric(m, a, b, alpha))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Comparison {
        runs_a: a.runs.len(),
        runs_b: b.runs.len(),
        alpha,
        differing_settings: differing_settings(a, b),
        metrics,
    })
}

fn compare_metric(
    metric: Metric,
    a: &Report,
    b: &Report,
    alpha: f64,
) -> anyhow::Result<MetricComparison> {
    let values = |r: &Report, side: &str| {
        r.runs
            .iter()
            .map(|run| metric.of(run))
            .collect::<Option<Vec<f64>>>()
            .with_context(|| format!("{side} has a run where no request succeeded"))
    };
    let (va, vb) = (values(a, "A")?, values(b, "B")?);
    let (sa, sb) = (Summary::of(&va), Summary::of(&vb));
    let (test, result) = if va.len() >= 2 && vb.len() >= 2 {
        ("runs", welch(&sb, &sa, CONFIDENCE))
    } else if metric == Metric::Mean {
        let (ra, rb) = (request_summary(&a.total)?, request_summary(&b.total)?);
        ("requests", welch(&rb, &ra, CONFIDENCE))
    } else {
        ("none", None)
    };
    let difference = sb.mean - sa.mean;
    let verdict = match result {
        None => "not tested (needs --runs 2 or more on both sides)".to_string(),
        Some(w) if w.p_value < alpha => {
            let up = w.difference > 0.0;
            match (metric == Metric::Throughput, up) {
                (true, true) => "higher",
                (true, false) => "lower",
                (false, true) => "slower",
                (false, false) => "faster",
            }
            .to_string()
        }
        Some(_) => "no significant difference".to_string(),
    };
    Ok(MetricComparison {
        metric: metric.name().to_string(),
        a: sa.mean,
        b: sb.mean,
        difference,
        relative: if sa.mean == 0.0 {
            f64::NAN
        } else {
            difference / sa.mean
        },
        test: if result.is_some() { test } else { "none" },
        p_value: result.map(|w| w.p_value),
        ci: result.map(|w| [w.ci_low, w.ci_high]),
        df: result.map(|w| w.df),
        verdict,
    })
}

/// Mean, variance and count of the request latencies (ms) of all runs.
fn request_summary(total: &RunSummary) -> anyhow::Result<Summary> {
    let h = decode_histogram(&total.histogram)?;
    let n = h.len() as f64;
    // The histogram's standard deviation divides by n; Welch wants n − 1.
    let variance = (h.stdev() / 1e3).powi(2) * n / (n - 1.0).max(1.0);
    Ok(Summary {
        mean: h.mean() / 1e3,
        variance,
        n,
    })
}

fn differing_settings(a: &Report, b: &Report) -> Vec<String> {
    let (Ok(serde_json::Value::Object(sa)), Ok(serde_json::Value::Object(sb))) = (
        serde_json::to_value(&a.settings),
        serde_json::to_value(&b.settings),
    ) else {
        return Vec::new();
    };
    sa.iter()
        .filter(|(k, v)| sb.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Runs `ferroserve bench compare`.
pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        bail!("--alpha must be between 0 and 1, got {}", args.alpha);
    }
    let a = Report::read(&args.a)?;
    let b = Report::read(&args.b)?;
    let comparison = compare(&a, &b, args.alpha)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&comparison).expect("a comparison serializes")
        );
    } else {
        print!(
            "{}",
            text(
                &comparison,
                &args.a.display().to_string(),
                &args.b.display().to_string()
            )
        );
    }
    Ok(())
}

fn text(c: &Comparison, a: &str, b: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "A: {a} ({} run(s))\nB: {b} ({} run(s))\nWelch t-test of B − A, alpha {}",
        c.runs_a, c.runs_b, c.alpha
    );
    if !c.differing_settings.is_empty() {
        let _ = writeln!(
            out,
            "note: A and B differ in settings: {}",
            c.differing_settings.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "{:<24} {:>11} {:>11} {:>11} {:>8} {:>9} {:>25} {:>8}  verdict",
        "metric", "A", "B", "B − A", "rel", "p-value", "95 % CI of B − A", "test"
    );
    for m in &c.metrics {
        let p = m.p_value.map_or("-".to_string(), |p| format!("{p:.3e}"));
        let ci =
            m.ci.map_or("-".to_string(), |[lo, hi]| format!("[{lo:+.4}, {hi:+.4}]"));
        let _ = writeln!(
            out,
            "{:<24} {:>11.4} {:>11.4} {:>+11.4} {:>+7.1}% {:>9} {:>25} {:>8}  {}",
            m.metric,
            m.a,
            m.b,
            m.difference,
            m.relative * 100.0,
            p,
            ci,
            m.test,
            m.verdict
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::tests::report;

    fn runs(base: u64, count: usize) -> Vec<Vec<u64>> {
        // Slightly different runs around `base` µs.
        (0..count as u64)
            .map(|r| (0..200).map(|i| base + (i % 20) * 10 + r * 3).collect())
            .collect()
    }

    fn verdict<'c>(c: &'c Comparison, metric: &str) -> &'c MetricComparison {
        c.metrics
            .iter()
            .find(|m| m.metric.starts_with(metric))
            .expect("metric present")
    }

    #[test]
    fn a_clear_slowdown_is_called_slower() {
        let a = report(&runs(1000, 3));
        let b = report(&runs(1500, 3));
        let c = compare(&a, &b, 0.05).unwrap();
        assert_eq!(c.metrics.len(), 6);
        for name in ["mean", "p50", "p90", "p99", "p99.9"] {
            let m = verdict(&c, name);
            assert_eq!(m.verdict, "slower", "{m:?}");
            assert_eq!(m.test, "runs");
            let [lo, hi] = m.ci.unwrap();
            assert!(lo < m.difference && m.difference < hi && lo > 0.0, "{m:?}");
        }
        // Same request count over the same time: throughput does not move.
        assert_eq!(
            verdict(&c, "throughput").verdict,
            "no significant difference"
        );
        let back = compare(&b, &a, 0.05).unwrap();
        assert_eq!(verdict(&back, "p50").verdict, "faster");
    }

    #[test]
    fn identical_runs_show_no_difference() {
        let a = report(&runs(1000, 3));
        let c = compare(&a, &a, 0.05).unwrap();
        for m in &c.metrics {
            assert_eq!(m.verdict, "no significant difference", "{m:?}");
            assert_eq!(m.difference, 0.0);
        }
    }

    #[test]
    fn single_runs_test_the_mean_over_requests_only() {
        let a = report(&runs(1000, 1));
        let b = report(&runs(1100, 1));
        let c = compare(&a, &b, 0.05).unwrap();
        let mean = verdict(&c, "mean");
        assert_eq!(mean.test, "requests");
        assert_eq!(mean.verdict, "slower");
        assert!((mean.difference - 0.1).abs() < 1e-9, "{mean:?}");
        let p99 = verdict(&c, "p99 ");
        assert_eq!(p99.test, "none");
        assert!(p99.verdict.starts_with("not tested"));
        assert!(text(&c, "a.json", "b.json").contains("not tested"));
    }

    #[test]
    fn throughput_up_is_higher() {
        let mut a = report(&runs(1000, 3));
        let mut b = a.clone();
        for (i, run) in a.runs.iter_mut().enumerate() {
            run.throughput_rps = 1000.0 + i as f64;
        }
        for (i, run) in b.runs.iter_mut().enumerate() {
            run.throughput_rps = 1200.0 + i as f64;
        }
        b.settings.protocol = crate::bench::args::Protocol::HttpBinary;
        let c = compare(&a, &b, 0.05).unwrap();
        assert_eq!(verdict(&c, "throughput").verdict, "higher");
        assert_eq!(c.differing_settings, vec!["protocol".to_string()]);
    }
}
