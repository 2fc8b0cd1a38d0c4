//! The engines this process has, and the choice of engine for a model.

use std::path::Path;
use std::sync::Arc;

pub use ferroserve_core::engine::{EngineChoice, UnknownEngine};

use crate::onnxruntime::OrtBackend;
use crate::tract::TractBackend;
use crate::{Backend, BackendError, LoadOptions, LoadedModel, ModelSource};

/// The engines available to this process: tract always, ONNX Runtime when
/// its library was found and is usable.
#[derive(Debug)]
pub struct Engines {
    ort: Result<OrtBackend, BackendError>,
    tract: TractBackend,
}

impl Engines {
    /// Looks for ONNX Runtime (at `ort_library` when given, else as
    /// [`crate::onnxruntime::find_library`] describes) and sets up tract.
    /// Never fails: without ONNX Runtime, models run on tract, and a warning
    /// says why.
    pub fn discover(ort_library: Option<&Path>) -> Engines {
        let ort = OrtBackend::new(ort_library);
        match &ort {
            Ok(backend) => tracing::info!(
                version = backend.version(),
                path = %backend.library_path().display(),
                "ONNX Runtime loaded"
            ),
            Err(error) => tracing::warn!("ONNX Runtime not found ({error}); models will use tract"),
        }
        Engines {
            ort,
            tract: TractBackend::new(),
        }
    }

    /// Loads `source` with the chosen engine. [`EngineChoice::Auto`] picks ONNX
    /// Runtime when it is available and tract otherwise; asking for ONNX
    /// Runtime when it is missing is [`BackendError::LibraryNotFound`] with the
    /// reason found at discovery.
    pub fn load(
        &self,
        choice: EngineChoice,
        source: &ModelSource,
        options: &LoadOptions,
    ) -> Result<Arc<dyn LoadedModel>, BackendError> {
        self.backend(choice)?.load(source, options)
    }

    /// The engine that `choice` resolves to.
    pub fn backend(&self, choice: EngineChoice) -> Result<&dyn Backend, BackendError> {
        match (choice, &self.ort) {
            (EngineChoice::Tract, _) | (EngineChoice::Auto, Err(_)) => Ok(&self.tract),
            (EngineChoice::OnnxRuntime | EngineChoice::Auto, Ok(ort)) => Ok(ort),
            (EngineChoice::OnnxRuntime, Err(error)) => Err(error.clone()),
        }
    }

    /// Whether ONNX Runtime is available.
    pub fn ort_available(&self) -> bool {
        self.ort.is_ok()
    }

    /// The ONNX Runtime engine, when available.
    pub fn ort(&self) -> Option<&OrtBackend> {
        self.ort.as_ref().ok()
    }

    /// The tract engine.
    pub fn tract(&self) -> &TractBackend {
        &self.tract
    }

    /// One line for logs and status pages: `onnxruntime 1.31.1 from <path>`,
    /// or why ONNX Runtime is not available.
    pub fn ort_status(&self) -> String {
        match &self.ort {
            Ok(ort) => format!(
                "onnxruntime {} from {}",
                ort.version(),
                ort.library_path().display()
            ),
            Err(error) => error.to_string(),
        }
    }
}
