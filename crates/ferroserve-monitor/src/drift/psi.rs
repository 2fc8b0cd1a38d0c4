//! Population Stability Index over binned data, and the binning itself.

use super::{check_finite, check_same_len, check_sorted_points, normalise, DriftError};

/// Proportion that stands in for an empty bin before the PSI sum, as
/// Evidently's `psi` stattest does (`0` is replaced by `0.0001`), so that
/// `ln(a / e)` stays finite.
pub const PSI_EMPTY_BIN_PROPORTION: f64 = 0.0001;

/// PSI at and above which the shift counts as moderate.
pub const PSI_MODERATE: f64 = 0.1;

/// PSI above which the shift counts as significant.
pub const PSI_SIGNIFICANT: f64 = 0.25;

/// The usual reading of a PSI value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PsiLevel {
    /// PSI < 0.1: no meaningful shift.
    Stable,
    /// 0.1 <= PSI <= 0.25: some shift, worth watching.
    Moderate,
    /// PSI > 0.25 (or NaN): the distribution changed.
    Significant,
}

impl PsiLevel {
    /// Level of a PSI value: `< 0.1` stable, `0.1..=0.25` moderate,
    /// `> 0.25` significant. NaN reads as significant rather than stable.
    pub fn from_psi(value: f64) -> Self {
        if value < PSI_MODERATE {
            PsiLevel::Stable
        } else if value <= PSI_SIGNIFICANT {
            PsiLevel::Moderate
        } else {
            PsiLevel::Significant
        }
    }
}

/// Counts of `values` per bin of `edges` (`edges.len() - 1` bins).
///
/// Bins follow `numpy.histogram`: bin `i` is `[edges[i], edges[i + 1])`,
/// except the last, which also holds its right edge. Unlike numpy, values
/// outside `[edges[0], edges[last]]` are not dropped but counted into the
/// first or last bin (numpy on `clip(values, edges[0], edges[last])`): live
/// data beyond the reference range is exactly the drift PSI must see.
/// Infinite values are clipped the same way; NaN is an error. Edges must be
/// finite and non-decreasing (repeated edges make empty bins, as in numpy).
pub fn histogram(values: &[f64], edges: &[f64]) -> Result<Vec<u64>, DriftError> {
    check_sorted_points("edges", edges)?;
    if let Some(index) = values.iter().position(|v| v.is_nan()) {
        return Err(DriftError::NotFinite {
            what: "values",
            index,
            value: values[index],
        });
    }
    let bins = edges.len() - 1;
    let mut counts = vec![0u64; bins];
    for &v in values {
        // Index of the last edge <= v, i.e. numpy's searchsorted(side='right') - 1.
        let bin = edges
            .partition_point(|&e| e <= v)
            .saturating_sub(1)
            .min(bins - 1);
        counts[bin] += 1;
    }
    Ok(counts)
}

/// Population Stability Index between the `expected` (reference) and
/// `actual` (live) distributions over the same bins.
///
/// Both inputs are counts or proportions per bin; each is normalised by its
/// own sum to proportions `e_i`, `a_i`. Proportions that are exactly 0 are
/// replaced by [`PSI_EMPTY_BIN_PROPORTION`] (Evidently's `psi` stattest),
/// then
///
/// `PSI = sum_i (e_i - a_i) * ln(e_i / a_i)`
///
/// which is symmetric in the two inputs and 0 when they are equal. Read it
/// with [`PsiLevel::from_psi`].
pub fn psi(expected: &[f64], actual: &[f64]) -> Result<f64, DriftError> {
    check_finite("expected", expected)?;
    check_finite("actual", actual)?;
    check_same_len("expected", expected, "actual", actual)?;
    let expected = normalise("expected", expected)?;
    let actual = normalise("actual", actual)?;
    let floor = |p: f64| {
        if p == 0.0 {
            PSI_EMPTY_BIN_PROPORTION
        } else {
            p
        }
    };
    Ok(expected
        .iter()
        .zip(&actual)
        .map(|(&e, &a)| {
            let (e, a) = (floor(e), floor(a));
            (e - a) * (e / a).ln()
        })
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_usual_thresholds() {
        assert_eq!(PsiLevel::from_psi(0.0), PsiLevel::Stable);
        assert_eq!(PsiLevel::from_psi(0.099), PsiLevel::Stable);
        assert_eq!(PsiLevel::from_psi(0.1), PsiLevel::Moderate);
        assert_eq!(PsiLevel::from_psi(0.25), PsiLevel::Moderate);
        assert_eq!(PsiLevel::from_psi(0.2501), PsiLevel::Significant);
        assert_eq!(PsiLevel::from_psi(f64::NAN), PsiLevel::Significant);
    }

    #[test]
    fn identical_distributions_have_zero_psi() {
        let counts = [3.0, 0.0, 7.0, 10.0];
        assert_eq!(psi(&counts, &counts).expect("valid"), 0.0);
        // Counts and the proportions they normalise to are the same input.
        let props = [0.15, 0.0, 0.35, 0.5];
        assert!(psi(&counts, &props).expect("valid").abs() < 1e-15);
    }

    #[test]
    fn psi_is_symmetric() {
        let e = [10.0, 20.0, 30.0, 0.0];
        let a = [12.0, 18.0, 25.0, 5.0];
        let forward = psi(&e, &a).expect("valid");
        let backward = psi(&a, &e).expect("valid");
        assert!((forward - backward).abs() < 1e-15);
        assert!(forward > 0.0);
    }

    #[test]
    fn histogram_clips_out_of_range_and_closes_last_bin() {
        let counts = histogram(
            &[-1.0, 0.0, 0.5, 1.0, 2.0, 2.0, 9.0, f64::INFINITY],
            &[0.0, 1.0, 2.0],
        )
        .expect("valid");
        assert_eq!(counts, vec![3, 5]);
        let counts = histogram(&[1.0, 1.0, 1.5], &[0.0, 1.0, 1.0, 2.0]).expect("valid");
        assert_eq!(counts, vec![0, 0, 3]);
        assert!(histogram(&[f64::NAN], &[0.0, 1.0]).is_err());
        assert_eq!(histogram(&[], &[0.0, 1.0]).expect("valid"), vec![0]);
    }
}
