//! Tests of `ferroserve models` running the real binary: directly on a
//! temporary data dir (register with lineage, list, show, promote, alias,
//! history, rollback, serving config, clear errors) and once through a
//! running server's management API.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{repo_root, run_direct, succeeded, Server, BIN};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A data dir and a folder holding the iris model with its features.json,
/// a model card and training data.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        let model_dir = dir.path().join("model");
        std::fs::create_dir_all(&model_dir).expect("mkdir");
        for file in ["model.onnx", "features.json"] {
            std::fs::copy(
                repo_root().join("examples/iris").join(file),
                model_dir.join(file),
            )
            .expect("copy");
        }
        std::fs::write(
            dir.path().join("card.md"),
            "# Iris\n\nIntended use: tests.\n",
        )
        .expect("card");
        std::fs::write(dir.path().join("train.csv"), "a,b\n1,2\n").expect("data");
        Workspace { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn model(&self) -> String {
        self.path("model/model.onnx").display().to_string()
    }

    /// Runs `ferroserve models ARGS` in direct mode on this data dir.
    fn run(&self, args: &[&str]) -> Output {
        run_direct("models", args, &self.path("data"), self.dir.path())
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.run(args))
    }

    /// Runs a command with `--json` that must succeed; returns its answer.
    fn json(&self, args: &[&str]) -> Value {
        let args = [args, &["--json"]].concat();
        serde_json::from_str(&self.ok(&args)).expect("JSON output")
    }

    /// Runs a command that must fail; returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "{args:?} should fail; stdout:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Registers the iris model with `extra` flags; returns the version.
    fn register(&self, extra: &[&str]) -> Value {
        let model = self.model();
        let args = [&["register", model.as_str(), "--name", "iris"], extra].concat();
        self.json(&args)["version"].clone()
    }
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read")))
}

#[test]
fn register_records_metrics_params_lineage_card_and_schema() {
    let ws = Workspace::new();
    let v = ws.register(&[
        "--metric",
        "accuracy=0.97",
        "--metric",
        "f1=0.96",
        "--param",
        "n_estimators=10",
        "--data",
        "train.csv",
        "--commit",
        "abc123",
        "--run-id",
        "run-1",
        "--card",
        "card.md",
        "--tag",
        "team=ml",
        "--description",
        "Iris classifier",
        "--stage",
        "Production",
    ]);
    assert_eq!(v["version"], 1);
    assert_eq!(v["stage"], "Production");
    assert_eq!(v["status"]["state"], "ready");
    assert_eq!(v["registered_by"], "tester");
    assert_eq!(v["metrics"], json!({"accuracy": 0.97, "f1": 0.96}));
    assert_eq!(v["params"], json!({"n_estimators": "10"}));
    assert_eq!(v["tags"], json!({"team": "ml"}));
    let data = std::fs::canonicalize(ws.path("train.csv")).expect("data");
    let lineage = &v["lineage"];
    assert_eq!(lineage["data_uri"], format!("file://{}", data.display()));
    assert_eq!(lineage["data_sha256"], sha256_of(&data));
    assert_eq!(lineage["code_commit"], "abc123");
    assert_eq!(lineage["run_id"], "run-1");
    assert!(v["model_card"]
        .as_str()
        .is_some_and(|c| c.contains("Intended use")));
    // features.json beside the model is picked up without --schema.
    assert_eq!(v["feature_schema"]["features"][0]["name"], "sepal_length");
    assert_eq!(v["signature"]["inputs"][0]["name"], "input");
    assert_eq!(
        v["artifact_digest"],
        sha256_of(&ws.path("model/model.onnx"))
    );

    let list = ws.ok(&["list"]);
    assert!(list.starts_with("NAME") && list.contains("iris"), "{list}");
    assert!(list.contains("Iris classifier"), "{list}");
    let models = ws.json(&["list"]);
    assert_eq!(models["models"][0]["name"], "iris");

    let model = ws.ok(&["show", "iris"]);
    for text in ["VERSION", "Production", "accuracy=0.97", "Iris classifier"] {
        assert!(model.contains(text), "{text} missing from:\n{model}");
    }
    let version = ws.ok(&["show", "iris/1"]);
    for text in [
        "abc123",
        "run-1",
        "n_estimators",
        "0.97",
        "sepal_length",
        "Intended use: tests.",
        "FP32",
        &format!("file://{}", data.display()),
    ] {
        assert!(version.contains(text), "{text} missing from:\n{version}");
    }

    // A URI is recorded as given, without a digest; --no-schema leaves the
    // schema out.
    let v = ws.register(&["--data", "s3://bucket/iris.csv", "--no-schema"]);
    assert_eq!(v["version"], 2);
    assert_eq!(v["lineage"]["data_uri"], "s3://bucket/iris.csv");
    assert_eq!(v["lineage"]["data_sha256"], Value::Null);
    assert_eq!(v["feature_schema"], Value::Null);
    assert_eq!(v["stage"], "None");
}

