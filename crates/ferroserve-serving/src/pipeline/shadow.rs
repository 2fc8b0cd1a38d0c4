//! Shadow: a copy of an online call that named no version, for the
//! model's shadow lane, taken before the batch stage consumes the request
//! and handed over once the primary answer is reached; the lane's queue
//! never makes the primary wait.

use std::sync::Arc;

use ferroserve_batcher::Priority;
use ferroserve_core::InferRequest;

use super::call::{Call, Reached};
use super::route::Routed;
use crate::shadow::ShadowLane;

/// A request copied for the shadow lane.
pub(super) struct Copy {
    lane: Arc<ShadowLane>,
    request: InferRequest,
}

/// A copy of `request` when the model has a shadow lane and this call is
/// drawn for it: online, naming no version.
pub(super) fn copy(call: &Call, routed: &Routed, request: &InferRequest) -> Option<Copy> {
    if call.priority != Priority::Online || call.version.is_some() {
        return None;
    }
    let lane = routed.routing.as_ref()?.shadow()?;
    lane.sampled().then(|| Copy {
        lane: lane.clone(),
        request: request.clone(),
    })
}

/// Hands the copy and the primary answer to the lane; an answer a
/// fallback gave is not the model's, so nothing is compared.
pub(super) fn offer(copy: Option<Copy>, reached: &Reached) {
    if let (Some(copy), None) = (copy, &reached.fallback) {
        copy.lane.offer(copy.request, &reached.response);
    }
}
