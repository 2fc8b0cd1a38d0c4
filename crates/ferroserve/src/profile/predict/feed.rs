//! How the sample's features fill the model's inputs: one `[rows,
//! features]` matrix, or one tensor per feature matched by name; and the
//! values they get (a null takes the schema's default).

use anyhow::{anyhow, bail};
use ferroserve_core::signature::format_shape;
use ferroserve_core::{DataType, ModelSignature, Tensor, TensorData, TensorSpec};
use ferroserve_serving::monitor::profile::Cell;

use crate::profile::columns::Feature;

/// One model input and the features that fill it.
pub(super) struct Feed {
    spec: TensorSpec,
    /// Positions in the feature list of its columns, in column order.
    features: Vec<usize>,
    /// Its shape past the batch dimension.
    row_shape: Vec<usize>,
    values: Values,
}

/// Buffered elements of one input.
enum Values {
    Numbers(Vec<f64>),
    Texts(Vec<Vec<u8>>),
}

impl Feed {
    /// Appends one row's values; `cells` are the row's feature cells in
    /// feature order, and `at` says where the row is, for errors.
    pub(super) fn push(
        &mut self,
        features: &[Feature],
        cells: &[Cell],
        at: &dyn Fn() -> String,
    ) -> anyhow::Result<()> {
        for &k in &self.features {
            let (feature, cell) = (&features[k], &cells[k]);
            match &mut self.values {
                Values::Numbers(v) => v.push(number(feature, cell, &self.spec.name, at)?),
                Values::Texts(v) => v.push(text(feature, cell, at)?.into_bytes()),
            }
        }
        Ok(())
    }

    /// The buffered rows as a tensor; the buffer is emptied.
    pub(super) fn take(&mut self, rows: usize) -> anyhow::Result<Tensor> {
        let shape: Vec<usize> = std::iter::once(rows)
            .chain(self.row_shape.iter().copied())
            .collect();
        let data = match &mut self.values {
            Values::Texts(v) => TensorData::Bytes(std::mem::take(v)),
            Values::Numbers(v) => numbers_as(self.spec.datatype, &std::mem::take(v))?,
        };
        Ok(Tensor::new(self.spec.name.clone(), shape, data)?)
    }
}

/// How the features fill the model's inputs.
pub(super) fn feeds(signature: &ModelSignature, features: &[Feature]) -> anyhow::Result<Vec<Feed>> {
    let n = features.len();
    let feed = |spec: &TensorSpec, features: Vec<usize>, row_shape: Vec<usize>| Feed {
        values: match spec.datatype {
            DataType::Bytes => Values::Texts(Vec::new()),
            _ => Values::Numbers(Vec::new()),
        },
        spec: spec.clone(),
        features,
        row_shape,
    };
    if let [input] = signature.inputs.as_slice() {
        if let [_, width] = input.shape.as_slice() {
            if width.accepts(n) {
                return Ok(vec![feed(input, (0..n).collect(), vec![n])]);
            }
        }
    }
    signature
        .inputs
        .iter()
        .map(|input| {
            let position = features.iter().position(|f| f.name == input.name);
            let row_shape = match input.shape.as_slice() {
                [_] => Some(vec![]),
                [_, width] if width.accepts(1) => Some(vec![1]),
                _ => None,
            };
            match (position, row_shape) {
                (Some(k), Some(row_shape)) => Ok(feed(input, vec![k], row_shape)),
                _ => Err(anyhow!(
                    "the model's input `{}` {} is neither a [rows, {n}] matrix of the {n} \
                     features nor one feature column named after it; pass --no-predictions \
                     to profile without the model",
                    input.name,
                    format_shape(&input.shape)
                )),
            }
        })
        .collect()
}

/// The number the model gets for `cell`: its value, else the schema's
/// default.
fn number(
    feature: &Feature,
    cell: &Cell,
    input: &str,
    at: &dyn Fn() -> String,
) -> anyhow::Result<f64> {
    let value = match cell {
        Cell::Null => None,
        Cell::Number(x) => Some(*x),
        Cell::Text(s) => Some(s.trim().parse::<f64>().map_err(|_| {
            anyhow!(
                "{}, column `{}`: {s:?} is not a number, but the model takes this feature \
                 as numbers (input `{input}`)",
                at(),
                feature.name
            )
        })?),
    };
    value
        .filter(|x| x.is_finite())
        .or(feature.default)
        .ok_or_else(|| missing(feature, at))
}

