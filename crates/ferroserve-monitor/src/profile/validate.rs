//! Invariants a stored [`ReferenceProfile`] must hold before monitoring
//! trusts it.

use std::collections::HashSet;

use super::{
    CategoricalSummary, FeatureProfile, FeatureSummary, NumericSummary, ProfileError,
    ReferenceProfile, FORMAT_VERSION, OTHER_CATEGORY, QUANTILE_COUNT,
};

/// Largest decrease between consecutive quantiles or edges that still
/// reads as sorted, relative to their magnitude: serde_json's default float
/// parser may land one ulp off, which can swap values that were one ulp
/// apart when written.
const ORDER_SLACK_ULPS: f64 = 4.0;

/// Allowed gap between `sum(bin_proportions)` and 1, and between
/// `null_rate` and `nulls / rows` (JSON float parsing may be off by an ulp).
const SUM_TOLERANCE: f64 = 1e-6;

impl ReferenceProfile {
    /// Checks every invariant of a profile; the error names the feature and
    /// field at fault. Quantiles and edges may decrease by a few ulps (JSON
    /// float parsing); [`ReferenceProfile::from_json`] then smooths them.
    pub fn validate(&self) -> Result<(), ProfileError> {
        if self.format_version != FORMAT_VERSION {
            return Err(ProfileError::UnsupportedVersion {
                found: self.format_version,
                expected: FORMAT_VERSION,
            });
        }
        let top = |field, reason: String| invalid("profile".to_owned(), field, reason);
        if self.rows == 0 {
            return Err(top(
                "rows",
                "is 0; a profile describes at least one row".into(),
            ));
        }
        if self.features.is_empty() {
            return Err(top("features", "is empty".into()));
        }
        let mut seen = HashSet::new();
        for feature in &self.features {
            if !seen.insert(feature.name.as_str()) {
                return Err(top(
                    "features",
                    format!("feature `{}` appears more than once", feature.name),
                ));
            }
            feature.validate(format!("feature `{}`", feature.name), self.rows)?;
        }
        if let Some(prediction) = &self.prediction {
            prediction.validate(format!("prediction `{}`", prediction.name), self.rows)?;
        }
        Ok(())
    }
}

fn invalid(location: String, field: &'static str, reason: String) -> ProfileError {
    ProfileError::Invalid {
        location,
        field,
        reason,
    }
}

impl FeatureProfile {
    fn validate(&self, location: String, rows: u64) -> Result<(), ProfileError> {
        let fail = |field, reason: String| Err(invalid(location.clone(), field, reason));
        if self.name.is_empty() {
            return fail("name", "is empty".into());
        }
        if self.count == 0 {
            return fail(
                "count",
                "is 0; a feature needs at least one non-null value".into(),
            );
        }
        if self.count.checked_add(self.nulls) != Some(rows) {
            return fail(
                "nulls",
                format!(
                    "count {} + nulls {} must equal the profile's rows {rows}",
                    self.count, self.nulls
                ),
            );
        }
        let rate = self.nulls as f64 / rows as f64;
        let off = (self.null_rate - rate).abs();
        if off.is_nan() || off > SUM_TOLERANCE {
            return fail(
                "null_rate",
                format!("is {}; nulls / rows is {rate}", self.null_rate),
            );
        }
        match &self.summary {
            FeatureSummary::Numeric(s) => s.validate(&location),
            FeatureSummary::Categorical(s) => s.validate(&location, self.count),
        }
    }
}

