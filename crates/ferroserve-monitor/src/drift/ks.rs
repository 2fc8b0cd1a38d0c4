//! Kolmogorov–Smirnov statistics: two raw samples (as `scipy.stats.ks_2samp`)
//! and a live sample against a reference profile stored as quantiles.

use std::f64::consts::PI;

use super::{check_finite, check_sorted_points, DriftError};

/// Largest sample size for which [`ks_two_sample`] computes the exact
/// p-value, as `ks_2samp(method='auto')` (`max(n, m) <= 10000`).
pub const KS_EXACT_MAX_N: usize = 10_000;

/// A Kolmogorov–Smirnov statistic and its two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsResult {
    /// Largest absolute distance between the two CDFs, in `[0, 1]`.
    pub statistic: f64,
    /// Probability of a distance at least this large if both sides come from
    /// the same distribution.
    pub p_value: f64,
}

/// Two-sided two-sample Kolmogorov–Smirnov test of `a` against `b`, following
/// `scipy.stats.ks_2samp(a, b)` (default `method='auto'`, scipy 1.17).
///
/// The statistic is `D = max_x |F_a(x) - F_b(x)|` over the empirical CDFs
/// (`F(x)` = share of values `<= x`, so ties are handled as scipy does).
///
/// The p-value, with `n = a.len()`, `m = b.len()`:
/// - `max(n, m) <= 10000` ([`KS_EXACT_MAX_N`]): exact, as scipy's `'exact'`
///   method. `D` is first snapped to the lattice `h / lcm(n, m)` (scipy
///   reports that snapped value too), then `P(D_{n,m} >= D)` comes from
///   Hodges' lattice-path count: the closed form for `n == m`, otherwise the
///   "inside" recursion in the numerically stable form of Viehmann (2021).
///   Where rounding leaves that outside `[0, 1]` (it overshoots 1 by an ulp
///   for some `p` = 1), the asymptotic value below is used, as scipy does.
/// - otherwise: asymptotic, `p = K(sqrt(en) * D)` with `en = n*m / (n+m)`
///   and `K` the survival function of the limiting Kolmogorov distribution
///   (`scipy.stats.kstwobign.sf`). This differs from scipy, whose
///   `'asymp'` branch uses the finite-n distribution `kstwo.sf(D,
///   round(en))`; the two agree to about `1/sqrt(en)` relative, so on this
///   branch only the statistic matches scipy within 1e-6.
///
/// Both samples must be non-empty and finite.
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> Result<KsResult, DriftError> {
    check_finite("a", a)?;
    check_finite("b", b)?;
    let a = sorted(a);
    let b = sorted(b);
    let d = ecdf_distance(&a, &b);
    let (n1, n2) = (a.len() as u64, b.len() as u64);
    let mut statistic = d;
    if a.len().max(b.len()) <= KS_EXACT_MAX_N {
        let g = gcd(n1, n2);
        let lcm = (n1 / g) * n2;
        let h = (d * lcm as f64).round_ties_even() as u64;
        statistic = h as f64 / lcm as f64;
        if h == 0 {
            return Ok(KsResult {
                statistic,
                p_value: 1.0,
            });
        }
        let p = if n1 == n2 {
            prob_outside_square(n1, h)
        } else {
            prob_outside_inside_method(n1, n2, g, h)
        };
        if (0.0..=1.0).contains(&p) {
            return Ok(KsResult {
                statistic,
                p_value: p,
            });
        }
    }
    let en = (n1 * n2) as f64 / (n1 + n2) as f64;
    Ok(KsResult {
        statistic,
        p_value: kolmogorov_sf(en.sqrt() * statistic),
    })
}

