//! Behaviour without a usable ONNX Runtime library. Its own test binary, so
//! that no test in this process has loaded the real library first (a process
//! keeps the first ONNX Runtime it loads).

use std::path::{Path, PathBuf};

use ferroserve_backend::{
    BackendError, EngineChoice, Engines, LoadOptions, ModelSource, OrtBackend,
};

fn not_a_library() -> PathBuf {
    let path = std::env::temp_dir().join(format!("ferroserve-not-ort-{}.so", std::process::id()));
    std::fs::write(&path, b"not a shared library\n").expect("write temp file");
    path
}

#[test]
fn unloadable_library_is_library_not_found_not_a_panic() {
    let path = not_a_library();
    let error = OrtBackend::new(Some(&path)).unwrap_err();
    let _ = std::fs::remove_file(&path);
    let message = error.to_string();
    assert!(
        matches!(error, BackendError::LibraryNotFound(_)),
        "{message}"
    );
    assert!(message.contains("ferroserve-not-ort"), "{message}");
    assert!(
        message.contains("scripts/python-env.sh runtime"),
        "{message}"
    );
}

#[test]
fn without_onnxruntime_auto_uses_tract_and_explicit_choice_fails() {
    let engines = Engines::discover(Some(Path::new("/nonexistent/libonnxruntime.so")));
    assert!(!engines.ort_available());
    assert!(engines
        .ort_status()
        .contains("/nonexistent/libonnxruntime.so"));
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/models/mlp.onnx");
    let source = ModelSource::File(model);
    let options = LoadOptions::default();
    let auto = engines
        .load(EngineChoice::Auto, &source, &options)
        .expect("tract loads the MLP");
    assert_eq!(auto.engine(), "tract");
    let error = engines
        .load(EngineChoice::OnnxRuntime, &source, &options)
        .err()
        .expect("onnxruntime is not available");
    assert!(matches!(error, BackendError::LibraryNotFound(_)), "{error}");
}
