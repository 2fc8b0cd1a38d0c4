//! Numeric and categorical summaries of one column, computed the way numpy
//! does (quantiles, bin edges, moments) so that profiles agree with offline
//! tooling.

use std::collections::HashMap;

use super::{CategoricalSummary, CategoryCount, NumericSummary, OTHER_CATEGORY, QUANTILE_COUNT};
use crate::drift::histogram;

/// Summary of the finite `values` of a numeric column (`values` non-empty).
///
/// Quantiles are `np.quantile(x, np.linspace(0, 1, 101))`, edges are
/// `np.histogram_bin_edges(x, bins)`, `std` is `np.std(x)` (population,
/// `ddof = 0`).
pub(super) fn numeric_summary(values: &[f64], bins: usize) -> NumericSummary {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let min = sorted[0];
    let max = sorted[sorted.len() - 1];
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let bin_edges = histogram_bin_edges(min, max, bins);
    let counts = histogram(values, &bin_edges)
        .expect("edges from histogram_bin_edges are finite and sorted, values are finite");
    NumericSummary {
        min,
        max,
        mean,
        std: variance.sqrt(),
        quantiles: linspace(0.0, 1.0, QUANTILE_COUNT)
            .into_iter()
            .map(|p| quantile_sorted(&sorted, p))
            .collect(),
        bin_edges,
        bin_proportions: counts.iter().map(|&c| c as f64 / n).collect(),
    }
}

/// `np.linspace(start, stop, num)` with `num >= 2`, bit for bit: `i * step +
/// start` with the last point set to `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    let mut points: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    points[num - 1] = stop;
    points
}

/// `np.histogram_bin_edges(x, bins)` for data spanning `[min, max]`: `bins`
/// equal-width bins, widened to `[min - 0.5, max + 0.5]` when `min == max`.
fn histogram_bin_edges(min: f64, max: f64, bins: usize) -> Vec<f64> {
    let (first, last) = if min == max {
        (min - 0.5, max + 0.5)
    } else {
        (min, max)
    };
    linspace(first, last, bins + 1)
}

/// `np.quantile(sorted, p)` with the default `'linear'` method (Hyndman &
/// Fan type 7), including numpy's two-sided lerp that keeps the result
/// exact at either end.
fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let last = sorted.len() - 1;
    let virtual_index = last as f64 * p;
    let below = (virtual_index.floor() as usize).min(last);
    let above = (below + 1).min(last);
    let gamma = virtual_index - below as f64;
    let (a, b) = (sorted[below], sorted[above]);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// Frequencies of `values`, most frequent first (ties by value), keeping
/// `max_categories` of them and folding the rest, plus any real value spelt
/// [`OTHER_CATEGORY`], into one trailing [`OTHER_CATEGORY`] entry.
pub(super) fn categorical_summary(values: &[String], max_categories: usize) -> CategoricalSummary {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for v in values {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    let distinct = counts.len() as u64;
    let mut other = counts.remove(OTHER_CATEGORY).unwrap_or(0);
    let mut categories: Vec<CategoryCount> = counts
        .into_iter()
        .map(|(value, count)| CategoryCount {
            value: value.to_owned(),
            count,
        })
        .collect();
    categories.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    if categories.len() > max_categories {
        other += categories
            .drain(max_categories..)
            .map(|c| c.count)
            .sum::<u64>();
    }
    if other > 0 {
        categories.push(CategoryCount {
            value: OTHER_CATEGORY.to_owned(),
            count: other,
        });
    }
    CategoricalSummary {
        categories,
        distinct,
    }
}