/// Kolmogorov–Smirnov distance of a live `sample` from a reference
/// distribution known only by its quantiles.
///
/// `quantiles` are `K >= 2` non-decreasing values at the evenly spaced
/// probabilities `p_i = i / (K - 1)` (so the first is the reference minimum
/// and the last its maximum). The reference CDF `G` is 0 below `q_0`, 1 from
/// `q_{K-1}` on, and linear between consecutive quantiles:
/// `G(x) = p_i + (p_{i+1} - p_i) * (x - q_i) / (q_{i+1} - q_i)` for
/// `q_i <= x < q_{i+1}` (`numpy.interp`). Where quantiles repeat, `G` jumps
/// and takes the highest probability at the repeated value (right-continuous).
///
/// The statistic is `D = sup_x |F_n(x) - G(x)|` with `F_n` the empirical CDF
/// of the sample; as `F_n` is a step function and `G` piecewise linear, the
/// sup is reached at a sample value or quantile, from the left or the right.
/// The p-value is asymptotic: `K(sqrt(en) * D)` with `en = n*m / (n+m)`,
/// `n = sample.len()`, `m = reference_count` (the size of the sample the
/// quantiles were taken from) and `K` the limiting Kolmogorov survival
/// function (`scipy.stats.kstwobign.sf`).
pub fn ks_against_reference(
    quantiles: &[f64],
    sample: &[f64],
    reference_count: u64,
) -> Result<KsResult, DriftError> {
    check_sorted_points("quantiles", quantiles)?;
    check_finite("sample", sample)?;
    if reference_count == 0 {
        return Err(DriftError::ZeroReferenceCount);
    }
    let sample = sorted(sample);
    let n = sample.len() as f64;
    let last = quantiles.len() - 1;
    let step = 1.0 / last as f64;
    // Interpolated probability at x within [q[i-1], q[i]].
    let interp = |i: usize, x: f64| {
        let (q0, q1) = (quantiles[i - 1], quantiles[i]);
        let (p0, p1) = ((i - 1) as f64 * step, i as f64 * step);
        p0 + (p1 - p0) * (x - q0) / (q1 - q0)
    };
    // G(x): i = number of quantiles <= x.
    let cdf_at = |x: f64| match quantiles.partition_point(|&q| q <= x) {
        0 => 0.0,
        i if i > last => 1.0,
        i => interp(i, x),
    };
    // G(x-): i = number of quantiles < x.
    let cdf_before = |x: f64| match quantiles.partition_point(|&q| q < x) {
        0 => 0.0,
        i if i > last => 1.0,
        i => interp(i, x),
    };
    let mut statistic: f64 = 0.0;
    for &x in sample.iter().chain(quantiles) {
        let at = sample.partition_point(|&s| s <= x) as f64 / n;
        let before = sample.partition_point(|&s| s < x) as f64 / n;
        statistic = statistic
            .max((at - cdf_at(x)).abs())
            .max((before - cdf_before(x)).abs());
    }
    let m = reference_count as f64;
    let en = n * m / (n + m);
    Ok(KsResult {
        statistic,
        p_value: kolmogorov_sf(en.sqrt() * statistic),
    })
}

