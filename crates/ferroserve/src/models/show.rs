//! Text renderings of models and versions for `models list` and `models show`.

use std::collections::BTreeMap;

use ferroserve_core::signature::format_shape;
use ferroserve_core::{FeatureSchema, ModelSignature};
use ferroserve_registry::{ModelVersion, RegisteredModel};
use serde_json::Value;

use super::output::{brief_value, fields, format_time, pairs, short_number, Table};
use super::store::ModelDetail;

/// Characters of an artifact digest shown in tables.
const SHORT_DIGEST: usize = 12;

/// The `models list` table, with a SERVING column when a server said what
/// it serves (`serving`, one per model, `None` in direct mode).
pub fn model_list(models: &[RegisteredModel], serving: &[Option<Value>]) -> String {
    if models.is_empty() {
        return "no models registered\n".to_owned();
    }
    let with_serving = serving.iter().any(Option::is_some);
    let header: &[&'static str] = if with_serving {
        &["NAME", "SERVING", "UPDATED", "TAGS", "DESCRIPTION"]
    } else {
        &["NAME", "UPDATED", "TAGS", "DESCRIPTION"]
    };
    let mut table = Table::new(header);
    for (i, m) in models.iter().enumerate() {
        let mut row = vec![m.name.clone()];
        if with_serving {
            let status = serving.get(i).and_then(Option::as_ref);
            row.push(status.map_or_else(|| "-".to_owned(), served_version));
        }
        row.extend([
            format_time(m.updated_at),
            pairs(&m.tags),
            m.description.clone(),
        ]);
        table.row(row);
    }
    table.to_string()
}

/// The version a `ServingStatus` serves: `2`, `none`, or why it is unknown.
fn served_version(status: &Value) -> String {
    if let Some(error) = status["error"].as_str() {
        return format!("unknown ({error})");
    }
    match status["serving_version"].as_str() {
        Some(version) => version.to_owned(),
        None => "none".to_owned(),
    }
}

/// One line on what the server serves of a model: the version, and the
/// versions that should serve but failed.
fn serving_summary(status: &Value) -> String {
    if status.get("error").is_some() {
        return served_version(status);
    }
    let mut text = match status["serving_version"].as_str() {
        Some(version) => format!("version {version}"),
        None => "no version".to_owned(),
    };
    for failure in status["failures"].as_array().into_iter().flatten() {
        text += &format!(
            "; version {} failed: {}",
            brief_value(&failure["version"]),
            failure["reason"].as_str().unwrap_or_default()
        );
    }
    text
}

/// A model's fields, aliases and versions table; `serving` is what the
/// server serves (remote mode only).
pub fn model_detail(detail: &ModelDetail, serving: Option<&Value>) -> String {
    let model = &detail.model;
    let mut out = fields(&[
        ("model", model.name.clone()),
        ("description", model.description.clone()),
        ("tags", pairs(&model.tags)),
        ("created", format_time(model.created_at)),
        ("updated", format_time(model.updated_at)),
        ("aliases", pairs(&detail.aliases)),
        ("serving", serving.map(serving_summary).unwrap_or_default()),
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
            pairs(v.meta.metrics.iter().map(|(k, m)| (k, short_number(*m)))),
        ]);
    }
    out.push_str(&table.to_string());
    out
}

/// One version: stage, status, whether the server serves it (remote mode),
/// artifact, lineage, params, metrics, signature, feature names and model
/// card.
pub fn version_detail(v: &ModelVersion, serving: Option<&Value>) -> String {
    let status = match &v.status {
        ferroserve_registry::VersionStatus::Failed { reason } => format!("failed: {reason}"),
        other => other.as_str().to_owned(),
    };
    let lineage = &v.meta.lineage;
    let mut out = fields(&[
        ("model", v.model.clone()),
        ("version", v.version.to_string()),
        ("stage", v.stage.to_string()),
        ("status", status),
        (
            "serving",
            serving
                .map(|s| version_serving(s, v.version))
                .unwrap_or_default(),
        ),
        (
            "artifact",
            format!(
                "sha256:{} ({} bytes, {})",
                v.artifact_digest, v.artifact_size, v.format
            ),
        ),
        (
            "engine",
            v.engine_hint.map(|e| e.to_string()).unwrap_or_default(),
        ),
        (
            "registered",
            format!("{} by {}", format_time(v.created_at), v.registered_by),
        ),
        ("tags", pairs(&v.meta.tags)),
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
        ("features", feature_names(v.meta.feature_schema.as_ref())),
        (
            "profile",
            if v.meta.reference_profile.is_some() {
                "recorded".to_owned()
            } else {
                String::new()
            },
        ),
    ]);
    section(&mut out, "params", &v.meta.params);
    section(&mut out, "metrics", &v.meta.metrics);
    if let Some(signature) = &v.signature {
        out.push_str("\nsignature\n");
        out.push_str(&indent(&signature_table(signature)));
    }
    if let Some(card) = &v.meta.model_card {
        out.push_str("\nmodel card\n");
        out.push_str(&indent(card));
        if !card.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// Whether the server serves version `version` of a model, per `status`.
fn version_serving(status: &Value, version: i64) -> String {
    if status.get("error").is_some() {
        return served_version(status);
    }
    let label = version.to_string();
    if status["serving_version"].as_str() == Some(label.as_str()) {
        return "yes (answers requests that name no version)".to_owned();
    }
    let failed = status["failures"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["version"].as_i64() == Some(version));
    if let Some(failure) = failed {
        return format!(
            "no: failed: {}",
            failure["reason"].as_str().unwrap_or_default()
        );
    }
    let loaded = status["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|v| v["version"].as_str() == Some(label.as_str()));
    let now = match status["serving_version"].as_str() {
        Some(other) => format!("the server serves version {other}"),
        None => "the server serves no version".to_owned(),
    };
    if loaded {
        format!("loaded (by name only); {now}")
    } else {
        format!("no; {now}")
    }
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
fn signature_table(signature: &ModelSignature) -> String {
    let mut table = Table::new(&["", "NAME", "DATATYPE", "SHAPE"]);
    for (direction, tensors) in [("input", &signature.inputs), ("output", &signature.outputs)] {
        for tensor in tensors {
            table.row(vec![
                direction.to_owned(),
                brief_text(&tensor.name),
                tensor.datatype.to_string(),
                format_shape(&tensor.shape),
            ]);
        }
    }
    table.to_string()
}

fn feature_names(schema: Option<&FeatureSchema>) -> String {
    let Some(schema) = schema else {
        return String::new();
    };
    let names: Vec<String> = schema
        .features
        .iter()
        .map(|f| brief_text(&f.name))
        .collect();
    names.join(", ")
}

/// A name cut as [`brief_value`] cuts strings.
fn brief_text(text: &str) -> String {
    brief_value(&Value::String(text.to_owned()))
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
