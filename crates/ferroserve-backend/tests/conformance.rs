//! Conformance suite: every engine runs every reference model under
//! `testdata/` and must match the outputs recorded there by ONNX Runtime's
//! Python package (`testdata/make_models.py`).
//!
//! Tolerance: floating-point outputs match when `|a - b| <= tol * max(1, |b|)`
//! (`b` the reference value), `tol` 1e-5 for FP32 and FP64 and one unit in
//! the last place for the half types (2^-10 for FP16, 2^-7 for BF16: engines
//! may round an intermediate differently); integers, booleans and strings
//! match exactly.
//!
//! ONNX Runtime must run every model; tract may instead decline a model with
//! [`BackendError::UnsupportedOp`] or [`BackendError::Unsupported`], and the
//! suite prints which ones it declined and asserts the reason for those it
//! must decline (BF16: tract has no bfloat16). Without the ONNX Runtime library these tests fail: run
//! `scripts/python-env.sh runtime` first.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferroserve_backend::{
    Backend, BackendError, EngineChoice, Engines, LoadOptions, LoadedModel, ModelSource,
    OrtBackend, TractBackend,
};
use ferroserve_core::half::{bf16, f16};
use ferroserve_core::{DataType, Dim, Tensor, TensorData};
use serde_json::Value;

/// Relative tolerance for FP32 and FP64 outputs (see the module docs).
const TOLERANCE: f64 = 1e-5;
/// Relative tolerance for FP16 outputs: one unit in the last place.
const FP16_TOLERANCE: f64 = 1.0 / 1024.0;
/// Relative tolerance for BF16 outputs: one unit in the last place.
const BF16_TOLERANCE: f64 = 1.0 / 128.0;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn model_path(file: &str) -> PathBuf {
    testdata().join("models").join(file)
}

fn ort() -> OrtBackend {
    OrtBackend::new(None).unwrap_or_else(|e| {
        panic!(
            "the conformance suite needs ONNX Runtime: {e}\n\
             install it with `scripts/python-env.sh runtime` (or set ORT_DYLIB_PATH)"
        )
    })
}

fn engines() -> Vec<Box<dyn Backend>> {
    vec![Box::new(ort()), Box::new(TractBackend::new())]
}

/// One reference file: a model, its inputs and the expected outputs.
struct Case {
    file: String,
    model: String,
    inputs: Vec<Tensor>,
    outputs: Vec<Tensor>,
}

fn cases() -> Vec<Case> {
    let dir = testdata().join("reference");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no reference files in {}", dir.display());
    files.iter().map(|path| read_case(path)).collect()
}

fn read_case(path: &Path) -> Case {
    let text = std::fs::read_to_string(path).expect("readable reference file");
    let json: Value = serde_json::from_str(&text).expect("reference file is JSON");
    let tensors = |key: &str| -> Vec<Tensor> {
        json[key]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no {key} array", path.display()))
            .iter()
            .map(tensor_of)
            .collect()
    };
    Case {
        file: path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into(),
        model: json["model"].as_str().expect("model name").to_string(),
        inputs: tensors("inputs"),
        outputs: tensors("outputs"),
    }
}

