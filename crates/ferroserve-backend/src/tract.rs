//! tract engine: pure Rust, always available; used when ONNX Runtime is
//! absent or a model asks for it. It lacks some `ai.onnx.ml` operators
//! (ZipMap, LabelEncoder, TreeEnsembleRegressor), which it reports as
//! [`BackendError::UnsupportedOp`] naming the operator.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use ferroserve_core::{half, DataType, Dim, ModelSignature, Tensor, TensorData, TensorSpec};
use tract_onnx::prelude::{
    tract_ndarray, DatumType, Framework, InferenceFact, InferenceModel, InferenceModelExt,
    IntoRunnable, IntoTValue, TDim, TValue, TVec, Tensor as TractTensor, TractError,
    TypedRunnableModel, TypedSimpleState,
};
use tract_onnx::tract_hir::infer::{GenericFactoid, ShapeFactoid};
use tract_onnx::tract_hir::internal::DimLike;
use tract_onnx::Onnx;

use crate::error::panic_message;
use crate::{check_inputs, Backend, BackendError, LoadOptions, LoadedModel, ModelSource, Runner};

/// Engine name used in configuration and messages.
pub const ENGINE: &str = crate::EngineChoice::Tract.as_str();

/// The engine suggested when tract declines a model.
const ALTERNATIVE: &str = "onnxruntime";

/// Name of the symbolic batch dimension given to inputs whose first
/// dimension the model leaves unknown (scikit-learn exports `[None, F]`).
const BATCH_SYMBOL: &str = "N";

/// The tract engine. A runner computes on the thread that calls it;
/// [`LoadOptions::intra_op_threads`] does not apply.
pub struct TractBackend {
    onnx: Onnx,
}

impl TractBackend {
    /// Creates the engine (registers tract's ONNX operators).
    pub fn new() -> TractBackend {
        TractBackend {
            onnx: tract_onnx::onnx(),
        }
    }
}

impl Default for TractBackend {
    fn default() -> Self {
        TractBackend::new()
    }
}

impl std::fmt::Debug for TractBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TractBackend").finish_non_exhaustive()
    }
}

impl Backend for TractBackend {
    fn name(&self) -> &'static str {
        ENGINE
    }

    fn load(
        &self,
        source: &ModelSource,
        _options: &LoadOptions,
    ) -> Result<Arc<dyn LoadedModel>, BackendError> {
        let bytes = source.read()?;
        let prepare = || prepare(&self.onnx, &bytes, source);
        let (plan, signature) = catch_unwind(AssertUnwindSafe(prepare)).map_err(|payload| {
            BackendError::Load(format!(
                "{}: tract failed on this model: {}",
                source.describe(),
                panic_message(payload.as_ref())
            ))
        })??;
        tracing::debug!(model = %source.describe(), signature = %signature, "loaded with tract");
        Ok(Arc::new(TractModel { plan, signature }))
    }
}

/// Parses, types and optimises the model into a runnable plan.
fn prepare(
    onnx: &Onnx,
    bytes: &[u8],
    source: &ModelSource,
) -> Result<(Arc<TypedRunnableModel>, ModelSignature), BackendError> {
    let proto = onnx.proto_model_for_read(&mut &bytes[..]).map_err(|e| {
        BackendError::Load(format!(
            "{} is not a valid ONNX model: {e:#}",
            source.describe()
        ))
    })?;
    if proto.graph.is_none() {
        return Err(BackendError::Load(format!(
            "{} is not a valid ONNX model: it has no graph",
            source.describe()
        )));
    }
    crate::external_data::refuse_in_model(&proto)
        .map_err(|e| BackendError::Load(format!("{}: {e}", source.describe())))?;
    refuse_bf16(&proto)?;
    let mut model = onnx.model_for_proto_model(&proto).map_err(declined)?;
    let missing = unimplemented_ops(&model);
    if !missing.is_empty() {
        return Err(BackendError::UnsupportedOp {
            engine: ENGINE,
            op: missing.join(", "),
            suggestion: ALTERNATIVE,
        });
    }
    set_batch_dims(&mut model).map_err(declined)?;
    let (input_names, output_names) = io_names(&model).map_err(declined)?;
    let typed = model.into_optimized().map_err(declined)?;

    let mut signature = ModelSignature::default();
    for (index, name) in input_names.into_iter().enumerate() {
        let fact = typed.input_fact(index).map_err(declined)?;
        signature
            .inputs
            .push(spec_of(name, fact.datum_type, fact.shape.dims(), "input")?);
    }
    for (index, name) in output_names.into_iter().enumerate() {
        let fact = typed.output_fact(index).map_err(declined)?;
        signature
            .outputs
            .push(spec_of(name, fact.datum_type, fact.shape.dims(), "output")?);
    }
    let plan = typed.into_runnable().map_err(declined)?;
    Ok((plan, signature))
}

