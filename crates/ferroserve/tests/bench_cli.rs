//! End-to-end tests of `ferroserve bench` against the real server serving
//! the bundled iris model: closed loop, open loop at a fixed rate, gRPC
//! unary and streams, a Zipf key mix that hits the result cache, input
//! files, clear errors on bad flags, and `bench compare` of two saved runs.

mod common;

use std::path::Path;
use std::process::Output;

use common::{Server, BIN};
use serde_json::Value;

/// Runs `ferroserve bench ARGS` and returns its output.
fn bench(args: &[&str]) -> Output {
    std::process::Command::new(BIN)
        .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
        .arg("bench")
        .args(args)
        .env_remove("FERROSERVE_URL")
        .output()
        .expect("ferroserve runs")
}

/// Sends five iris requests to `server`, with `extra` flags.
fn five_requests(server: &Server, extra: &[&str]) -> Output {
    let mut args = vec![
        "--url",
        &server.base,
        "--model",
        "iris",
        "--quiet",
        "--requests",
        "5",
        "--warmup",
        "0s",
    ];
    args.extend_from_slice(extra);
    bench(&args)
}

/// Runs a load against `server` that must succeed, with `--output` in `out`.
fn bench_ok(server: &Server, out: &Path, args: &[&str]) -> Value {
    let path = out.to_str().expect("utf-8 temp path");
    let mut all = vec![
        "--url",
        &server.base,
        "--model",
        "iris",
        "--quiet",
        "-o",
        path,
    ];
    all.extend_from_slice(args);
    let output = bench(&all);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("requests/s"),
        "no report on stdout:\n{stdout}"
    );
    serde_json::from_str(&std::fs::read_to_string(out).expect("output written"))
        .expect("output is JSON")
}

/// Checks what every successful run must show.
fn assert_sane(report: &Value) {
    assert_eq!(report["format"], 1);
    let runs = report["runs"].as_array().expect("runs");
    assert!(!runs.is_empty());
    for run in runs.iter().chain([&report["total"]]) {
        assert!(run["ok"].as_u64().expect("ok") > 0, "{run}");
        assert_eq!(run["errors"], serde_json::json!({}), "{run}");
        assert!(run["throughput_rps"].as_f64().expect("throughput") > 0.0);
        let l = &run["latency_ms"];
        let order: Vec<f64> = ["min", "p50", "p90", "p99", "p99_9", "max"]
            .iter()
            .map(|k| l[k].as_f64().expect("latency figure"))
            .collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{l}");
        assert!(l["mean"].as_f64().expect("mean") > 0.0);
        assert!(!run["histogram"].as_str().expect("histogram").is_empty());
    }
    let server = &report["total"]["server"];
    let served = server["requests_by_code"]["200"]
        .as_f64()
        .expect("server count");
    assert!(
        served >= report["total"]["ok"].as_f64().expect("ok"),
        "{server}"
    );
}

#[test]
fn closed_loop_runs_compare_with_a_verdict_per_metric() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let common = [
        "-c",
        "4",
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--runs",
        "2",
    ];
    let report = bench_ok(&server, &a, &common);
    assert_sane(&report);
    assert_eq!(report["runs"].as_array().expect("runs").len(), 2);
    assert_eq!(report["settings"]["load"]["concurrency"], 4);
    let batch = report["total"]["server"]["mean_batch_size"].as_f64();
    assert!(batch.is_some_and(|b| b >= 1.0), "{}", report["total"]);
    let mut binary = common.to_vec();
    binary.extend(["--protocol", "http-binary"]);
    assert_sane(&bench_ok(&server, &b, &binary));

    let compare = bench(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&compare.stdout);
    assert!(compare.status.success(), "{text}");
    let verdicts = [
        "faster",
        "slower",
        "higher",
        "lower",
        "no significant difference",
    ];
    for metric in ["mean", "p50", "p90", "p99", "p99.9", "throughput"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{metric} ")))
            .unwrap_or_else(|| panic!("no line for {metric} in:\n{text}"));
        assert!(
            verdicts.iter().any(|v| line.ends_with(v)),
            "no verdict in {line:?}"
        );
        assert!(line.contains("runs"), "not tested over runs: {line:?}");
    }
    assert!(text.contains("differ in settings: protocol"), "{text}");

    let json = bench(&[
        "compare",
        "--json",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    let json: Value = serde_json::from_slice(&json.stdout).expect("compare --json is JSON");
    let metrics = json["metrics"].as_array().expect("metrics");
    assert_eq!(metrics.len(), 6);
    for m in metrics {
        let p = m["p_value"].as_f64().expect("p-value");
        assert!((0.0..=1.0).contains(&p), "{m}");
        let ci = m["ci"].as_array().expect("ci");
        assert!(ci[0].as_f64() <= ci[1].as_f64(), "{m}");
    }
}

#[test]
fn open_loop_keeps_the_intended_rate() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("open.json");
    let report = bench_ok(
        &server,
        &out,
        &["--rate", "200", "--duration", "2s", "--warmup", "300ms"],
    );
    assert_sane(&report);
    let total = &report["total"];
    // Request i is due at i/200 s, for i/200 < 2 s.
    assert_eq!(total["sent"], 400);
    assert_eq!(total["ok"], 400);
    let achieved = total["throughput_rps"].as_f64().expect("throughput");
    assert!(
        (170.0..=210.0).contains(&achieved),
        "achieved {achieved} requests/s for 200 intended"
    );
    assert_eq!(report["settings"]["load"]["mode"], "open");
}

