//! `ferroserve drift MODEL`: the monitor's view of a served model, read
//! from a running server, as a per-feature table with each feature's PSI
//! over the recent windows and, on request, one feature's histogram
//! against the reference (or the raw JSON).

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
        return Ok(());
    }
    if let Some(feature) = &args.feature {
        let known = monitored(&body);
        if !known.iter().any(|name| name == feature) {
            anyhow::bail!(
                "no closed window of model {} has feature '{feature}'; its last windows have: {}",
                args.model,
                if known.is_empty() {
                    "none yet".to_owned()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    print!("{}", render(&body, args.feature.as_deref()));
    Ok(())
}

/// Closed windows whose PSI the text shows per feature, newest last.
const WINDOWS_SHOWN: usize = 8;
/// Width of a histogram bar standing for every value.
const BAR_WIDTH: f64 = 30.0;

/// The features (and predictions) of every version's last window.
fn monitored(report: &Value) -> Vec<String> {
    let mut names: Vec<String> = report["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|v| window_features(&v["latest"]))
        .filter_map(|f| f["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A window's features, then its prediction when it has one.
fn window_features(window: &Value) -> impl Iterator<Item = &Value> {
    window["features"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(window.get("prediction").filter(|p| !p.is_null()))
}

/// The report as text: per version, the last window's feature table, the
/// overall verdict, each feature's PSI over the recent windows, `feature`'s
/// histogram against the reference when asked for, contract violations,
/// online quality and alert rules.
pub fn render(report: &Value, feature: Option<&str>) -> String {
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
            Some(latest) => {
                render_window(&mut out, latest);
                render_history(&mut out, version);
                if let Some(name) = feature {
                    render_histogram(&mut out, latest, name);
                }
            }
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
    for feature in window_features(latest) {
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

/// Each feature's PSI in the last [`WINDOWS_SHOWN`] closed windows.
fn render_history(out: &mut String, version: &Value) {
    let windows: Vec<&Value> = version["history"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let recent = &windows[windows.len().saturating_sub(WINDOWS_SHOWN)..];
    if recent.len() < 2 {
        return;
    }
    let heads: String = recent
        .iter()
        .map(|w| format!("{:>9}", format!("w{}", w["index"])))
        .collect();
    let _ = writeln!(out, "  {:<24}{heads}", "psi by window");
    for name in version["features"].as_array().into_iter().flatten() {
        let name = name.as_str().unwrap_or("?");
        let cells: String = recent
            .iter()
            .map(|w| format!("{:>9}", number(&w["feature_psi"][name])))
            .collect();
        let _ = writeln!(out, "  {name:<24}{cells}");
    }
}

/// `name`'s shares of the reference's bins or categories, in the
/// reference and in the last window, with bars.
fn render_histogram(out: &mut String, latest: &Value, name: &str) {
    let Some(feature) = window_features(latest).find(|f| f["name"] == name) else {
        let _ = writeln!(out, "  {name}: not in window {}", latest["index"]);
        return;
    };
    let distribution = &feature["distribution"];
    let shares = |key: &str| -> Vec<f64> {
        distribution[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| x.as_f64().unwrap_or(0.0))
            .collect()
    };
    let (reference, window) = (shares("reference"), shares("window"));
    if reference.is_empty() {
        let _ = writeln!(out, "  {name}: no values in window {}", latest["index"]);
        return;
    }
    let labels: Vec<String> = match distribution["categories"].as_array() {
        Some(categories) => categories
            .iter()
            .map(|c| c.as_str().unwrap_or("?").to_owned())
            .collect(),
        None => {
            let edges = shares("edges");
            edges
                .windows(2)
                .map(|pair| format!("{}..{}", short(pair[0]), short(pair[1])))
                .collect()
        }
    };
    let bar = |share: f64| "#".repeat((share * BAR_WIDTH).round() as usize);
    let _ = writeln!(
        out,
        "  {name}: share of values per bin, reference against window {}",
        latest["index"]
    );
    for ((label, r), w) in labels.iter().zip(&reference).zip(&window) {
        let _ = writeln!(
            out,
            "    {label:<20} ref {r:>6.3} {:<30} win {w:>6.3} {}",
            bar(*r),
            bar(*w)
        );
    }
}

/// `x` with at most three decimals, without trailing zeros.
fn short(x: f64) -> String {
    let text = format!("{x:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
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
        let text = render(&report, None);
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

    #[test]
    fn psi_by_window_and_a_features_histogram_beside_the_reference() {
        let report = json!({"model": "iris", "versions": [{
            "version": "1", "features": ["petal_length", "colour"],
            "history": [
                {"index": 1, "feature_psi": {"petal_length": 0.01, "colour": 0.02}},
                {"index": 2, "feature_psi": {"petal_length": 3.5}}
            ],
            "latest": {"index": 2, "features": [
                {"name": "petal_length", "kind": "numeric", "distribution": {
                    "edges": [1.0, 2.5, 4.0], "reference": [0.5, 0.5], "window": [0.0, 1.0]}},
                {"name": "colour", "kind": "categorical", "distribution": {
                    "categories": ["red", "(not in reference)"], "reference": [1.0, 0.0], "window": [0.25, 0.75]}}
            ]}
        }]});
        let text = render(&report, Some("petal_length"));
        let row = |cells: [&str; 3]| format!("{:<24}{:>9}{:>9}", cells[0], cells[1], cells[2]);
        for cells in [
            ["psi by window", "w1", "w2"],
            ["petal_length", "0.0100", "3.5000"],
            ["colour", "0.0200", "-"],
        ] {
            assert!(text.contains(&row(cells)), "{text}");
        }
        let bins: Vec<&str> = text.lines().filter(|l| l.contains(" ref ")).collect();
        assert_eq!(bins.len(), 2, "{text}");
        assert!(bins[0].starts_with("    1..2.5 "), "{text}");
        assert!(
            bins[0].contains(&format!("ref  0.500 {:<30} win  0.000", "#".repeat(15))),
            "{text}"
        );
        assert!(
            bins[1].ends_with(&format!("win  1.000 {}", "#".repeat(30))),
            "{text}"
        );

        let text = render(&report, Some("colour"));
        assert!(
            text.contains("    (not in reference)   ref  0.000"),
            "{text}"
        );
        assert_eq!(monitored(&report), ["colour", "petal_length"]);
        assert!(render(&report, Some("nope")).contains("nope: not in window 2"));
    }
}
