//! Request inputs built from a model's metadata: concrete shapes, random
//! tensors, and tensors filled from the rows of an input file.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use ferroserve_core::tensor::element_count;
use ferroserve_core::{Cell, DataType, Dim, TensorSpec};
use rand::Rng;

use super::rows::Rows;

/// Element values of one input tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Numeric and boolean elements (booleans as 0/1).
    Numbers(Vec<f64>),
    /// `BYTES` elements.
    Strings(Vec<String>),
}

/// One input of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct InputTensor {
    /// Input name.
    pub name: String,
    /// Element type.
    pub datatype: DataType,
    /// Concrete shape.
    pub shape: Vec<usize>,
    /// Elements.
    pub values: Values,
}

/// Concrete shape of every input: `--shape` when given, else the declared
/// shape with a dynamic first dimension set to `batch_rows`.
pub fn resolve_shapes(
    model: &str,
    specs: &[TensorSpec],
    batch_rows: usize,
    given: &BTreeMap<String, Vec<usize>>,
) -> anyhow::Result<Vec<Vec<usize>>> {
    let shapes = specs
        .iter()
        .map(|spec| {
            if let Some(dims) = given.get(&spec.name) {
                return Ok(dims.clone());
            }
            spec.shape
                .iter()
                .enumerate()
                .map(|(i, dim)| match (i, dim) {
                    (_, Dim::Fixed(n)) => Ok(*n),
                    (0, Dim::Dynamic) => Ok(batch_rows),
                    (_, Dim::Dynamic) => bail!(
                        "input {:?} of model {model} has dynamic dimension {i} (shape {}); give its full shape with --shape {}=D1,D2,...",
                        spec.name,
                        shape_text(&spec.shape),
                        spec.name
                    ),
                })
                .collect()
        })
        .collect::<anyhow::Result<Vec<Vec<usize>>>>()?;
    // Every later product of these dimensions (whole inputs, rows) is
    // then known not to overflow.
    for (spec, shape) in specs.iter().zip(&shapes) {
        let row = shape.get(1..).unwrap_or_default();
        if element_count(shape).is_none() || element_count(row).is_none() {
            bail!(
                "input {:?} of model {model}: shape {shape:?} holds more values than memory can",
                spec.name
            );
        }
    }
    Ok(shapes)
}

fn shape_text(shape: &[Dim]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.as_i64().to_string()).collect();
    format!("[{}]", dims.join(", "))
}

/// Random inputs: floats uniform in [0, 1), integers in [0, 10), booleans
/// and short strings.
pub fn random_inputs(
    specs: &[TensorSpec],
    shapes: &[Vec<usize>],
    rng: &mut impl Rng,
) -> Vec<InputTensor> {
    specs
        .iter()
        .zip(shapes)
        .map(|(spec, shape)| {
            let count = shape.iter().product::<usize>();
            let values = match spec.datatype {
                DataType::Bytes => Values::Strings(
                    (0..count)
                        .map(|_| format!("k{}", rng.random_range(0..1_000_000u32)))
                        .collect(),
                ),
                float if float.is_float() => {
                    Values::Numbers((0..count).map(|_| rng.random::<f64>()).collect())
                }
                DataType::Bool => Values::Numbers(
                    (0..count)
                        .map(|_| f64::from(u8::from(rng.random::<bool>())))
                        .collect(),
                ),
                _ => Values::Numbers(
                    (0..count)
                        .map(|_| f64::from(rng.random_range(0..10u8)))
                        .collect(),
                ),
            };
            InputTensor {
                name: spec.name.clone(),
                datatype: spec.datatype,
                shape: shape.clone(),
                values,
            }
        })
        .collect()
}

