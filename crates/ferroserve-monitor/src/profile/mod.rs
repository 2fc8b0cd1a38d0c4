//! Reference profile of a model version: per-feature statistics of a
//! training sample (and of the model's predictions on it) that online
//! monitoring compares live traffic against.
//!
//! [`ProfileBuilder`] turns rows of [`Cell`]s into a [`ReferenceProfile`];
//! the registry stores it as JSON and [`ReferenceProfile::from_json`] reads
//! it back with validation. Nothing here does I/O.
//!
//! Definitions, fixed by `format_version` 1:
//! - numeric statistics are numpy's: `quantiles` is
//!   `np.quantile(x, np.linspace(0, 1, 101))` (default `'linear'` method),
//!   `bin_edges` is `np.histogram_bin_edges(x, bins=10)`, `std` is
//!   `np.std(x)` (population, `ddof = 0`); `bin_proportions` bins `x` with
//!   [`crate::drift::histogram`] on those edges, divided by `count`;
//! - NaN and ±infinity are nulls: they count in `nulls`, not in `count`;
//! - categories are sorted by count (descending), then value; beyond
//!   `max_categories` the rest are folded into one trailing
//!   [`OTHER_CATEGORY`] entry.

mod builder;
mod error;
mod stats;
#[cfg(test)]
mod tests;
mod validate;

use serde::{Deserialize, Serialize};

pub use builder::{ProfileBuilder, ProfileOptions};
pub use error::ProfileError;
pub use ferroserve_core::{Cell, ColumnSpec, FeatureKind};

/// Version of the JSON layout written by this module.
pub const FORMAT_VERSION: u32 = 1;

/// Number of quantiles of a numeric feature, at probabilities `i / 100`.
pub const QUANTILE_COUNT: usize = 101;

/// Default number of equal-width histogram bins of a numeric feature.
pub const DEFAULT_BINS: usize = 10;

/// Default number of categories kept before folding into [`OTHER_CATEGORY`].
pub const DEFAULT_MAX_CATEGORIES: usize = 100;

/// Category that holds the values beyond `max_categories` (and any real
/// value spelt the same way).
pub const OTHER_CATEGORY: &str = "__other__";

/// Statistics of a sample, per feature, stored with a model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceProfile {
    /// Layout version; [`FORMAT_VERSION`] for profiles written by this code.
    pub format_version: u32,
    /// Number of rows of the sample.
    pub rows: u64,
    /// One profile per input feature, in the sample's column order.
    pub features: Vec<FeatureProfile>,
    /// The model's output on the sample, profiled like a feature; absent
    /// when the profile was built without a model.
    #[serde(default)]
    pub prediction: Option<FeatureProfile>,
}

impl ReferenceProfile {
    /// Reads and validates a stored profile; the error names the feature
    /// and field at fault.
    ///
    /// Numbers read back from JSON text may differ from those written by
    /// an ulp (serde_json's default float parsing), far below anything the
    /// drift statistics can see.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, ProfileError> {
        let mut profile: ReferenceProfile =
            serde_path_to_error::deserialize(value).map_err(|e| ProfileError::Json {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        profile.validate()?;
        for feature in profile.features.iter_mut().chain(&mut profile.prediction) {
            feature.make_monotone();
        }
        Ok(profile)
    }

    /// The JSON form that [`ReferenceProfile::from_json`] reads.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a profile has string keys and finite numbers")
    }

    /// The input feature called `name`.
    pub fn feature(&self, name: &str) -> Option<&FeatureProfile> {
        self.features.iter().find(|f| f.name == name)
    }
}

/// Statistics of one feature (or of the prediction) over the sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureProfile {
    /// Column name.
    pub name: String,
    /// Number of non-null values.
    pub count: u64,
    /// Number of nulls (missing cells, NaN and infinities); `count + nulls`
    /// is the profile's `rows`.
    pub nulls: u64,
    /// `nulls / rows`.
    pub null_rate: f64,
    /// Kind-specific statistics, tagged by `"kind"`.
    pub summary: FeatureSummary,
}

impl FeatureProfile {
    /// Numeric or categorical.
    pub fn kind(&self) -> FeatureKind {
        match self.summary {
            FeatureSummary::Numeric(_) => FeatureKind::Numeric,
            FeatureSummary::Categorical(_) => FeatureKind::Categorical,
        }
    }

    /// The numeric statistics, if the feature is numeric.
    pub fn numeric(&self) -> Option<&NumericSummary> {
        match &self.summary {
            FeatureSummary::Numeric(s) => Some(s),
            FeatureSummary::Categorical(_) => None,
        }
    }

    /// The category counts, if the feature is categorical.
    pub fn categorical(&self) -> Option<&CategoricalSummary> {
        match &self.summary {
            FeatureSummary::Categorical(s) => Some(s),
            FeatureSummary::Numeric(_) => None,
        }
    }
}

/// Kind-specific statistics of a feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureSummary {
    /// Statistics of a numeric feature.
    Numeric(NumericSummary),
    /// Frequencies of a categorical feature.
    Categorical(CategoricalSummary),
}

/// Statistics of the non-null values of a numeric feature (numpy's
/// definitions; see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericSummary {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Population standard deviation (`ddof = 0`, `np.std`).
    pub std: f64,
    /// [`QUANTILE_COUNT`] values at probabilities `i / 100`
    /// (`np.quantile(x, np.linspace(0, 1, 101))`); the first is `min`, the
    /// last `max`.
    pub quantiles: Vec<f64>,
    /// Equal-width bin edges (`np.histogram_bin_edges(x, bins)`), one more
    /// than the bins; they span `[min - 0.5, min + 0.5]` when all values
    /// are equal, as in numpy.
    pub bin_edges: Vec<f64>,
    /// Share of the values in each bin of `bin_edges` (sums to 1).
    pub bin_proportions: Vec<f64>,
}

/// Frequencies of the non-null values of a categorical feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoricalSummary {
    /// Number of distinct values seen, before folding.
    pub distinct: u64,
    /// Counts by value, most frequent first (ties by value), with at most
    /// one trailing [`OTHER_CATEGORY`] entry; they sum to `count`.
    pub categories: Vec<CategoryCount>,
}

/// How often one category occurred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryCount {
    /// The category's text.
    pub value: String,
    /// Number of occurrences.
    pub count: u64,
}
