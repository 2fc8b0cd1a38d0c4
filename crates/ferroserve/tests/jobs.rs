//! Batch and asynchronous inference jobs against the real server: files
//! scored in order with bad rows reported by line, async requests answered
//! through their job, a job killed with SIGKILL that resumes on restart
//! without losing or repeating a row, and the `ferroserve batch` CLI.

mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::iris::{iris_csv, iris_rows, online_labels, repeated_iris};
use common::{run_direct, Server};
use reqwest::blocking::Client;
use serde_json::{json, Value};

/// The iris sample: a header, then 150 rows of 4 features and the species.
fn client() -> Client {
    common::admin_client()
}

/// Uploads `body` as a job with `query`; returns the status, headers and answer.
fn submit(server: &Server, query: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let r = client()
        .post(format!("{}/api/v1/jobs?{query}", server.base))
        .header("content-type", content_type)
        .body(body)
        .send()
        .expect("submit");
    let status = r.status().as_u16();
    (status, r.json().expect("JSON answer"))
}

fn get_json(url: &str) -> (u16, Value) {
    let r = client().get(url).send().expect("get");
    let status = r.status().as_u16();
    (status, r.json().expect("JSON answer"))
}

fn get_text(url: &str) -> (u16, String) {
    let r = client().get(url).send().expect("get");
    let status = r.status().as_u16();
    (status, r.text().expect("text"))
}

