//! One loaded, servable model version: its signature, its batcher, and the
//! request path from a decoded request to a response.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroserve_core::{
    FeatureSchema, InferError, InferRequest, InferResponse, ModelSignature, Tensor, TensorData,
};

use crate::cache::ModelCachePolicy;
use crate::ewma::Ewma;
use crate::guard::{ProtectionPolicy, VersionProtection};
use crate::request_metrics::RequestMetrics;
use crate::stats::{RequestStats, VersionStatistics};
use ferroserve_batcher::{Batcher, BatcherConfig, Priority};

/// A model version that is loaded, warmed up and accepting requests.
pub struct ServedVersion {
    name: String,
    version: String,
    engine: &'static str,
    signature: ModelSignature,
    schema: Option<Arc<FeatureSchema>>,
    request_timeout: Option<Duration>,
    batcher: Batcher,
    metrics: RequestMetrics,
    stats: RequestStats,
    cache_policy: ModelCachePolicy,
    inference_cost: Ewma,
    cache_identity: String,
    protection: VersionProtection,
    /// Requests inside this version (see [`ServedVersion::enter`]).
    in_flight: AtomicUsize,
    /// Woken when the last request leaves.
    idle: tokio::sync::Notify,
}

/// A request's hold on a served version: while any is alive a retired
/// version stays open, and the last one to go wakes the retirement.
pub struct InFlight {
    served: Arc<ServedVersion>,
}

impl InFlight {
    /// The version held.
    pub fn served(&self) -> &Arc<ServedVersion> {
        &self.served
    }
}

impl std::ops::Deref for InFlight {
    type Target = ServedVersion;

    fn deref(&self) -> &ServedVersion {
        &self.served
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.served.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.served.idle.notify_waiters();
        }
    }
}

impl ServedVersion {
    /// Wraps a started batcher.
    pub(crate) fn new(
        name: String,
        version: String,
        engine: &'static str,
        signature: ModelSignature,
        schema: Option<Arc<FeatureSchema>>,
        request_timeout: Option<Duration>,
        batcher: Batcher,
    ) -> Self {
        let protection = VersionProtection::new(
            &ProtectionPolicy::default(),
            &name,
            &version,
            &signature,
            None,
        )
        .expect("the default protection needs nothing from the model");
        ServedVersion {
            protection,
            metrics: RequestMetrics::new(&name, &version),
            stats: RequestStats::default(),
            name,
            version,
            engine,
            signature,
            schema,
            request_timeout,
            batcher,
            cache_policy: ModelCachePolicy::default(),
            inference_cost: Ewma::default(),
            cache_identity: String::new(),
            in_flight: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
        }
    }

    /// Enters a request into this version; `None` once the version is
    /// closed (retired or shutting down): the caller looks it up again.
    pub fn enter(self: &Arc<Self>) -> Option<InFlight> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let held = InFlight {
            served: self.clone(),
        };
        // Checked after counting: a retirement that saw no request in
        // flight has closed the version by now, and this request must not run.
        (!self.batcher.is_closed()).then_some(held)
    }

    /// Waits until no request is in this version, or until `deadline`.
    pub(crate) async fn until_idle(&self, deadline: tokio::time::Instant) {
        loop {
            // Registered before the count is read, so the last request
            // leaving in between still wakes this.
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return;
            }
        }
    }

    /// Sets this version's result cache settings.
    pub(crate) fn with_cache_policy(mut self, policy: ModelCachePolicy) -> Self {
        self.cache_policy = policy;
        self
    }

    /// Sets how this version protects itself.
    pub(crate) fn with_protection(mut self, protection: VersionProtection) -> Self {
        self.protection = protection;
        self
    }

    /// Limits, breaker, fallbacks and injected faults of this version.
    pub fn protection(&self) -> &VersionProtection {
        &self.protection
    }

    /// A response of this version with `outputs`.
    pub fn answer(&self, id: Option<String>, outputs: Vec<Tensor>) -> InferResponse {
        InferResponse {
            model_name: self.name.clone(),
            model_version: self.version.clone(),
            id,
            outputs,
        }
    }

    /// Sets the hash (blake3, hex) of the model bytes this version runs.
    pub(crate) fn with_content_hash(mut self, content_hash: String) -> Self {
        self.cache_identity = format!("{}@{content_hash}", self.version);
        self
    }

    /// What names this version in result-cache keys: its label and the
    /// hash of its model bytes.
    pub fn cache_identity(&self) -> &str {
        &self.cache_identity
    }

    /// This version's result cache settings.
    pub fn cache_policy(&self) -> &ModelCachePolicy {
        &self.cache_policy
    }

    /// Moving average of the time a computed (uncached) answer takes.
    pub fn inference_cost(&self) -> &Ewma {
        &self.inference_cost
    }

    /// Model name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Version label.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Engine running this version (`onnxruntime`, `tract`).
    pub fn engine(&self) -> &'static str {
        self.engine
    }

    /// Declared inputs and outputs.
    pub fn signature(&self) -> &ModelSignature {
        &self.signature
    }

    /// Feature names of a tabular model, when shipped with it.
    pub fn schema(&self) -> Option<&FeatureSchema> {
        self.schema.as_deref()
    }

    /// Deadline for requests that set none, when this version has its own.
    pub fn request_timeout(&self) -> Option<Duration> {
        self.request_timeout
    }

    /// Request counters and latency histograms of this version.
    pub fn metrics(&self) -> &RequestMetrics {
        &self.metrics
    }

    /// Request outcomes the pipeline counts for [`ServedVersion::statistics`].
    pub fn request_stats(&self) -> &RequestStats {
        &self.stats
    }

    /// Triton-style statistics of this version since it was loaded (the
    /// warm-up runs not included).
    pub fn statistics(&self) -> VersionStatistics {
        self.stats
            .join(&self.name, &self.version, self.batcher.stats())
    }

    /// The batching settings this version runs with.
    pub fn batching(&self) -> &BatcherConfig {
        self.batcher.config()
    }

    /// Rows waiting in this version's batch queue.
    pub fn queue_depth(&self) -> usize {
        self.batcher.queue_depth()
    }

    /// Most rows one batch of this version holds.
    pub fn max_batch_rows(&self) -> usize {
        self.batcher.max_batch_rows()
    }

    /// Checks `request` as [`ServedVersion::infer`] would before running
    /// it: known outputs, each named once; the declared inputs; no more
    /// rows than the batch queue holds. Paths that answer without the
    /// model (fallbacks) run this first.
    pub fn check_request(&self, request: &InferRequest) -> Result<(), InferError> {
        self.signature
            .validate_output_names(request.outputs.iter().map(|o| o.name.as_str()))?;
        self.signature.check_inputs(&request.inputs)?;
        self.batcher.rows_of(&request.inputs).map(|_| ())
    }

    /// Validates `request` against the signature, runs it through the
    /// batcher at `priority`, and returns the requested outputs (all, in
    /// declaration order, when none were named). No span of its own: the
    /// batcher queues the caller's span (the request's), which the engine
    /// batch's span links to.
    pub async fn infer(
        &self,
        request: InferRequest,
        deadline: Option<Instant>,
        priority: Priority,
    ) -> Result<InferResponse, InferError> {
        self.signature
            .validate_output_names(request.outputs.iter().map(|o| o.name.as_str()))?;
        let inputs = self.signature.validate_inputs(request.inputs)?;
        let outputs = self.batcher.infer_at(priority, inputs, deadline).await?;
        let outputs = if request.outputs.is_empty() {
            outputs
        } else {
            pick_outputs(outputs, &request.outputs)?
        };
        Ok(self.answer(request.id, outputs))
    }

    /// Runs one sample per batch worker through the model so that the first
    /// real request does not pay for lazy initialisation.
    pub(crate) async fn warm_up(&self, instances: usize) -> Result<(), InferError> {
        let sample = sample_inputs(&self.signature)?;
        let runs = (0..instances.max(1)).map(|_| self.batcher.infer(sample.clone(), None));
        for result in futures::future::join_all(runs).await {
            result.map_err(|e| {
                InferError::new(
                    e.kind,
                    format!(
                        "warm-up of {} v{} failed: {}",
                        self.name, self.version, e.message
                    ),
                )
            })?;
        }
        self.batcher.reset_stats();
        Ok(())
    }

    /// Stops accepting requests; queued ones still finish.
    pub(crate) fn close(&self) {
        self.batcher.close();
    }
}

