//! Online model quality from ground truth: sliding-window accuracy and
//! macro precision / recall / F1 (classification) or MAE and RMSE
//! (regression) over served predictions whose true value has arrived.
//!
//! Keep one [`QualityWindow`] per model version. The metrics themselves are
//! pure functions ([`classification_metrics`], [`regression_metrics`]) that
//! equal scikit-learn's within 1e-12; the reference values live in
//! `testdata/quality/reference.json`, written by
//! `testdata/quality/make_reference.py`.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// A prediction or a ground-truth value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Outcome {
    /// A number: a regression value, or a numeric class id.
    Number(f64),
    /// A class label (or a number written as a string).
    Label(String),
}

impl Outcome {
    /// The class label this outcome stands for. A label is taken as is; a
    /// number is written the shortest way that round-trips, without a
    /// trailing `.0`, so `Number(1.0)` and `Label("1")` are the same class
    /// (`-0.0` becomes `"0"`, `2.5` stays `"2.5"`).
    pub fn to_label(&self) -> String {
        match self {
            // Adding 0.0 turns -0.0 into 0.0; Display prints integral
            // floats without a fractional part.
            Outcome::Number(x) => format!("{}", x + 0.0),
            Outcome::Label(label) => label.clone(),
        }
    }

    /// The number this outcome stands for: a number as is, or a label that
    /// parses as `f64` (surrounding whitespace ignored); `None` otherwise.
    pub fn to_number(&self) -> Option<f64> {
        match self {
            Outcome::Number(x) => Some(*x),
            Outcome::Label(label) => label.trim().parse().ok(),
        }
    }
}

/// What kind of model this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Predicts a class label.
    Classification,
    /// Predicts a number.
    Regression,
}

/// Metrics over the labeled pairs of one window; the fields of the other
/// task are `None` (and left out of JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    /// The kind of model the metrics are for.
    pub task: Task,
    /// Number of (prediction, truth) pairs the metrics cover.
    pub count: usize,
    /// Share of predictions equal to the truth (classification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Macro-averaged precision (classification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<f64>,
    /// Macro-averaged recall (classification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall: Option<f64>,
    /// Macro-averaged F1 score (classification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
    /// Mean absolute error (regression).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mae: Option<f64>,
    /// Root mean squared error (regression).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
}

/// Why a (prediction, truth) pair was not added to a window.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QualityError {
    /// A regression model got a value that is not a number.
    #[error("{which} is {value:?}, which is not a number; a regression model needs numbers")]
    NotANumber {
        /// `"predicted"` or `"truth"`.
        which: &'static str,
        /// The label that did not parse.
        value: String,
    },
    /// A value was NaN or infinite where a finite number is needed.
    #[error("{which} is {value}; expected a finite number")]
    NotFinite {
        /// `"predicted"` or `"truth"`.
        which: &'static str,
        /// The value.
        value: f64,
    },
}

/// Classification metrics of a set of (predicted, truth) pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassificationMetrics {
    /// Share of pairs whose prediction equals the truth.
    pub accuracy: f64,
    /// Macro-averaged precision.
    pub precision: f64,
    /// Macro-averaged recall.
    pub recall: f64,
    /// Macro-averaged F1 score.
    pub f1: f64,
}

/// Regression metrics of a set of (predicted, truth) pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegressionMetrics {
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
}

