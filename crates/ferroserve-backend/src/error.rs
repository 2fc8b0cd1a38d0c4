//! The error type of every engine, and how it maps onto the shared error kinds.

use ferroserve_core::{ErrorKind, InferError};

/// What can go wrong while finding an engine, loading a model or running it.
///
/// Cloneable, so one failed batch can report the same error to every request
/// in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The ONNX Runtime shared library is missing, unloadable or too old. The
    /// message says where it was looked for and how to install it.
    #[error("ONNX Runtime is not available: {0}")]
    LibraryNotFound(String),
    /// The artifact could not be read or is not a valid ONNX model.
    #[error("cannot load model: {0}")]
    Load(String),
    /// The model uses an operator this engine does not implement.
    #[error("engine {engine} does not support op {op}; use engine {suggestion}")]
    UnsupportedOp {
        /// Engine that declined the model.
        engine: &'static str,
        /// ONNX operator type (`ZipMap`, `LabelEncoder`, ...).
        op: String,
        /// Engine that runs it.
        suggestion: &'static str,
    },
    /// The engine cannot prepare this model for a reason other than one
    /// missing operator.
    #[error("engine {engine} cannot load this model: {reason}; use engine {suggestion}")]
    Unsupported {
        /// Engine that declined the model.
        engine: &'static str,
        /// What the engine reported.
        reason: String,
        /// Engine that runs it.
        suggestion: &'static str,
    },
    /// An input tensor the engine cannot take (wrong count or type, a
    /// non-UTF-8 string, ...). The message names the input.
    #[error("{0}")]
    Input(String),
    /// The engine failed while running the model.
    #[error("inference failed: {0}")]
    Inference(String),
}

impl BackendError {
    /// The shared error kind, which decides the HTTP status and gRPC code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BackendError::LibraryNotFound(_) => ErrorKind::Unavailable,
            BackendError::Load(_) | BackendError::Input(_) => ErrorKind::InvalidInput,
            BackendError::UnsupportedOp { .. } | BackendError::Unsupported { .. } => {
                ErrorKind::Unsupported
            }
            BackendError::Inference(_) => ErrorKind::Internal,
        }
    }
}

impl From<BackendError> for InferError {
    fn from(error: BackendError) -> Self {
        InferError::new(error.kind(), error.to_string())
    }
}

/// Text of a caught panic payload, for turning an engine panic into an error.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_op_message_names_engine_op_and_alternative() {
        let error = BackendError::UnsupportedOp {
            engine: "tract",
            op: "ZipMap".to_string(),
            suggestion: "onnxruntime",
        };
        assert_eq!(
            error.to_string(),
            "engine tract does not support op ZipMap; use engine onnxruntime"
        );
        assert_eq!(error.kind(), ErrorKind::Unsupported);
    }

    #[test]
    fn converts_to_infer_error_with_kind() {
        let error: InferError = BackendError::Input("input 'text': not UTF-8".to_string()).into();
        assert_eq!(error.kind, ErrorKind::InvalidInput);
        assert_eq!(error.message, "input 'text': not UTF-8");
        let error: InferError = BackendError::LibraryNotFound("x".to_string()).into();
        assert_eq!(error.kind.http_status(), 503);
    }
}