/// The text the model gets for `cell` (a `BYTES` input).
fn text(feature: &Feature, cell: &Cell, at: &dyn Fn() -> String) -> anyhow::Result<String> {
    cell.category_text()
        .or_else(|| feature.default.map(|d| d.to_string()))
        .ok_or_else(|| missing(feature, at))
}

fn missing(feature: &Feature, at: &dyn Fn() -> String) -> anyhow::Error {
    anyhow!(
        "{}, column `{}`: no value, and the feature schema gives no default to feed the model \
         (set one, or pass --no-predictions)",
        at(),
        feature.name
    )
}

/// `values` as elements of `datatype`.
fn numbers_as(datatype: DataType, values: &[f64]) -> anyhow::Result<TensorData> {
    macro_rules! cast {
        ($variant:ident, $t:ty) => {
            TensorData::$variant(values.iter().map(|&x| x as $t).collect())
        };
    }
    Ok(match datatype {
        DataType::Fp32 => cast!(Fp32, f32),
        DataType::Fp64 => cast!(Fp64, f64),
        DataType::Int64 => cast!(Int64, i64),
        DataType::Int32 => cast!(Int32, i32),
        DataType::Int16 => cast!(Int16, i16),
        DataType::Int8 => cast!(Int8, i8),
        DataType::Uint64 => cast!(Uint64, u64),
        DataType::Uint32 => cast!(Uint32, u32),
        DataType::Uint16 => cast!(Uint16, u16),
        DataType::Uint8 => cast!(Uint8, u8),
        DataType::Bool => TensorData::Bool(values.iter().map(|&x| x != 0.0).collect()),
        DataType::Bytes => bail!("a BYTES input takes text, not numbers"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::predict::test_util::spec;

    fn feature(name: &str, default: Option<f64>) -> Feature {
        Feature {
            name: name.to_owned(),
            index: 0,
            kind: None,
            default,
        }
    }

    #[test]
    fn a_matrix_input_takes_every_feature_else_inputs_match_by_name() {
        let features = [feature("a", None), feature("b", None)];
        let matrix = ModelSignature {
            inputs: vec![spec("x", DataType::Fp32, &[-1, 2])],
            outputs: vec![],
        };
        let plan = feeds(&matrix, &features).expect("matrix");
        assert_eq!(
            (plan[0].features.as_slice(), plan[0].row_shape.as_slice()),
            (&[0, 1][..], &[2][..])
        );

        let named = ModelSignature {
            inputs: vec![
                spec("b", DataType::Int64, &[-1]),
                spec("a", DataType::Bytes, &[-1, 1]),
            ],
            outputs: vec![],
        };
        let plan = feeds(&named, &features).expect("by name");
        let got: Vec<(Vec<usize>, Vec<usize>)> = plan
            .iter()
            .map(|f| (f.features.clone(), f.row_shape.clone()))
            .collect();
        assert_eq!(got, [(vec![1], vec![]), (vec![0], vec![1])]);

        let odd = ModelSignature {
            inputs: vec![spec("x", DataType::Fp32, &[-1, 3])],
            outputs: vec![],
        };
        let err = feeds(&odd, &features).err().expect("no fit").to_string();
        assert!(
            err.contains("input `x` [-1, 3] is neither a [rows, 2] matrix"),
            "{err}"
        );
    }

    #[test]
    fn nulls_take_the_default_or_name_row_and_column() {
        let at = || "s.csv, line 7".to_owned();
        let with_default = feature("a", Some(0.5));
        assert_eq!(
            number(&with_default, &Cell::Null, "x", &at).expect("default"),
            0.5
        );
        assert_eq!(
            number(&with_default, &Cell::Number(f64::NAN), "x", &at).expect("NaN"),
            0.5
        );
        assert_eq!(
            number(&with_default, &Cell::Text(" 2 ".into()), "x", &at).expect("text"),
            2.0
        );
        let err = number(&feature("b", None), &Cell::Null, "x", &at)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s.csv, line 7, column `b`: no value"),
            "{err}"
        );
        let err = number(&feature("b", None), &Cell::Text("abc".into()), "x", &at)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s.csv, line 7, column `b`: \"abc\" is not a number"),
            "{err}"
        );
    }
}