/// Inputs of up to `keys` requests of `batch_rows` rows each from `rows`.
/// Either every input is one column matched by name (one element per row),
/// or the model has a single input and each row holds its elements in order.
pub fn file_inputs(
    model: &str,
    specs: &[TensorSpec],
    shapes: &[Vec<usize>],
    rows: &Rows,
    batch_rows: usize,
    keys: usize,
) -> anyhow::Result<Vec<Vec<InputTensor>>> {
    let layout = Layout::choose(model, specs, shapes, rows)?;
    let groups = (rows.rows.len() / batch_rows).clamp(1, keys);
    (0..groups)
        .map(|g| {
            let start = g * batch_rows;
            let end = (start + batch_rows).min(rows.rows.len());
            let group = &rows.rows[start..end];
            specs
                .iter()
                .zip(shapes)
                .enumerate()
                .map(|(i, (spec, shape))| {
                    let cells: Vec<&Cell> = match &layout {
                        Layout::ByName(columns) => group.iter().map(|r| &r[columns[i]]).collect(),
                        Layout::WholeRow => group.iter().flatten().collect(),
                    };
                    let mut shape = shape.clone();
                    shape[0] = group.len();
                    let expected = shape.iter().product::<usize>();
                    let values = values_of(&cells, spec.datatype, expected).with_context(|| {
                        format!(
                            "{}, rows {}..{}: input {:?} of model {model}",
                            rows.source,
                            start + 1,
                            end,
                            spec.name
                        )
                    })?;
                    Ok(InputTensor {
                        name: spec.name.clone(),
                        datatype: spec.datatype,
                        shape,
                        values,
                    })
                })
                .collect()
        })
        .collect()
}

/// How file columns map onto model inputs.
enum Layout {
    /// Column index of each input.
    ByName(Vec<usize>),
    /// The single input takes the whole row.
    WholeRow,
}

impl Layout {
    fn choose(
        model: &str,
        specs: &[TensorSpec],
        shapes: &[Vec<usize>],
        rows: &Rows,
    ) -> anyhow::Result<Layout> {
        if rows.rows.is_empty() {
            bail!("{} has no rows", rows.source);
        }
        if shapes.iter().any(|s| s.is_empty()) {
            bail!("model {model} has a scalar input: file rows need a first (batch) dimension");
        }
        let per_row = |shape: &Vec<usize>| shape[1..].iter().product::<usize>();
        if let Some(columns) = &rows.columns {
            let found: Option<Vec<usize>> = specs
                .iter()
                .map(|s| columns.iter().position(|c| c == &s.name))
                .collect();
            if let Some(found) = found {
                return Ok(Layout::ByName(found));
            }
        }
        let [shape] = shapes else {
            let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            bail!(
                "model {model} has {} inputs ({}); {} must have a column named after each",
                specs.len(),
                names.join(", "),
                rows.source
            );
        };
        let width = rows.rows[0].len();
        if let Some((line, row)) = rows.rows.iter().enumerate().find(|(_, r)| r.len() != width) {
            bail!(
                "{}: row {} has {} values, the first row {width}",
                rows.source,
                line + 1,
                row.len()
            );
        }
        if width != per_row(shape) {
            bail!(
                "{} has {width} values per row but input {:?} of model {model} takes {} per row (shape {:?}); leave out columns that are not inputs with --exclude COL, or pick the features with --schema FILE",
                rows.source,
                specs[0].name,
                per_row(shape),
                shape
            );
        }
        Ok(Layout::WholeRow)
    }
}

/// Elements of `cells`, `expected` of them.
fn values_of(cells: &[&Cell], datatype: DataType, expected: usize) -> anyhow::Result<Values> {
    let values = if datatype == DataType::Bytes {
        let strings = cells
            .iter()
            .map(|cell| cell.category_text().context("a cell has no value"))
            .collect::<anyhow::Result<Vec<String>>>()?;
        Values::Strings(strings)
    } else {
        let numbers = cells
            .iter()
            .map(|cell| number(cell, datatype))
            .collect::<anyhow::Result<Vec<f64>>>()?;
        Values::Numbers(numbers)
    };
    let found = match &values {
        Values::Numbers(v) => v.len(),
        Values::Strings(v) => v.len(),
    };
    if found != expected {
        bail!(
            "{found} values for {} rows, the input takes {expected} ({} per row)",
            cells.len(),
            expected / cells.len().max(1)
        );
    }
    Ok(values)
}

