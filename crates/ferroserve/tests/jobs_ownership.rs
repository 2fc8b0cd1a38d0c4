//! Who runs a job, against the real binary: a `ferroserve batch` job in
//! process keeps its job while a server on the same data dir restarts
//! (under online load), `--detach` needs a server, `ferroserve jobs`
//! lists, shows and cancels on a data dir and on a server, Parquet jobs
//! count their rows from the file, and Ctrl-C on a local job leaves it
//! resumable with the same results (and a remote one running on the
//! server).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::iris::{iris_lines, iris_rows, online_labels, repeated_iris};
use common::load::Load;
use common::{repo_root, run_direct, Server, BIN};
use serde_json::{json, Value};

/// Checks a CSV result of `rows` repeated iris rows: every row once, in
/// order, with the reference label.
fn assert_results(path: &Path, rows: usize, labels: &[i64]) {
    let text = std::fs::read_to_string(path).expect("results");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("row,label,probabilities_0,probabilities_1,probabilities_2")
    );
    let mut count = 0;
    for (i, line) in lines.enumerate() {
        let mut cells = line.split(',');
        let row: usize = cells.next().expect("row").parse().expect("row number");
        let label: i64 = cells.next().expect("label").parse().expect("label");
        assert_eq!(row, i + 1, "line {line}");
        assert_eq!(label, labels[i % 150], "row {row}");
        count += 1;
    }
    assert_eq!(count, rows, "exactly one result per input row");
}

/// `ferroserve ARGS` with no registry location from the environment.
fn ferroserve(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
        .args(args)
        .env("FERROSERVE_ACTOR", "tester")
        .env_remove("FERROSERVE_URL")
        .env_remove("FERROSERVE_REGISTRY_URL")
        .env_remove("FERROSERVE_DATA_DIR")
        .current_dir(repo_root());
    command
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `ferroserve jobs show ID --json` on a data dir.
fn show_direct(data: &Path, id: &str) -> Value {
    let out = ferroserve(&["jobs", "show", id, "--json", "--data-dir"])
        .arg(data)
        .output()
        .expect("jobs show runs");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    serde_json::from_str(&stdout).expect("JSON job")
}

/// Starts `ferroserve batch ...` in process on `data` and returns it with
/// the job id it prints before it starts.
fn start_batch(args: &[&str], data: &Path) -> (Child, String, mpsc::Receiver<String>) {
    let mut child = ferroserve(&["batch"])
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("batch starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut said = String::new();
    let id = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("batch printed no job id: {said}"));
        if let Some(id) = job_id(&line) {
            break id;
        }
        said.push_str(&line);
        said.push('\n');
    };
    (child, id, rx)
}

/// The job id in the first `job ID: ...` line of `stderr`.
/// Sends SIGINT to a running `ferroserve batch`, waits for it to end, and
/// returns its exit status and what it said on stderr after that.
fn interrupt(
    mut cli: Child,
    stderr: &mpsc::Receiver<String>,
) -> (std::process::ExitStatus, String) {
    let sent = Command::new("kill")
        .args(["-INT", &cli.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = cli.wait().expect("batch ends");
    let mut said = String::new();
    while let Ok(line) = stderr.recv_timeout(Duration::from_secs(10)) {
        said.push_str(&line);
        said.push('\n');
    }
    (status, said)
}

fn job_id(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("job "))
        .and_then(|rest| rest.split(':').next())
        .map(str::to_owned)
}

/// Waits until job `id` on `data` has at least `rows` rows done.
fn wait_rows(data: &Path, id: &str, rows: i64) -> Value {
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let job = show_direct(data, id);
        if job["rows_done"].as_i64().unwrap_or(0) >= rows {
            return job;
        }
        assert!(Instant::now() < until, "the job made no progress: {job}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_cli_job_keeps_its_job_while_a_server_on_its_data_dir_restarts() {
    const ROWS: usize = 500_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("big.csv");
    std::fs::write(&input, repeated_iris(ROWS)).expect("input");
    let out = dir.path().join("out.csv");
    let data = tempfile::tempdir().expect("data dir");

    // Two servers on the data dir: one stays up under online load, the
    // other restarts while the CLI job runs.
    let steady = Server::start_in(data.path(), &[]);
    steady.wait_ready();
    let mut restarted = Server::start_in(data.path(), &[]);
    restarted.wait_ready();
    let labels = online_labels(&steady, &iris_rows());
    let load = Load::start(&steady.base, 1);

    let (mut cli, id, _stderr) = start_batch(
        &[
            input.to_str().expect("utf-8"),
            "--model",
            "iris",
            "--chunk-rows",
            "2000",
            "--quiet",
            "-o",
            out.to_str().expect("utf-8"),
        ],
        data.path(),
    );
    let running = wait_rows(data.path(), &id, 10_000);
    assert_eq!(
        running["owner_pid"],
        cli.id(),
        "the CLI runs its job: {running}"
    );
    assert!(running["lease_expires_at"].as_i64().is_some(), "{running}");

    restarted.signal("TERM");
    let _ = restarted.child.wait();
    drop(restarted);
    let again = Server::start_in(data.path(), &[]);
    again.wait_ready();
    // Let the restarted server look for jobs to take up at least once.
    std::thread::sleep(Duration::from_secs(1));
    let during = show_direct(data.path(), &id);
    assert_eq!(during["state"], "running", "{during}");
    assert!(
        during["rows_done"].as_u64().expect("rows") < ROWS as u64,
        "the job ended before the restart could matter: {during}"
    );
    assert_eq!(
        during["owner_pid"],
        cli.id(),
        "the restarted server must not take over a live CLI's job: {during}"
    );

    let status = cli.wait().expect("batch ends");
    load.stop_expecting_no_failure(10);
    assert!(status.success(), "the CLI job failed: {status}");

    let done = show_direct(data.path(), &id);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["rows_done"], ROWS);
    assert_eq!(done["rows_total"], ROWS);
    assert_eq!(done["owner_pid"], cli.id(), "{done}");
    assert_eq!(done["scored_by"], json!(["1"]), "{done}");
    assert_results(&out, ROWS, &labels);
}

#[test]
fn detach_without_a_server_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let input = repo_root().join("examples/iris/iris.csv");
    let out = run_direct(
        "batch",
        &[
            input.to_str().expect("utf-8"),
            "--model",
            "iris",
            "--detach",
            "-o",
            "d.csv",
        ],
        &data,
        dir.path(),
    );
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--detach needs a server: pass --url"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "no job id: {stdout}");
    assert!(!data.exists(), "nothing was created");
}

