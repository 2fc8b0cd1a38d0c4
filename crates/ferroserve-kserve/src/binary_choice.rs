//! Which outputs of an answer go back as binary tensors: the request's
//! `binary_data_output` parameter, overridden per output.

use ferroserve_core::{InferRequest, InferResponse, RequestedOutput};

use crate::request::BINARY_DATA_OUTPUT;

/// Which outputs go back in binary form.
pub struct BinaryChoice {
    default: bool,
    per_output: Vec<RequestedOutput>,
}

impl BinaryChoice {
    /// The choice `request` makes (its `binary_data_output` parameter and
    /// per-output `binary_data` flags).
    pub fn of(request: &InferRequest) -> Self {
        BinaryChoice {
            default: request
                .parameters
                .get(BINARY_DATA_OUTPUT)
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            per_output: request.outputs.clone(),
        }
    }

    /// One flag per output of `response`: whether it goes back in binary.
    pub fn flags(&self, response: &InferResponse) -> Vec<bool> {
        response
            .outputs
            .iter()
            .map(|o| {
                self.per_output
                    .iter()
                    .find(|r| r.name == o.name)
                    .map_or(self.default, |r| r.binary_data)
            })
            .collect()
    }
}
