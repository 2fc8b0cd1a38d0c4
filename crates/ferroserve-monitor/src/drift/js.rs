//! Jensen–Shannon distance between two categorical distributions.

use super::{check_finite, check_same_len, normalise, DriftError};

/// Jensen–Shannon distance between `p` and `q`, as
/// `scipy.spatial.distance.jensenshannon(p, q)` with its default natural log.
///
/// Both are counts or probabilities per category (same order); each is
/// normalised by its sum. With `m = (p + q) / 2`,
///
/// `JS(p, q) = sqrt((KL(p || m) + KL(q || m)) / 2)`
///
/// where `KL(x || y) = sum_i x_i ln(x_i / y_i)` and terms with `x_i = 0`
/// are 0. The distance is symmetric, 0 for equal distributions and at most
/// `sqrt(ln 2)` for disjoint ones.
pub fn jensen_shannon_distance(p: &[f64], q: &[f64]) -> Result<f64, DriftError> {
    check_finite("p", p)?;
    check_finite("q", q)?;
    check_same_len("p", p, "q", q)?;
    let p = normalise("p", p)?;
    let q = normalise("q", q)?;
    let (mut left, mut right) = (0.0, 0.0);
    for (&pi, &qi) in p.iter().zip(&q) {
        let mi = (pi + qi) / 2.0;
        left += rel_entr(pi, mi);
        right += rel_entr(qi, mi);
    }
    // Rounding can leave a tiny negative sum where scipy would return NaN.
    Ok(((left + right) / 2.0).max(0.0).sqrt())
}

/// `scipy.special.rel_entr` for `x, y >= 0` where `y = 0` implies `x = 0`
/// (always so for `y` the mean of `x` and another proportion).
fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 {
        x * (x / y).ln()
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_distributions_have_zero_distance() {
        let p = [1.0, 0.0, 3.0];
        assert_eq!(jensen_shannon_distance(&p, &p).expect("valid"), 0.0);
        assert_eq!(
            jensen_shannon_distance(&p, &[0.25, 0.0, 0.75]).expect("valid"),
            0.0
        );
    }

    #[test]
    fn distance_is_symmetric_and_bounded() {
        let p = [0.2, 0.5, 0.3];
        let q = [0.6, 0.1, 0.3];
        let forward = jensen_shannon_distance(&p, &q).expect("valid");
        let backward = jensen_shannon_distance(&q, &p).expect("valid");
        assert!((forward - backward).abs() < 1e-15);
        let disjoint = jensen_shannon_distance(&[1.0, 0.0], &[0.0, 1.0]).expect("valid");
        assert!((disjoint - std::f64::consts::LN_2.sqrt()).abs() < 1e-15);
    }
}