/// The `wanted` outputs, in that order, moved out of what the engine
/// returned (names were checked to be known and distinct).
fn pick_outputs(
    outputs: Vec<Tensor>,
    wanted: &[ferroserve_core::RequestedOutput],
) -> Result<Vec<Tensor>, InferError> {
    let mut outputs: Vec<Option<Tensor>> = outputs.into_iter().map(Some).collect();
    wanted
        .iter()
        .map(|wanted| {
            outputs
                .iter_mut()
                .find(|t| t.as_ref().is_some_and(|t| t.name == wanted.name))
                .and_then(Option::take)
                .ok_or_else(|| {
                    InferError::internal(format!("engine returned no output '{}'", wanted.name))
                })
        })
        .collect()
}

/// A one-row input per declared input: zeros, `false`, or empty strings,
/// with dynamic dimensions set to 1. The manager has refused signatures
/// whose sample does not fit a request body before this runs.
fn sample_inputs(signature: &ModelSignature) -> Result<Vec<Tensor>, InferError> {
    signature
        .inputs
        .iter()
        .map(|spec| {
            let shape = spec.sample_shape();
            let count = ferroserve_core::tensor::element_count(&shape).ok_or_else(|| {
                InferError::invalid(format!(
                    "input '{}' of shape {shape:?} holds too many values to warm up",
                    spec.name
                ))
            })?;
            let data = zeros(spec.datatype, count);
            Tensor::new(spec.name.clone(), shape, data)
        })
        .collect()
}

fn zeros(datatype: ferroserve_core::DataType, count: usize) -> TensorData {
    use ferroserve_core::{half, DataType as D};
    match datatype {
        D::Bool => TensorData::Bool(vec![false; count]),
        D::Uint8 => TensorData::Uint8(vec![0; count]),
        D::Uint16 => TensorData::Uint16(vec![0; count]),
        D::Uint32 => TensorData::Uint32(vec![0; count]),
        D::Uint64 => TensorData::Uint64(vec![0; count]),
        D::Int8 => TensorData::Int8(vec![0; count]),
        D::Int16 => TensorData::Int16(vec![0; count]),
        D::Int32 => TensorData::Int32(vec![0; count]),
        D::Int64 => TensorData::Int64(vec![0; count]),
        D::Fp16 => TensorData::Fp16(vec![half::f16::ZERO; count]),
        D::Bf16 => TensorData::Bf16(vec![half::bf16::ZERO; count]),
        D::Fp32 => TensorData::Fp32(vec![0.0; count]),
        D::Fp64 => TensorData::Fp64(vec![0.0; count]),
        D::Bytes => TensorData::Bytes(vec![Vec::new(); count]),
    }
}