/// tract has no bfloat16 element type: a model whose inputs or outputs are
/// BF16 is declined up front, naming the tensor, rather than with whatever
/// tract's parser says about the type.
fn refuse_bf16(proto: &tract_onnx::pb::ModelProto) -> Result<(), BackendError> {
    use tract_onnx::pb::{tensor_proto::DataType as OnnxType, type_proto};
    let Some(graph) = &proto.graph else {
        return Ok(());
    };
    let is_bf16 = |value: &tract_onnx::pb::ValueInfoProto| {
        matches!(
            value.r#type.as_ref().and_then(|t| t.value.as_ref()),
            Some(type_proto::Value::TensorType(t)) if t.elem_type == OnnxType::Bfloat16 as i32
        )
    };
    let roles = [("input", &graph.input), ("output", &graph.output)];
    for (role, values) in roles {
        if let Some(value) = values.iter().find(|v| is_bf16(v)) {
            return Err(BackendError::Unsupported {
                engine: ENGINE,
                reason: format!(
                    "{role} '{}' is BF16 (bfloat16), an element type tract does not have",
                    value.name
                ),
                suggestion: ALTERNATIVE,
            });
        }
    }
    Ok(())
}

/// Operators the model uses that tract does not implement (tract keeps them
/// as placeholder nodes named `Unimplemented(<op>)`).
fn unimplemented_ops(model: &InferenceModel) -> Vec<String> {
    let mut ops: Vec<String> = Vec::new();
    for node in model.nodes() {
        let name = node.op.name();
        if let Some(op) = op_in(&name, "Unimplemented(") {
            if !ops.contains(&op) {
                ops.push(op);
            }
        }
    }
    ops
}

/// The text between `prefix` and the next `)`.
fn op_in(text: &str, prefix: &str) -> Option<String> {
    let start = text.find(prefix)? + prefix.len();
    let len = text[start..].find(')')?;
    let op = &text[start..start + len];
    let valid = !op.is_empty() && op.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| op.to_string())
}

/// Maps an error from tract's parsing, typing or optimisation to the
/// operator it names, or else to a general "cannot load" with the reason.
fn declined(error: TractError) -> BackendError {
    let text = format!("{error:#}");
    let op = op_in(&text, "Unimplemented(").or_else(|| {
        // "Building node <name> (<OpType>)": the operator's builder rejected it.
        let at = text.find("Building node ")?;
        let open = text[at..].find(" (")? + at;
        op_in(&text[open..], " (")
    });
    match op {
        Some(op) => {
            tracing::debug!(%op, error = %text, "tract declined an operator");
            BackendError::UnsupportedOp {
                engine: ENGINE,
                op,
                suggestion: ALTERNATIVE,
            }
        }
        None => BackendError::Unsupported {
            engine: ENGINE,
            reason: shorten(&text, 400),
            suggestion: ALTERNATIVE,
        },
    }
}

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// Gives each input whose first dimension is unknown the symbolic batch
/// dimension `N`, keeping the declared type and other dimensions. Inputs with
/// a fixed or already symbolic first dimension keep it.
fn set_batch_dims(model: &mut InferenceModel) -> Result<(), TractError> {
    let batch = TDim::Sym(model.symbols.sym(BATCH_SYMBOL));
    for index in 0..model.input_outlets()?.len() {
        let fact = model.input_fact(index)?;
        if fact.shape.is_open() {
            continue;
        }
        let mut dims: TVec<GenericFactoid<TDim>> = fact.shape.dims().cloned().collect();
        match dims.first_mut() {
            Some(first @ GenericFactoid::Any) => *first = GenericFactoid::Only(batch.clone()),
            _ => continue,
        }
        let fact = InferenceFact {
            shape: ShapeFactoid::closed(dims),
            ..fact.clone()
        };
        model.set_input_fact(index, fact)?;
    }
    Ok(())
}

