//! What to load: a model version's source, engine and serving knobs.

use std::sync::Arc;
use std::time::Duration;

use ferroserve_backend::{EngineChoice, ModelSource};
use ferroserve_core::FeatureSchema;

use crate::cache::ModelCachePolicy;
use crate::guard::ProtectionPolicy;
use ferroserve_batcher::BatcherConfig;

/// Everything needed to load and serve one model version.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// Model name used in URLs.
    pub name: String,
    /// Version label (a number in a model repository).
    pub version: String,
    /// Where the ONNX bytes come from.
    pub source: ModelSource,
    /// Engine to run it on.
    pub engine: EngineChoice,
    /// Threads inside one operator (ONNX Runtime intra-op threads).
    pub intra_op_threads: usize,
    /// Dynamic batching knobs.
    pub batching: BatcherConfig,
    /// Feature names for `{"instances": [{"feature": value}]}`.
    pub schema: Option<Arc<FeatureSchema>>,
    /// Deadline of a request to this version that sets none itself
    /// (`None`: the server default).
    pub request_timeout: Option<Duration>,
    /// Result cache settings of this version.
    pub cache: ModelCachePolicy,
    /// Rate and concurrency limits, breaker and fallbacks of this version.
    pub protection: ProtectionPolicy,
}