fn tensor_of(json: &Value) -> Tensor {
    let name = json["name"].as_str().expect("tensor name");
    let datatype: DataType = json["datatype"]
        .as_str()
        .expect("datatype")
        .parse()
        .expect("known datatype");
    let shape: Vec<usize> = json["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().expect("dimension") as usize)
        .collect();
    let items = json["data"].as_array().expect("data");
    let f64s = || items.iter().map(|v| v.as_f64().expect("number"));
    let i64s = || items.iter().map(|v| v.as_i64().expect("integer"));
    let data = match datatype {
        DataType::Fp16 => TensorData::Fp16(f64s().map(f16::from_f64).collect()),
        DataType::Bf16 => TensorData::Bf16(f64s().map(bf16::from_f64).collect()),
        DataType::Fp32 => TensorData::Fp32(f64s().map(|v| v as f32).collect()),
        DataType::Fp64 => TensorData::Fp64(f64s().collect()),
        DataType::Int64 => TensorData::Int64(i64s().collect()),
        DataType::Int32 => TensorData::Int32(i64s().map(|v| v as i32).collect()),
        DataType::Bool => {
            TensorData::Bool(items.iter().map(|v| v.as_bool().expect("bool")).collect())
        }
        DataType::Bytes => TensorData::Bytes(
            items
                .iter()
                .map(|v| v.as_str().expect("string").as_bytes().to_vec())
                .collect(),
        ),
        other => panic!("reference datatype {other} is not used by the suite"),
    };
    Tensor::new(name, shape, data).expect("consistent reference tensor")
}

/// Differences between `actual` and `expected`, empty when they match.
fn compare(actual: &Tensor, expected: &Tensor) -> Vec<String> {
    let name = &expected.name;
    if actual.shape != expected.shape {
        return vec![format!(
            "output '{name}': shape {:?}, expected {:?}",
            actual.shape, expected.shape
        )];
    }
    fn wide<T: Copy + Into<f64>>(values: &[T]) -> Vec<f64> {
        values.iter().map(|&v| v.into()).collect()
    }
    let floats: Option<(Vec<f64>, Vec<f64>, f64)> = match (&actual.data, &expected.data) {
        (TensorData::Fp16(a), TensorData::Fp16(b)) => Some((wide(a), wide(b), FP16_TOLERANCE)),
        (TensorData::Bf16(a), TensorData::Bf16(b)) => Some((wide(a), wide(b), BF16_TOLERANCE)),
        (TensorData::Fp32(a), TensorData::Fp32(b)) => Some((wide(a), wide(b), TOLERANCE)),
        (TensorData::Fp64(a), TensorData::Fp64(b)) => Some((a.clone(), b.clone(), TOLERANCE)),
        _ => None,
    };
    match floats {
        Some((a, b, tolerance)) => a
            .iter()
            .zip(&b)
            .enumerate()
            .filter(|(_, (&a, &b))| (a - b).abs() > tolerance * b.abs().max(1.0))
            .take(3)
            .map(|(i, (a, b))| format!("output '{name}'[{i}]: {a}, expected {b}"))
            .collect(),
        None if actual.data == expected.data => Vec::new(),
        None => vec![format!(
            "output '{name}': {:?}, expected {:?}",
            actual.data, expected.data
        )],
    }
}

/// Checks what the engine declares against the reference tensors.
fn check_signature(model: &dyn LoadedModel, case: &Case) -> Vec<String> {
    let signature = model.signature();
    let mut problems = Vec::new();
    let fixed_batch = case.model == "mlp_fixed.onnx";
    for expected in &case.inputs {
        let Some(spec) = signature.input(&expected.name) else {
            problems.push(format!("input '{}' is not in the signature", expected.name));
            continue;
        };
        if spec.datatype != expected.datatype() || spec.shape.len() != expected.shape.len() {
            problems.push(format!(
                "input '{}': declared {} of rank {}, reference is {} {:?}",
                spec.name,
                spec.datatype,
                spec.shape.len(),
                expected.datatype(),
                expected.shape
            ));
        }
        let batch = spec.shape.first().copied();
        let want = if fixed_batch {
            Some(Dim::Fixed(1))
        } else {
            Some(Dim::Dynamic)
        };
        if batch != want {
            problems.push(format!(
                "input '{}': batch dimension {batch:?}, expected {want:?}",
                spec.name
            ));
        }
    }
    let names: Vec<&str> = signature.outputs.iter().map(|s| s.name.as_str()).collect();
    let expected: Vec<&str> = case.outputs.iter().map(|t| t.name.as_str()).collect();
    if names != expected {
        problems.push(format!("outputs {names:?}, expected {expected:?}"));
    }
    for (spec, tensor) in signature.outputs.iter().zip(&case.outputs) {
        if spec.datatype != tensor.datatype() {
            problems.push(format!(
                "output '{}': declared {}, reference is {}",
                spec.name,
                spec.datatype,
                tensor.datatype()
            ));
        }
    }
    problems
}

/// Result of one engine on one case.
enum Outcome {
    Passed,
    Declined(String),
    Failed(Vec<String>),
}

fn run_case(engine: &dyn Backend, case: &Case) -> Outcome {
    let source = ModelSource::File(model_path(&case.model));
    let model = match engine.load(&source, &LoadOptions::default()) {
        Ok(model) => model,
        Err(error @ (BackendError::UnsupportedOp { .. } | BackendError::Unsupported { .. })) => {
            return Outcome::Declined(error.to_string())
        }
        Err(error) => return Outcome::Failed(vec![format!("load: {error}")]),
    };
    assert_eq!(model.engine(), engine.name());
    let mut problems = check_signature(model.as_ref(), case);
    let outputs = model
        .runner()
        .and_then(|mut runner| runner.infer(&case.inputs));
    match outputs {
        Ok(outputs) if outputs.len() == case.outputs.len() => {
            for (actual, expected) in outputs.iter().zip(&case.outputs) {
                if actual.name != expected.name {
                    problems.push(format!(
                        "output '{}' where '{}' was expected",
                        actual.name, expected.name
                    ));
                }
                problems.extend(compare(actual, expected));
            }
        }
        Ok(outputs) => problems.push(format!(
            "{} outputs, expected {}",
            outputs.len(),
            case.outputs.len()
        )),
        Err(error) => problems.push(format!("infer: {error}")),
    }
    if problems.is_empty() {
        Outcome::Passed
    } else {
        Outcome::Failed(problems)
    }
}

/// Runs every case on `engine`; returns the declined models with the
/// engine's reason, and panics with every failure at once.
fn run_all(engine: &dyn Backend) -> Vec<(String, String)> {
    let mut declined = Vec::new();
    let mut failures = Vec::new();
    for case in cases() {
        match run_case(engine, &case) {
            Outcome::Passed => println!("{} {}: ok", engine.name(), case.model),
            Outcome::Declined(why) => {
                println!("{} {}: declined ({why})", engine.name(), case.model);
                declined.push((case.model.clone(), why));
            }
            Outcome::Failed(problems) => failures.push(format!(
                "{} ({}):\n  {}",
                case.model,
                case.file,
                problems.join("\n  ")
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "engine {} failed:\n{}",
        engine.name(),
        failures.join("\n")
    );
    declined
}

#[test]
fn onnxruntime_matches_every_reference() {
    let declined = run_all(&ort());
    assert!(declined.is_empty(), "onnxruntime declined {declined:?}");
}

#[test]
fn tract_matches_or_declines_every_reference() {
    let declined = run_all(&TractBackend::new());
    println!("tract declined: {declined:?}");
    let reason = |model: &str| declined.iter().find(|(m, _)| m == model).map(|(_, r)| r);
    for model in [
        "mlp.onnx",
        "cnn.onnx",
        "mlp_fixed.onnx",
        "add_int64.onnx",
        "scale_f64.onnx",
        "scale_fp16.onnx",
    ] {
        assert_eq!(reason(model), None, "tract must run {model}");
    }
    assert_eq!(
        reason("scale_bf16.onnx").map(String::as_str),
        Some(
            "engine tract cannot load this model: input 'x' is BF16 (bfloat16), an element type \
             tract does not have; use engine onnxruntime"
        ),
        "tract has no bfloat16: it must decline the BF16 model and say why"
    );
}

fn load(engine: &dyn Backend, file: &str) -> Arc<dyn LoadedModel> {
    engine
        .load(
            &ModelSource::File(model_path(file)),
            &LoadOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{} cannot load {file}: {e}", engine.name()))
}

fn mlp_input(rows: usize) -> Tensor {
    let data = (0..rows * 256)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    Tensor::new("input", vec![rows, 256], TensorData::Fp32(data)).expect("valid input")
}

#[test]
fn fixed_batch_model_declares_and_runs_its_fixed_shape() {
    for engine in engines() {
        let model = load(engine.as_ref(), "mlp_fixed.onnx");
        let spec = &model.signature().inputs[0];
        assert_eq!(
            spec.shape,
            vec![Dim::Fixed(1), Dim::Fixed(4)],
            "{}",
            engine.name()
        );
        assert!(!model.signature().supports_batching());
        let input =
            Tensor::new("input", vec![1, 4], TensorData::Fp32(vec![0.5; 4])).expect("valid");
        let outputs = model
            .runner()
            .and_then(|mut r| r.infer(&[input]))
            .expect("runs");
        assert_eq!(outputs[0].shape, vec![1, 2], "{}", engine.name());
        let wrong =
            Tensor::new("input", vec![2, 4], TensorData::Fp32(vec![0.5; 8])).expect("valid");
        let error = model
            .runner()
            .and_then(|mut r| r.infer(&[wrong]))
            .unwrap_err();
        assert!(
            matches!(error, BackendError::Input(_)),
            "{}: {error}",
            engine.name()
        );
    }
}

#[test]
fn mlp_runs_batches_of_1_and_7_with_the_same_rows() {
    for engine in engines() {
        let model = load(engine.as_ref(), "mlp.onnx");
        let mut runner = model.runner().expect("runner");
        let seven = runner.infer(&[mlp_input(7)]).expect("batch of 7");
        assert_eq!(seven[0].shape, vec![7, 10], "{}", engine.name());
        let one = runner.infer(&[mlp_input(1)]).expect("batch of 1");
        assert_eq!(one[0].shape, vec![1, 10], "{}", engine.name());
        let first_row = seven[0].slice_rows(0, 1).expect("row 0");
        let problems = compare(&one[0], &first_row);
        assert!(problems.is_empty(), "{}: {problems:?}", engine.name());
    }
}

#[test]
fn runners_of_one_model_are_independent() {
    for engine in engines() {
        let model = load(engine.as_ref(), "mlp.onnx");
        let mut a = model.runner().expect("runner");
        let mut b = model.runner().expect("runner");
        let from_a = a.infer(&[mlp_input(3)]).expect("runs");
        let from_b = b.infer(&[mlp_input(3)]).expect("runs");
        assert!(
            compare(&from_a[0], &from_b[0]).is_empty(),
            "{}",
            engine.name()
        );
    }
}

#[test]
fn non_onnx_bytes_are_a_load_error() {
    let text = Arc::<[u8]>::from(&b"this is a text file, not an ONNX model\n"[..]);
    let noise: Arc<[u8]> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for engine in engines() {
        for bytes in [text.clone(), noise.clone(), Arc::from(&b""[..])] {
            let error = engine
                .load(&ModelSource::Bytes(bytes), &LoadOptions::default())
                .err()
                .unwrap_or_else(|| panic!("{} accepted a non-ONNX file", engine.name()));
            assert!(
                matches!(error, BackendError::Load(_)),
                "{}: {error}",
                engine.name()
            );
        }
    }
    let missing = ModelSource::File(model_path("no_such_model.onnx"));
    let error = TractBackend::new()
        .load(&missing, &LoadOptions::default())
        .err();
    assert!(matches!(error, Some(BackendError::Load(m)) if m.contains("no_such_model.onnx")));
}

#[test]
fn truncated_onnx_is_a_clear_error() {
    let bytes = std::fs::read(model_path("mlp.onnx")).expect("mlp.onnx");
    for cut in [bytes.len() / 2, bytes.len() - 7, 40] {
        let truncated = ModelSource::Bytes(Arc::from(&bytes[..cut]));
        for engine in engines() {
            let error = engine
                .load(&truncated, &LoadOptions::default())
                .err()
                .unwrap_or_else(|| panic!("{} accepted a truncated model", engine.name()));
            assert!(
                matches!(
                    error,
                    BackendError::Load(_) | BackendError::Unsupported { .. }
                ),
                "{} on {cut} bytes: {error}",
                engine.name()
            );
        }
    }
}

#[test]
fn non_utf8_string_input_names_the_input() {
    let model = load(&ort(), "string_label.onnx");
    let input = Tensor::new(
        "text",
        vec![1, 1],
        TensorData::Bytes(vec![vec![0xff, 0xfe]]),
    )
    .expect("valid");
    let error = model
        .runner()
        .and_then(|mut r| r.infer(&[input]))
        .unwrap_err();
    assert!(
        matches!(&error, BackendError::Input(m) if m.contains("'text'")),
        "{error}"
    );
}

#[test]
fn wrong_inputs_are_input_errors() {
    for engine in engines() {
        let model = load(engine.as_ref(), "add_int64.onnx");
        let mut runner = model.runner().expect("runner");
        let a = Tensor::new("a", vec![1, 3], TensorData::Int64(vec![1, 2, 3])).expect("valid");
        let b_f32 = Tensor::new("b", vec![1, 3], TensorData::Fp32(vec![1.0; 3])).expect("valid");
        for inputs in [vec![a.clone()], vec![a.clone(), b_f32]] {
            let error = runner.infer(&inputs).unwrap_err();
            assert!(
                matches!(error, BackendError::Input(_)),
                "{}: {error}",
                engine.name()
            );
        }
        let b = Tensor::new("b", vec![1, 3], TensorData::Int64(vec![-5, 0, 5])).expect("valid");
        let outputs = runner.infer(&[a, b]).expect("valid inputs run");
        assert_eq!(outputs[0].data, TensorData::Int64(vec![-4, 2, 8]));
        assert_eq!(outputs[1].data, TensorData::Bool(vec![false, true, true]));
    }
}

#[test]
fn engines_pick_onnxruntime_when_present() {
    let engines = Engines::discover(None);
    assert!(engines.ort_available(), "{}", engines.ort_status());
    assert!(
        engines.ort_status().starts_with("onnxruntime 1."),
        "{}",
        engines.ort_status()
    );
    let source = ModelSource::File(model_path("mlp.onnx"));
    let options = LoadOptions::default();
    for (choice, engine) in [
        (EngineChoice::Auto, "onnxruntime"),
        (EngineChoice::OnnxRuntime, "onnxruntime"),
        (EngineChoice::Tract, "tract"),
    ] {
        let model = engines.load(choice, &source, &options).expect("loads");
        assert_eq!(model.engine(), engine);
    }
}

#[test]
fn fp16_runs_on_both_engines_and_other_widths_are_input_errors() {
    let x = |data: TensorData| Tensor::new("x", vec![1, 2], data).expect("valid");
    let halves = [1.5, -3.0].map(f16::from_f64).to_vec();
    for engine in engines() {
        let model = load(engine.as_ref(), "scale_fp16.onnx");
        let mut runner = model.runner().expect("runner");
        let outputs = runner
            .infer(&[x(TensorData::Fp16(halves.clone()))])
            .expect("FP16 runs");
        let expected = [3.5, -5.5].map(f16::from_f64).to_vec();
        assert_eq!(
            outputs[0].data,
            TensorData::Fp16(expected),
            "{}",
            engine.name()
        );
        for wrong in [
            TensorData::Bf16(vec![bf16::ONE; 2]),
            TensorData::Fp32(vec![1.0; 2]),
        ] {
            let error = runner.infer(&[x(wrong)]).unwrap_err();
            assert!(
                matches!(&error, BackendError::Input(m) if m.contains("'x'")),
                "{}: {error}",
                engine.name()
            );
        }
    }
}
