//! Drift statistics of one monitoring window: Population Stability Index
//! ([`psi`]), two-sample Kolmogorov–Smirnov ([`ks_two_sample`],
//! [`ks_against_reference`]), Jensen–Shannon distance for categorical
//! features ([`jensen_shannon_distance`]) and the share of drifted features
//! ([`drifted_share`], [`dataset_drifted`]).
//!
//! Everything here is a pure function of its inputs (no I/O, no clock). The
//! values equal scipy's / Evidently's on the same data within 1e-6; the
//! reference values live in `testdata/drift/reference.json`, written by
//! `testdata/drift/make_reference.py`.

mod js;
mod ks;
mod psi;
#[cfg(test)]
mod scipy_reference;

pub use js::jensen_shannon_distance;
pub use ks::{ks_against_reference, ks_two_sample, KsResult, KS_EXACT_MAX_N};
pub use psi::{histogram, psi, PsiLevel, PSI_EMPTY_BIN_PROPORTION, PSI_MODERATE, PSI_SIGNIFICANT};

/// Share of drifted features at or above which the dataset counts as
/// drifted (Evidently's default `drift_share`).
pub const DEFAULT_DRIFT_SHARE_THRESHOLD: f64 = 0.5;

/// Why a drift statistic could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriftError {
    /// An input had no elements.
    #[error("{what} is empty")]
    Empty {
        /// Which input.
        what: &'static str,
    },
    /// Two inputs that must pair up element by element had different lengths.
    #[error("{left_name} has {left} elements but {right_name} has {right}; they must match")]
    LengthMismatch {
        /// Name of the first input.
        left_name: &'static str,
        /// Length of the first input.
        left: usize,
        /// Name of the second input.
        right_name: &'static str,
        /// Length of the second input.
        right: usize,
    },
    /// A value was NaN (or infinite where only finite values make sense).
    #[error("{what}[{index}] is {value}; expected a finite number")]
    NotFinite {
        /// Which input.
        what: &'static str,
        /// Position of the value.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A count or proportion was negative.
    #[error("{what}[{index}] is {value}; counts and proportions must be >= 0")]
    Negative {
        /// Which input.
        what: &'static str,
        /// Position of the value.
        index: usize,
        /// The value.
        value: f64,
    },
    /// Counts or proportions summed to zero, so they cannot be normalised.
    #[error("{what} sums to zero; it cannot be normalised to proportions")]
    ZeroTotal {
        /// Which input.
        what: &'static str,
    },
    /// Fewer than two bin edges or quantiles.
    #[error("{what} has {count} points; at least 2 are needed")]
    TooFewPoints {
        /// Which input.
        what: &'static str,
        /// How many there were.
        count: usize,
    },
    /// Bin edges or quantiles that decrease somewhere.
    #[error("{what} must be non-decreasing, but [{index}] = {value} > [{next_index}] = {next}", next_index = .index + 1)]
    NotSorted {
        /// Which input.
        what: &'static str,
        /// Position of the larger value.
        index: usize,
        /// The larger value.
        value: f64,
        /// The smaller value that follows it.
        next: f64,
    },
    /// The reference sample size was zero.
    #[error("reference_count is 0; the reference profile must describe at least one value")]
    ZeroReferenceCount,
}

/// Share of `flags` that are `true`: the fraction of features whose drift
/// test fired. 0 for no features.
pub fn drifted_share(flags: &[bool]) -> f64 {
    if flags.is_empty() {
        return 0.0;
    }
    let drifted = flags.iter().filter(|&&f| f).count();
    drifted as f64 / flags.len() as f64
}

/// Whether the dataset drifted: `drifted_share(flags) >= threshold` (see
/// [`DEFAULT_DRIFT_SHARE_THRESHOLD`]). A window with no features never
/// counts as drifted.
pub fn dataset_drifted(flags: &[bool], threshold: f64) -> bool {
    !flags.is_empty() && drifted_share(flags) >= threshold
}