/// Accuracy and macro precision / recall / F1 of `(predicted, truth)` label
/// pairs, as scikit-learn's `accuracy_score` and
/// `precision_recall_fscore_support(average="macro", zero_division=0)`:
/// every label seen in either column counts once, and a ratio with a zero
/// denominator (a label never predicted, or never true) counts as 0.
/// `None` when `pairs` is empty.
pub fn classification_metrics<S: AsRef<str>>(pairs: &[(S, S)]) -> Option<ClassificationMetrics> {
    #[derive(Default)]
    struct Counts {
        true_positive: u64,
        predicted: u64,
        truth: u64,
    }

    if pairs.is_empty() {
        return None;
    }
    let mut per_label: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut correct = 0_u64;
    for (predicted, truth) in pairs {
        let (predicted, truth) = (predicted.as_ref(), truth.as_ref());
        per_label.entry(predicted).or_default().predicted += 1;
        let counts = per_label.entry(truth).or_default();
        counts.truth += 1;
        if predicted == truth {
            counts.true_positive += 1;
            correct += 1;
        }
    }

    let ratio = |numerator: u64, denominator: u64| {
        if denominator == 0 {
            0.0
        } else {
            numerator as f64 / denominator as f64
        }
    };
    let (mut precision, mut recall, mut f1) = (0.0, 0.0, 0.0);
    for counts in per_label.values() {
        precision += ratio(counts.true_positive, counts.predicted);
        recall += ratio(counts.true_positive, counts.truth);
        // 2·tp / (2·tp + fp + fn), the form scikit-learn uses.
        f1 += ratio(2 * counts.true_positive, counts.predicted + counts.truth);
    }
    let labels = per_label.len() as f64;
    Some(ClassificationMetrics {
        accuracy: correct as f64 / pairs.len() as f64,
        precision: precision / labels,
        recall: recall / labels,
        f1: f1 / labels,
    })
}

/// Mean absolute error and root mean squared error of `(predicted, truth)`
/// pairs, as scikit-learn's `mean_absolute_error` and
/// `root_mean_squared_error`. `None` when `pairs` is empty.
pub fn regression_metrics(pairs: &[(f64, f64)]) -> Option<RegressionMetrics> {
    if pairs.is_empty() {
        return None;
    }
    let (mut absolute, mut squared) = (0.0, 0.0);
    for (predicted, truth) in pairs {
        let error = predicted - truth;
        absolute += error.abs();
        squared += error * error;
    }
    let n = pairs.len() as f64;
    Some(RegressionMetrics {
        mae: absolute / n,
        rmse: (squared / n).sqrt(),
    })
}

/// The last `capacity` (prediction, truth) pairs of one model version.
#[derive(Debug, Clone)]
pub struct QualityWindow {
    capacity: usize,
    pairs: Pairs,
}

#[derive(Debug, Clone)]
enum Pairs {
    Labels(VecDeque<(String, String)>),
    Values(VecDeque<(f64, f64)>),
}

/// Allocate at most this many slots up front, whatever the capacity.
const INITIAL_ALLOCATION: usize = 1024;

impl QualityWindow {
    /// An empty window for a model of kind `task` that keeps the last
    /// `capacity` pairs (at least 1).
    pub fn new(task: Task, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let initial = capacity.min(INITIAL_ALLOCATION);
        let pairs = match task {
            Task::Classification => Pairs::Labels(VecDeque::with_capacity(initial)),
            Task::Regression => Pairs::Values(VecDeque::with_capacity(initial)),
        };
        Self { capacity, pairs }
    }

    /// The kind of model this window is for.
    pub fn task(&self) -> Task {
        match self.pairs {
            Pairs::Labels(_) => Task::Classification,
            Pairs::Values(_) => Task::Regression,
        }
    }

    /// How many pairs the window keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds a pair, dropping the oldest one when the window is full.
    ///
    /// Classification compares [`Outcome::to_label`]s. Regression needs two
    /// numbers ([`Outcome::to_number`]: a label that parses as `f64` is
    /// fine), both finite. A numeric truth must be finite for either task.
    /// On error the window is unchanged.
    pub fn push(&mut self, predicted: Outcome, truth: Outcome) -> Result<(), QualityError> {
        let capacity = self.capacity;
        match &mut self.pairs {
            Pairs::Labels(pairs) => {
                if let Outcome::Number(value) = truth {
                    finite("truth", value)?;
                }
                push_bounded(pairs, (predicted.to_label(), truth.to_label()), capacity);
            }
            Pairs::Values(pairs) => {
                let truth = number("truth", &truth)?;
                let predicted = number("predicted", &predicted)?;
                push_bounded(pairs, (predicted, truth), capacity);
            }
        }
        Ok(())
    }

    /// Whether [`push`](Self::push) would take this pair, without taking it.
    pub fn check(&self, predicted: &Outcome, truth: &Outcome) -> Result<(), QualityError> {
        match &self.pairs {
            Pairs::Labels(_) => match truth {
                Outcome::Number(value) => finite("truth", *value).map(|_| ()),
                Outcome::Label(_) => Ok(()),
            },
            Pairs::Values(_) => {
                number("truth", truth)?;
                number("predicted", predicted).map(|_| ())
            }
        }
    }