/// Input and output names as the ONNX graph declares them.
fn io_names(model: &InferenceModel) -> Result<(Vec<String>, Vec<String>), TractError> {
    let inputs = model
        .input_outlets()?
        .iter()
        .map(|o| model.node(o.node).name.clone())
        .collect();
    let outputs = model
        .output_outlets()?
        .iter()
        .map(|&o| {
            model
                .outlet_label(o)
                .map_or_else(|| model.node(o.node).name.clone(), str::to_string)
        })
        .collect();
    Ok((inputs, outputs))
}

fn data_type(dt: DatumType) -> Option<DataType> {
    Some(match dt {
        DatumType::Bool => DataType::Bool,
        DatumType::U8 => DataType::Uint8,
        DatumType::U16 => DataType::Uint16,
        DatumType::U32 => DataType::Uint32,
        DatumType::U64 => DataType::Uint64,
        DatumType::I8 => DataType::Int8,
        DatumType::I16 => DataType::Int16,
        DatumType::I32 => DataType::Int32,
        DatumType::I64 => DataType::Int64,
        DatumType::F16 => DataType::Fp16,
        DatumType::F32 => DataType::Fp32,
        DatumType::F64 => DataType::Fp64,
        DatumType::String => DataType::Bytes,
        _ => return None,
    })
}

fn spec_of(
    name: String,
    dt: DatumType,
    dims: &[TDim],
    role: &str,
) -> Result<TensorSpec, BackendError> {
    let datatype = data_type(dt).ok_or_else(|| {
        BackendError::Load(format!(
            "{role} '{name}' has element type {dt:?}, which ferroserve cannot serve"
        ))
    })?;
    let shape = dims
        .iter()
        .map(|d| d.to_usize().map_or(Dim::Dynamic, Dim::Fixed))
        .collect();
    Ok(TensorSpec::new(name, datatype, shape))
}

/// A model prepared by tract: the optimised plan, shared by every runner.
struct TractModel {
    plan: Arc<TypedRunnableModel>,
    signature: ModelSignature,
}

impl LoadedModel for TractModel {
    fn signature(&self) -> &ModelSignature {
        &self.signature
    }

    fn engine(&self) -> &'static str {
        ENGINE
    }

    fn runner(&self) -> Result<Box<dyn Runner>, BackendError> {
        Ok(Box::new(TractRunner {
            state: spawn(&self.plan)?,
            plan: self.plan.clone(),
            signature: self.signature.clone(),
        }))
    }
}

fn spawn(plan: &Arc<TypedRunnableModel>) -> Result<TypedSimpleState, BackendError> {
    plan.spawn()
        .map_err(|e| BackendError::Load(format!("tract cannot start this model: {e:#}")))
}

/// One worker's plan state (scratch buffers reused between runs).
struct TractRunner {
    plan: Arc<TypedRunnableModel>,
    state: TypedSimpleState,
    signature: ModelSignature,
}