#[test]
fn jobs_are_listed_shown_and_cancelled_on_a_data_dir_and_on_a_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("data dir");
    let server = Server::start_in(data.path(), &[]);
    server.wait_ready();
    let iris = repo_root().join("examples/iris/iris.csv");
    let scores = dir.path().join("scores.csv");
    let url = server.base.as_str();
    let run = |args: &[&str]| {
        let out = ferroserve(args).output().expect("ferroserve runs");
        let (stdout, stderr) = text(&out);
        (out.status.success(), stdout, stderr)
    };
    let data_dir = data.path().to_str().expect("utf-8");

    let (ok, _, stderr) = run(&[
        "batch",
        iris.to_str().expect("utf-8"),
        "--model",
        "iris",
        "--quiet",
        "--url",
        url,
        "-o",
        scores.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{stderr}");
    let id = job_id(&stderr).expect("the job id comes first");

    for place in [["--url", url], ["--data-dir", data_dir]] {
        let (ok, table, stderr) = run(&[&["jobs", "list"][..], &place[..]].concat());
        assert!(ok, "{stderr}");
        let line = table
            .lines()
            .find(|l| l.starts_with(&id))
            .unwrap_or_else(|| panic!("{id} not listed:\n{table}"));
        assert!(
            line.contains("succeeded") && line.contains("150/150"),
            "{line}"
        );
        let (ok, json, _) = run(&[
            &["jobs", "list", "--json", "--model", "iris"][..],
            &place[..],
        ]
        .concat());
        assert!(ok);
        let listed: Value = serde_json::from_str(&json).expect("JSON list");
        assert_eq!(listed[0]["id"], id.as_str());
        let (ok, none, _) = run(&[&["jobs", "list", "--state", "failed"][..], &place[..]].concat());
        assert!(ok);
        assert_eq!(none.trim(), "no jobs");
        let (ok, shown, stderr) = run(&[&["jobs", "show", &id][..], &place[..]].concat());
        assert!(ok, "{stderr}");
        for words in ["succeeded", "150/150", "version 1", "iris.csv", "100.0 %"] {
            assert!(shown.contains(words), "{words:?} missing from:\n{shown}");
        }
        let (ok, _, stderr) = run(&[&["jobs", "show", "no-such-job"][..], &place[..]].concat());
        assert!(!ok);
        assert!(stderr.contains("no-such-job"), "{stderr}");
        let (ok, _, stderr) = run(&[&["jobs", "cancel", &id][..], &place[..]].concat());
        assert!(!ok, "a finished job cannot be cancelled");
        assert!(stderr.contains("already succeeded"), "{stderr}");
    }

    // Resuming a finished job only writes its results; the server's route
    // answers the job as it is.
    let again = dir.path().join("again.csv");
    let (ok, _, stderr) = run(&[
        "jobs",
        "resume",
        &id,
        "--quiet",
        "--url",
        url,
        "-o",
        again.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(
        std::fs::read(&again).expect("results"),
        std::fs::read(&scores).expect("results")
    );
    let client = common::admin_client();
    let resumed = client
        .post(format!("{url}/api/v1/jobs/{id}/resume"))
        .send()
        .expect("resume");
    assert_eq!(resumed.status().as_u16(), 200);
    assert_eq!(resumed.json::<Value>().expect("job")["state"], "succeeded");
    let missing = client
        .post(format!("{url}/api/v1/jobs/no-such-job/resume"))
        .send()
        .expect("resume");
    assert_eq!(missing.status().as_u16(), 404);

    // Bad rows name the user's file, never the copy in the data dir.
    let mut lines: Vec<String> = iris_lines();
    lines.truncate(10);
    lines[4] = "5.1,3.5".to_owned();
    let bad = dir.path().join("short.csv");
    std::fs::write(
        &bad,
        format!(
            "sepal_length,sepal_width,petal_length,petal_width,species\n{}\n",
            lines.join("\n")
        ),
    )
    .expect("input");
    let bad_out = dir.path().join("short-scores.csv");
    let (ok, _, stderr) = run(&[
        "batch",
        bad.to_str().expect("utf-8"),
        "--model",
        "iris",
        "--quiet",
        "--data-dir",
        data_dir,
        "-o",
        bad_out.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("1 bad rows reported"), "{stderr}");
    let report = std::fs::read_to_string(dir.path().join("short-scores.csv.errors.jsonl"))
        .expect("bad-row report");
    let reported: Value = serde_json::from_str(report.trim()).expect("one JSON line");
    assert_eq!(reported["row"], 5, "{report}");
    assert_eq!(reported["at"], "line 6", "{report}");
    let error = reported["error"].as_str().expect("error");
    assert!(
        !error.contains("input.csv") && !error.contains(data_dir),
        "the data dir's copy is named: {error}"
    );

    // An empty bad-row report is an empty JSON lines body.
    let errors = common::admin_client()
        .get(format!("{url}/api/v1/jobs/{id}/errors"))
        .send()
        .expect("errors");
    assert_eq!(errors.status().as_u16(), 200);
    assert_eq!(errors.headers()["content-type"], "application/x-ndjson");
    assert_eq!(errors.text().expect("body"), "");

    // A long job, detached on the server, cancelled from the data dir.
    let big = dir.path().join("big.csv");
    std::fs::write(&big, repeated_iris(400_000)).expect("input");
    let (ok, stdout, stderr) = run(&[
        "batch",
        big.to_str().expect("utf-8"),
        "--model",
        "iris",
        "--chunk-rows",
        "2000",
        "--detach",
        "--url",
        url,
    ]);
    assert!(ok, "{stderr}");
    let long = stdout.trim().to_owned();
    let (ok, said, stderr) = run(&["jobs", "cancel", &long, "--data-dir", data_dir]);
    assert!(ok, "{stderr}");
    assert!(said.contains(&long), "{said}");
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, json, _) = run(&["jobs", "show", &long, "--json", "--url", url]);
        assert!(ok);
        let job: Value = serde_json::from_str(&json).expect("JSON job");
        if job["state"] == "cancelled" {
            assert!(job["rows_done"].as_i64().expect("rows") < 400_000, "{job}");
            break;
        }
        assert!(Instant::now() < until, "never cancelled: {job}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let (ok, _, stderr) = run(&[
        "jobs",
        "list",
        "--data-dir",
        dir.path().join("none").to_str().expect("utf-8"),
    ]);
    assert!(!ok);
    assert!(stderr.contains("no registry at"), "{stderr}");
    assert!(
        !dir.path().join("none").exists(),
        "a read-only command creates nothing"
    );
}

/// Writes `rows` repeated iris rows as Parquet, in row groups of 1000.
fn write_parquet(path: &Path, rows: usize) {
    use arrow_array::{ArrayRef, Float64Array, RecordBatch};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;
    let iris: Vec<Vec<f64>> = iris_lines()
        .iter()
        .map(|l| {
            l.split(',')
                .take(4)
                .map(|v| v.parse().expect("number"))
                .collect()
        })
        .collect();
    let names = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
    let columns: Vec<(&str, ArrayRef)> = names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let values: Vec<f64> = (0..rows).map(|r| iris[r % 150][c]).collect();
            (
                *name,
                std::sync::Arc::new(Float64Array::from(values)) as ArrayRef,
            )
        })
        .collect();
    let batch = RecordBatch::try_from_iter(columns).expect("record batch");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(1000))
        .build();
    let file = std::fs::File::create(path).expect("create parquet");
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
    writer.write(&batch).expect("write parquet");
    writer.close().expect("close parquet");
}

