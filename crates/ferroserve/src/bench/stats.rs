//! Welch's two-sample t-test (unequal variances) and the confidence
//! interval of the difference of two means; only the t distribution comes
//! from `statrs`.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Mean, sample variance (n − 1 denominator) and size of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Mean.
    pub mean: f64,
    /// Sample variance.
    pub variance: f64,
    /// Observations.
    pub n: f64,
}

impl Summary {
    /// Summary of `values` (at least one).
    pub fn of(values: &[f64]) -> Summary {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let variance = if values.len() > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Summary { mean, variance, n }
    }
}

/// Result of Welch's test of mean(a) − mean(b).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    /// mean(a) − mean(b).
    pub difference: f64,
    /// t statistic.
    pub statistic: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Lower end of the confidence interval of the difference.
    pub ci_low: f64,
    /// Upper end of the confidence interval of the difference.
    pub ci_high: f64,
}

/// Welch's test of mean(a) − mean(b) with a `confidence` interval (e.g.
/// 0.95); `None` when a side has fewer than two observations. When neither
/// side varies the difference is certain: p is 0 (or 1 when the means are
/// equal) and the interval is the difference itself.
pub fn welch(a: &Summary, b: &Summary, confidence: f64) -> Option<Welch> {
    if a.n < 2.0 || b.n < 2.0 {
        return None;
    }
    let (va, vb) = (a.variance / a.n, b.variance / b.n);
    let se = (va + vb).sqrt();
    let difference = a.mean - b.mean;
    if se == 0.0 {
        let p_value = if difference == 0.0 { 1.0 } else { 0.0 };
        return Some(Welch {
            difference,
            statistic: difference.signum() * f64::INFINITY,
            df: a.n + b.n - 2.0,
            p_value,
            ci_low: difference,
            ci_high: difference,
        });
    }
    let statistic = difference / se;
    let df = (va + vb).powi(2) / (va.powi(2) / (a.n - 1.0) + vb.powi(2) / (b.n - 1.0));
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    let p_value = (2.0 * t.sf(statistic.abs())).min(1.0);
    let half = t.inverse_cdf(0.5 + confidence / 2.0) * se;
    Some(Welch {
        difference,
        statistic,
        df,
        p_value,
        ci_low: difference - half,
        ci_high: difference + half,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64) {
        let tolerance = 1e-9 * want.abs().max(1e-300);
        assert!(
            (got - want).abs() <= tolerance,
            "got {got:e}, want {want:e} (relative error {:e})",
            ((got - want) / want).abs()
        );
    }

    fn check(a: &[f64], b: &[f64], want: [f64; 5]) {
        let r = welch(&Summary::of(a), &Summary::of(b), 0.95).unwrap();
        let [statistic, p_value, df, ci_low, ci_high] = want;
        close(r.statistic, statistic);
        close(r.p_value, p_value);
        close(r.df, df);
        close(r.ci_low, ci_low);
        close(r.ci_high, ci_high);
    }

    // Expected values from scipy 1.17.1:
    //
    //     from scipy import stats
    //     r = stats.ttest_ind(a, b, equal_var=False)
    //     ci = r.confidence_interval(0.95)
    //     print(r.statistic, r.pvalue, r.df, ci.low, ci.high)
    #[test]
    fn shifted_means_match_scipy() {
        check(
            &[12.1, 11.8, 12.5, 12.0, 11.9],
            &[12.9, 13.1, 12.7, 13.4],
            [
                -5.024156689483217,
                0.0021598199512644525,
                6.216591509632354,
                -1.4310424774598505,
                -0.49895752254015274,
            ],
        );
    }

    // Same scipy snippet as above.
    #[test]
    fn unequal_variances_match_scipy() {
        check(
            &[1.2, 3.4, 2.2, 5.1, 0.9, 2.8, 3.3],
            &[2.0, 2.1, 1.9, 2.2, 2.05, 1.95],
            [
                1.224881584555088,
                0.2659519108457208,
                6.079231486831589,
                -0.6609186192166683,
                1.9942519525500013,
            ],
        );
    }

    // Same scipy snippet as above.
    #[test]
    fn overlapping_samples_match_scipy() {
        check(
            &[100.0, 102.0, 98.0, 101.0],
            &[99.0, 103.0, 100.0, 101.0, 97.0],
            [
                0.1901172751573434,
                0.8546140471715592,
                6.9986454453098546,
                -2.859550446013242,
                3.359550446013242,
            ],
        );
    }

    // Request-level summaries (mean, stdev, count), as compare uses for a
    // single run per side:
    //
    //     r = stats.ttest_ind_from_stats(1520.0, 310.0, 20000,
    //                                    1534.0, 295.0, 18000, equal_var=False)
    //     print(r.statistic, r.pvalue)
    #[test]
    fn summaries_match_scipy() {
        let a = Summary {
            mean: 1520.0,
            variance: 310.0f64.powi(2),
            n: 20000.0,
        };
        let b = Summary {
            mean: 1534.0,
            variance: 295.0f64.powi(2),
            n: 18000.0,
        };
        let r = welch(&a, &b, 0.95).unwrap();
        close(r.statistic, -4.509161351291449);
        close(r.p_value, 6.5279358630182484e-06);
    }

    #[test]
    fn degenerate_samples() {
        assert!(welch(&Summary::of(&[1.0]), &Summary::of(&[1.0, 2.0]), 0.95).is_none());
        let same = welch(&Summary::of(&[3.0, 3.0]), &Summary::of(&[3.0, 3.0]), 0.95).unwrap();
        assert_eq!((same.p_value, same.ci_low, same.ci_high), (1.0, 0.0, 0.0));
        let apart = welch(&Summary::of(&[3.0, 3.0]), &Summary::of(&[4.0, 4.0]), 0.95).unwrap();
        assert_eq!(apart.p_value, 0.0);
        assert_eq!(apart.difference, -1.0);
    }
}
