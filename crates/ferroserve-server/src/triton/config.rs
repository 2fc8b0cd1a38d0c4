//! A served version's configuration in the shape of Triton's model
//! configuration (`config.pbtxt` as JSON): name, platform and backend,
//! batching, inputs and outputs with their dims, instance group and
//! version policy, with Triton's field names and enum spellings.

use ferroserve_core::{DataType, InferError, TensorSpec};
use ferroserve_serving::ServedVersion;
use serde::Serialize;

use crate::state::AppState;

/// Triton's `ModelConfig`, the fields ferroserve knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TritonModelConfig {
    /// Model name.
    pub name: String,
    /// `onnxruntime_onnx` or `tract_onnx` (as the model metadata says).
    pub platform: String,
    /// The engine: `onnxruntime` or `tract`.
    pub backend: String,
    /// Which versions are served.
    pub version_policy: VersionPolicy,
    /// Most rows one batch holds; 0 when the model has no batch dimension
    /// (then dims are the whole shapes).
    pub max_batch_size: u64,
    /// Inputs, dims without the batch dimension when `max_batch_size` > 0.
    pub input: Vec<ModelInput>,
    /// Outputs, dims as for inputs.
    pub output: Vec<ModelOutput>,
    /// The batcher's settings, when requests share batches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_batching: Option<DynamicBatching>,
    /// The engine instances.
    pub instance_group: Vec<InstanceGroup>,
    /// Every request gets exactly one response.
    pub model_transaction_policy: TransactionPolicy,
}

/// Triton's `ModelVersionPolicy`: one of its fields is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionPolicy {
    /// The newest `num_versions` versions.
    Latest {
        /// How many.
        num_versions: u32,
    },
    /// These versions.
    Specific {
        /// Version numbers.
        versions: Vec<i64>,
    },
}

/// Triton's `ModelInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelInput {
    /// Input name.
    pub name: String,
    /// `TYPE_FP32`, `TYPE_STRING`, ...
    pub data_type: String,
    /// Always `FORMAT_NONE`.
    pub format: &'static str,
    /// Sizes; -1 where any size fits.
    pub dims: Vec<i64>,
    /// Always false.
    pub is_shape_tensor: bool,
    /// Always false.
    pub allow_ragged_batch: bool,
    /// Always false: every declared input is required.
    pub optional: bool,
}

/// Triton's `ModelOutput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelOutput {
    /// Output name.
    pub name: String,
    /// `TYPE_FP32`, `TYPE_STRING`, ...
    pub data_type: String,
    /// Sizes; -1 where any size fits.
    pub dims: Vec<i64>,
    /// Always empty.
    pub label_filename: String,
    /// Always false.
    pub is_shape_tensor: bool,
}

/// Triton's `ModelDynamicBatching`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DynamicBatching {
    /// Batch sizes sent without waiting.
    pub preferred_batch_size: Vec<u64>,
    /// How long the oldest request waits for company.
    pub max_queue_delay_microseconds: u64,
    /// Always false: answers go back as each batch ends.
    pub preserve_ordering: bool,
}

/// Triton's `ModelInstanceGroup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceGroup {
    /// Group name (the model's).
    pub name: String,
    /// Always `KIND_CPU`.
    pub kind: &'static str,
    /// Engine instances (batch worker threads).
    pub count: u64,
}

/// Triton's `ModelTransactionPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransactionPolicy {
    /// Always false.
    pub decoupled: bool,
}

/// The configuration of `served`, with a version policy naming the newest
/// version only ([`model_config_of`] names every served version).
pub fn model_config(served: &ServedVersion) -> TritonModelConfig {
    let batching = served.signature().supports_batching();
    let config = served.batching();
    let max_batch_size = if batching {
        to_u64(served.max_batch_rows())
    } else {
        0
    };
    let dims = |spec: &TensorSpec| -> Vec<i64> {
        let skip = usize::from(batching);
        spec.shape.iter().skip(skip).map(|d| d.as_i64()).collect()
    };
    TritonModelConfig {
        name: served.name().to_string(),
        platform: format!("{}_onnx", served.engine()),
        backend: served.engine().to_string(),
        version_policy: VersionPolicy::Latest { num_versions: 1 },
        max_batch_size,
        input: served
            .signature()
            .inputs
            .iter()
            .map(|spec| ModelInput {
                name: spec.name.clone(),
                data_type: data_type(spec.datatype),
                format: "FORMAT_NONE",
                dims: dims(spec),
                is_shape_tensor: false,
                allow_ragged_batch: false,
                optional: false,
            })
            .collect(),
        output: served
            .signature()
            .outputs
            .iter()
            .map(|spec| ModelOutput {
                name: spec.name.clone(),
                data_type: data_type(spec.datatype),
                dims: dims(spec),
                label_filename: String::new(),
                is_shape_tensor: false,
            })
            .collect(),
        dynamic_batching: batching.then(|| DynamicBatching {
            preferred_batch_size: config
                .preferred_batch_sizes
                .iter()
                .map(|&n| to_u64(n))
                .collect(),
            max_queue_delay_microseconds: config.max_queue_delay_us,
            preserve_ordering: false,
        }),
        instance_group: vec![InstanceGroup {
            name: served.name().to_string(),
            kind: "KIND_CPU",
            count: to_u64(config.instance_count),
        }],
        model_transaction_policy: TransactionPolicy { decoupled: false },
    }
}

/// The configuration of `model` (`version`, else the version a call naming
/// none would reach), whose version policy names every served version
/// (when all are numbers). Errors as the model metadata's: unknown model
/// or version (NotFound), not loaded yet (Unavailable).
pub async fn model_config_of(
    state: &AppState,
    model: &str,
    version: Option<&str>,
) -> Result<TritonModelConfig, InferError> {
    let served = state.pipeline.find(model, version).await?;
    let mut config = model_config(&served);
    let snapshot = state.manager().snapshot();
    let numbers: Option<Vec<i64>> = snapshot.get(model).and_then(|entry| {
        entry
            .versions
            .values()
            .filter(|v| v.served.is_some())
            .map(|v| v.version.parse::<i64>().ok())
            .collect()
    });
    if let Some(versions) = numbers.filter(|v| v.len() > 1) {
        config.version_policy = VersionPolicy::Specific { versions };
    }
    Ok(config)
}

/// Triton's name of a datatype: `TYPE_` and the KServe name, except
/// `BYTES`, which Triton's configuration calls `TYPE_STRING`.
fn data_type(datatype: DataType) -> String {
    match datatype {
        DataType::Bytes => "TYPE_STRING".to_string(),
        other => format!("TYPE_{}", other.as_str()),
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datatypes_take_triton_names() {
        assert_eq!(data_type(DataType::Fp32), "TYPE_FP32");
        assert_eq!(data_type(DataType::Int64), "TYPE_INT64");
        assert_eq!(data_type(DataType::Bool), "TYPE_BOOL");
        assert_eq!(data_type(DataType::Bytes), "TYPE_STRING");
    }

    #[test]
    fn version_policy_is_spelled_as_triton_does() {
        let latest = serde_json::to_value(VersionPolicy::Latest { num_versions: 1 });
        assert_eq!(
            latest.expect("serializes"),
            serde_json::json!({"latest": {"num_versions": 1}})
        );
        let specific = serde_json::to_value(VersionPolicy::Specific {
            versions: vec![1, 3],
        });
        assert_eq!(
            specific.expect("serializes"),
            serde_json::json!({"specific": {"versions": [1, 3]}})
        );
    }
}
