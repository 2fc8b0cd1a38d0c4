//! Protocol-neutral inference requests and responses.

use std::collections::BTreeMap;

use crate::Tensor;

/// Header of a KServe v2 request or response whose body holds binary
/// tensors: the byte length of the JSON part that precedes them.
pub const INFERENCE_HEADER_CONTENT_LENGTH: &str = "inference-header-content-length";

/// An output the caller asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedOutput {
    /// Output name.
    pub name: String,
    /// Whether the caller wants it in the binary tensor encoding.
    pub binary_data: bool,
}

/// Longest key a client may name a request by (the body's `id`, the
/// `x-request-id` header, an idempotency key), in bytes: such keys are
/// remembered (for feedback, for replays), so their size must be bounded.
pub const MAX_REQUEST_KEY_BYTES: usize = 256;

/// One inference request, after decoding.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InferRequest {
    /// Caller's request id, echoed in the response.
    pub id: Option<String>,
    /// Input tensors.
    pub inputs: Vec<Tensor>,
    /// Outputs to return; empty means all.
    pub outputs: Vec<RequestedOutput>,
    /// Request-level parameters (`timeout`, ...).
    pub parameters: BTreeMap<String, serde_json::Value>,
}

impl InferRequest {
    /// Number of rows (first dimension of the first input).
    pub fn rows(&self) -> usize {
        self.inputs.first().map_or(0, Tensor::rows)
    }
}

/// The answer to an [`InferRequest`].
#[derive(Debug, Clone, PartialEq)]
pub struct InferResponse {
    /// Served model name.
    pub model_name: String,
    /// Version that computed the result.
    pub model_version: String,
    /// Echo of the request id.
    pub id: Option<String>,
    /// Output tensors, in the order requested (or declared).
    pub outputs: Vec<Tensor>,
}