#[test]
fn grpc_unary_and_stream_runs_compare() {
    let server = Server::start(&["--grpc", "127.0.0.1:0"]);
    let grpc = server.grpc.clone().expect("the server listens for gRPC");
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, open) = (
        dir.path().join("unary.json"),
        dir.path().join("stream.json"),
        dir.path().join("open.json"),
    );
    let closed = [
        "-c",
        "4",
        "--requests",
        "200",
        "--warmup",
        "300ms",
        "--runs",
        "2",
        "--grpc-url",
        &grpc,
        "--grpc-connections",
        "2",
    ];
    for (protocol, out) in [("grpc", &a), ("grpc-stream", &b)] {
        let mut args = closed.to_vec();
        args.extend(["--protocol", protocol]);
        let report = bench_ok(&server, out, &args);
        assert_sane(&report);
        assert_eq!(report["total"]["ok"], 400, "{protocol}");
        assert_eq!(report["settings"]["protocol"], protocol);
        assert_eq!(report["settings"]["grpc"]["url"], grpc.as_str());
        assert_eq!(report["settings"]["grpc"]["connections"], 2);
    }
    let compare = bench(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&compare.stdout);
    assert!(compare.status.success(), "{text}");
    assert!(text.contains("differ in settings: protocol"), "{text}");

    // Open loop over streams: as many streams as requests in flight.
    let report = bench_ok(
        &server,
        &open,
        &[
            "--rate",
            "200",
            "--requests",
            "300",
            "--warmup",
            "0s",
            "--protocol",
            "grpc-stream",
            "--grpc-url",
            &grpc,
        ],
    );
    assert_sane(&report);
    assert_eq!(report["total"]["ok"], 300);
}

