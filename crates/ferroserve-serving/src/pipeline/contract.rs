//! Contract: the monitor's data contract may refuse a call's inputs, and
//! the monitor may sample the call for drift (observed once answered).

use std::sync::Arc;

use ferroserve_core::{InferError, InferRequest, Tensor};
use ferroserve_monitor::{RequestKeys, Watch};

use super::call::Call;
use super::Pipeline;
use crate::ServedVersion;

/// A call the monitor sampled: what it will observe once answered.
pub(super) struct Sampled {
    pub(super) watch: Arc<Watch>,
    pub(super) inputs: Vec<Tensor>,
    pub(super) keys: RequestKeys,
}

impl Pipeline {
    /// Checks `request` against the data contract of `served`, and keeps
    /// its inputs when the monitor samples it.
    pub(super) fn check_contract(
        &self,
        call: &Call,
        served: &ServedVersion,
        request: &InferRequest,
    ) -> Result<Option<Sampled>, InferError> {
        let Some(watch) = self
            .monitor
            .as_ref()
            .and_then(|m| m.watch(served.name(), served.version()))
        else {
            return Ok(None);
        };
        watch.admit(&request.inputs)?;
        if !call.sample || !watch.sample(&request.inputs) {
            return Ok(None);
        }
        let mut keys = call.keys.clone();
        keys.client = Some(call.client.clone());
        if let Some(id) = request.id.as_ref().filter(|id| !id.is_empty()) {
            if !keys.request_ids.contains(id) {
                keys.request_ids.push(id.clone());
            }
        }
        Ok(Some(Sampled {
            watch,
            inputs: request.inputs.clone(),
            keys,
        }))
    }
}