/// Polls job `id` until it is finished; panics after `patience`.
fn wait_finished(server: &Server, id: &str, patience: Duration) -> Value {
    let until = Instant::now() + patience;
    loop {
        let (status, job) = get_json(&format!("{}/api/v1/jobs/{id}", server.base));
        assert_eq!(status, 200, "{job}");
        if ["succeeded", "failed", "cancelled"].contains(&job["state"].as_str().unwrap_or("")) {
            return job;
        }
        assert!(Instant::now() < until, "job never finished: {job}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_csv_job_scores_every_row_in_order_and_reports_bad_rows() {
    let server = Server::start(&[]);
    let mut lines: Vec<String> = iris_csv().lines().map(str::to_owned).collect();
    // Data row 3 (line 4 of the file) cannot be read as numbers.
    lines.insert(3, "5.1,abc,1.4,0.2,0".to_owned());
    let body = lines.join("\n") + "\n";
    let (status, job) = submit(
        &server,
        "model=iris&chunk_rows=40&outputs=label",
        "text/csv",
        body.into_bytes(),
    );
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    assert_eq!(job["links"]["result"], format!("/api/v1/jobs/{id}/result"));

    let done = wait_finished(&server, &id, Duration::from_secs(60));
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["rows_total"], 151);
    assert_eq!(done["rows_done"], 150);
    assert_eq!(done["rows_failed"], 1);
    assert_eq!(done["progress"], 1.0);

    let (status, result) = get_text(&format!("{}/api/v1/jobs/{id}/result", server.base));
    assert_eq!(status, 200);
    let mut result_lines = result.lines();
    assert_eq!(result_lines.next(), Some("row,label"));
    let scored: Vec<(u64, i64)> = result_lines
        .map(|l| {
            let (row, label) = l.split_once(',').expect("two columns");
            (row.parse().expect("row"), label.parse().expect("label"))
        })
        .collect();
    let expected_rows: Vec<u64> = (1..=151).filter(|r| *r != 3).collect();
    assert_eq!(
        scored.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        expected_rows
    );
    let labels: Vec<i64> = scored.iter().map(|(_, l)| *l).collect();
    assert_eq!(labels, online_labels(&server, &iris_rows()));

    let (status, errors) = get_text(&format!("{}/api/v1/jobs/{id}/errors", server.base));
    assert_eq!(status, 200);
    let reported: Vec<Value> = errors
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(reported.len(), 1, "{errors}");
    assert_eq!(reported[0]["row"], 3);
    assert_eq!(reported[0]["at"], "line 4", "{errors}");
    assert!(
        reported[0]["error"]
            .as_str()
            .expect("error")
            .contains("abc"),
        "{errors}"
    );

    server.wait_for_metric(r#"ferroserve_job_rows_total{model="iris",result="done"} 150"#);
    server.wait_for_metric(r#"ferroserve_job_rows_total{model="iris",result="failed"} 1"#);
    server.wait_for_metric(r#"ferroserve_jobs_finished_total{kind="batch",state="succeeded"} 1"#);
    server.wait_for_metric("ferroserve_jobs_running 0");

    let (status, listed) = get_json(&format!(
        "{}/api/v1/jobs?model=iris&state=succeeded",
        server.base
    ));
    assert_eq!(status, 200);
    assert_eq!(listed["jobs"][0]["id"], id.as_str());
    let cancel = client()
        .delete(format!("{}/api/v1/jobs/{id}", server.base))
        .send()
        .expect("delete");
    assert_eq!(cancel.status().as_u16(), 409);
}

/// A batch job's rows go through the request pipeline, at background
/// priority: the model's data contract refuses an out-of-range row as it
/// refuses an online request, and the rows count in the request metrics
/// under `batch` — but not in the drift sample.
#[test]
fn batch_rows_pass_the_data_contract_through_the_pipeline() {
    let server = Server::start(&[]);
    let strict = json!({"monitoring": {"reject_contract_violations": true}});
    let r = client()
        .put(format!("{}/api/v1/models/iris/serving-config", server.base))
        .json(&strict)
        .send()
        .expect("config");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());
    // Row 2 has a petal length far above the largest seen in training.
    let body = "sepal_length,sepal_width,petal_length,petal_width\n\
                5.1,3.5,1.4,0.2\n\
                5.1,3.5,9.9,0.2\n\
                6.3,3.3,6.0,2.5\n";
    let (status, job) = submit(
        &server,
        "model=iris&chunk_rows=1&outputs=label",
        "text/csv",
        body.as_bytes().to_vec(),
    );
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    let done = wait_finished(&server, &id, Duration::from_secs(60));
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["rows_done"], 2, "{done}");
    assert_eq!(done["rows_failed"], 1, "{done}");
    let (_, errors) = get_text(&format!("{}/api/v1/jobs/{id}/errors", server.base));
    let reported: Value = serde_json::from_str(errors.trim()).expect("one JSON line");
    assert_eq!(reported["row"], 2, "{errors}");
    let message = reported["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("feature 'petal_length'") && message.contains("above the maximum 6.9"),
        "{errors}"
    );
    server.wait_for_metric(
        r#"ferroserve_requests_total{model="iris",version="1",protocol="batch",code="200"} 2"#,
    );
    server.wait_for_metric(
        r#"ferroserve_requests_total{model="iris",version="1",protocol="batch",code="400"} 1"#,
    );
    // One online request after the job: once the monitor has seen it, it
    // has seen whatever the job sent before it, in order.
    let r = client()
        .post(format!("{}/v2/models/iris/infer", server.base))
        .json(&json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}))
        .send()
        .expect("infer");
    assert_eq!(r.status().as_u16(), 200);
    let until = Instant::now() + Duration::from_secs(30);
    let observed = loop {
        let (_, drift) = get_json(&format!("{}/api/v1/models/iris/drift", server.base));
        let observed = drift["versions"][0]["observed_requests"]
            .as_u64()
            .unwrap_or(0);
        if observed > 0 || Instant::now() > until {
            break observed;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(observed, 1, "only the online request is a drift sample");
}

#[test]
fn bad_submissions_are_refused_before_a_job_exists() {
    let server = Server::start(&[]);
    let csv = || iris_csv().into_bytes();
    let refused = |query: &str, content_type: &str, body: Vec<u8>, status: u16, words: &str| {
        let (got, answer) = submit(&server, query, content_type, body);
        assert_eq!(got, status, "{query}: {answer}");
        let error = answer["error"].as_str().expect("error text");
        assert!(error.contains(words), "{query}: {error}");
    };
    refused("model=nope", "text/csv", csv(), 404, "nope");
    refused("format=csv", "text/csv", csv(), 400, "model");
    refused("model=iris", "text/plain", csv(), 415, "text/csv");
    refused(
        "model=iris",
        "application/x-unknown",
        csv(),
        415,
        "application/x-ndjson",
    );
    refused(
        "model=iris&chunk_rows=0",
        "text/csv",
        csv(),
        400,
        "chunk_rows",
    );
    refused(
        "model=iris&outputs=nope",
        "text/csv",
        csv(),
        400,
        "no output 'nope'",
    );
    refused(
        "model=iris",
        "text/csv",
        b"a,b\n1,2\n".to_vec(),
        400,
        "sepal_length",
    );
    let (status, listed) = get_json(&format!("{}/api/v1/jobs", server.base));
    assert_eq!(status, 200);
    assert_eq!(
        listed["jobs"],
        json!([]),
        "refused jobs leave nothing behind"
    );
    let (status, missing) = get_json(&format!("{}/api/v1/jobs/no-such-job", server.base));
    assert_eq!(status, 404, "{missing}");
    let (status, _) = get_json(&format!("{}/api/v1/jobs?state=sleeping", server.base));
    assert_eq!(status, 400);
}

#[test]
fn jobs_are_refused_while_the_disk_is_nearly_full() {
    // No disk has this much free: every new job meets a full disk.
    let server = Server::start(&["--min-free-disk-bytes", &u64::MAX.to_string()]);
    let (status, answer) = submit(&server, "model=iris", "text/csv", iris_csv().into_bytes());
    assert_eq!(status, 507, "{answer}");
    let error = answer["error"].as_str().expect("error text");
    assert!(error.contains("min_free_disk_bytes"), "{error}");
    let r = client()
        .post(format!("{}/v2/models/iris/infer", server.base))
        .header("prefer", "respond-async")
        .json(
            &json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4],
                                  "data": [5.1, 3.5, 1.4, 0.2]}]}),
        )
        .send()
        .expect("async request");
    assert_eq!(r.status().as_u16(), 507);
    let (_, listed) = get_json(&format!("{}/api/v1/jobs", server.base));
    assert_eq!(listed["jobs"], json!([]), "nothing was kept");
}

