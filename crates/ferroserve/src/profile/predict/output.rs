//! Which model output is the prediction, and its values as profile cells:
//! labels (integers, booleans, strings) as text, scores as numbers.

use anyhow::{anyhow, bail};
use ferroserve_core::signature::format_shape;
use ferroserve_core::{Dim, ModelSignature, Tensor};
use ferroserve_monitor::features::{
    number_label, one_value_per_row, prediction_kind, value_at, Value,
};
use ferroserve_monitor::profile::{Cell, FeatureKind};

/// The output profiled as the prediction.
pub(super) struct Output {
    /// Position among the model's outputs.
    pub(super) index: usize,
    /// Output name, also the prediction's name in the profile.
    pub(super) name: String,
    /// Numeric for float outputs, categorical for the others.
    pub(super) kind: FeatureKind,
}

/// The output named `name`, else the first with one value per row.
pub(super) fn pick_output(
    signature: &ModelSignature,
    name: Option<&str>,
) -> anyhow::Result<Output> {
    let listing = || {
        signature
            .outputs
            .iter()
            .map(|o| format!("`{}` {}", o.name, format_shape(&o.shape)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let index = match name {
        Some(name) => signature
            .outputs
            .iter()
            .position(|o| o.name == name)
            .ok_or_else(|| {
                anyhow!(
                    "--prediction-output {name}: the model has no such output; its outputs are {}",
                    listing()
                )
            })?,
        None => signature
            .outputs
            .iter()
            .position(one_value_per_row)
            .ok_or_else(|| {
                anyhow!(
                    "none of the model's outputs ({}) has one value per row; choose one with \
                     --prediction-output, or pass --no-predictions",
                    listing()
                )
            })?,
    };
    let spec = &signature.outputs[index];
    if !one_value_per_row(spec)
        && spec
            .shape
            .iter()
            .skip(1)
            .all(|d| matches!(d, Dim::Fixed(_)))
    {
        bail!(
            "--prediction-output {}: the output has shape {}, not one value per row",
            spec.name,
            format_shape(&spec.shape)
        );
    }
    Ok(Output {
        index,
        name: spec.name.clone(),
        kind: prediction_kind(spec.datatype),
    })
}

/// One prediction per row from the output `tensor`.
pub(super) fn prediction_cells(
    tensor: &Tensor,
    rows: usize,
    name: &str,
    kind: FeatureKind,
) -> anyhow::Result<Vec<Cell>> {
    if tensor.data.len() != rows {
        bail!(
            "output `{name}` has {} values for {rows} rows (shape {:?}); the prediction must be \
             one value per row (choose another with --prediction-output)",
            tensor.data.len(),
            tensor.shape
        );
    }
    // Read as the monitor reads served predictions, so that both agree.
    Ok((0..rows)
        .map(|row| match value_at(&tensor.data, row) {
            Value::Null => Cell::Null,
            Value::Number(x) if kind == FeatureKind::Numeric => Cell::Number(x),
            Value::Number(x) => Cell::Text(number_label(x)),
            Value::Text(bytes) => Cell::Text(String::from_utf8_lossy(bytes).into_owned()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::predict::test_util::spec;
    use ferroserve_core::{DataType, TensorData};

    #[test]
    fn the_prediction_is_the_first_output_with_one_value_per_row() {
        let signature = ModelSignature {
            inputs: vec![],
            outputs: vec![
                spec("probabilities", DataType::Fp32, &[-1, 3]),
                spec("label", DataType::Int64, &[-1]),
                spec("score", DataType::Fp32, &[-1, 1]),
            ],
        };
        let out = pick_output(&signature, None).expect("default");
        assert_eq!((out.index, out.kind), (1, FeatureKind::Categorical));
        let out = pick_output(&signature, Some("score")).expect("named");
        assert_eq!((out.index, out.kind), (2, FeatureKind::Numeric));
        let err = pick_output(&signature, Some("nope"))
            .err()
            .expect("unknown")
            .to_string();
        assert!(
            err.contains("`probabilities` [-1, 3], `label` [-1]"),
            "{err}"
        );
        let err = pick_output(&signature, Some("probabilities"))
            .err()
            .expect("wide")
            .to_string();
        assert!(
            err.contains("shape [-1, 3], not one value per row"),
            "{err}"
        );
    }

    #[test]
    fn labels_are_text_and_scores_numbers() {
        let labels =
            Tensor::new("label", vec![3], TensorData::Int64(vec![0, 2, 1])).expect("tensor");
        let cells = prediction_cells(&labels, 3, "label", FeatureKind::Categorical).expect("cells");
        assert_eq!(cells, ["0", "2", "1"].map(|s| Cell::Text(s.to_owned())));
        let wide =
            Tensor::new("p", vec![1, 2], TensorData::Fp32(vec![0.25, 0.75])).expect("tensor");
        let err = prediction_cells(&wide, 1, "p", FeatureKind::Numeric)
            .unwrap_err()
            .to_string();
        assert!(err.contains("has 2 values for 1 rows"), "{err}");
    }
}