/// The number of a cell of a numeric input; booleans read as 0/1.
fn number(cell: &Cell, datatype: DataType) -> anyhow::Result<f64> {
    match (cell.number(), cell) {
        (Ok(Some(x)), _) => Ok(x),
        (Ok(None), _) => bail!("a cell has no value but the input is {}", datatype.as_str()),
        (Err(_), Cell::Text(t)) if matches!(t.trim(), "true" | "True") => Ok(1.0),
        (Err(_), Cell::Text(t)) if matches!(t.trim(), "false" | "False") => Ok(0.0),
        (Err(_), _) => bail!(
            "{:?} is not a number but the input is {}",
            cell.category_text().unwrap_or_default(),
            datatype.as_str()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn iris_spec() -> Vec<TensorSpec> {
        vec![TensorSpec::new(
            "input",
            DataType::Fp32,
            vec![Dim::Dynamic, Dim::Fixed(4)],
        )]
    }

    #[test]
    fn shapes_fill_the_batch_dimension_only() {
        let shapes = resolve_shapes("iris", &iris_spec(), 3, &BTreeMap::new()).unwrap();
        assert_eq!(shapes, vec![vec![3, 4]]);
        let open = vec![TensorSpec::new(
            "x",
            DataType::Fp32,
            vec![Dim::Dynamic, Dim::Dynamic],
        )];
        let err = resolve_shapes("m", &open, 1, &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("--shape x="), "{err}");
        let given = BTreeMap::from([("x".to_string(), vec![2, 5])]);
        assert_eq!(
            resolve_shapes("m", &open, 1, &given).unwrap(),
            vec![vec![2, 5]]
        );
    }

    #[test]
    fn random_inputs_match_their_shapes() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let inputs = random_inputs(&iris_spec(), &[vec![2, 4]], &mut rng);
        let Values::Numbers(values) = &inputs[0].values else {
            panic!("numbers expected")
        };
        assert_eq!(values.len(), 8);
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
    }

    #[test]
    fn file_rows_fill_a_single_input_in_order() {
        let rows = Rows {
            source: "rows.csv".into(),
            columns: Some(vec!["a".into(), "b".into(), "c".into(), "d".into()]),
            rows: (0..5)
                .map(|r| (0..4).map(|c| Cell::Number(f64::from(r * 4 + c))).collect())
                .collect(),
        };
        let inputs = file_inputs("iris", &iris_spec(), &[vec![2, 4]], &rows, 2, 10).unwrap();
        // Five rows make two full requests of two rows.
        assert_eq!(inputs.len(), 2);
        assert_eq!(inputs[1][0].shape, vec![2, 4]);
        assert_eq!(
            inputs[1][0].values,
            Values::Numbers((8..16).map(f64::from).collect())
        );
        let narrow = Rows {
            rows: vec![vec![Cell::Number(1.0)]],
            ..rows
        };
        let err = file_inputs("iris", &iris_spec(), &[vec![1, 4]], &narrow, 1, 10).unwrap_err();
        assert!(err.to_string().contains("takes 4 per row"), "{err}");
    }

    #[test]
    fn text_cells_read_as_numbers_and_booleans() {
        let cells = [
            Cell::Text(" 2.5".into()),
            Cell::Text("True".into()),
            Cell::Number(1.0),
        ];
        let cells: Vec<&Cell> = cells.iter().collect();
        assert_eq!(
            values_of(&cells, DataType::Fp32, 3).expect("numbers"),
            Values::Numbers(vec![2.5, 1.0, 1.0])
        );
        let err = values_of(&[&Cell::Text("x".into())], DataType::Fp32, 1).unwrap_err();
        assert!(err.to_string().contains("\"x\" is not a number"), "{err}");
        let err = values_of(&[&Cell::Null], DataType::Bytes, 1).unwrap_err();
        assert!(err.to_string().contains("no value"), "{err}");
    }

    #[test]
    fn named_columns_fill_one_input_each() {
        let specs = vec![
            TensorSpec::new("y", DataType::Int64, vec![Dim::Dynamic, Dim::Fixed(1)]),
            TensorSpec::new("x", DataType::Bytes, vec![Dim::Dynamic]),
        ];
        let rows = Rows {
            source: "rows.jsonl".into(),
            columns: Some(vec!["x".into(), "y".into()]),
            rows: vec![vec![Cell::Text("a".into()), Cell::Text("3".into())]],
        };
        let inputs = file_inputs("m", &specs, &[vec![1, 1], vec![1]], &rows, 1, 10).unwrap();
        assert_eq!(inputs[0][0].values, Values::Numbers(vec![3.0]));
        assert_eq!(inputs[0][1].values, Values::Strings(vec!["a".into()]));
    }
}
