//! Triton's model configuration and statistics, from the JSON the HTTP
//! routes answer (`/config`, `/stats`) to their protobuf messages: the
//! field names are Triton's in both, so one form follows from the other
//! and the two protocols cannot drift apart.

use serde_json::Value;

use super::proto::model_config::SchedulingChoice;
use super::proto::model_version_policy::{Latest, PolicyChoice, Specific};
use super::proto::{
    DataType, InferBatchStatistics, InferStatistics, ModelConfig, ModelDynamicBatching, ModelInput,
    ModelInstanceGroup, ModelOutput, ModelStatistics, ModelVersionPolicy, StatisticDuration,
};

/// A Triton model configuration in its JSON form as a `ModelConfig`.
pub(crate) fn model_config(json: &Value) -> ModelConfig {
    ModelConfig {
        name: text(json, "name"),
        platform: text(json, "platform"),
        backend: text(json, "backend"),
        version_policy: json.get("version_policy").map(version_policy),
        max_batch_size: int(json, "max_batch_size") as i32,
        input: list(json, "input").map(model_input).collect(),
        output: list(json, "output").map(model_output).collect(),
        instance_group: list(json, "instance_group").map(instance_group).collect(),
        scheduling_choice: json
            .get("dynamic_batching")
            .map(|d| SchedulingChoice::DynamicBatching(dynamic_batching(d))),
        ..ModelConfig::default()
    }
}

fn model_input(json: &Value) -> ModelInput {
    ModelInput {
        name: text(json, "name"),
        data_type: data_type(json),
        dims: dims(json),
        ..ModelInput::default()
    }
}

fn model_output(json: &Value) -> ModelOutput {
    ModelOutput {
        name: text(json, "name"),
        data_type: data_type(json),
        dims: dims(json),
        ..ModelOutput::default()
    }
}

fn data_type(json: &Value) -> i32 {
    DataType::from_str_name(&text(json, "data_type")).unwrap_or(DataType::TypeInvalid) as i32
}

fn dims(json: &Value) -> Vec<i64> {
    list(json, "dims").filter_map(Value::as_i64).collect()
}

fn instance_group(json: &Value) -> ModelInstanceGroup {
    use super::proto::model_instance_group::Kind;
    ModelInstanceGroup {
        name: text(json, "name"),
        count: int(json, "count") as i32,
        kind: Kind::from_str_name(&text(json, "kind")).unwrap_or(Kind::Auto) as i32,
        ..ModelInstanceGroup::default()
    }
}

fn dynamic_batching(json: &Value) -> ModelDynamicBatching {
    ModelDynamicBatching {
        preferred_batch_size: list(json, "preferred_batch_size")
            .filter_map(Value::as_i64)
            .map(|n| n as i32)
            .collect(),
        max_queue_delay_microseconds: int(json, "max_queue_delay_microseconds"),
        preserve_ordering: json
            .get("preserve_ordering")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}

fn version_policy(json: &Value) -> ModelVersionPolicy {
    let policy_choice = if let Some(specific) = json.get("specific") {
        Some(PolicyChoice::Specific(Specific {
            versions: list(specific, "versions")
                .filter_map(Value::as_i64)
                .collect(),
        }))
    } else if json.get("all").is_some() {
        Some(PolicyChoice::All(Default::default()))
    } else {
        json.get("latest").map(|latest| {
            PolicyChoice::Latest(Latest {
                num_versions: int(latest, "num_versions") as u32,
            })
        })
    };
    ModelVersionPolicy { policy_choice }
}

/// One version's statistics in Triton's JSON form as `ModelStatistics`.
pub(crate) fn model_statistics(json: &Value) -> ModelStatistics {
    let stats = json.get("inference_stats").unwrap_or(&Value::Null);
    ModelStatistics {
        name: text(json, "name"),
        version: text(json, "version"),
        last_inference: int(json, "last_inference"),
        inference_count: int(json, "inference_count"),
        execution_count: int(json, "execution_count"),
        inference_stats: Some(InferStatistics {
            success: duration(stats, "success"),
            fail: duration(stats, "fail"),
            queue: duration(stats, "queue"),
            compute_input: duration(stats, "compute_input"),
            compute_infer: duration(stats, "compute_infer"),
            compute_output: duration(stats, "compute_output"),
            cache_hit: duration(stats, "cache_hit"),
            cache_miss: duration(stats, "cache_miss"),
        }),
        batch_stats: list(json, "batch_stats")
            .map(|b| InferBatchStatistics {
                batch_size: int(b, "batch_size"),
                compute_input: duration(b, "compute_input"),
                compute_infer: duration(b, "compute_infer"),
                compute_output: duration(b, "compute_output"),
            })
            .collect(),
        memory_usage: Vec::new(),
    }
}

fn duration(json: &Value, key: &str) -> Option<StatisticDuration> {
    let stat = json.get(key)?;
    Some(StatisticDuration {
        count: int(stat, "count"),
        ns: int(stat, "ns"),
    })
}

fn text(json: &Value, key: &str) -> String {
    match json.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// A whole number field; Triton's JSON writes 64-bit counts as numbers
/// or as strings.
fn int(json: &Value, key: &str) -> u64 {
    match json.get(key) {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn list<'a>(json: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    json.get(key)
        .and_then(Value::as_array)
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
}
