//! ONNX Runtime engine, through `ort` with the library loaded at run time:
//! the fast path, used whenever the library can be found.

mod convert;
mod discovery;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use ferroserve_core::{ModelSignature, Tensor};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

pub use discovery::{find_library, ORT_DYLIB_PATH};

use self::convert::OutputKind;
use self::discovery::OrtRuntime;
use crate::error::panic_message;
use crate::{check_inputs, Backend, BackendError, LoadOptions, LoadedModel, ModelSource, Runner};

/// Engine name used in configuration and messages.
pub const ENGINE: &str = crate::EngineChoice::OnnxRuntime.as_str();

/// The ONNX Runtime engine. Cheap to clone; every clone shares the one
/// runtime the process loaded.
#[derive(Debug, Clone)]
pub struct OrtBackend {
    runtime: Arc<OrtRuntime>,
}

impl OrtBackend {
    /// Finds the library (see [`find_library`]), loads it once per process
    /// and checks that it is usable (a loadable ONNX Runtime, version 1.17 or
    /// newer). A missing or unusable library is
    /// [`BackendError::LibraryNotFound`], never a panic.
    pub fn new(explicit: Option<&Path>) -> Result<OrtBackend, BackendError> {
        let path = find_library(explicit)?;
        let runtime = discovery::runtime(&path)?;
        Ok(OrtBackend { runtime })
    }

    /// Version of the loaded library, such as `1.31.1`.
    pub fn version(&self) -> &str {
        &self.runtime.version
    }

    /// Path of the loaded library.
    pub fn library_path(&self) -> &Path {
        &self.runtime.path
    }
}

impl Backend for OrtBackend {
    fn name(&self) -> &'static str {
        ENGINE
    }

    fn load(
        &self,
        source: &ModelSource,
        options: &LoadOptions,
    ) -> Result<Arc<dyn LoadedModel>, BackendError> {
        let bytes = source.read()?;
        crate::external_data::refuse_external_data(&bytes)
            .map_err(|e| BackendError::Load(format!("{}: {e}", source.describe())))?;
        let session = new_session(&self.runtime, &bytes, options)
            .map_err(|e| BackendError::Load(format!("{}: {e}", source.describe())))?;
        let mut signature = ModelSignature::default();
        let mut outputs = Vec::with_capacity(session.outputs().len());
        for input in session.inputs() {
            let (spec, _) = convert::spec_of(input.name(), input.dtype(), true)?;
            signature.inputs.push(spec);
        }
        for output in session.outputs() {
            let (spec, kind) = convert::spec_of(output.name(), output.dtype(), false)?;
            signature.outputs.push(spec);
            outputs.push(kind);
        }
        tracing::debug!(model = %source.describe(), signature = %signature, "loaded with onnxruntime");
        Ok(Arc::new(OrtModel {
            runtime: self.runtime.clone(),
            bytes,
            options: options.clone(),
            signature,
            outputs: outputs.into(),
            spare: Mutex::new(Some(session)),
        }))
    }
}

/// ONNX Runtime's session option naming the folder that the external data
/// of a model loaded from memory is read from.
const EXTERNAL_INITIALIZERS_FOLDER: &str = "session.model_external_initializers_file_folder_path";

/// An empty folder only this process may read, made once: sessions resolve
/// external data there rather than against the process's working directory.
/// Models with external data are refused before they reach a session; this
/// is the second lock on the same door.
fn empty_private_folder() -> Result<&'static Path, String> {
    static FOLDER: OnceLock<Result<tempfile::TempDir, String>> = OnceLock::new();
    FOLDER
        .get_or_init(|| {
            tempfile::Builder::new()
                .prefix("ferroserve-ort-no-external-data-")
                .tempdir()
                .map_err(|e| format!("cannot create an empty folder for onnxruntime: {e}"))
        })
        .as_ref()
        .map(|dir| dir.path())
        .map_err(Clone::clone)
}

/// Builds one session: graph optimisations all on, `intra_op_threads`
/// threads inside an operator, one between operators, no spinning (a
/// spinning thread takes a core from the HTTP side while it waits), and
/// external data looked up in an empty private folder only.
fn new_session(
    runtime: &OrtRuntime,
    bytes: &[u8],
    options: &LoadOptions,
) -> Result<Session, String> {
    let external_folder = empty_private_folder()?.to_string_lossy().into_owned();
    let build = || -> Result<Session, ort::Error> {
        Session::builder(&runtime.environment)?
            .with_config_entry(EXTERNAL_INITIALIZERS_FOLDER, &external_folder)?
            .with_optimization_level(GraphOptimizationLevel::All)?
            .with_intra_threads(options.intra_op_threads.max(1))?
            .with_inter_threads(1)?
            .with_intra_op_spinning(false)?
            .with_inter_op_spinning(false)?
            .commit_from_memory(bytes)
    };
    match catch_unwind(AssertUnwindSafe(build)) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(payload) => Err(format!(
            "onnxruntime failed on this model: {}",
            panic_message(payload.as_ref())
        )),
    }
}

/// A model prepared by ONNX Runtime. Keeps the model bytes so that each
/// runner can build its own session.
struct OrtModel {
    runtime: Arc<OrtRuntime>,
    bytes: Arc<[u8]>,
    options: LoadOptions,
    signature: ModelSignature,
    outputs: Arc<[OutputKind]>,
    /// The session built while loading, handed to the first runner.
    spare: Mutex<Option<Session>>,
}

impl LoadedModel for OrtModel {
    fn signature(&self) -> &ModelSignature {
        &self.signature
    }

    fn engine(&self) -> &'static str {
        ENGINE
    }

    fn runner(&self) -> Result<Box<dyn Runner>, BackendError> {
        let spare = self
            .spare
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let session = match spare {
            Some(session) => session,
            None => new_session(&self.runtime, &self.bytes, &self.options)
                .map_err(BackendError::Load)?,
        };
        Ok(Box::new(OrtRunner {
            session,
            signature: self.signature.clone(),
            outputs: self.outputs.clone(),
        }))
    }
}

/// One worker's session.
struct OrtRunner {
    session: Session,
    signature: ModelSignature,
    outputs: Arc<[OutputKind]>,
}

impl Runner for OrtRunner {
    fn infer(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, BackendError> {
        check_inputs(&self.signature, inputs)?;
        let values = inputs
            .iter()
            .map(convert::input_value)
            .collect::<Result<Vec<_>, _>>()?;
        let signature = &self.signature;
        let kinds = &self.outputs;
        let session = &mut self.session;
        let run = move || -> Result<Vec<Tensor>, BackendError> {
            let outputs = session
                .run(values.as_slice())
                .map_err(|e| BackendError::Inference(e.to_string()))?;
            signature
                .outputs
                .iter()
                .zip(kinds.iter())
                .enumerate()
                .map(|(index, (spec, kind))| {
                    convert::output_tensor(&spec.name, *kind, &outputs[index])
                })
                .collect()
        };
        catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|payload| {
            Err(BackendError::Inference(format!(
                "onnxruntime failed: {}",
                panic_message(payload.as_ref())
            )))
        })
    }
}