#[test]
fn an_async_request_is_accepted_at_once_and_answered_through_its_job() {
    let server = Server::start(&[]);
    let request = json!({"id": "r1", "inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 4],
        "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]});
    let (status, online) = common::post(&format!("{}/v2/models/iris/infer", server.base), &request);
    assert_eq!(status, 200);

    let r = client()
        .post(format!("{}/v2/models/iris/infer", server.base))
        .header("prefer", "respond-async")
        .json(&request)
        .send()
        .expect("async request");
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(r.headers()["preference-applied"], "respond-async");
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let job: Value = r.json().expect("job");
    assert_eq!(job["kind"], "infer");
    assert_eq!(
        location,
        format!("/api/v1/jobs/{}", job["id"].as_str().expect("id"))
    );

    let done = wait_finished(
        &server,
        job["id"].as_str().expect("id"),
        Duration::from_secs(30),
    );
    assert_eq!(done["state"], "succeeded", "{done}");
    let (status, answer) = get_json(&format!("{}{location}/result", server.base));
    assert_eq!(status, 200);
    assert_eq!(answer["outputs"], online["outputs"]);
    assert_eq!(answer["id"], "r1");

    let bad = client()
        .post(format!("{}/v2/models/iris/infer", server.base))
        .header("prefer", "respond-async")
        .json(&json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]}))
        .send()
        .expect("bad async request");
    assert_eq!(
        bad.status().as_u16(),
        400,
        "a bad request is refused at once"
    );

    // A shape declaring 10^16 elements over empty data: refused before
    // anything is decoded or kept, and the server still answers.
    let huge = client()
        .post(format!("{}/v2/models/iris/infer", server.base))
        .header("prefer", "respond-async")
        .header("content-type", "application/json")
        .body(r#"{"inputs":[{"name":"input","shape":[10000000000000000],"datatype":"FP32","data":[]}]}"#)
        .send()
        .expect("huge async request");
    assert_eq!(huge.status().as_u16(), 400);
    let error: Value = huge.json().expect("error body");
    assert!(
        error["error"]
            .as_str()
            .unwrap_or("")
            .contains("declares 10000000000000000 elements but the request holds only"),
        "{error}"
    );
    let (status, _) = common::post(&format!("{}/v2/models/iris/infer", server.base), &request);
    assert_eq!(status, 200, "the server still answers");
}

#[test]
fn a_job_killed_mid_way_resumes_without_losing_or_repeating_rows() {
    const ROWS: usize = 1_000_000;
    let data = tempfile::tempdir().expect("data dir");
    let mut server = Server::start_in(data.path(), &[]);
    server.wait_ready();
    let (status, job) = submit(
        &server,
        "model=iris&chunk_rows=20000",
        "text/csv",
        repeated_iris(ROWS).into_bytes(),
    );
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();

    // Kill the server once some chunks are checkpointed, well before the end.
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, now) = get_json(&format!("{}/api/v1/jobs/{id}", server.base));
        let done = now["rows_done"].as_u64().unwrap_or(0);
        if done >= 60_000 {
            assert!(done < ROWS as u64, "the job ended before the kill: {now}");
            break;
        }
        assert!(Instant::now() < until, "the job made no progress: {now}");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.signal("KILL");
    let _ = server.child.wait();
    drop(server);

    let server = Server::start_in(data.path(), &[]);
    server.wait_ready();
    let done = wait_finished(&server, &id, Duration::from_secs(300));
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["rows_done"], ROWS);
    assert_eq!(done["rows_failed"], 0);

    let response = client()
        .get(format!("{}/api/v1/jobs/{id}/result", server.base))
        .send()
        .expect("result");
    assert_eq!(response.status().as_u16(), 200);
    let mut lines = BufReader::new(response).lines();
    let header = lines.next().expect("header").expect("line");
    assert_eq!(
        header,
        "row,label,probabilities_0,probabilities_1,probabilities_2"
    );
    // Row r repeats iris row (r - 1) % 150: its answer must equal that of
    // the first time the row came, so a shifted, lost or repeated row shows.
    let mut first: Vec<String> = Vec::with_capacity(150);
    let mut count = 0usize;
    for (i, line) in lines.enumerate() {
        let line = line.expect("line");
        let (row, values) = line.split_once(',').expect("row column");
        assert_eq!(
            row.parse::<usize>().expect("row number"),
            i + 1,
            "line {line}"
        );
        if i < 150 {
            first.push(values.to_owned());
        } else {
            assert_eq!(values, first[i % 150], "row {}", i + 1);
        }
        count += 1;
    }
    assert_eq!(count, ROWS, "exactly one result per input row");
}

