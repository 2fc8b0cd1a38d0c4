//! Text renderings of models and versions for `models list` and `models show`.

use std::collections::BTreeMap;

use ferroserve_registry::{ModelVersion, RegisteredModel};
use serde_json::Value;

use super::backend::ModelDetail;
use super::output::{brief_value, fields, format_time, pairs, short_number, Table};

/// Characters of an artifact digest shown in tables.
const SHORT_DIGEST: usize = 12;

/// The `models list` table.
pub fn model_list(models: &[RegisteredModel]) -> String {
    if models.is_empty() {
        return "no models registered\n".to_owned();
    }
    let mut table = Table::new(&["NAME", "UPDATED", "TAGS", "DESCRIPTION"]);
    for m in models {
        table.row(vec![
            m.name.clone(),
            format_time(m.updated_at),
            pairs(&m.tags),
            m.description.clone(),
        ]);
    }
    table.to_string()
}

/// A model's fields, aliases and versions table.
pub fn model_detail(detail: &ModelDetail) -> String {
    let model = &detail.model;
    let mut out = fields(&[
        ("model", model.name.clone()),
        ("description", model.description.clone()),
        ("tags", pairs(&model.tags)),
        ("created", format_time(model.created_at)),
        ("updated", format_time(model.updated_at)),
        ("aliases", pairs(&detail.aliases)),
    ]);
    out.push('\n');
    if detail.versions.is_empty() {
        out.push_str("no versions\n");
        return out;
    }
    let mut table = Table::new(&[
        "VERSION",
        "STAGE",
        "STATUS",
        "ALIASES",
        "REGISTERED",
        "BY",
        "ARTIFACT",
        "METRICS",
    ]);
    for v in &detail.versions {
        let aliases: Vec<&str> = detail
            .aliases
            .iter()
            .filter(|(_, version)| **version == v.version)
            .map(|(alias, _)| alias.as_str())
            .collect();
        table.row(vec![
            v.version.to_string(),
            v.stage.to_string(),
            v.status.as_str().to_owned(),
            aliases.join(","),
            format_time(v.created_at),
            v.registered_by.clone(),
            v.artifact_digest.chars().take(SHORT_DIGEST).collect(),
            pairs(v.metrics.iter().map(|(k, m)| (k, short_number(*m)))),
        ]);
    }
    out.push_str(&table.to_string());
    out
}

/// One version: stage, status, artifact, lineage, params, metrics,
/// signature, feature names and model card.
pub fn version_detail(v: &ModelVersion) -> String {
    let status = match &v.status {
        ferroserve_registry::VersionStatus::Failed { reason } => format!("failed: {reason}"),
        other => other.as_str().to_owned(),
    };
    let lineage = &v.lineage;
    let mut out = fields(&[
        ("model", v.model.clone()),
        ("version", v.version.to_string()),
        ("stage", v.stage.to_string()),
        ("status", status),
        (
            "artifact",
            format!(
                "sha256:{} ({} bytes, {})",
                v.artifact_digest, v.artifact_size, v.format
            ),
        ),
        ("engine", v.engine_hint.clone().unwrap_or_default()),
        (
            "registered",
            format!("{} by {}", format_time(v.created_at), v.registered_by),
        ),
        ("tags", pairs(&v.tags)),
        ("data", lineage.data_uri.clone().unwrap_or_default()),
        (
            "data sha256",
            lineage.data_sha256.clone().unwrap_or_default(),
        ),
        ("commit", lineage.code_commit.clone().unwrap_or_default()),
        ("run", lineage.run_id.clone().unwrap_or_default()),
        (
            "parent",
            lineage
                .parent_version
                .map(|p| p.to_string())
                .unwrap_or_default(),
        ),
        ("features", feature_names(v.feature_schema.as_ref())),
        (
            "profile",
            if v.reference_profile.is_some() {
                "recorded".to_owned()
            } else {
                String::new()
            },
        ),
    ]);
    section(&mut out, "params", &v.params);
    section(&mut out, "metrics", &v.metrics);
    if let Some(signature) = &v.signature {
        out.push_str("\nsignature\n");
        out.push_str(&indent(&signature_table(signature)));
    }
    if let Some(card) = &v.model_card {
        out.push_str("\nmodel card\n");
        out.push_str(&indent(card));
        if !card.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// A titled, indented block of `key  value` lines (nothing when empty).
fn section<V: std::fmt::Display>(out: &mut String, title: &str, items: &BTreeMap<String, V>) {
    if items.is_empty() {
        return;
    }
    let rows: Vec<(&str, String)> = items
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_string()))
        .collect();
    out.push_str(&format!("\n{title}\n"));
    out.push_str(&indent(&fields(&rows)));
}

/// The inputs and outputs of a stored signature, one per row.
fn signature_table(signature: &Value) -> String {
    let mut table = Table::new(&["", "NAME", "DATATYPE", "SHAPE"]);
    for (direction, key) in [("input", "inputs"), ("output", "outputs")] {
        for tensor in signature[key].as_array().into_iter().flatten() {
            table.row(vec![
                direction.to_owned(),
                brief_value(&tensor["name"]),
                brief_value(&tensor["datatype"]),
                shape(&tensor["shape"]),
            ]);
        }
    }
    table.to_string()
}

/// `[-1, 4]`.
fn shape(value: &Value) -> String {
    match value.as_array() {
        Some(dims) => {
            let dims: Vec<String> = dims.iter().map(Value::to_string).collect();
            format!("[{}]", dims.join(", "))
        }
        None => brief_value(value),
    }
}

/// The feature names of a feature schema, comma-separated.
fn feature_names(schema: Option<&Value>) -> String {
    let Some(features) = schema.and_then(|s| s["features"].as_array()) else {
        return String::new();
    };
    let names: Vec<String> = features.iter().map(|f| brief_value(&f["name"])).collect();
    names.join(", ")
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_owned()
            } else {
                format!("  {l}\n")
            }
        })
        .collect()
}
