//! Inference engines behind one [`Backend`] trait.
//!
//! A backend turns an ONNX artifact into a [`LoadedModel`] (immutable, shared
//! between batch workers), which hands out one [`Runner`] per worker (the
//! mutable part: an ONNX Runtime session needs `&mut self` to run).
//! Inference is plain blocking code: it runs on the batcher's own threads,
//! never on an async runtime's workers.

pub mod error;
pub mod external_data;
pub mod onnxruntime;
pub mod registry;
pub mod tract;

use std::path::PathBuf;
use std::sync::Arc;

use ferroserve_core::{ModelSignature, Tensor};

pub use error::{panic_message, BackendError};
pub use onnxruntime::OrtBackend;
pub use registry::{EngineChoice, Engines, UnknownEngine};
pub use tract::TractBackend;

/// Where a model's bytes come from.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// An ONNX file on disk.
    File(PathBuf),
    /// ONNX bytes already in memory (uploaded, or embedded in the binary).
    Bytes(Arc<[u8]>),
    /// A registry artifact, already checked against its digest, in a local
    /// file. Messages name it by digest, never by its server path.
    Artifact {
        /// sha256 of the bytes, lowercase hex.
        digest: String,
        /// Where the bytes are.
        path: PathBuf,
    },
}

impl ModelSource {
    /// Reads the model bytes.
    pub fn read(&self) -> Result<Arc<[u8]>, BackendError> {
        match self {
            ModelSource::File(path) | ModelSource::Artifact { path, .. } => std::fs::read(path)
                .map(Arc::from)
                .map_err(|e| BackendError::Load(format!("cannot read {}: {e}", self.describe()))),
            ModelSource::Bytes(bytes) => Ok(bytes.clone()),
        }
    }

    /// A short description for messages (the path, "in-memory model", or
    /// the artifact's digest).
    pub fn describe(&self) -> String {
        match self {
            ModelSource::Artifact { digest, .. } => format!("artifact sha256:{digest}"),
            ModelSource::File(path) => path.display().to_string(),
            ModelSource::Bytes(bytes) => format!("in-memory model ({} bytes)", bytes.len()),
        }
    }
}

/// Options for loading a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Threads used inside one operator (ONNX Runtime intra-op threads). Default 1.
    pub intra_op_threads: usize,
    /// Largest batch the model will be asked to run, used to prepare plans.
    pub max_batch_size: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            intra_op_threads: 1,
            max_batch_size: 64,
        }
    }
}

/// An inference engine.
pub trait Backend: Send + Sync {
    /// Engine name as used in configuration (`onnxruntime`, `tract`).
    fn name(&self) -> &'static str;

    /// Parses and prepares a model. Fails with a clear error when the file is
    /// not a valid model or uses an operator this engine lacks.
    fn load(
        &self,
        source: &ModelSource,
        options: &LoadOptions,
    ) -> Result<Arc<dyn LoadedModel>, BackendError>;
}

/// A prepared model, shared by every batch worker.
pub trait LoadedModel: Send + Sync {
    /// Declared inputs and outputs.
    fn signature(&self) -> &ModelSignature;

    /// Name of the engine that loaded it.
    fn engine(&self) -> &'static str;

    /// Creates the per-worker mutable state.
    fn runner(&self) -> Result<Box<dyn Runner>, BackendError>;
}

/// Per-worker inference state.
pub trait Runner: Send {
    /// Runs one batch. `inputs` are in signature order and already validated
    /// against it; the outputs are returned in signature order.
    fn infer(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, BackendError>;
}

/// Checks the count, names, types and shapes of `inputs` against the signature, so
/// that a caller's mistake is an input error naming the input rather than an
/// engine failure.
pub(crate) fn check_inputs(
    signature: &ModelSignature,
    inputs: &[Tensor],
) -> Result<(), BackendError> {
    if inputs.len() != signature.inputs.len() {
        return Err(BackendError::Input(format!(
            "the model takes {} inputs but {} were given",
            signature.inputs.len(),
            inputs.len()
        )));
    }
    for (spec, tensor) in signature.inputs.iter().zip(inputs) {
        if spec.name != tensor.name {
            return Err(BackendError::Input(format!(
                "expected input '{}' but got '{}' in its place",
                spec.name, tensor.name
            )));
        }
        spec.check(tensor)
            .map_err(|e| BackendError::Input(e.message))?;
    }
    Ok(())
}
