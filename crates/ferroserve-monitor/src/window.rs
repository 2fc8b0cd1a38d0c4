//! Windows of live values and their drift against the reference: the
//! reference prepared once per version ([`Baseline`]), the values of the
//! open window ([`Window`]), and the statistics of a closed one
//! ([`WindowReport`]).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::drift::{
    dataset_drifted, drifted_share, histogram, jensen_shannon_distance, ks_against_reference, psi,
    PsiLevel,
};
use super::features::{number_label, Value};
use super::policy::MonitorPolicy;
use super::profile::{FeatureKind, FeatureProfile, FeatureSummary, ReferenceProfile};

/// The reference side of one feature, ready to compare windows with.
#[derive(Debug, Clone)]
enum Reference {
    Numeric {
        edges: Vec<f64>,
        proportions: Vec<f64>,
        quantiles: Vec<f64>,
        count: u64,
    },
    Categorical {
        /// The reference's categories, in bucket order.
        names: Vec<String>,
        /// Category → bucket; values not listed go to the last bucket.
        index: HashMap<String, usize>,
        /// Reference counts per bucket, the unseen bucket last (0).
        counts: Vec<f64>,
    },
}

impl Reference {
    fn new(feature: &FeatureProfile) -> Self {
        match &feature.summary {
            FeatureSummary::Numeric(n) => Reference::Numeric {
                edges: n.bin_edges.clone(),
                proportions: n.bin_proportions.clone(),
                quantiles: n.quantiles.clone(),
                count: feature.count.saturating_sub(feature.nulls),
            },
            FeatureSummary::Categorical(c) => {
                let index = c
                    .categories
                    .iter()
                    .enumerate()
                    .map(|(i, category)| (category.value.clone(), i))
                    .collect();
                let names = c.categories.iter().map(|c| c.value.clone()).collect();
                let mut counts: Vec<f64> = c.categories.iter().map(|c| c.count as f64).collect();
                // Categories the reference never saw share one bucket.
                counts.push(0.0);
                Reference::Categorical {
                    names,
                    index,
                    counts,
                }
            }
        }
    }

    fn empty_column(&self) -> Column {
        match self {
            Reference::Numeric { .. } => Column::Numeric(Vec::new()),
            Reference::Categorical { counts, .. } => Column::Categorical(vec![0; counts.len()]),
        }
    }
}

/// A version's reference profile, prepared for comparisons: one entry per
/// feature in profile order, plus the prediction when profiled.
#[derive(Debug, Clone)]
pub(crate) struct Baseline {
    names: Vec<String>,
    features: Vec<Reference>,
    prediction: Option<(String, Reference)>,
}

impl Baseline {
    pub(crate) fn new(profile: &ReferenceProfile) -> Self {
        Baseline {
            names: profile.features.iter().map(|f| f.name.clone()).collect(),
            features: profile.features.iter().map(Reference::new).collect(),
            prediction: profile
                .prediction
                .as_ref()
                .map(|p| (p.name.clone(), Reference::new(p))),
        }
    }
}

/// Live values of one feature in the open window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Column {
    Numeric(Vec<f64>),
    /// Counts per reference bucket.
    Categorical(Vec<u64>),
}

impl Column {
    fn push(&mut self, reference: &Reference, value: Value<'_>) -> bool {
        match (self, reference) {
            (_, _) if value == Value::Null => return false,
            (Column::Numeric(values), _) => match value {
                Value::Number(v) => values.push(v),
                // A string in a numeric feature is a contract breach, not a value.
                _ => return false,
            },
            (Column::Categorical(counts), Reference::Categorical { index, .. }) => {
                let label = match value {
                    Value::Number(v) => number_label(v),
                    Value::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    Value::Null => return false,
                };
                let bucket = index.get(&label).copied().unwrap_or(counts.len() - 1);
                counts[bucket] += 1;
            }
            (Column::Categorical(_), Reference::Numeric { .. }) => return false,
        }
        true
    }

    fn len(&self) -> usize {
        match self {
            Column::Numeric(values) => values.len(),
            Column::Categorical(counts) => counts.iter().sum::<u64>() as usize,
        }
    }
}