    /// Number of pairs in the window.
    pub fn len(&self) -> usize {
        match &self.pairs {
            Pairs::Labels(pairs) => pairs.len(),
            Pairs::Values(pairs) => pairs.len(),
        }
    }

    /// Whether the window holds no pairs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Metrics over the pairs in the window; `None` when it is empty.
    pub fn report(&self) -> Option<QualityReport> {
        match &self.pairs {
            Pairs::Labels(pairs) => {
                let pairs: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(p, t)| (p.as_str(), t.as_str()))
                    .collect();
                let metrics = classification_metrics(&pairs)?;
                Some(QualityReport {
                    task: Task::Classification,
                    count: pairs.len(),
                    accuracy: Some(metrics.accuracy),
                    precision: Some(metrics.precision),
                    recall: Some(metrics.recall),
                    f1: Some(metrics.f1),
                    mae: None,
                    rmse: None,
                })
            }
            Pairs::Values(pairs) => {
                let pairs: Vec<(f64, f64)> = pairs.iter().copied().collect();
                let metrics = regression_metrics(&pairs)?;
                Some(QualityReport {
                    task: Task::Regression,
                    count: pairs.len(),
                    accuracy: None,
                    precision: None,
                    recall: None,
                    f1: None,
                    mae: Some(metrics.mae),
                    rmse: Some(metrics.rmse),
                })
            }
        }
    }
}

fn push_bounded<T>(pairs: &mut VecDeque<T>, pair: T, capacity: usize) {
    while pairs.len() >= capacity {
        pairs.pop_front();
    }
    pairs.push_back(pair);
}

fn finite(which: &'static str, value: f64) -> Result<f64, QualityError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(QualityError::NotFinite { which, value })
    }
}