#[test]
fn grpc_failures_are_counted_by_status_code() {
    let server = Server::start(&["--grpc", "127.0.0.1:0"]);
    let grpc = server.grpc.clone().expect("the server listens for gRPC");
    // A row of the wrong width: every request is refused.
    for protocol in ["grpc", "grpc-stream"] {
        let output = five_requests(
            &server,
            &[
                "--shape",
                "input=1,3",
                "--protocol",
                protocol,
                "--grpc-url",
                &grpc,
            ],
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{protocol}: {stdout}");
        assert!(
            stderr.contains("no request succeeded"),
            "{protocol}: {stderr}"
        );
        let kind = if protocol == "grpc" {
            "InvalidArgument"
        } else {
            "stream error"
        };
        assert!(
            stdout.contains(&format!("{kind}: 5")),
            "{protocol}: {stdout}"
        );
    }
}

#[test]
fn zipf_keys_hit_the_result_cache() {
    let server = Server::start(&["--cache"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("zipf.json");
    let report = bench_ok(
        &server,
        &out,
        &[
            "-c",
            "2",
            "--requests",
            "300",
            "--warmup",
            "0s",
            "--keys",
            "50",
            "--key-dist",
            "zipf",
            "--zipf-s",
            "1.2",
        ],
    );
    assert_sane(&report);
    assert_eq!(report["total"]["ok"], 300);
    let hit_rate = report["total"]["server"]["cache_hit_rate"]
        .as_f64()
        .expect("cache figures with --cache");
    assert!(
        hit_rate > 0.0,
        "no cache hit: {}",
        report["total"]["server"]
    );
}

#[test]
fn input_files_and_injected_delays() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("rows.csv");
    std::fs::write(&csv, "a,b,c,d\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n").expect("write");
    let out = dir.path().join("csv.json");
    let csv_arg = csv.to_str().unwrap().to_string();
    let report = bench_ok(
        &server,
        &out,
        &[
            "--input-file",
            &csv_arg,
            "--batch-rows",
            "2",
            "--requests",
            "20",
            "--warmup",
            "0s",
            "--inject-delay",
            "1:5",
        ],
    );
    assert_sane(&report);
    // Every request was held 5 ms before it was sent.
    let min = report["total"]["latency_ms"]["min"].as_f64().expect("min");
    assert!(min >= 5.0, "min latency {min} ms with a 5 ms hold");
    let rows = report["total"]["server"]["mean_batch_size"].as_f64();
    assert!(rows.is_some_and(|r| r >= 2.0), "{}", report["total"]);

    let jsonl = dir.path().join("rows.jsonl");
    std::fs::write(&jsonl, "[5.1, 3.5]\n").expect("write");
    let narrow = bench(&[
        "--url",
        &server.base,
        "--model",
        "iris",
        "--input-file",
        jsonl.to_str().unwrap(),
        "--requests",
        "1",
        "--warmup",
        "0s",
    ]);
    let err = String::from_utf8_lossy(&narrow.stderr);
    assert!(!narrow.status.success());
    assert!(
        err.contains("2 values per row") && err.contains("takes 4"),
        "{err}"
    );
}

#[test]
fn input_files_with_a_label_column() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let iris = common::repo_root().join("examples/iris/iris.csv");
    let iris = iris.to_str().expect("utf-8 path");
    let quick = ["--requests", "10", "--warmup", "0s"];
    // The label column is one value too many, and the error says what to do.
    let out = bench(
        &[
            &[
                "--url",
                &server.base,
                "--model",
                "iris",
                "--input-file",
                iris,
            ],
            &quick[..],
        ]
        .concat(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("5 values per row") && err.contains("--exclude COL"),
        "{err}"
    );
    // Left out by name, or the features picked by the feature schema.
    let report = bench_ok(
        &server,
        &dir.path().join("exclude.json"),
        &[&["--input-file", iris, "--exclude", "species"], &quick[..]].concat(),
    );
    assert_sane(&report);
    let schema = common::repo_root().join("examples/iris/features.json");
    let schema = schema.to_str().expect("utf-8 path");
    let report = bench_ok(
        &server,
        &dir.path().join("schema.json"),
        &[&["--input-file", iris, "--schema", schema], &quick[..]].concat(),
    );
    assert_sane(&report);
    let out = bench(
        &[
            &[
                "--url",
                &server.base,
                "--model",
                "iris",
                "--input-file",
                iris,
                "--exclude",
                "nope",
            ],
            &quick[..],
        ]
        .concat(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no column `nope`") && err.contains("species"),
        "{err}"
    );
}

#[test]
fn latency_columns_state_their_unit() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = five_requests(
        &server,
        &[
            "-o",
            dir.path().join("run.json").to_str().expect("utf-8 path"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let header = stdout
        .lines()
        .find(|l| l.starts_with("run "))
        .unwrap_or_else(|| panic!("no table in:\n{stdout}"));
    for column in [
        "mean ms", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms",
    ] {
        assert!(header.contains(column), "{column} missing from {header:?}");
    }
}

#[test]
fn bad_flags_say_what_is_wrong() {
    let server = Server::start(&[]);
    let missing = bench(&["--url", &server.base, "--model", "nope", "--requests", "1"]);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(err.contains("model nope") && err.contains("404"), "{err}");

    let cases: [(&[&str], &str); 4] = [
        (&["--model", "iris", "--rate", "0"], "--rate"),
        (&["--model", "iris", "--duration", "ten"], "--duration"),
        (
            &["--model", "iris", "--inject-delay", "2:5"],
            "--inject-delay",
        ),
        (&["--model", "iris=-1"], "weight"),
    ];
    for (args, flag) in cases {
        let output = bench(args);
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} was accepted");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
    let help = bench(&["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--rate",
        "--concurrency",
        "--key-dist",
        "--inject-delay",
        "--output",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}