#[test]
fn a_parquet_job_counts_its_rows_from_the_file() {
    const ROWS: usize = 10_150;
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("rows.parquet");
    write_parquet(&input, ROWS);
    let server = Server::start(&[]);
    let out = dir.path().join("scores.csv");
    let run = ferroserve(&["batch"])
        .arg(&input)
        .args(["--model", "iris", "--quiet", "--url", &server.base, "-o"])
        .arg(&out)
        .output()
        .expect("batch runs");
    let (_, stderr) = text(&run);
    assert!(run.status.success(), "{stderr}");
    let id = job_id(&stderr).expect("job id");
    let job: Value = common::admin_client()
        .get(format!("{}/api/v1/jobs/{id}", server.base))
        .send()
        .expect("job")
        .json()
        .expect("JSON job");
    assert_eq!(job["rows_total"], ROWS, "{job}");
    assert_eq!(job["rows_done"], ROWS, "{job}");
    assert_eq!(job["progress"], 1.0, "{job}");
    assert_eq!(job["spec"]["input_source"], "rows.parquet", "{job}");
    assert_results(&out, ROWS, &online_labels(&server, &iris_rows()));
}

#[test]
fn ctrl_c_leaves_a_local_job_resumable_with_the_same_results() {
    const ROWS: usize = 200_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.csv");
    std::fs::write(&input, repeated_iris(ROWS)).expect("input");
    let data = tempfile::tempdir().expect("data dir");
    // Registers iris in the data dir, then goes.
    drop(Server::start_in(data.path(), &[]));

    let reference = dir.path().join("reference.csv");
    let whole = run_direct(
        "batch",
        &[
            input.to_str().expect("utf-8"),
            "--model",
            "iris",
            "--quiet",
            "-o",
            reference.to_str().expect("utf-8"),
        ],
        data.path(),
        dir.path(),
    );
    assert!(whole.status.success(), "{}", text(&whole).1);

    let out = dir.path().join("out.csv");
    let (cli, id, stderr) = start_batch(
        &[
            input.to_str().expect("utf-8"),
            "--model",
            "iris",
            "--chunk-rows",
            "2000",
            "--quiet",
            "-o",
            out.to_str().expect("utf-8"),
        ],
        data.path(),
    );
    wait_rows(data.path(), &id, 4000);
    let (status, said) = interrupt(cli, &stderr);
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(
        said.contains(&format!("ferroserve batch --resume {id} --data-dir")),
        "{said}"
    );
    let left = show_direct(data.path(), &id);
    assert_eq!(left["state"], "running", "{left}");
    let done_then = left["rows_done"].as_i64().expect("rows");
    assert!(done_then < ROWS as i64, "{left}");
    assert!(
        left["lease_expires_at"].as_i64().expect("lease")
            <= left["updated_at"].as_i64().expect("t"),
        "an interrupted job's lease ends at once: {left}"
    );

    // No -o: the job remembers where its results go.
    let resumed = run_direct(
        "batch",
        &["--resume", &id, "--quiet"],
        data.path(),
        dir.path(),
    );
    let (_, stderr) = text(&resumed);
    assert!(resumed.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{ROWS} rows scored into")),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&out).expect("resumed results"),
        std::fs::read(&reference).expect("reference results"),
        "resuming gives exactly the results of an uninterrupted run"
    );
}