#[test]
fn promote_alias_history_and_rollback() {
    let ws = Workspace::new();
    ws.register(&["--stage", "Production"]);
    let schema = ws.path("model/features.json").display().to_string();
    let v2 = ws.register(&["--schema", &schema, "--parent-version", "1"]);
    assert_eq!(v2["lineage"]["parent_version"], 1);

    let out = ws.ok(&["promote", "iris", "2", "--stage", "Production"]);
    assert!(out.contains("version 2 is now in Production"), "{out}");
    assert_eq!(ws.json(&["show", "iris/1"])["stage"], "Archived");
    assert_eq!(ws.json(&["show", "iris/2"])["stage"], "Production");

    let out = ws.ok(&["alias", "iris", "champion", "2"]);
    assert!(
        out.contains("iris@champion now points to version 2"),
        "{out}"
    );
    assert_eq!(
        ws.json(&["show", "iris"])["aliases"],
        json!({"champion": 2})
    );
    ws.ok(&["alias", "iris", "challenger", "1"]);
    ws.ok(&["alias", "iris", "challenger", "--delete"]);
    assert_eq!(
        ws.json(&["show", "iris"])["aliases"],
        json!({"champion": 2})
    );

    let out = ws.ok(&["rollback", "iris"]);
    assert!(out.contains("rolled back to version 1"), "{out}");
    assert_eq!(ws.json(&["show", "iris/1"])["stage"], "Production");
    assert_eq!(ws.json(&["show", "iris/2"])["stage"], "Archived");

    let history = ws.ok(&["history", "iris"]);
    let lines: Vec<&str> = history.lines().collect();
    assert!(lines[0].starts_with("TIME"), "{history}");
    let position = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} missing from:\n{history}"))
    };
    // Newest first: the rollback's stage change heads the list.
    assert!(
        position("set_alias") > position("delete_alias"),
        "{history}"
    );
    assert!(
        lines[1].contains("transition_stage") && lines[1].contains("Archived → Production"),
        "{history}"
    );
    assert!(
        history.contains("stage: Production → Archived"),
        "{history}"
    );
    assert!(history.contains("create_version"), "{history}");
    assert!(lines[1..].iter().all(|l| l.contains("tester")), "{history}");
    let events = ws.json(&["history", "iris"])["events"].clone();
    assert_eq!(events.as_array().map(Vec::len), Some(lines.len() - 1));

    let out = ws.ok(&["config", "iris", "--set", r#"{"serve": "latest"}"#]);
    assert!(out.contains("revision 1"), "{out}");
    let config = ws.json(&["config", "iris"]);
    assert_eq!(config["revision"], 1);
    assert_eq!(config["config"]["serve"], "latest");
}

#[test]
fn errors_are_clear_and_exit_non_zero() {
    let ws = Workspace::new();
    let model = ws.model();
    let err = ws.fails(&[
        "register",
        &model,
        "--name",
        "iris",
        "--metric",
        "accuracy=high",
    ]);
    assert!(
        err.contains("accuracy") && err.contains("not a finite number"),
        "{err}"
    );
    let err = ws.fails(&["register", "missing.onnx", "--name", "iris"]);
    assert!(err.contains("missing.onnx does not exist"), "{err}");
    let err = ws.fails(&["register", &model, "--name", "iris", "--data", "nope.csv"]);
    assert!(err.contains("--data nope.csv: no such file"), "{err}");
    let err = ws.fails(&["register", "card.md", "--name", "iris", "--no-schema"]);
    assert!(err.contains("not an ONNX model"), "{err}");
    // Nothing was registered by the failed attempts.
    assert!(ws.ok(&["list"]).contains("no models registered"));

    ws.register(&[]);
    let err = ws.fails(&["show", "nope"]);
    assert!(err.contains("model 'nope' does not exist"), "{err}");
    let err = ws.fails(&["history", "nope"]);
    assert!(err.contains("model 'nope' does not exist"), "{err}");
    let err = ws.fails(&["delete", "nope", "--yes"]);
    assert!(err.contains("model 'nope' does not exist"), "{err}");
    let err = ws.fails(&["promote", "iris", "9", "--stage", "Production"]);
    assert!(err.contains("model 'iris' has no version 9"), "{err}");
    let err = ws.fails(&["rollback", "iris"]);
    assert!(err.contains("no earlier Production version"), "{err}");
    let err = ws.fails(&["config", "iris", "--set", r#"{"serve": "canary"}"#]);
    assert!(err.contains("canary"), "{err}");
}

/// `ferroserve models ARGS --json` through `server` as admin, which must
/// succeed; its JSON answer.
fn remote_json(server: &Server, args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
        .arg("models")
        .args(args)
        .args(["--url", &server.base, "--json"])
        .output()
        .expect("ferroserve runs");
    serde_json::from_str(&succeeded(args, out)).expect("JSON output")
}

#[test]
fn remote_mode_goes_through_the_management_api() {
    let ws = Workspace::new();
    // The management API answers as soon as the server listens.
    let server = Server::start_in(&ws.path("server-data"), &["--no-example"]);
    let remote = |args: &[&str]| remote_json(&server, args);
    let model = ws.model();
    let answer = remote(&[
        "register",
        &model,
        "--name",
        "flowers",
        "--metric",
        "accuracy=0.9",
        "--data",
        ws.path("train.csv").to_str().expect("utf-8"),
        "--stage",
        "Production",
    ]);
    assert_eq!(answer["version"]["version"], 1);
    // Through a server, the audit log records the key's principal.
    assert_eq!(answer["version"]["registered_by"], "admin");
    assert_eq!(
        answer["version"]["feature_schema"]["features"][0]["name"],
        "sepal_length"
    );
    assert_eq!(answer["serving"]["serving_version"], "1");

    remote(&["register", &model, "--name", "flowers"]);
    let answer = remote(&["promote", "flowers", "2", "--stage", "Production"]);
    assert_eq!(answer["serving"]["serving_version"], "2");
    let answer = remote(&["rollback", "flowers"]);
    assert_eq!(answer["version"]["version"], 1);
    assert_eq!(answer["serving"]["serving_version"], "1");
    let answer = remote(&["config", "flowers", "--set", r#"{"serve": "latest"}"#]);
    assert_eq!(answer["revision"], 1);
    assert_eq!(answer["config"], json!({"serve": "latest"}));
    assert_eq!(answer["serving"]["serving_version"], "2");
    let config = remote(&["config", "flowers"]);
    assert_eq!(config["revision"], 1);
    let detail = remote(&["show", "flowers"]);
    assert_eq!(detail["versions"].as_array().map(Vec::len), Some(2));
    let events = remote(&["history", "flowers"]);
    assert!(events["events"]
        .as_array()
        .is_some_and(|e| e.iter().any(|e| e["actor"] == "admin")));

    // A version whose interface differs is refused while it would serve at
    // once (the config serves the latest version); registered without
    // serving, its promotion is refused: non-zero exit, saying why.
    let other = repo_root().join("testdata/models/add_int64.onnx");
    let other = other.to_str().expect("utf-8");
    let refused = |args: &[&str]| {
        let out = Command::new(BIN)
            .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
            .arg("models")
            .args(args)
            .args(["--url", &server.base])
            .output()
            .expect("ferroserve runs");
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused(&["register", other, "--name", "flowers", "--no-schema"]);
    assert!(
        err.contains("would serve at once in place of version 2"),
        "{err}"
    );
    remote(&["config", "flowers", "--set", "{}"]);
    remote(&["register", other, "--name", "flowers", "--no-schema"]);
    let err = refused(&["promote", "flowers", "3", "--stage", "Production"]);
    assert!(
        err.contains("would swap version 3 of model 'flowers' in for version 1")
            && err.contains("interface differs"),
        "{err}"
    );
    let detail = remote(&["show", "flowers/3"]);
    assert_eq!(detail["stage"], "None", "the registry is unchanged");

    let out = Command::new(BIN)
        .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
        .args(["models", "show", "nope", "--url", &server.base])
        .output()
        .expect("ferroserve runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("404") && err.contains("nope"),
        "server error text expected: {err}"
    );
}

#[test]
fn read_commands_never_create_a_data_dir() {
    let ws = Workspace::new();
    let missing = ws.path("nowhere");
    let run = |command: &str, args: &[&str]| {
        let out = run_direct(command, args, &missing, ws.dir.path());
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{command} {args:?} succeeded");
        err
    };
    let iris_csv = repo_root().join("examples/iris/iris.csv");
    let iris_csv = iris_csv.to_str().expect("utf-8");
    let reads: [(&str, &[&str]); 9] = [
        ("models", &["list"]),
        ("models", &["show", "iris"]),
        ("models", &["history", "iris"]),
        ("models", &["config", "iris"]),
        ("models", &["promote", "iris", "1", "--stage", "Production"]),
        ("models", &["alias", "iris", "champion", "1"]),
        ("models", &["delete", "iris", "--yes"]),
        ("profile", &[iris_csv, "--model", "iris"]),
        ("batch", &[iris_csv, "--model", "iris", "-o", "out.csv"]),
    ];
    for (command, args) in reads {
        let err = run(command, args);
        assert!(
            err.contains(&format!(
                "no registry at {} (no such directory)",
                missing.display()
            )) && err.contains("--data-dir")
                && err.contains("FERROSERVE_URL"),
            "{command} {args:?}: {err}"
        );
        assert!(
            !missing.exists(),
            "{command} {args:?} created {}",
            missing.display()
        );
    }
    // A folder that exists but holds no registry stays empty.
    std::fs::create_dir(&missing).expect("mkdir");
    let err = run("models", &["list"]);
    assert!(err.contains("it has no registry.db"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&missing).expect("read").collect();
    assert!(left.is_empty(), "{left:?}");

    // A registration creates the data dir, as serve does.
    let model = ws.model();
    let out = run_direct(
        "models",
        &["register", &model, "--name", "iris"],
        &missing,
        ws.dir.path(),
    );
    succeeded(&["register"], out);
    assert!(missing.join("registry.db").is_file());
}

#[test]
fn register_hints_at_promotion_and_config_shows_the_defaults() {
    let ws = Workspace::new();
    let out = ws.ok(&["register", &ws.model(), "--name", "iris"]);
    assert!(
        out.contains("not served yet: iris serves its Production version")
            && out.contains("ferroserve models promote iris 1 --stage Production"),
        "{out}"
    );
    let out = ws.ok(&[
        "register",
        &ws.model(),
        "--name",
        "iris",
        "--stage",
        "Production",
    ]);
    assert!(!out.contains("not served yet"), "{out}");

    let out = ws.ok(&["config", "iris"]);
    assert!(
        out.contains("never set; the defaults are in effect"),
        "{out}"
    );
    assert!(out.contains(r#""serve": "production""#), "{out}");
    assert!(out.contains(r#""version_policy": "serving""#), "{out}");
    ws.ok(&["config", "iris", "--set", r#"{"serve": "latest"}"#]);
    let config = ws.json(&["config", "iris"]);
    assert_eq!(config["config"], json!({"serve": "latest"}));
    assert_eq!(config["effective"]["serve"], "latest");
    assert_eq!(config["effective"]["allow_interface_change"], false);
    // With `latest` a new version serves at once: no hint.
    let out = ws.ok(&["register", &ws.model(), "--name", "iris"]);
    assert!(!out.contains("not served yet"), "{out}");
}

#[test]
fn delete_asks_for_confirmation_and_keeps_the_history() {
    let ws = Workspace::new();
    ws.register(&["--stage", "Production"]);
    // stdin is not a terminal here: --yes is required.
    let err = ws.fails(&["delete", "iris"]);
    assert!(
        err.contains("pass --yes") && err.contains("1 version"),
        "{err}"
    );
    let err = ws.fails(&["delete", "iris", "--yes"]);
    assert!(err.contains("Production"), "{err}");
    let err = ws.fails(&["promote", "iris", "1", "--stage", "Archived"]);
    assert!(err.contains("nothing to serve"), "{err}");
    ws.ok(&["promote", "iris", "1", "--stage", "Archived", "--unload"]);
    let out = ws.ok(&["delete", "iris", "--yes"]);
    assert!(out.contains("deleted model iris"), "{out}");
    let err = ws.fails(&["show", "iris"]);
    assert!(err.contains("model 'iris' does not exist"), "{err}");
    let history = ws.json(&["history", "iris"]);
    assert_eq!(history["events"][0]["action"], "delete_model");
}

#[test]
fn rename_moves_the_model_on_a_data_dir_and_through_a_server() {
    let ws = Workspace::new();
    ws.register(&["--stage", "Production"]);
    ws.ok(&["alias", "iris", "champion", "1"]);
    let out = ws.ok(&["rename", "iris", "blooms"]);
    assert!(out.contains("renamed model iris to blooms"), "{out}");
    let detail = ws.json(&["show", "blooms"]);
    assert_eq!(detail["versions"][0]["stage"], "Production");
    assert_eq!(detail["aliases"]["champion"], 1);
    let err = ws.fails(&["show", "iris"]);
    assert!(err.contains("model 'iris' does not exist"), "{err}");
    // The history stays under each name, with the rename under both.
    assert_eq!(
        ws.json(&["history", "iris"])["events"][0]["action"],
        "rename_model"
    );
    assert_eq!(
        ws.json(&["history", "blooms"])["events"][0]["action"],
        "rename_model"
    );
    ws.register(&[]);
    let err = ws.fails(&["rename", "blooms", "iris"]);
    assert!(err.contains("model 'iris' already exists"), "{err}");

    // Through a server, the new name serves at once and the old one is gone.
    let server = Server::start_in(&ws.path("server-data"), &["--no-example"]);
    let remote = |args: &[&str]| remote_json(&server, args);
    remote(&[
        "register",
        &ws.model(),
        "--name",
        "flowers",
        "--stage",
        "Production",
    ]);
    let client = reqwest::blocking::Client::new();
    let limited: serde_json::Value = client
        .post(format!("{}/api/v1/keys", server.base))
        .bearer_auth(common::ADMIN_TOKEN)
        .json(&serde_json::json!({"name": "flowers-only", "role": "predictor", "models": ["flowers"]}))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .expect("a key limited to flowers");
    let limited = limited["token"].as_str().expect("token").to_owned();
    let answer = remote(&["rename", "flowers", "petals"]);
    assert_eq!(answer["model"]["name"], "petals");
    assert_eq!(answer["renamed_from"], "flowers");
    let status = |model: &str, token: &str| {
        client
            .get(format!("{}/v2/models/{model}/ready", server.base))
            .bearer_auth(token)
            .send()
            .expect("request is sent")
            .status()
            .as_u16()
    };
    assert_eq!(
        status("petals", common::ADMIN_TOKEN),
        200,
        "the new name serves"
    );
    assert_eq!(
        status("flowers", common::ADMIN_TOKEN),
        404,
        "the old name serves nothing"
    );
    // The key limited to the model by name followed it, at once.
    assert_eq!(status("petals", &limited), 200);
    assert_eq!(status("flowers", &limited), 403);
}