/// The values of one feature (or the prediction) within a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Slot {
    column: Column,
    nulls: u64,
}

impl Slot {
    fn absorb(&mut self, other: Slot) -> bool {
        self.nulls += other.nulls;
        match (&mut self.column, other.column) {
            (Column::Numeric(mine), Column::Numeric(theirs)) => mine.extend(theirs),
            (Column::Categorical(mine), Column::Categorical(theirs))
                if mine.len() == theirs.len() =>
            {
                for (m, t) in mine.iter_mut().zip(theirs) {
                    *m += t;
                }
            }
            _ => return false,
        }
        true
    }
}

/// The open window of a version; serialized, a replica's part of the
/// service's window, which [`Window::absorb`] adds to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Window {
    /// Rows observed.
    pub(crate) rows: usize,
    features: Vec<Slot>,
    prediction: Option<Slot>,
}

impl Window {
    pub(crate) fn new(baseline: &Baseline) -> Self {
        let slot = |r: &Reference| Slot {
            column: r.empty_column(),
            nulls: 0,
        };
        Window {
            rows: 0,
            features: baseline.features.iter().map(slot).collect(),
            prediction: baseline.prediction.as_ref().map(|(_, r)| slot(r)),
        }
    }

    /// Records `value` of feature `feature`.
    pub(crate) fn push(&mut self, baseline: &Baseline, feature: usize, value: Value<'_>) {
        if let (Some(slot), Some(reference)) = (
            self.features.get_mut(feature),
            baseline.features.get(feature),
        ) {
            if !slot.column.push(reference, value) && value == Value::Null {
                slot.nulls += 1;
            }
        }
    }

    /// Adds the rows and values of `other`, a part of the same version's
    /// window from another replica. A slot whose kind or bucket count does
    /// not match this window's (a part of another profile) adds nothing;
    /// returns whether every slot matched.
    pub(crate) fn absorb(&mut self, other: Window) -> bool {
        let mut matched = self.features.len() == other.features.len()
            && self.prediction.is_some() == other.prediction.is_some();
        self.rows += other.rows;
        for (mine, theirs) in self.features.iter_mut().zip(other.features) {
            matched &= mine.absorb(theirs);
        }
        if let (Some(mine), Some(theirs)) = (&mut self.prediction, other.prediction) {
            matched &= mine.absorb(theirs);
        }
        matched
    }

    /// The window without the values a part cannot carry (JSON has no
    /// NaN or infinity); such values make no statistic either way.
    pub(crate) fn into_part(mut self) -> Window {
        for slot in self.features.iter_mut().chain(self.prediction.as_mut()) {
            if let Column::Numeric(values) = &mut slot.column {
                values.retain(|v| v.is_finite());
            }
        }
        self
    }

    /// Records one predicted value.
    pub(crate) fn push_prediction(&mut self, baseline: &Baseline, value: Value<'_>) {
        if let (Some(slot), Some((_, reference))) = (&mut self.prediction, &baseline.prediction) {
            if !slot.column.push(reference, value) && value == Value::Null {
                slot.nulls += 1;
            }
        }
    }
}

/// Drift of one feature (or of the predictions) in one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureDrift {
    /// Feature name.
    pub name: String,
    /// Numeric or categorical.
    pub kind: FeatureKind,
    /// Non-null values in the window.
    pub count: usize,
    /// Nulls in the window.
    pub nulls: u64,
    /// Population Stability Index against the reference bins or categories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<f64>,
    /// How to read the PSI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi_level: Option<PsiLevel>,
    /// Kolmogorov–Smirnov statistic against the reference quantiles (numeric).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_statistic: Option<f64>,
    /// Its p-value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_p_value: Option<f64>,
    /// Jensen–Shannon distance of the category frequencies (categorical).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub js_distance: Option<f64>,
    /// Whether the feature drifted (KS p-value below, or JS distance at
    /// least, the model's threshold).
    pub drifted: bool,
    /// The reference's and the window's shares of each bin or category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
}

