//! The bundled iris example, compiled into the binary so that `ferroserve
//! serve` with no model answers out of the box.

use std::sync::Arc;

use ferroserve_backend::ModelSource;
use ferroserve_core::FeatureSchema;
use ferroserve_serving::repository::ServingDefaults;
use ferroserve_serving::ModelSpec;

const MODEL: &[u8] = include_bytes!("../../../examples/iris/model.onnx");
const FEATURES: &str = include_str!("../../../examples/iris/features.json");

/// The iris classifier as a model spec named `iris`, version 1.
pub fn iris(defaults: &ServingDefaults) -> anyhow::Result<ModelSpec> {
    let schema = FeatureSchema::from_json(FEATURES)
        .map_err(|e| anyhow::anyhow!("bundled iris feature schema: {}", e.message))?;
    Ok(ModelSpec {
        name: "iris".to_string(),
        version: "1".to_string(),
        source: ModelSource::Bytes(Arc::from(MODEL)),
        engine: defaults.engine,
        intra_op_threads: defaults.intra_op_threads,
        batching: defaults.batching.clone(),
        schema: Some(Arc::new(schema)),
    })
}