/// Copy of `values` in ascending order (values are finite, checked earlier).
fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// `max_x |F_a(x) - F_b(x)|` over sorted samples, evaluated at every value
/// of either sample with each CDF as `i / n` in floating point (as scipy).
fn ecdf_distance(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0, 0);
    let mut d: f64 = 0.0;
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) | (None, Some(&x)) => x,
            (None, None) => break,
        };
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n1 - j as f64 / n2).abs());
    }
    d
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `P(D_{n,n} >= h/n)` for two samples of equal size `n`, `1 <= h <= n`:
/// `2 * sum_k (-1)^(k-1) C(2n, n-kh) / C(2n, n)` in scipy's Horner form
/// (`_compute_prob_outside_square`), which avoids the cancellation.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as i64, h as i64);
    let mut p = 0.0;
    let mut k = n / h;
    while k >= 0 {
        let mut p1 = 1.0;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// `P(D_{m,n} >= h / lcm(m, n))`: one minus the share of lattice paths from
/// `(0, 0)` to `(m, n)` that stay strictly inside `|x/m - y/n| < h/lcm`,
/// computed column by column as the complement directly (Viehmann 2021;
/// scipy's `_compute_outer_prob_inside_method`). Returns NaN if the sliding
/// window ever left its buffer, which sends the caller to the asymptotic
/// value.
fn prob_outside_inside_method(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    let (mg, ng) = ((m / g) as f64, (n / g) as f64);
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h as f64 / mg).ceil() as i64).min(n + 1);
    let mut curlen = maxj - minj;
    let len = (2 * maxj + 2).min(n + 1) as usize;
    let mut col = vec![1.0; len];
    for v in col.iter_mut().take(maxj as usize) {
        *v = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = ((((ng * i as f64 - h as f64) / mg).floor() as i64) + 1).clamp(0, n);
        maxj = (((ng * i as f64 + h as f64) / mg).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            let Some(&prev) = col.get((jj + minj - lastminj) as usize) else {
                return f64::NAN;
            };
            val = (prev * i as f64 + val * j as f64) / (i + j) as f64;
            let Some(slot) = col.get_mut(jj as usize) else {
                return f64::NAN;
            };
            *slot = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let start = ((maxj - minj) as usize).min(len);
            let end = ((maxj - minj + lastlen - curlen) as usize).min(len);
            col[start..end].fill(1.0);
        }
    }
    col.get((maxj - minj - 1) as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// Survival function of the limiting Kolmogorov distribution,
/// `P(K > x) = 2 * sum_{k>=1} (-1)^(k-1) exp(-2 k^2 x^2)`
/// (`scipy.special.kolmogorov`, `scipy.stats.kstwobign.sf`). Below
/// `x = 0.82`, where that series converges slowly, it uses the equivalent
/// theta form of the CDF, `sqrt(2 pi)/x * sum_{k>=1} exp(-(2k-1)^2 pi^2 /
/// (8 x^2))`, as scipy does.
fn kolmogorov_sf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let mut sum = 0.0;
    if x < 0.82 {
        let scale = -PI * PI / (8.0 * x * x);
        for k in 1..=100 {
            let odd = (2 * k - 1) as f64;
            let term = (odd * odd * scale).exp();
            sum += term;
            if term <= f64::EPSILON * sum {
                break;
            }
        }
        let cdf = (2.0 * PI).sqrt() / x * sum;
        (1.0 - cdf).clamp(0.0, 1.0)
    } else {
        let mut sign = 1.0;
        for k in 1..=100 {
            let k = k as f64;
            let term = (-2.0 * k * k * x * x).exp();
            sum += sign * term;
            if term <= f64::EPSILON * sum.abs() {
                break;
            }
            sign = -sign;
        }
        (2.0 * sum).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_have_zero_statistic_and_p_one() {
        let a = [0.3, 1.2, -0.4, 2.2, 0.3];
        let r = ks_two_sample(&a, &a).expect("valid");
        assert_eq!(
            r,
            KsResult {
                statistic: 0.0,
                p_value: 1.0
            }
        );
    }

    #[test]
    fn statistic_is_symmetric() {
        let a = [0.1, 0.5, 0.9, 1.3, 2.0, 2.0];
        let b = [0.4, 1.1, 1.9, 2.5];
        let ab = ks_two_sample(&a, &b).expect("valid");
        let ba = ks_two_sample(&b, &a).expect("valid");
        assert_eq!(ab, ba);
    }

    #[test]
    fn disjoint_samples_have_statistic_one() {
        let r = ks_two_sample(&[1.0, 2.0, 3.0], &[4.0, 5.0]).expect("valid");
        assert_eq!(r.statistic, 1.0);
        // Exact: 2 of the C(5, 2) = 10 orderings are fully separated.
        assert!((r.p_value - 0.2).abs() < 1e-12);
    }

    #[test]
    fn exact_p_values_stay_near_unit_interval() {
        for n1 in 1..=25u64 {
            for n2 in 1..=25u64 {
                let g = gcd(n1, n2);
                let lcm = n1 / g * n2;
                for h in 1..=lcm {
                    let p = if n1 == n2 {
                        prob_outside_square(n1, h)
                    } else {
                        prob_outside_inside_method(n1, n2, g, h)
                    };
                    // Rounding can overshoot 1 by an ulp or two where p is 1;
                    // ks_two_sample then falls back to the asymptotic value.
                    assert!(
                        (-1e-12..=1.0 + 1e-12).contains(&p),
                        "n1={n1} n2={n2} h={h} p={p}"
                    );
                }
            }
        }
    }

    #[test]
    fn kolmogorov_sf_matches_known_values() {
        // scipy.special.kolmogorov at 0.5, 0.82, 1.0, 1.36, 2.0.
        let cases = [
            (0.5, 0.9639452436648751),
            (0.82, 0.5119717052984973),
            (1.0, 0.26999967167735456),
            (1.36, 0.049485876755377876),
            (2.0, 0.0006709252557796953),
        ];
        for (x, want) in cases {
            assert!((kolmogorov_sf(x) - want).abs() < 1e-12, "x={x}");
        }
        assert_eq!(kolmogorov_sf(0.0), 1.0);
        assert_eq!(kolmogorov_sf(0.01), 1.0);
    }

    #[test]
    fn sample_equal_to_reference_quantiles_is_close() {
        let quantiles: Vec<f64> = (0..=100).map(f64::from).collect();
        let sample: Vec<f64> = (0..100).map(|i| f64::from(i) + 0.5).collect();
        let r = ks_against_reference(&quantiles, &sample, 1000).expect("valid");
        assert!(r.statistic <= 0.01 + 1e-12, "{r:?}");
        assert!(r.p_value > 0.99, "{r:?}");
    }

    #[test]
    fn repeated_quantiles_make_a_jump() {
        // Half the reference mass sits at exactly 1.0.
        let quantiles = [0.0, 1.0, 1.0, 2.0];
        let r = ks_against_reference(&quantiles, &[1.0, 1.0], 10).expect("valid");
        // G(1-) = 1/3, G(1) = 2/3, F(1-) = 0, F(1) = 1: sup is 1/3.
        assert!((r.statistic - 1.0 / 3.0).abs() < 1e-15);
    }
}