impl NumericSummary {
    fn validate(&self, location: &str) -> Result<(), ProfileError> {
        let fail = |field, reason: String| Err(invalid(location.to_owned(), field, reason));
        for (field, value) in [
            ("min", self.min),
            ("max", self.max),
            ("mean", self.mean),
            ("std", self.std),
        ] {
            if !value.is_finite() {
                return fail(field, format!("is {value}; expected a finite number"));
            }
        }
        if self.min > self.max {
            return fail("min", format!("{} is above max {}", self.min, self.max));
        }
        if self.std < 0.0 {
            return fail("std", format!("is {}; must be >= 0", self.std));
        }
        if self.quantiles.len() != QUANTILE_COUNT {
            return fail(
                "quantiles",
                format!(
                    "has {} values; expected {QUANTILE_COUNT} (probabilities i/100)",
                    self.quantiles.len()
                ),
            );
        }
        check_sorted(location, "quantiles", &self.quantiles)?;
        if self.bin_edges.len() < 2 {
            return fail(
                "bin_edges",
                format!("has {} values; at least 2 are needed", self.bin_edges.len()),
            );
        }
        check_sorted(location, "bin_edges", &self.bin_edges)?;
        let bins = self.bin_edges.len() - 1;
        if self.bin_proportions.len() != bins {
            return fail(
                "bin_proportions",
                format!(
                    "has {} values; expected {bins} (one per bin of bin_edges)",
                    self.bin_proportions.len()
                ),
            );
        }
        if let Some((i, p)) = self
            .bin_proportions
            .iter()
            .enumerate()
            .find(|(_, p)| !(0.0..=1.0).contains(*p))
        {
            return fail("bin_proportions", format!("[{i}] is {p}; expected 0..=1"));
        }
        let sum: f64 = self.bin_proportions.iter().sum();
        if (sum - 1.0).abs() > SUM_TOLERANCE {
            return fail("bin_proportions", format!("sum to {sum}; expected 1"));
        }
        Ok(())
    }
}

/// Checks that `values` are finite and non-decreasing.
fn check_sorted(location: &str, field: &'static str, values: &[f64]) -> Result<(), ProfileError> {
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(invalid(
            location.to_owned(),
            field,
            format!("[{i}] is {v}; expected a finite number"),
        ));
    }
    let out_of_order =
        |w: &[f64]| w[0] - w[1] > ORDER_SLACK_ULPS * f64::EPSILON * w[0].abs().max(w[1].abs());
    if let Some(i) = values.windows(2).position(out_of_order) {
        return Err(invalid(
            location.to_owned(),
            field,
            format!(
                "must be non-decreasing, but [{i}] = {} > [{}] = {}",
                values[i],
                i + 1,
                values[i + 1]
            ),
        ));
    }
    Ok(())
}

/// Raises each value to at least its predecessor, undoing the ulp-sized
/// inversions that [`check_sorted`] lets through so that the drift
/// statistics, which require sorted input, accept them.
fn make_monotone(values: &mut [f64]) {
    for i in 1..values.len() {
        values[i] = values[i].max(values[i - 1]);
    }
}

impl FeatureProfile {
    /// Makes quantiles and bin edges exactly non-decreasing (after
    /// validation, which bounds the fix to a few ulps).
    pub(super) fn make_monotone(&mut self) {
        if let FeatureSummary::Numeric(s) = &mut self.summary {
            make_monotone(&mut s.quantiles);
            make_monotone(&mut s.bin_edges);
        }
    }
}

impl CategoricalSummary {
    fn validate(&self, location: &str, count: u64) -> Result<(), ProfileError> {
        let fail = |reason: String| Err(invalid(location.to_owned(), "categories", reason));
        if self.categories.is_empty() {
            return fail("is empty".into());
        }
        let mut seen = HashSet::new();
        let mut total: u64 = 0;
        for (i, c) in self.categories.iter().enumerate() {
            if c.count == 0 {
                return fail(format!("[{i}] `{}` has count 0", c.value));
            }
            if !seen.insert(c.value.as_str()) {
                return fail(format!("[{i}] `{}` appears more than once", c.value));
            }
            if c.value == OTHER_CATEGORY && i + 1 != self.categories.len() {
                return fail(format!("[{i}] `{OTHER_CATEGORY}` must be the last entry"));
            }
            total = total.saturating_add(c.count);
        }
        if total != count {
            return fail(format!(
                "counts sum to {total}; expected the feature's count {count}"
            ));
        }
        if (self.distinct as usize)
            < self.categories.len() - usize::from(seen.contains(OTHER_CATEGORY))
        {
            return Err(invalid(
                location.to_owned(),
                "distinct",
                format!("is {}; fewer than the categories listed", self.distinct),
            ));
        }
        Ok(())
    }
}
