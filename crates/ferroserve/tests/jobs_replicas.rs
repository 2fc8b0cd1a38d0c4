//! Jobs on any replica: replicas sharing one PostgreSQL registry and one
//! S3-compatible store (moto) keep every job's files in the store. A batch
//! job whose replica is killed with SIGKILL mid-way is taken over by
//! another once its lease runs out and finishes with every row once, in
//! order; its results and bad rows, and the answer of an asynchronous
//! request, are read through any replica, even one started afterwards
//! with an empty data dir.

mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::fleet::SharedRegistry;
use common::iris::repeated_iris_with;
use common::registry_api::{iris_variant, promote, register};
use common::Server;
use serde_json::{json, Value};

/// Rows of the batch job.
const ROWS: usize = 200_000;
/// Rows that cannot be read (a text in a numeric column).
const BAD_ROWS: [usize; 2] = [7, 150_007];
/// How long a runner keeps a job without a heartbeat.
const LEASE_MS: u64 = 2_000;

fn client() -> reqwest::blocking::Client {
    common::admin_client()
}

fn get_json(url: &str) -> Value {
    let r = client().get(url).send().expect("get");
    assert_eq!(r.status().as_u16(), 200, "{url}");
    r.json().expect("JSON answer")
}

/// `ROWS` rows cycling through iris, with the rows of `BAD_ROWS` broken.
fn input() -> String {
    repeated_iris_with(ROWS, |row| {
        BAD_ROWS
            .contains(&row)
            .then(|| "wide,3.5,1.4,0.2,setosa".to_owned())
    })
}

/// Polls job `id` through `server` until it is finished (5 minutes at most).
fn wait_finished(server: &Server, id: &str) -> Value {
    let until = Instant::now() + Duration::from_secs(300);
    loop {
        let job = get_json(&format!("{}/api/v1/jobs/{id}", server.base));
        if ["succeeded", "failed", "cancelled"].contains(&job["state"].as_str().unwrap_or("")) {
            return job;
        }
        assert!(Instant::now() < until, "job never finished: {job}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Checks the results of the job read through `server`: a header, then
/// one line per good row, in order; a row's answer equals that of the
/// first row holding the same iris sample, so a shifted row shows.
fn assert_results(server: &Server, id: &str) {
    let response = client()
        .get(format!("{}/api/v1/jobs/{id}/result", server.base))
        .send()
        .expect("result");
    assert_eq!(
        response.status().as_u16(),
        200,
        "result through {}",
        server.base
    );
    let mut lines = BufReader::new(response).lines();
    let header = lines.next().expect("header").expect("line");
    assert_eq!(
        header,
        "row,label,probabilities_0,probabilities_1,probabilities_2"
    );
    let mut expected_rows = (1..=ROWS).filter(|r| !BAD_ROWS.contains(r));
    let mut first: Vec<Option<String>> = vec![None; 150];
    let mut count = 0;
    for line in lines {
        let line = line.expect("line");
        let (row, values) = line.split_once(',').expect("row column");
        let row: usize = row.parse().expect("row number");
        assert_eq!(Some(row), expected_rows.next(), "line {line}");
        let sample = &mut first[(row - 1) % 150];
        match sample {
            Some(seen) => assert_eq!(values, seen, "row {row}"),
            None => *sample = Some(values.to_owned()),
        }
        count += 1;
    }
    assert_eq!(
        count,
        ROWS - BAD_ROWS.len(),
        "exactly one result per good row"
    );
    let errors = client()
        .get(format!("{}/api/v1/jobs/{id}/errors", server.base))
        .send()
        .and_then(|r| r.text())
        .expect("errors");
    let reported: Vec<u64> = errors
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("JSON line");
            v["row"].as_u64().expect("row")
        })
        .collect();
    assert_eq!(reported, BAD_ROWS.map(|r| r as u64), "{errors}");
}

#[test]
fn a_job_whose_replica_is_killed_is_taken_over_and_read_through_any_replica() {
    let shared = SharedRegistry::on_s3("jobs");
    let lease = LEASE_MS.to_string();
    let replica = || shared.replica(&["--job-lease-ms", &lease]);
    let (a, b) = (replica(), replica());
    let version = register(&a, "iris", iris_variant("jobs"));
    promote(&a, "iris", version);
    common::wait_ready(&b.base);

    let r = client()
        .post(format!(
            "{}/api/v1/jobs?model=iris&chunk_rows=10000&exclude=species",
            a.base
        ))
        .header("content-type", "text/csv")
        .body(input())
        .send()
        .expect("submit");
    let status = r.status().as_u16();
    let job: Value = r.json().expect("job");
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();

    // Kill A once some chunks are checkpointed, well before the end.
    let until = Instant::now() + Duration::from_secs(120);
    let owner = loop {
        let now = get_json(&format!("{}/api/v1/jobs/{id}", b.base));
        let done = now["rows_done"].as_u64().unwrap_or(0);
        if done >= 20_000 {
            assert!(
                done < ROWS as u64 - 10,
                "the job ended before the kill: {now}"
            );
            assert_eq!(now["owner_pid"], json!(a.child.id()), "A runs it: {now}");
            break now["owner"].clone();
        }
        assert!(Instant::now() < until, "the job made no progress: {now}");
        std::thread::sleep(Duration::from_millis(20));
    };
    a.signal("KILL");
    let killed = Instant::now();

    // B takes it over once A's lease has run out, and finishes it.
    let taken = loop {
        let now = get_json(&format!("{}/api/v1/jobs/{id}", b.base));
        if now["owner"] != owner && now["owner"].is_string() {
            assert_eq!(now["owner_pid"], json!(b.child.id()), "{now}");
            break killed.elapsed();
        }
        assert_ne!(
            now["state"], "succeeded",
            "finished without a runner: {now}"
        );
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "never taken over: {now}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("job taken over by B {taken:?} after A was killed (lease {LEASE_MS} ms)");
    let done = wait_finished(&b, &id);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["rows_done"], ROWS - BAD_ROWS.len());
    assert_eq!(done["rows_failed"], BAD_ROWS.len());
    assert_results(&b, &id);

    // An asynchronous request through B, answered through a replica that
    // never ran anything and has an empty data dir.
    let request = json!({"id": "r1", "inputs": [{"name": "input", "datatype": "FP32",
        "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]});
    let r = client()
        .post(format!("{}/v2/models/iris/infer", b.base))
        .header("prefer", "respond-async")
        .json(&request)
        .send()
        .expect("async request");
    assert_eq!(r.status().as_u16(), 202);
    let asked: Value = r.json().expect("job");
    let asked = asked["id"].as_str().expect("id").to_owned();
    let c = replica();
    assert_results(&c, &id);
    assert_eq!(wait_finished(&c, &asked)["state"], "succeeded");
    let answer = get_json(&format!("{}/api/v1/jobs/{asked}/result", c.base));
    assert_eq!(answer["id"], "r1", "{answer}");
    assert_eq!(answer["outputs"][0]["name"], "label", "{answer}");
    drop((b, c));
    drop(shared);
}
