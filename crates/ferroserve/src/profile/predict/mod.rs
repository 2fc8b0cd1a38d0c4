//! The model's predictions on the sample, for the profile's prediction
//! distribution: rows are fed to the engine in batches, either as one
//! `[rows, features]` matrix or as one tensor per feature matched by name,
//! and one output with a value per row is read back.

mod output;

use std::sync::Arc;

use anyhow::{bail, Context};
use ferroserve_backend::{EngineChoice, Engines, LoadOptions, LoadedModel, ModelSource, Runner};
use ferroserve_core::ModelSignature;
use ferroserve_monitor::profile::{Cell, ColumnSpec};
use ferroserve_tabular::{Feature, RowEncoder};

use output::{pick_output, prediction_cells, Output};

/// Rows per inference call.
pub const BATCH_ROWS: usize = 256;

/// Loads a model artifact with `engine`; `what` names it in errors.
pub fn load(
    engines: &Engines,
    engine: EngineChoice,
    bytes: Vec<u8>,
    what: &str,
) -> anyhow::Result<Arc<dyn LoadedModel>> {
    let options = LoadOptions {
        max_batch_size: BATCH_ROWS,
        ..LoadOptions::default()
    };
    engines
        .load(engine, &ModelSource::Bytes(Arc::from(bytes)), &options)
        .with_context(|| format!("cannot load the model of {what} with {engine}"))
}

/// Runs a model over the rows pushed to it, a batch at a time.
pub struct Predictor {
    runner: Box<dyn Runner>,
    signature: ModelSignature,
    inputs: RowEncoder,
    output: Output,
}

impl Predictor {
    /// Matches the model's inputs to `features` and picks the prediction
    /// output (`output`, else the first with one value per row).
    pub fn new(
        model: &dyn LoadedModel,
        features: Vec<Feature>,
        output: Option<&str>,
    ) -> anyhow::Result<Self> {
        let signature = model.signature().clone();
        let inputs = RowEncoder::new(&signature, features).context(
            "the sample cannot feed the model (pass --no-predictions to profile without it)",
        )?;
        let output = pick_output(&signature, output)?;
        let runner = model.runner().context("cannot start the model")?;
        Ok(Predictor {
            runner,
            signature,
            inputs,
            output,
        })
    }

    /// The profile builder's prediction column: the output's name, numeric
    /// for float outputs, categorical for the others.
    pub fn spec(&self) -> ColumnSpec {
        ColumnSpec::declared(self.output.name.clone(), self.output.kind)
    }

    /// Buffers one row, whole or not at all; `cells` are the row's feature
    /// cells in feature order, and `at` says where the row is, for errors.
    pub fn push(&mut self, cells: &[Cell], at: &dyn Fn() -> String) -> anyhow::Result<()> {
        self.inputs
            .push(cells, at)
            .context("a row cannot feed the model (fix it, or pass --no-predictions to profile without the model)")
    }

    /// Whether a full batch is waiting.
    pub fn is_full(&self) -> bool {
        self.inputs.rows() >= BATCH_ROWS
    }

    /// Runs the model on the buffered rows and returns one prediction per
    /// row, in order.
    pub fn run(&mut self) -> anyhow::Result<Vec<Cell>> {
        let rows = self.inputs.rows();
        if rows == 0 {
            return Ok(Vec::new());
        }
        let tensors = self.inputs.take()?;
        let tensors = self.signature.validate_inputs(tensors)?;
        let mut outputs = self
            .runner
            .infer(&tensors)
            .with_context(|| format!("the model failed on a batch of {rows} rows"))?;
        if self.output.index >= outputs.len() {
            bail!(
                "the model returned {} outputs; output `{}` is missing",
                outputs.len(),
                self.output.name
            );
        }
        let tensor = outputs.swap_remove(self.output.index);
        prediction_cells(&tensor, rows, &self.output.name, self.output.kind)
    }
}

/// What the tests of `output` use.
#[cfg(test)]
mod test_util {
    use ferroserve_core::{DataType, Dim, TensorSpec};

    /// A tensor spec whose `-1` dimensions are dynamic.
    pub(super) fn spec(name: &str, datatype: DataType, shape: &[i64]) -> TensorSpec {
        TensorSpec::new(
            name,
            datatype,
            shape.iter().map(|&d| Dim::from_i64(d)).collect(),
        )
    }
}