/// How one feature's values spread over the reference's bins (numeric) or
/// categories (categorical), in the reference and in a window: what a
/// PSI compares, as shares that each add up to 1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Distribution {
    /// Bin edges (numeric): bin `i` spans `edges[i]..edges[i + 1]`, and
    /// values beyond the outer edges count in the outer bins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edges: Option<Vec<f64>>,
    /// Categories (categorical), then [`UNSEEN_CATEGORY`] for the values
    /// the reference never saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// The reference's share of each bin or category.
    pub reference: Vec<f64>,
    /// The window's share of each bin or category.
    pub window: Vec<f64>,
}

/// The name [`Distribution::categories`] gives the bucket of categories
/// the reference never saw.
pub const UNSEEN_CATEGORY: &str = "(not in reference)";

/// `counts` as shares of their sum (all 0 when the sum is 0).
fn shares(counts: &[f64]) -> Vec<f64> {
    let total: f64 = counts.iter().sum();
    counts
        .iter()
        .map(|c| if total > 0.0 { c / total } else { 0.0 })
        .collect()
}

/// The statistics of one closed window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowReport {
    /// 1 for the first window of the version.
    pub index: u64,
    /// Rows in the window.
    pub rows: usize,
    /// When the window opened and closed, in milliseconds since the Unix epoch.
    pub opened_at_ms: u64,
    /// See `opened_at_ms`.
    pub closed_at_ms: u64,
    /// `rows` (the window filled up) or `time`.
    pub closed_by: &'static str,
    /// One entry per feature, in profile order.
    pub features: Vec<FeatureDrift>,
    /// Drift of the predictions, when the profile has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<FeatureDrift>,
    /// Features that drifted.
    pub drifted_features: usize,
    /// Their share of all features.
    pub drift_share: f64,
    /// Whether the share reached the model's `drift_share`.
    pub dataset_drift: bool,
}

