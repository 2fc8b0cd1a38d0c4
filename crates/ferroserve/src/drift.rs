//! `ferroserve drift MODEL`: the monitor's view of a served model, read
//! from a running server, as a per-feature table (or the raw JSON).

use std::fmt::Write as _;

use serde_json::Value;

use crate::api_client::{segment, ApiClient};
use crate::cli::DriftArgs;

/// Prints the drift report of `args.model`.
pub fn run(args: DriftArgs) -> anyhow::Result<()> {
    let api = ApiClient::new(&args.url)?;
    let body: Value = api.get(&format!("/api/v1/models/{}/drift", segment(&args.model)))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        print!("{}", render(&body));
    }
    Ok(())
}

/// The report as text: per version, the last window's feature table, the
/// overall verdict, contract violations, online quality and alert rules.
pub fn render(report: &Value) -> String {
    let mut out = String::new();
    let model = report["model"].as_str().unwrap_or("?");
    for version in report["versions"].as_array().into_iter().flatten() {
        let label = version["version"].as_str().unwrap_or("?");
        let _ = writeln!(
            out,
            "model {model} version {label}: {} requests observed, {} dropped; window {} rows / {} s, {} closed, {} rows in the open one",
            version["observed_requests"],
            version["dropped_requests"],
            version["window_rows"],
            version["window_seconds"],
            version["windows_closed"],
            version["open_window"]["rows"],
        );
        if let Some(note) = version["note"].as_str() {
            let _ = writeln!(out, "  note: {note}");
        }
        match version.get("latest").filter(|l| !l.is_null()) {
            Some(latest) => render_window(&mut out, latest),
            None => {
                let _ = writeln!(out, "  no window closed yet");
            }
        }
        render_contract(&mut out, &version["contract_violations"]);
        render_quality(&mut out, &version["quality"]);
        for rule in version["alerts"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  alert rule {}: {} in a row, {}, fired {} times",
                rule["rule"].as_str().unwrap_or("?"),
                rule["consecutive"],
                if rule["firing"] == Value::Bool(true) {
                    "FIRING"
                } else {
                    "quiet"
                },
                rule["fired"],
            );
        }
        out.push('\n');
    }
    out
}

fn render_window(out: &mut String, latest: &Value) {
    let _ = writeln!(
        out,
        "  window {} ({} rows, closed by {}): {} of {} features drifted (share {}), dataset drift: {}",
        latest["index"],
        latest["rows"],
        latest["closed_by"].as_str().unwrap_or("?"),
        latest["drifted_features"],
        latest["features"].as_array().map_or(0, Vec::len),
        number(&latest["drift_share"]),
        if latest["dataset_drift"] == Value::Bool(true) { "YES" } else { "no" },
    );
    let _ = writeln!(
        out,
        "  {:<24} {:<12} {:>7} {:>6} {:>9} {:<12} {:>8} {:>10} {:>8} {:<7}",
        "feature", "kind", "count", "nulls", "psi", "level", "ks", "ks_p", "js", "drifted"
    );
    let rows = latest["features"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(latest.get("prediction").filter(|p| !p.is_null()));
    for feature in rows {
        let mut name = feature["name"].as_str().unwrap_or("?").to_owned();
        if latest.get("prediction") == Some(feature) {
            name = format!("{name} (prediction)");
        }
        let _ = writeln!(
            out,
            "  {:<24} {:<12} {:>7} {:>6} {:>9} {:<12} {:>8} {:>10} {:>8} {:<7}",
            name,
            feature["kind"].as_str().unwrap_or("?"),
            feature["count"],
            feature["nulls"],
            number(&feature["psi"]),
            feature["psi_level"].as_str().unwrap_or("-"),
            number(&feature["ks_statistic"]),
            number(&feature["ks_p_value"]),
            number(&feature["js_distance"]),
            if feature["drifted"] == Value::Bool(true) {
                "YES"
            } else {
                "no"
            },
        );
    }
}

fn render_contract(out: &mut String, violations: &Value) {
    let Some(features) = violations.as_object().filter(|o| !o.is_empty()) else {
        return;
    };
    let _ = writeln!(out, "  data contract violations:");
    for (feature, kinds) in features {
        let kinds: Vec<String> = kinds
            .as_object()
            .into_iter()
            .flatten()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect();
        let _ = writeln!(out, "    {feature}: {}", kinds.join(", "));
    }
}

fn render_quality(out: &mut String, quality: &Value) {
    if quality.is_null() {
        return;
    }
    let figures: Vec<String> = ["accuracy", "precision", "recall", "f1", "mae", "rmse"]
        .iter()
        .filter(|k| !quality[**k].is_null())
        .map(|k| format!("{k} {}", number(&quality[*k])))
        .collect();
    let _ = writeln!(
        out,
        "  online quality over {} labeled predictions: {}",
        quality["count"],
        figures.join(", ")
    );
}

fn number(value: &Value) -> String {
    match value.as_f64() {
        Some(v) if v != 0.0 && v.abs() < 1e-4 => format!("{v:.2e}"),
        Some(v) => format!("{v:.4}"),
        None => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_lists_every_feature_and_the_verdict() {
        let report = json!({"model": "iris", "versions": [{
            "version": "1", "observed_requests": 10, "dropped_requests": 0,
            "window_rows": 5, "window_seconds": 60, "windows_closed": 2,
            "open_window": {"rows": 0, "opened_at_ms": 0},
            "latest": {"index": 2, "rows": 5, "closed_by": "rows", "drifted_features": 1,
                "drift_share": 0.5, "dataset_drift": true,
                "features": [
                    {"name": "petal_length", "kind": "numeric", "count": 5, "nulls": 0, "psi": 3.2,
                     "psi_level": "significant", "ks_statistic": 0.9, "ks_p_value": 0.00001, "drifted": true},
                    {"name": "colour", "kind": "categorical", "count": 5, "nulls": 1, "psi": 0.01,
                     "psi_level": "stable", "js_distance": 0.02, "drifted": false}
                ],
                "prediction": {"name": "label", "kind": "categorical", "count": 5, "nulls": 0, "psi": 0.5,
                     "psi_level": "significant", "js_distance": 0.3, "drifted": true}},
            "contract_violations": {"petal_length": {"above_max": 3}},
            "quality": {"task": "classification", "count": 4, "accuracy": 0.75},
            "alerts": [{"rule": "feature_psi", "consecutive": 2, "firing": false, "fired": 0}]
        }]});
        let text = render(&report);
        assert!(
            text.contains("model iris version 1: 10 requests observed"),
            "{text}"
        );
        assert!(
            text.contains("1 of 2 features drifted (share 0.5000), dataset drift: YES"),
            "{text}"
        );
        assert!(
            text.contains("petal_length") && text.contains("3.2000") && text.contains("1.00e-5"),
            "{text}"
        );
        assert!(text.contains("label (prediction)"), "{text}");
        assert!(text.contains("petal_length: above_max 3"), "{text}");
        assert!(text.contains("accuracy 0.7500"), "{text}");
        assert!(
            text.contains("alert rule feature_psi: 2 in a row, quiet"),
            "{text}"
        );
    }
}