fn number(which: &'static str, outcome: &Outcome) -> Result<f64, QualityError> {
    let value = outcome
        .to_number()
        .ok_or_else(|| QualityError::NotANumber {
            which,
            value: outcome.to_label(),
        })?;
    finite(which, value)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    const TOLERANCE: f64 = 1e-12;

    #[derive(Deserialize)]
    struct Reference {
        classification: Vec<ClassificationCase>,
        regression: Vec<RegressionCase>,
    }

    #[derive(Deserialize)]
    struct ClassificationCase {
        name: String,
        truth: Vec<String>,
        predicted: Vec<String>,
        accuracy: f64,
        precision: f64,
        recall: f64,
        f1: f64,
    }

    #[derive(Deserialize)]
    struct RegressionCase {
        name: String,
        truth: Vec<f64>,
        predicted: Vec<f64>,
        mae: f64,
        rmse: f64,
    }

    fn reference() -> Reference {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/quality/reference.json"
        );
        let text =
            std::fs::read_to_string(path).expect("testdata/quality/reference.json is committed");
        serde_json::from_str(&text).expect("reference.json matches make_reference.py")
    }

    fn assert_close(what: &str, got: Option<f64>, want: f64) {
        let got = got.unwrap_or_else(|| panic!("{what}: missing"));
        assert!(
            (got - want).abs() <= TOLERANCE,
            "{what}: got {got:e}, scikit-learn says {want:e} (diff {:e})",
            (got - want).abs()
        );
    }

    fn window_of(task: Task, pairs: &[(Outcome, Outcome)]) -> QualityWindow {
        let mut window = QualityWindow::new(task, 100);
        for (predicted, truth) in pairs {
            window
                .push(predicted.clone(), truth.clone())
                .expect("valid pair");
        }
        window
    }

    #[test]
    fn classification_matches_scikit_learn() {
        let cases = reference().classification;
        assert!(cases.len() >= 3);
        for case in cases {
            assert_eq!(case.truth.len(), case.predicted.len(), "{}", case.name);
            let pairs: Vec<(String, String)> = case
                .predicted
                .iter()
                .cloned()
                .zip(case.truth.iter().cloned())
                .collect();
            let metrics = classification_metrics(&pairs).expect("cases are not empty");
            let name = &case.name;
            assert_close(
                &format!("{name} accuracy"),
                Some(metrics.accuracy),
                case.accuracy,
            );
            assert_close(
                &format!("{name} precision"),
                Some(metrics.precision),
                case.precision,
            );
            assert_close(&format!("{name} recall"), Some(metrics.recall), case.recall);
            assert_close(&format!("{name} f1"), Some(metrics.f1), case.f1);

            // The same through a window big enough to hold every pair.
            let mut window = QualityWindow::new(Task::Classification, pairs.len());
            for (predicted, truth) in pairs {
                window
                    .push(Outcome::Label(predicted), Outcome::Label(truth))
                    .expect("labels");
            }
            let report = window.report().expect("not empty");
            assert_eq!(report.count, case.truth.len());
            assert_close(
                &format!("{name} window accuracy"),
                report.accuracy,
                case.accuracy,
            );
            assert_close(
                &format!("{name} window precision"),
                report.precision,
                case.precision,
            );
            assert_close(&format!("{name} window recall"), report.recall, case.recall);
            assert_close(&format!("{name} window f1"), report.f1, case.f1);
            assert_eq!((report.mae, report.rmse), (None, None));
        }
    }

    #[test]
    fn regression_matches_scikit_learn() {
        let cases = reference().regression;
        assert!(cases.len() >= 2);
        for case in cases {
            assert_eq!(case.truth.len(), case.predicted.len(), "{}", case.name);
            let pairs: Vec<(f64, f64)> = case
                .predicted
                .iter()
                .copied()
                .zip(case.truth.iter().copied())
                .collect();
            let metrics = regression_metrics(&pairs).expect("cases are not empty");
            let name = &case.name;
            assert_close(&format!("{name} mae"), Some(metrics.mae), case.mae);
            assert_close(&format!("{name} rmse"), Some(metrics.rmse), case.rmse);

            let mut window = QualityWindow::new(Task::Regression, pairs.len());
            for (predicted, truth) in pairs {
                window
                    .push(Outcome::Number(predicted), Outcome::Number(truth))
                    .expect("numbers");
            }
            let report = window.report().expect("not empty");
            assert_eq!(report.count, case.truth.len());
            assert_close(&format!("{name} window mae"), report.mae, case.mae);
            assert_close(&format!("{name} window rmse"), report.rmse, case.rmse);
            assert_eq!(report.accuracy, None);
        }
    }

    #[test]
    fn window_keeps_only_the_last_capacity_pairs() {
        let mut window = QualityWindow::new(Task::Classification, 3);
        for (predicted, truth) in [("a", "b"), ("b", "a"), ("a", "a"), ("b", "b"), ("c", "c")] {
            window
                .push(
                    Outcome::Label(predicted.into()),
                    Outcome::Label(truth.into()),
                )
                .unwrap();
        }
        assert_eq!(window.len(), 3);
        let report = window.report().unwrap();
        assert_eq!(report.count, 3);
        // Both wrong pairs were evicted: a perfect window over a, b, c.
        assert_eq!(report.accuracy, Some(1.0));
        assert_eq!(report.precision, Some(1.0));
        assert_eq!(report.f1, Some(1.0));

        let mut window = QualityWindow::new(Task::Regression, 2);
        for (predicted, truth) in [(100.0, 0.0), (1.0, 0.0), (0.0, 3.0)] {
            window
                .push(Outcome::Number(predicted), Outcome::Number(truth))
                .unwrap();
        }
        assert_eq!(window.len(), 2);
        let report = window.report().unwrap();
        assert_eq!(report.mae, Some(2.0));
        assert_eq!(report.rmse, Some(5.0_f64.sqrt()));
    }

    #[test]
    fn zero_capacity_keeps_one_pair() {
        let mut window = QualityWindow::new(Task::Regression, 0);
        assert_eq!(window.capacity(), 1);
        window
            .push(Outcome::Number(1.0), Outcome::Number(0.0))
            .unwrap();
        window
            .push(Outcome::Number(4.0), Outcome::Number(0.0))
            .unwrap();
        assert_eq!(window.len(), 1);
        assert_eq!(window.report().unwrap().mae, Some(4.0));
    }

    #[test]
    fn empty_window_has_no_report() {
        for task in [Task::Classification, Task::Regression] {
            let window = QualityWindow::new(task, 10);
            assert!(window.is_empty());
            assert_eq!(window.task(), task);
            assert_eq!(window.report(), None);
        }
        assert_eq!(classification_metrics::<&str>(&[]), None);
        assert_eq!(regression_metrics(&[]), None);
    }

    #[test]
    fn numbers_and_labels_name_the_same_class() {
        assert_eq!(Outcome::Number(1.0).to_label(), "1");
        assert_eq!(Outcome::Number(-0.0).to_label(), "0");
        assert_eq!(Outcome::Number(-3.0).to_label(), "-3");
        assert_eq!(Outcome::Number(2.5).to_label(), "2.5");
        assert_eq!(Outcome::Number(1e16).to_label(), "10000000000000000");

        let window = window_of(
            Task::Classification,
            &[
                (Outcome::Number(1.0), Outcome::Label("1".into())),
                (Outcome::Label("0".into()), Outcome::Number(-0.0)),
                (Outcome::Number(2.5), Outcome::Label("2.5".into())),
                (Outcome::Label("cat".into()), Outcome::Label("cat".into())),
            ],
        );
        let report = window.report().unwrap();
        assert_eq!(report.accuracy, Some(1.0));
        assert_eq!(report.f1, Some(1.0));

        // Numeric labels parse for regression.
        let window = window_of(
            Task::Regression,
            &[(Outcome::Label(" 2.5 ".into()), Outcome::Number(2.0))],
        );
        assert_eq!(window.report().unwrap().mae, Some(0.5));
    }

    #[test]
    fn outcomes_deserialize_from_json_numbers_and_strings() {
        let outcomes: Vec<Outcome> = serde_json::from_str(r#"[1, "1", 2.5, "cat"]"#).unwrap();
        assert_eq!(
            outcomes,
            [
                Outcome::Number(1.0),
                Outcome::Label("1".into()),
                Outcome::Number(2.5),
                Outcome::Label("cat".into()),
            ]
        );
        assert_eq!(outcomes[0].to_label(), outcomes[1].to_label());
    }

    #[test]
    fn regression_rejects_labels_and_non_finite_values() {
        let mut window = QualityWindow::new(Task::Regression, 10);
        assert_eq!(
            window.push(Outcome::Label("cat".into()), Outcome::Number(1.0)),
            Err(QualityError::NotANumber {
                which: "predicted",
                value: "cat".into()
            })
        );
        assert_eq!(
            window.push(Outcome::Number(1.0), Outcome::Label("dog".into())),
            Err(QualityError::NotANumber {
                which: "truth",
                value: "dog".into()
            })
        );
        assert!(matches!(
            window.push(Outcome::Number(1.0), Outcome::Number(f64::NAN)),
            Err(QualityError::NotFinite { which: "truth", .. })
        ));
        assert_eq!(
            window.push(Outcome::Number(1.0), Outcome::Label("inf".into())),
            Err(QualityError::NotFinite {
                which: "truth",
                value: f64::INFINITY
            })
        );
        assert_eq!(
            window.push(Outcome::Number(f64::NEG_INFINITY), Outcome::Number(1.0)),
            Err(QualityError::NotFinite {
                which: "predicted",
                value: f64::NEG_INFINITY
            })
        );
        assert!(
            window.is_empty(),
            "rejected pairs leave the window unchanged"
        );

        let error = window
            .push(Outcome::Label("cat".into()), Outcome::Number(1.0))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "predicted is \"cat\", which is not a number; a regression model needs numbers"
        );

        let mut window = QualityWindow::new(Task::Classification, 10);
        assert!(window
            .push(Outcome::Label("a".into()), Outcome::Number(f64::NAN))
            .is_err());
        assert!(window.is_empty());
    }

    #[test]
    fn report_json_leaves_out_the_other_task() {
        let window = window_of(
            Task::Regression,
            &[(Outcome::Number(3.0), Outcome::Number(1.0))],
        );
        let json = serde_json::to_value(window.report().unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"task": "regression", "count": 1, "mae": 2.0, "rmse": 2.0})
        );

        let window = window_of(
            Task::Classification,
            &[(Outcome::Label("a".into()), Outcome::Label("a".into()))],
        );
        let json = serde_json::to_value(window.report().unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "task": "classification", "count": 1,
                "accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0,
            })
        );
    }
}