#[test]
fn ctrl_c_on_a_remote_job_says_it_goes_on_and_how_to_reach_it() {
    const ROWS: usize = 400_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.csv");
    std::fs::write(&input, repeated_iris(ROWS)).expect("input");
    let data = tempfile::tempdir().expect("data dir");
    let server = Server::start_in(data.path(), &[]);
    server.wait_ready();
    let out = dir.path().join("out.csv");
    let (cli, id, stderr) = start_batch(
        &[
            input.to_str().expect("utf-8"),
            "--model",
            "iris",
            "--chunk-rows",
            "2000",
            "--quiet",
            "--url",
            &server.base,
            "-o",
            out.to_str().expect("utf-8"),
        ],
        data.path(),
    );
    wait_rows(data.path(), &id, 2000);
    let (status, said) = interrupt(cli, &stderr);
    assert_eq!(status.code(), Some(130), "{said}");
    for words in [
        format!("job {id} keeps running on the server {}", server.base),
        format!("ferroserve jobs show {id} --url {}", server.base),
        format!("ferroserve jobs cancel {id} --url {}", server.base),
    ] {
        assert!(said.contains(&words), "{words:?} missing from:\n{said}");
    }
    // The server finishes the job on its own.
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let job = show_direct(data.path(), &id);
        if job["state"] == "succeeded" {
            assert_eq!(job["rows_done"], ROWS, "{job}");
            break;
        }
        assert_eq!(job["state"], "running", "{job}");
        assert!(Instant::now() < until, "never finished: {job}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
