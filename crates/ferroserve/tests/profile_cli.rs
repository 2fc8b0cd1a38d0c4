//! Tests of `ferroserve profile` running the real binary on a temporary
//! data dir holding the registered iris example: the committed
//! examples/iris/profile.json is what the command makes of iris.csv, the
//! same rows as JSON lines and Parquet give the same profile, the profile
//! is stored on the version (directly, and through a server's management
//! API), and bad input is reported with its place.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use common::{repo_root, run_direct, Server, BIN};
use parquet::arrow::ArrowWriter;
use serde_json::{json, Value};

/// Largest difference allowed between two numbers of a profile.
const TOL: f64 = 1e-9;

const FEATURES: [&str; 4] = ["sepal_length", "sepal_width", "petal_length", "petal_width"];

/// A data dir with the iris example registered as `iris` version 1.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        let ws = Workspace {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        let model = repo_root().join("examples/iris/model.onnx");
        let model = model.to_str().expect("utf-8 path");
        // features.json beside the model becomes the feature schema.
        let out = ws.run("models", &["register", model, "--name", "iris"]);
        succeeded(&out);
        ws
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `ferroserve COMMAND ARGS` in direct mode on this data dir.
    fn run(&self, command: &str, args: &[&str]) -> Output {
        run_direct(command, args, &self.path("data"), &repo_root())
    }

    /// Profiles `data` for iris; returns stdout and the profile written.
    fn profile(&self, data: &Path, extra: &[&str]) -> (String, Value) {
        let out_file = self.path("profile-out.json");
        let data = data.to_str().expect("utf-8 path");
        let out = out_file.to_str().expect("utf-8 path");
        let args = [&[data, "--model", "iris", "--out", out], extra].concat();
        let stdout = succeeded(&self.run("profile", &args));
        let text = std::fs::read_to_string(&out_file).expect("--out was written");
        (stdout, serde_json::from_str(&text).expect("profile JSON"))
    }

    /// Profiles `data` for `model`, which must fail; returns stderr.
    fn fails(&self, data: &Path, model: &str) -> String {
        let data = data.to_str().expect("utf-8 path");
        let out = self.run("profile", &[data, "--model", model, "--no-predictions"]);
        assert!(
            !out.status.success(),
            "profiling {data} should fail; stdout:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ferroserve failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

fn iris_csv() -> PathBuf {
    repo_root().join("examples/iris/iris.csv")
}

fn committed_profile() -> Value {
    let text = std::fs::read_to_string(repo_root().join("examples/iris/profile.json"))
        .expect("examples/iris/profile.json");
    serde_json::from_str(&text).expect("committed profile JSON")
}

/// Asserts that two JSON documents are equal, numbers within [`TOL`].
fn assert_close(actual: &Value, expected: &Value, path: &str) {
    match (actual, expected) {
        (Value::Number(a), Value::Number(e)) => {
            let (a, e) = (a.as_f64().expect("f64"), e.as_f64().expect("f64"));
            assert!((a - e).abs() <= TOL, "{path}: {a} != {e}");
        }
        (Value::Array(a), Value::Array(e)) => {
            assert_eq!(a.len(), e.len(), "{path}: lengths differ");
            for (i, (a, e)) in a.iter().zip(e).enumerate() {
                assert_close(a, e, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(a), Value::Object(e)) => {
            let keys = |o: &serde_json::Map<String, Value>| o.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(a), keys(e), "{path}: keys differ");
            for (key, a) in a {
                assert_close(a, &e[key], &format!("{path}.{key}"));
            }
        }
        _ => assert_eq!(actual, expected, "{path}"),
    }
}

/// The iris rows: the four features and the class index.
fn iris_rows() -> Vec<([f64; 4], i64)> {
    let mut reader = csv::Reader::from_path(iris_csv()).expect("iris.csv");
    reader
        .records()
        .map(|record| {
            let record = record.expect("a record");
            let number = |i: usize| record[i].parse::<f64>().expect("a number");
            (
                [number(0), number(1), number(2), number(3)],
                record[4].parse().expect("a class"),
            )
        })
        .collect()
}

#[test]
fn csv_profile_reproduces_the_committed_one_and_is_stored_on_the_version() {
    let ws = Workspace::new();
    let (stdout, profile) = ws.profile(&iris_csv(), &[]);
    assert!(
        stdout.starts_with("profiled 150 rows, 4 features and prediction `label` of ")
            && stdout.contains("; stored on iris version 1 (data dir "),
        "{stdout}"
    );
    assert_close(&profile, &committed_profile(), "profile");

    // The model's labels on the 150 rows (onnxruntime agrees: 50, 48, 52).
    let prediction = &profile["prediction"];
    assert_eq!(prediction["name"], "label");
    assert_eq!(prediction["summary"]["kind"], "categorical");
    let counts: BTreeMap<String, u64> = prediction["summary"]["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .map(|c| {
            let value = c["value"].as_str().expect("value").to_owned();
            (value, c["count"].as_u64().expect("count"))
        })
        .collect();
    let expected = BTreeMap::from([("0".into(), 50), ("1".into(), 48), ("2".into(), 52)]);
    assert_eq!(counts, expected);
    let names: Vec<&Value> = profile["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| &f["name"])
        .collect();
    assert_eq!(names, FEATURES.map(|f| json!(f)).iter().collect::<Vec<_>>());

    let shown: Value =
        serde_json::from_slice(&ws.run("models", &["show", "iris/1", "--json"]).stdout)
            .expect("models show --json");
    assert_close(&shown["reference_profile"], &profile, "stored");
}

#[test]
fn json_lines_and_parquet_of_the_same_rows_give_the_same_profile() {
    let ws = Workspace::new();
    let rows = iris_rows();
    assert_eq!(rows.len(), 150);

    // JSON lines under a name that says nothing, so --format must.
    let jsonl = ws.path("iris.txt");
    let lines: Vec<String> = rows
        .iter()
        .map(|(x, class)| {
            let mut object = serde_json::Map::new();
            for (name, value) in FEATURES.iter().zip(x) {
                object.insert((*name).to_owned(), json!(value));
            }
            object.insert("species".to_owned(), json!(class));
            Value::Object(object).to_string()
        })
        .collect();
    std::fs::write(&jsonl, lines.join("\n") + "\n").expect("write JSON lines");
    let (_, profile) = ws.profile(&jsonl, &["--format", "jsonl"]);
    assert_close(&profile, &committed_profile(), "jsonl");

    let parquet = ws.path("iris.parquet");
    let mut columns: Vec<(&str, ArrayRef)> = FEATURES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let values: Float64Array = rows.iter().map(|(x, _)| Some(x[i])).collect();
            (*name, Arc::new(values) as ArrayRef)
        })
        .collect();
    let classes: Int64Array = rows.iter().map(|(_, c)| Some(*c)).collect();
    columns.push(("species", Arc::new(classes)));
    let batch = RecordBatch::try_from_iter(columns).expect("record batch");
    let file = std::fs::File::create(&parquet).expect("create parquet");
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write parquet");
    writer.close().expect("close parquet");
    let (_, profile) = ws.profile(&parquet, &[]);
    assert_close(&profile, &committed_profile(), "parquet");
}

#[test]
fn bad_input_is_reported_with_its_file_line_and_column() {
    let ws = Workspace::new();
    let header = "sepal_length,sepal_width,petal_length,species";
    let missing = ws.path("missing.csv");
    std::fs::write(&missing, format!("{header}\n5.1,3.5,1.4,0\n")).expect("write");
    let err = ws.fails(&missing, "iris");
    assert!(
        err.contains("missing.csv has no column for feature `petal_width` of the feature schema"),
        "{err}"
    );

    let bad = ws.path("bad.csv");
    let text = format!("{header},petal_width\n5.1,3.5,1.4,0,0.2\n4.9,abc,1.4,0,0.2\n");
    std::fs::write(&bad, text).expect("write");
    let err = ws.fails(&bad, "iris");
    assert!(
        err.contains("bad.csv, line 3, column `sepal_width`: \"abc\" is not a number"),
        "{err}"
    );

    let err = ws.fails(&iris_csv(), "nosuch");
    assert!(err.contains("model 'nosuch' does not exist"), "{err}");
}

#[test]
fn remote_mode_fetches_the_artifact_and_stores_the_profile_through_the_api() {
    let ws = Workspace::new();
    // The management API answers as soon as the server listens.
    let server = Server::start_in(&ws.path("data"), &["--no-example"]);
    let remote = |args: &[&str]| {
        Command::new(BIN)
            .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
            .args(args)
            .args(["--url", &server.base])
            .current_dir(repo_root())
            .output()
            .expect("ferroserve runs")
    };
    let csv = iris_csv();
    let csv = csv.to_str().expect("utf-8 path");

    let stdout = succeeded(&remote(&["profile", csv, "--model", "iris"]));
    assert!(
        stdout.starts_with("profiled 150 rows, 4 features and prediction `label` of ")
            && stdout.contains(&format!("; stored on iris version 1 ({})", server.base)),
        "{stdout}"
    );
    let shown: Value =
        serde_json::from_str(&succeeded(&remote(&["models", "show", "iris/1", "--json"])))
            .expect("models show --json");
    assert_close(&shown["reference_profile"], &committed_profile(), "stored");
    let history: Value = serde_json::from_str(&succeeded(&remote(&[
        "models", "history", "iris", "--json",
    ])))
    .expect("models history --json");
    assert!(
        history["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["actor"] == "admin")),
        "{history}"
    );

    let out = remote(&["profile", csv, "--model", "nosuch", "--no-predictions"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("404") && err.contains("nosuch"),
        "server error text expected: {err}"
    );
}

#[test]
fn predictions_use_the_engine_serve_picks() {
    let ws = Workspace::new();
    // A GradientBoostingRegressor (TreeEnsembleRegressor), which tract
    // cannot run: the default engine is auto, as for `serve`.
    let gbr = repo_root().join("testdata/models/gbr.onnx");
    let gbr = gbr.to_str().expect("utf-8 path");
    succeeded(&ws.run("models", &["register", gbr, "--name", "gbr", "--no-schema"]));
    let sample = ws.path("gbr.csv");
    let mut text = String::from("a,b,c,d,e\n");
    for i in 0..20 {
        let x = f64::from(i) / 10.0;
        text += &format!("{x},{},{},{},{}\n", 1.0 - x, x * x, 0.5, -x);
    }
    std::fs::write(&sample, text).expect("write sample");
    let sample = sample.to_str().expect("utf-8 path");
    let stdout = succeeded(&ws.run("profile", &[sample, "--model", "gbr"]));
    assert!(
        stdout.contains("profiled 20 rows, 5 features and prediction `variable`"),
        "{stdout}"
    );
    let out = ws.run("profile", &[sample, "--model", "gbr", "--engine", "tract"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TreeEnsembleRegressor"), "{err}");
}
