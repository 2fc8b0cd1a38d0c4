//! How a shadow's answer compares with the primary's, row by row, on the
//! prediction output of the primary version: label agreement for
//! classifiers, absolute and relative differences for regressors.

use ferroserve_core::{ModelSignature, Tensor};
use ferroserve_monitor::features::PredictionSource;
use ferroserve_monitor::quality::Task;

/// Smallest denominator of a relative difference, so that a primary
/// prediction of 0 gives a large but finite figure.
pub const RELATIVE_FLOOR: f64 = 1e-12;

/// What one shadow answer says next to the primary's.
#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    /// A classifier: rows whose predicted labels are the same, and the others.
    Classification {
        /// Rows with the same label.
        agree: u64,
        /// Rows with another label.
        disagree: u64,
    },
    /// A regressor: per row, `|shadow - primary|` and
    /// `|shadow - primary| / max(|primary|, 1e-12)`. Rows where either
    /// value is not a finite number are left out.
    Regression {
        /// Absolute differences, one per compared row.
        abs_differences: Vec<f64>,
        /// Relative differences, one per compared row.
        rel_differences: Vec<f64>,
    },
    /// The two answers cannot be compared.
    Incomparable(Incomparable),
}

/// Why two answers cannot be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incomparable {
    /// The primary version has no output with one prediction per row, or
    /// is no longer served.
    NoPredictionOutput,
    /// The shadow's answer lacks the prediction output (or it has empty rows).
    MissingInShadow,
    /// The primary's answer lacks the prediction output (the request asked
    /// for other outputs).
    MissingInPrimary,
    /// The answers hold different numbers of rows.
    RowCountMismatch {
        /// Rows of the shadow's prediction.
        shadow: usize,
        /// Rows of the primary's prediction.
        primary: usize,
    },
}

/// The prediction output of `primary_signature` (the primary version's),
/// as the monitor reads it; `None` when it has none.
pub fn prediction_source(primary_signature: &ModelSignature) -> Option<PredictionSource> {
    PredictionSource::find(primary_signature, None)
}

/// Compares the prediction `source` names in the shadow's `shadow` outputs
/// with the one in the primary's `primary` outputs, row by row.
pub fn compare(source: &PredictionSource, shadow: &[Tensor], primary: &[Tensor]) -> Comparison {
    let Some(shadow) = source.read(shadow) else {
        return Comparison::Incomparable(Incomparable::MissingInShadow);
    };
    let Some(primary) = source.read(primary) else {
        return Comparison::Incomparable(Incomparable::MissingInPrimary);
    };
    if shadow.len() != primary.len() {
        return Comparison::Incomparable(Incomparable::RowCountMismatch {
            shadow: shadow.len(),
            primary: primary.len(),
        });
    }
    let rows = shadow.iter().zip(&primary);
    match source.task {
        Task::Classification => {
            let agree = rows.filter(|(s, p)| s.to_label() == p.to_label()).count() as u64;
            Comparison::Classification {
                agree,
                disagree: primary.len() as u64 - agree,
            }
        }
        Task::Regression => {
            let (abs_differences, rel_differences) = rows
                .filter_map(|(s, p)| Some((s.to_number()?, p.to_number()?)))
                .filter(|(s, p)| s.is_finite() && p.is_finite())
                .map(|(s, p)| {
                    let abs = (s - p).abs();
                    (abs, abs / p.abs().max(RELATIVE_FLOOR))
                })
                .unzip();
            Comparison::Regression {
                abs_differences,
                rel_differences,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroserve_core::{DataType, Dim, TensorData, TensorSpec};

    fn classifier() -> PredictionSource {
        let signature = ModelSignature {
            inputs: vec![TensorSpec::new(
                "input",
                DataType::Fp32,
                vec![Dim::Dynamic, Dim::Fixed(4)],
            )],
            outputs: vec![
                TensorSpec::new("label", DataType::Int64, vec![Dim::Dynamic]),
                TensorSpec::new(
                    "probabilities",
                    DataType::Fp32,
                    vec![Dim::Dynamic, Dim::Fixed(3)],
                ),
            ],
        };
        let source = prediction_source(&signature).expect("a label output");
        assert_eq!(source.task, Task::Classification);
        source
    }

    fn regressor() -> PredictionSource {
        let signature = ModelSignature {
            inputs: vec![TensorSpec::new(
                "input",
                DataType::Fp32,
                vec![Dim::Dynamic, Dim::Fixed(5)],
            )],
            outputs: vec![TensorSpec::new(
                "variable",
                DataType::Fp32,
                vec![Dim::Dynamic, Dim::Fixed(1)],
            )],
        };
        let source = prediction_source(&signature).expect("a one-column output");
        assert_eq!(source.task, Task::Regression);
        source
    }

    fn labels(values: Vec<i64>) -> Tensor {
        Tensor::new("label", vec![values.len()], TensorData::Int64(values)).expect("tensor")
    }

    fn variable(values: Vec<f32>) -> Tensor {
        Tensor::new("variable", vec![values.len(), 1], TensorData::Fp32(values)).expect("tensor")
    }

    #[test]
    fn classifiers_count_rows_with_the_same_label() {
        let probabilities =
            Tensor::new("probabilities", vec![4, 3], TensorData::Fp32(vec![0.0; 12]))
                .expect("tensor");
        let shadow = [probabilities, labels(vec![0, 1, 2, 2])];
        let primary = [labels(vec![0, 1, 1, 0])];
        assert_eq!(
            compare(&classifier(), &shadow, &primary),
            Comparison::Classification {
                agree: 2,
                disagree: 2
            }
        );
    }

    #[test]
    fn regressors_give_absolute_and_relative_differences_per_row() {
        let shadow = [variable(vec![1.5, -2.0, 0.25, f32::NAN])];
        let primary = [variable(vec![1.0, -2.0, 0.0, 3.0])];
        let Comparison::Regression {
            abs_differences,
            rel_differences,
        } = compare(&regressor(), &shadow, &primary)
        else {
            panic!("a regression comparison");
        };
        assert_eq!(abs_differences, vec![0.5, 0.0, 0.25]);
        assert_eq!(rel_differences[..2], [0.5, 0.0]);
        // A primary of 0 divides by the floor, not by zero.
        assert_eq!(rel_differences[2], 0.25 / RELATIVE_FLOOR);
        assert!(rel_differences[2].is_finite());
    }

    #[test]
    fn missing_outputs_and_other_row_counts_are_incomparable() {
        let source = classifier();
        let three = [labels(vec![0, 1, 2])];
        let two = [labels(vec![0, 1])];
        assert_eq!(
            compare(&source, &three, &two),
            Comparison::Incomparable(Incomparable::RowCountMismatch {
                shadow: 3,
                primary: 2
            })
        );
        assert_eq!(
            compare(&source, &[], &two),
            Comparison::Incomparable(Incomparable::MissingInShadow)
        );
        let other = [variable(vec![1.0, 2.0])];
        assert_eq!(
            compare(&source, &two, &other),
            Comparison::Incomparable(Incomparable::MissingInPrimary)
        );
    }

    #[test]
    fn a_signature_without_a_row_prediction_has_no_source() {
        let signature = ModelSignature {
            inputs: vec![],
            outputs: vec![TensorSpec::new(
                "output",
                DataType::Fp32,
                vec![Dim::Dynamic, Dim::Fixed(10)],
            )],
        };
        assert!(prediction_source(&signature).is_none());
    }
}