/// Checks that `values` is non-empty and holds no NaN or infinity.
fn check_finite(what: &'static str, values: &[f64]) -> Result<(), DriftError> {
    if values.is_empty() {
        return Err(DriftError::Empty { what });
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(DriftError::NotFinite {
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Checks that `values` are finite, non-negative weights with a positive sum
/// and returns them divided by that sum.
fn normalise(what: &'static str, values: &[f64]) -> Result<Vec<f64>, DriftError> {
    check_finite(what, values)?;
    if let Some(index) = values.iter().position(|&v| v < 0.0) {
        return Err(DriftError::Negative {
            what,
            index,
            value: values[index],
        });
    }
    let total: f64 = values.iter().sum();
    if total <= 0.0 {
        return Err(DriftError::ZeroTotal { what });
    }
    Ok(values.iter().map(|v| v / total).collect())
}

/// Checks that two paired inputs have the same length.
fn check_same_len(
    left_name: &'static str,
    left: &[f64],
    right_name: &'static str,
    right: &[f64],
) -> Result<(), DriftError> {
    if left.len() != right.len() {
        return Err(DriftError::LengthMismatch {
            left_name,
            left: left.len(),
            right_name,
            right: right.len(),
        });
    }
    Ok(())
}

/// Checks that `points` (bin edges, quantiles) has at least two finite,
/// non-decreasing values.
fn check_sorted_points(what: &'static str, points: &[f64]) -> Result<(), DriftError> {
    if points.len() < 2 {
        return Err(DriftError::TooFewPoints {
            what,
            count: points.len(),
        });
    }
    check_finite(what, points)?;
    match points.windows(2).position(|w| w[0] > w[1]) {
        Some(index) => Err(DriftError::NotSorted {
            what,
            index,
            value: points[index],
            next: points[index + 1],
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_counts_true_flags() {
        assert_eq!(drifted_share(&[]), 0.0);
        assert_eq!(drifted_share(&[true, false, false, false]), 0.25);
        assert_eq!(drifted_share(&[true, true]), 1.0);
    }

    #[test]
    fn dataset_drifts_when_share_reaches_threshold() {
        let t = DEFAULT_DRIFT_SHARE_THRESHOLD;
        assert!(dataset_drifted(&[true, false], t));
        assert!(!dataset_drifted(&[true, false, false], t));
        assert!(dataset_drifted(&[true, true, false], t));
        assert!(!dataset_drifted(&[], 0.0));
    }

    #[test]
    fn error_messages_say_what_was_wrong() {
        let err = psi(&[], &[]).expect_err("empty");
        assert_eq!(err.to_string(), "expected is empty");
        let err = psi(&[1.0, 2.0], &[1.0]).expect_err("mismatch");
        assert_eq!(
            err.to_string(),
            "expected has 2 elements but actual has 1; they must match"
        );
        let err = psi(&[1.0, f64::NAN], &[1.0, 1.0]).expect_err("nan");
        assert_eq!(
            err.to_string(),
            "expected[1] is NaN; expected a finite number"
        );
        let err = jensen_shannon_distance(&[1.0, -0.5], &[1.0, 1.0]).expect_err("negative");
        assert_eq!(
            err.to_string(),
            "p[1] is -0.5; counts and proportions must be >= 0"
        );
        let err = psi(&[0.0, 0.0], &[1.0, 1.0]).expect_err("zero");
        assert_eq!(
            err.to_string(),
            "expected sums to zero; it cannot be normalised to proportions"
        );
        let err = histogram(&[1.0], &[0.0, 2.0, 1.0]).expect_err("unsorted");
        assert_eq!(
            err.to_string(),
            "edges must be non-decreasing, but [1] = 2 > [2] = 1"
        );
        let err = histogram(&[1.0], &[0.0]).expect_err("one edge");
        assert_eq!(err.to_string(), "edges has 1 points; at least 2 are needed");
        let err = ks_two_sample(&[1.0], &[]).expect_err("empty b");
        assert_eq!(err, DriftError::Empty { what: "b" });
        let err = ks_against_reference(&[0.0, 1.0], &[0.5], 0).expect_err("zero count");
        assert_eq!(err, DriftError::ZeroReferenceCount);
    }
}