impl WindowReport {
    /// The largest feature PSI and its feature.
    pub fn max_feature_psi(&self) -> Option<(&str, f64)> {
        self.features
            .iter()
            .filter_map(|f| f.psi.map(|psi| (f.name.as_str(), psi)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// Where and when a window was closed.
pub(crate) struct Closing {
    pub(crate) index: u64,
    pub(crate) opened_at_ms: u64,
    pub(crate) closed_at_ms: u64,
    pub(crate) closed_by: &'static str,
}

/// The drift statistics of `window` against `baseline` under `policy`.
pub(crate) fn evaluate(
    baseline: &Baseline,
    window: &Window,
    policy: &MonitorPolicy,
    closing: Closing,
) -> WindowReport {
    let features: Vec<FeatureDrift> = baseline
        .names
        .iter()
        .zip(&baseline.features)
        .zip(&window.features)
        .map(|((name, reference), slot)| compare(name, reference, slot, policy))
        .collect();
    let prediction = match (&baseline.prediction, &window.prediction) {
        (Some((name, reference)), Some(slot)) => Some(compare(name, reference, slot, policy)),
        _ => None,
    };
    let flags: Vec<bool> = features.iter().map(|f| f.drifted).collect();
    WindowReport {
        index: closing.index,
        rows: window.rows,
        opened_at_ms: closing.opened_at_ms,
        closed_at_ms: closing.closed_at_ms,
        closed_by: closing.closed_by,
        drifted_features: flags.iter().filter(|d| **d).count(),
        drift_share: drifted_share(&flags),
        dataset_drift: dataset_drifted(&flags, policy.drift_share),
        features,
        prediction,
    }
}

fn compare(name: &str, reference: &Reference, slot: &Slot, policy: &MonitorPolicy) -> FeatureDrift {
    let mut drift = FeatureDrift {
        name: name.to_owned(),
        kind: match reference {
            Reference::Numeric { .. } => FeatureKind::Numeric,
            Reference::Categorical { .. } => FeatureKind::Categorical,
        },
        count: slot.column.len(),
        nulls: slot.nulls,
        psi: None,
        psi_level: None,
        ks_statistic: None,
        ks_p_value: None,
        js_distance: None,
        drifted: false,
        distribution: None,
    };
    if drift.count == 0 {
        return drift;
    }
    match (reference, &slot.column) {
        (
            Reference::Numeric {
                edges,
                proportions,
                quantiles,
                count,
            },
            Column::Numeric(values),
        ) => {
            if let Ok(counts) = histogram(values, edges) {
                let actual: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
                drift.psi = psi(proportions, &actual).ok();
                drift.distribution = Some(Distribution {
                    edges: Some(edges.clone()),
                    categories: None,
                    reference: shares(proportions),
                    window: shares(&actual),
                });
            }
            if let Ok(ks) = ks_against_reference(quantiles, values, *count) {
                drift.ks_statistic = Some(ks.statistic);
                drift.ks_p_value = Some(ks.p_value);
                drift.drifted = ks.p_value < policy.ks_p_value;
            }
        }
        (Reference::Categorical { names, counts, .. }, Column::Categorical(live)) => {
            let actual: Vec<f64> = live.iter().map(|&c| c as f64).collect();
            drift.psi = psi(counts, &actual).ok();
            drift.js_distance = jensen_shannon_distance(counts, &actual).ok();
            drift.drifted = drift.js_distance.is_some_and(|d| d >= policy.js_threshold);
            let mut categories = names.clone();
            categories.push(UNSEEN_CATEGORY.to_owned());
            drift.distribution = Some(Distribution {
                edges: None,
                categories: Some(categories),
                reference: shares(counts),
                window: shares(&actual),
            });
        }
        _ => {}
    }
    drift.psi_level = drift.psi.map(PsiLevel::from_psi);
    drift
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Cell, ColumnSpec, ProfileBuilder};

    /// A profile of `x` = 0..100 and `colour` alternating red/blue, with
    /// the prediction `x >= 50` as a category.
    fn baseline() -> Baseline {
        let mut builder = ProfileBuilder::new(vec![
            ColumnSpec::inferred("x"),
            ColumnSpec::inferred("colour"),
        ])
        .expect("columns")
        .with_prediction(ColumnSpec::declared("label", FeatureKind::Categorical));
        for i in 0..100 {
            let colour = if i % 2 == 0 { "red" } else { "blue" };
            builder
                .push_row(&[Cell::Number(f64::from(i)), Cell::Text(colour.into())])
                .expect("row");
            builder
                .push_prediction(&Cell::Number(f64::from(u8::from(i >= 50))))
                .expect("prediction");
        }
        Baseline::new(&builder.finish().expect("profile"))
    }

    fn closing() -> Closing {
        Closing {
            index: 1,
            opened_at_ms: 0,
            closed_at_ms: 1,
            closed_by: "rows",
        }
    }

    fn window_of(baseline: &Baseline, shift: f64, colour: &str) -> Window {
        let mut window = Window::new(baseline);
        for i in 0..100 {
            window.push(baseline, 0, Value::Number(f64::from(i) + shift));
            let c = if colour.is_empty() {
                if i % 2 == 0 {
                    "red"
                } else {
                    "blue"
                }
            } else {
                colour
            };
            window.push(baseline, 1, Value::Text(c.as_bytes()));
            window.push_prediction(baseline, Value::Number(f64::from(u8::from(i >= 50))));
            window.rows += 1;
        }
        window
    }

    /// The report of a window of `window_of(shift, colour)` under the
    /// default policy.
    fn report_of(shift: f64, colour: &str) -> WindowReport {
        let baseline = baseline();
        let window = window_of(&baseline, shift, colour);
        evaluate(&baseline, &window, &MonitorPolicy::default(), closing())
    }

    #[test]
    fn parts_from_replicas_add_up_to_the_window_of_all_their_rows() {
        let baseline = baseline();
        let (first, second) = (
            window_of(&baseline, 80.0, "green"),
            window_of(&baseline, 0.0, ""),
        );
        let mut whole = first.clone();
        // As the registry keeps a part: through JSON.
        let part: Window =
            serde_json::from_value(serde_json::to_value(second.clone().into_part()).expect("to"))
                .expect("from");
        assert!(whole.absorb(part));
        assert_eq!(whole.rows, 200);
        let mut direct = Window::new(&baseline);
        assert!(direct.absorb(first));
        assert!(direct.absorb(second));
        let policy = MonitorPolicy::default();
        assert_eq!(
            evaluate(&baseline, &whole, &policy, closing()),
            evaluate(&baseline, &direct, &policy, closing())
        );

        // A part of another profile adds its rows but no values.
        let mut other = Window::new(&baseline);
        other.features.pop();
        assert!(!whole.absorb(other));
        // Values JSON cannot carry are left out of a part.
        let mut odd = Window::new(&baseline);
        odd.push(&baseline, 0, Value::Number(f64::NAN));
        odd.push(&baseline, 0, Value::Number(1.0));
        let part = odd.into_part();
        assert_eq!(part.features[0].column, Column::Numeric(vec![1.0]));
        assert!(serde_json::to_string(&part).is_ok());
    }

    #[test]
    fn the_reference_itself_does_not_drift() {
        let report = report_of(0.0, "");
        assert_eq!(report.rows, 100);
        for feature in &report.features {
            assert!(feature.psi.expect("psi") < 1e-9, "{feature:?}");
            assert!(!feature.drifted, "{feature:?}");
        }
        assert!(report.features[0].ks_p_value.expect("p") > 0.9);
        assert_eq!(report.features[1].js_distance, Some(0.0));
        assert!(
            report
                .prediction
                .as_ref()
                .expect("prediction")
                .psi
                .expect("psi")
                < 1e-9
        );
        assert!(!report.dataset_drift);
    }

    #[test]
    fn shifted_values_and_unseen_categories_drift() {
        let report = report_of(80.0, "green");
        let x = &report.features[0];
        assert!(x.psi.expect("psi") > 0.25 && x.psi_level == Some(PsiLevel::Significant));
        assert!(x.drifted && x.ks_statistic.expect("ks") > 0.7);
        let colour = &report.features[1];
        assert!(colour.drifted, "every value is unseen: {colour:?}");
        assert_eq!(report.drifted_features, 2);
        assert!(report.dataset_drift);
        assert_eq!(
            report.max_feature_psi().map(|(name, _)| name),
            Some("colour")
        );
    }

    #[test]
    fn a_window_shows_its_shares_beside_the_references_on_the_same_bins() {
        let report = report_of(80.0, "green");
        let x = report.features[0].distribution.as_ref().expect("x");
        let edges = x.edges.as_ref().expect("numeric bins");
        assert_eq!(x.categories, None);
        assert_eq!(
            (x.reference.len(), x.window.len()),
            (edges.len() - 1, edges.len() - 1)
        );
        for shares in [&x.reference, &x.window] {
            assert!(
                (shares.iter().sum::<f64>() - 1.0).abs() < 1e-9,
                "{shares:?}"
            );
        }
        // 80..180 against 0..100: everything from 99 up lands in the last
        // bin, so the window's last bin holds most of it.
        assert!(x.window.last().expect("bins") > &0.8, "{x:?}");
        assert!(x.reference.last().expect("bins") < &0.2, "{x:?}");

        let colour = report.features[1].distribution.as_ref().expect("colour");
        assert_eq!(colour.edges, None);
        let categories = colour.categories.as_ref().expect("categories");
        assert_eq!(categories.last().map(String::as_str), Some(UNSEEN_CATEGORY));
        assert_eq!(
            colour.window.last(),
            Some(&1.0),
            "green is unseen: {colour:?}"
        );
        assert_eq!(colour.reference.last(), Some(&0.0));
        assert_eq!(colour.reference.iter().sum::<f64>(), 1.0);

        let summary = crate::version_report::WindowSummary::of(&report);
        assert_eq!(summary.feature_psi.len(), 2);
        assert_eq!(
            summary.feature_psi.get("x"),
            report.features[0].psi.as_ref()
        );
        assert_eq!(
            summary.max_psi,
            summary.feature_psi.values().copied().reduce(f64::max)
        );
    }

    #[test]
    fn nulls_are_counted_not_compared() {
        let baseline = baseline();
        let mut window = Window::new(&baseline);
        window.push(&baseline, 0, Value::Null);
        window.rows = 1;
        let report = evaluate(&baseline, &window, &MonitorPolicy::default(), closing());
        assert_eq!((report.features[0].count, report.features[0].nulls), (0, 1));
        assert_eq!(report.features[0].psi, None);
    }
}