#[test]
fn the_batch_cli_scores_files_on_a_server_and_in_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.csv");
    std::fs::write(&input, repeated_iris(500)).expect("input");
    let remote_out = dir.path().join("remote.csv");
    let data = tempfile::tempdir().expect("data dir");
    let server = Server::start_in(data.path(), &[]);
    server.wait_ready();
    let output = std::process::Command::new(common::BIN)
        .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
        .args(["batch"])
        .arg(&input)
        .args(["--model", "iris", "--quiet", "--url", &server.base, "-o"])
        .arg(&remote_out)
        .output()
        .expect("batch runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("500 rows scored"));
    drop(server);

    // In process, on the data dir the server used (it registered iris).
    let local_out = dir.path().join("local.jsonl");
    let output = run_direct(
        "batch",
        &[
            input.to_str().expect("utf-8"),
            "--model",
            "iris",
            "--quiet",
            "--chunk-rows",
            "64",
            "-o",
            local_out.to_str().expect("utf-8"),
        ],
        data.path(),
        dir.path(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let remote_labels: Vec<String> = std::fs::read_to_string(&remote_out)
        .expect("remote results")
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).expect("label").to_owned())
        .collect();
    let local: Vec<Value> = std::fs::read_to_string(&local_out)
        .expect("local results")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(local.len(), 500);
    assert_eq!(remote_labels.len(), 500);
    for (i, (line, label)) in local.iter().zip(&remote_labels).enumerate() {
        assert_eq!(line["row"], i + 1);
        assert_eq!(line["label"].to_string(), *label, "row {}", i + 1);
        assert_eq!(line["probabilities"].as_array().map(Vec::len), Some(3));
    }

    let missing = run_direct(
        "batch",
        &["nope.csv", "--model", "iris", "-o", "x.csv"],
        data.path(),
        dir.path(),
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.csv is not a file"));
}

#[test]
fn a_job_reads_its_input_from_the_artifact_store() {
    let server = Server::start(&[]);
    let datasets = server.data_dir.join("artifacts/datasets");
    std::fs::create_dir_all(&datasets).expect("datasets folder");
    std::fs::write(datasets.join("iris.csv"), iris_csv()).expect("data file");
    let send = |body: Value| {
        let r = client()
            .post(format!("{}/api/v1/jobs", server.base))
            .json(&body)
            .send()
            .expect("submit");
        let status = r.status().as_u16();
        (status, r.json::<Value>().expect("JSON answer"))
    };
    let (status, job) = send(
        json!({"model": "iris", "input_uri": "artifacts:/datasets/iris.csv",
        "output_format": "jsonl", "outputs": ["label"]}),
    );
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["spec"]["input_source"], "artifacts:/datasets/iris.csv");
    let id = job["id"].as_str().expect("id");
    let done = wait_finished(&server, id, Duration::from_secs(60));
    assert_eq!(done["state"], "succeeded", "{done}");
    let (_, result) = get_text(&format!("{}/api/v1/jobs/{id}/result", server.base));
    let labels: Vec<i64> = result
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("JSON line")["label"]
                .as_i64()
                .expect("label")
        })
        .collect();
    assert_eq!(labels, online_labels(&server, &iris_rows()));

    let (status, answer) = send(json!({"model": "iris", "input_uri": "artifacts:/../secrets.csv"}));
    assert_eq!(status, 400, "{answer}");
    let (status, answer) =
        send(json!({"model": "iris", "input_uri": "artifacts:/datasets/none.csv"}));
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .expect("error")
            .contains("none.csv"),
        "{answer}"
    );
    let (status, answer) = send(json!({"model": "iris", "input": "x.csv"}));
    assert_eq!(status, 400, "{answer}");
}