impl Runner for TractRunner {
    fn infer(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, BackendError> {
        check_inputs(&self.signature, inputs)?;
        let values = inputs
            .iter()
            .map(input_value)
            .collect::<Result<TVec<TValue>, _>>()?;
        let state = &mut self.state;
        let outputs = match catch_unwind(AssertUnwindSafe(|| state.run(values))) {
            Ok(result) => result.map_err(|e| BackendError::Inference(format!("{e:#}")))?,
            Err(payload) => {
                // The state may be half updated: start the next run afresh.
                self.state = spawn(&self.plan)?;
                return Err(BackendError::Inference(format!(
                    "tract failed: {}",
                    panic_message(payload.as_ref())
                )));
            }
        };
        if outputs.len() != self.signature.outputs.len() {
            return Err(BackendError::Inference(format!(
                "tract returned {} outputs, the model declares {}",
                outputs.len(),
                self.signature.outputs.len()
            )));
        }
        self.signature
            .outputs
            .iter()
            .zip(outputs.iter())
            .map(|(spec, value)| output_tensor(&spec.name, value))
            .collect()
    }
}

fn input_value(tensor: &Tensor) -> Result<TValue, BackendError> {
    let shape = tensor.shape.as_slice();
    macro_rules! copy {
        ($v:expr) => {
            TractTensor::from_shape(shape, $v.as_slice())
        };
    }
    let converted = match &tensor.data {
        TensorData::Bool(v) => copy!(v),
        TensorData::Uint8(v) => copy!(v),
        TensorData::Uint16(v) => copy!(v),
        TensorData::Uint32(v) => copy!(v),
        TensorData::Uint64(v) => copy!(v),
        TensorData::Int8(v) => copy!(v),
        TensorData::Int16(v) => copy!(v),
        TensorData::Int32(v) => copy!(v),
        TensorData::Int64(v) => copy!(v),
        TensorData::Fp16(v) => copy!(v),
        TensorData::Bf16(_) => return Err(bf16_unsupported(&tensor.name)),
        TensorData::Fp32(v) => copy!(v),
        TensorData::Fp64(v) => copy!(v),
        TensorData::Bytes(items) => {
            let strings = strings(&tensor.name, items)?;
            tract_ndarray::ArrayD::from_shape_vec(shape, strings)
                .map(TractTensor::from)
                .map_err(TractError::from)
        }
    };
    converted.map(IntoTValue::into_tvalue).map_err(|e| {
        BackendError::Input(format!(
            "input '{}' cannot be passed to tract: {e:#}",
            tensor.name
        ))
    })
}

/// tract has no bfloat16 element type: a BF16 model is refused at load
/// (its input has no tract type), so this only meets a BF16 tensor sent to
/// an input of another type, which the signature check catches first.
fn bf16_unsupported(name: &str) -> BackendError {
    BackendError::Input(format!(
        "input '{name}' is BF16, which tract cannot compute with; load the model with onnxruntime"
    ))
}

/// The elements of a `BYTES` input as strings (tract strings are UTF-8).
fn strings(name: &str, items: &[Vec<u8>]) -> Result<Vec<String>, BackendError> {
    items
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            String::from_utf8(bytes.clone()).map_err(|e| {
                BackendError::Input(format!(
                    "input '{name}': element {index} is not valid UTF-8 ({e}); tract string tensors hold UTF-8 text"
                ))
            })
        })
        .collect()
}

fn output_tensor(name: &str, value: &TractTensor) -> Result<Tensor, BackendError> {
    let failed = |e: TractError| BackendError::Inference(format!("output '{name}': {e:#}"));
    macro_rules! copy {
        ($t:ty, $variant:ident) => {
            TensorData::$variant(
                value
                    .to_plain_array_view::<$t>()
                    .map_err(failed)?
                    .iter()
                    .cloned()
                    .collect(),
            )
        };
    }
    let data = match value.datum_type() {
        DatumType::Bool => copy!(bool, Bool),
        DatumType::U8 => copy!(u8, Uint8),
        DatumType::U16 => copy!(u16, Uint16),
        DatumType::U32 => copy!(u32, Uint32),
        DatumType::U64 => copy!(u64, Uint64),
        DatumType::I8 => copy!(i8, Int8),
        DatumType::I16 => copy!(i16, Int16),
        DatumType::I32 => copy!(i32, Int32),
        DatumType::I64 => copy!(i64, Int64),
        DatumType::F16 => copy!(half::f16, Fp16),
        DatumType::F32 => copy!(f32, Fp32),
        DatumType::F64 => copy!(f64, Fp64),
        DatumType::String => TensorData::Bytes(
            value
                .to_plain_array_view::<String>()
                .map_err(failed)?
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect(),
        ),
        other => {
            return Err(BackendError::Inference(format!(
                "output '{name}' has element type {other:?}, which ferroserve cannot return"
            )))
        }
    };
    Tensor::new(name, value.shape().to_vec(), data).map_err(|e| BackendError::Inference(e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names_are_found_in_tract_messages() {
        assert_eq!(
            op_in(
                "Failed analyse for node #2 \"zm\" Unimplemented(ZipMap)",
                "Unimplemented("
            ),
            Some("ZipMap".to_string())
        );
        let error = declined(TractError::msg(
            "Translating proto model to model: Building node tree (TreeEnsembleRegressor)",
        ));
        assert_eq!(
            error.to_string(),
            "engine tract does not support op TreeEnsembleRegressor; use engine onnxruntime"
        );
        let error = declined(TractError::msg("Could not resolve inputs"));
        assert!(matches!(error, BackendError::Unsupported { .. }), "{error}");
    }

    #[test]
    fn long_reasons_are_shortened_on_a_char_boundary() {
        assert_eq!(shorten("héllo", 2), "hé...");
        assert_eq!(shorten("ok", 5), "ok");
    }
}
