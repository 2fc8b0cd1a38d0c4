//! The fleet end to end: three `ferroserve serve` replicas sharing one
//! PostgreSQL registry, one Redis and one S3-compatible store (moto), behind
//! a real HAProxy that health-checks `/readyz`, act as one service. Iris
//! traffic runs through the load balancer from the first promotion until
//! the rollout, and the test proves, in order:
//!
//! 1. a version registered and promoted through replica A is served by all
//!    three;
//! 2. a promotion through A is served by B and C (asked directly) within a
//!    second each, and no request of the load fails meanwhile;
//! 3. a client's rate-limit budget is one budget across the replicas (3N
//!    requests spread over A, B and C get about N accepted), and an answer
//!    computed on A (a cache miss) is a Redis hit on B;
//! 4. a drift shift sent through all three replicas fires the alert once:
//!    one webhook call, one audit event, and the service's window read
//!    through the load balancer;
//! 5. `kill -9` of the replica running a batch job fails only the handful
//!    of load requests that were in flight on it or reached it before
//!    HAProxy took it out, none afterwards; the job is taken over by
//!    another replica and finishes with every row once, in order, read
//!    through the load balancer;
//! 6. a rollout started through one surviving replica while all traffic
//!    goes to the other completes on the figures of both.
//!
//! Every measured figure is printed (`--no-capture` shows them). HAProxy
//! is a real dependency like PostgreSQL and Redis: `scripts/system-deps.sh`
//! installs it, and without it the test fails saying how to install it
//! (`common::dependency`: never a skip).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::drift::{
    drift, iris_rows, is_watched, recorded_alerts, send_rows, shifted_rows, watched_iris,
};
use common::fleet::SharedRegistry;
use common::iris::repeated_iris;
use common::load::{client, iris_request, send};
use common::recording_load::{assert_no_failure_but, RecordingLoad, Reply};
use common::redis::RedisServer;
use common::registry_api::{iris_variant, promote, register};
use common::rollout::{
    api, client_with, create_key, decision_actions, register_iris_version, start_rollout,
    stepping_rollout, wait_for_rollout_state, STEP_MIN_REQUESTS,
};
use common::webhook::Webhook;
use common::{wait_until, Server};
use reqwest::Method;
use serde_json::{json, Value};

/// Threads of the load through HAProxy (each has one request in flight).
const LOAD_THREADS: usize = 3;
/// How fast a promotion must reach another replica.
const PROPAGATION: Duration = Duration::from_secs(1);
/// The metered client's budget: `BUDGET` requests per `BUDGET_WINDOW_S`.
const BUDGET: usize = 20;
const BUDGET_WINDOW_S: f64 = 600.0;
/// Accepted requests may differ from `BUDGET` by this much (a Redis call
/// that times out is checked by the replica alone).
const BUDGET_SLACK: usize = 2;
/// Rows of the batch job and of each of its checkpointed chunks.
const JOB_ROWS: usize = 200_000;
const CHUNK_ROWS: usize = 10_000;
/// The job's replica is killed once this many rows are done.
const KILL_AT_ROWS: u64 = 20_000;
/// How long a runner keeps a job without a heartbeat.
const LEASE_MS: u64 = 2_000;
/// HAProxy's health checks: every `CHECK_INTER_MS`, down after `CHECK_FALL`
/// failures in a row, up again after one success.
const CHECK_INTER_MS: u64 = 200;
const CHECK_FALL: u64 = 2;
/// Load requests the kill of a replica may fail, per load thread (each has
/// one request in flight): the request it had in flight on the killed
/// replica (502, or the client connection closed); one HAProxy sent on a
/// pooled connection to it that the kill had closed before HAProxy saw
/// it (HAProxy then closes the client connection without an answer);
/// and one sent on a refused connection (503), the first of which marks
/// the replica down (see [`haproxy_config`]). After that none.
const KILL_FAILURE_BOUND: usize = 3 * LOAD_THREADS;
/// HAProxy's backend of the replicas.
const BACKEND: &str = "replicas";

const HAPROXY_INSTALL_HINT: &str = "install it with `scripts/system-deps.sh` \
     (as root; Debian/Ubuntu: `apt-get install haproxy`)";

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `haproxy` on the PATH or in an sbin folder (not on a user's PATH).
fn haproxy_binary() -> PathBuf {
    let mut folders: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    folders.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    let found = folders
        .into_iter()
        .map(|d| d.join("haproxy"))
        .find(|p| p.is_file());
    common::dependency::require(found, "haproxy", HAPROXY_INSTALL_HINT)
}

/// HAProxy's configuration: `port` in front of `replicas` (name, server),
/// round robin, health checks on `/readyz`, and the stats socket `socket`.
///
/// `retries 0` and no `option redispatch`: a request HAProxy could not
/// hand to its server fails (503) rather than being sent again. Retrying a
/// refused connection would be safe, but without redispatch it goes to the
/// same dead server a second later (only delaying the failure), and with
/// it the kill's failures would be hidden rather than measured; inference
/// POSTs are never resent blindly. What keeps the failures few is passive
/// health checking instead: `observe layer4 error-limit 1 on-error
/// mark-down` takes a server out on its first refused connection, without
/// waiting for `fall` failed checks (`fall * inter` = 400 ms, during which
/// the load fails every request sent there: measured on this 2-core
/// machine, 526 failed requests in the 289 ms until the checks took the
/// killed replica out, against 3 to 6 with `observe`).
fn haproxy_config(port: u16, socket: &Path, replicas: &[(&str, &Server)]) -> String {
    // HAProxy ignores leading blanks: sections need no column of their own.
    let mut config = format!(
        "global
            maxconn 1000
            nbthread 1
            stats socket {socket} mode 600
        defaults
            mode http
            retries 0
            timeout connect 1s
            timeout client 120s
            timeout server 120s
            timeout check 1s
        frontend fleet
            bind 127.0.0.1:{port}
            default_backend {BACKEND}
        backend {BACKEND}
            balance roundrobin
            option httpchk GET /readyz
            http-check expect status 200
            default-server inter {CHECK_INTER_MS}ms fall {CHECK_FALL} rise 1 \
                observe layer4 error-limit 1 on-error mark-down
        ",
        socket = socket.display(),
    );
    for (name, server) in replicas {
        config.push_str(&format!("    server {name} {} check\n", server.host_port()));
    }
    config
}

/// A running HAProxy in front of the replicas, killed when dropped.
struct HaProxy {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl HaProxy {
    /// Starts HAProxy on a free port and waits until every replica is UP.
    fn start(replicas: &[(&str, &Server)]) -> HaProxy {
        let binary = haproxy_binary();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let socket = dir.path().join("stats.sock");
        let config = dir.path().join("haproxy.cfg");
        std::fs::write(&config, haproxy_config(port, &socket, replicas)).expect("config");
        let child = Command::new(&binary)
            .arg("-db") // foreground
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut proxy = HaProxy {
            child,
            base: format!("http://127.0.0.1:{port}"),
            socket,
            _dir: dir,
        };
        for (name, _) in replicas {
            proxy.wait_for_status(name, |s| s == "UP", Duration::from_secs(20));
        }
        proxy
    }

    /// `show stat` from the stats socket (empty while it cannot be read).
    fn show_stat(&self) -> String {
        let Ok(mut stream) = UnixStream::connect(&self.socket) else {
            return String::new();
        };
        let mut out = String::new();
        let _ = stream.write_all(b"show stat\n");
        let _ = stream.read_to_string(&mut out);
        out
    }

    /// HAProxy's status of server `name` (`UP`, `DOWN`, `UP 1/2`...).
    fn status(&self, name: &str) -> Option<String> {
        let stat = self.show_stat();
        let mut lines = stat.lines();
        let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
        let column = header.iter().position(|h| *h == "status")?;
        lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&BACKEND) && f.get(1) == Some(&name))
            .and_then(|f| f.get(column).map(|s| (*s).to_owned()))
    }

    /// Polls (every 5 ms, at most `within`) until the status of `name`
    /// satisfies `pred`; returns when it was first seen.
    fn wait_for_status(&mut self, name: &str, pred: fn(&str) -> bool, within: Duration) -> Instant {
        let give_up = Instant::now() + within;
        loop {
            let status = self.status(name);
            if status.as_deref().is_some_and(pred) {
                return Instant::now();
            }
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("haproxy exited ({exit})");
            }
            assert!(
                Instant::now() < give_up,
                "haproxy's server {name} is {status:?} after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The version `base` answers iris with (`None` while it answers no 200).
fn served_version(base: &str) -> Option<String> {
    let (status, body) = send(
        client()
            .post(format!("{base}/v2/models/iris/infer"))
            .json(&iris_request()),
    );
    (status == 200).then(|| body["model_version"].as_str().unwrap_or("").to_owned())
}

/// How long after `since` until `server` answers with `version` (polled
/// every 5 ms, for at most 30 s).
fn time_until_served(server: &Server, version: i64, since: Instant) -> Duration {
    let version = version.to_string();
    let give_up = since + Duration::from_secs(30);
    loop {
        if served_version(&server.base).as_deref() == Some(version.as_str()) {
            return since.elapsed();
        }
        assert!(Instant::now() < give_up, "version {version} never served");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Asserts that every request the load sent since reply `since` was
/// answered 200; returns how many there were.
fn assert_load_clean(load: &RecordingLoad, since: usize, phase: &str) -> usize {
    let replies = load.snapshot();
    assert_no_failure_but(&replies[since..], |_| false);
    let count = replies.len() - since;
    eprintln!("{phase}: {count} load requests through HAProxy, none failed");
    count
}

/// `STATUS sent at +MS` (relative to `kill`, negative before it); status 0
/// is a connection closed without an answer.
fn describe_failure(reply: &Reply, kill: Instant) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let offset = if reply.sent >= kill {
        ms(reply.sent - kill)
    } else {
        -ms(kill - reply.sent)
    };
    format!("{} sent at {offset:+.1} ms", reply.status)
}

/// Sends one iris request for `model` to `base` with API key `token`;
/// returns the status.
fn infer_as(base: &str, model: &str, token: &str) -> u16 {
    let response = client_with(token)
        .post(format!("{base}/v2/models/{model}/infer"))
        .json(&iris_request())
        .send()
        .expect("request is sent");
    response.status().as_u16()
}

/// Sends requests for `model` under `token` to `server` until it has
/// checked a rate limit in Redis (its serving config reached it and its
/// Redis link is up).
fn wait_until_limits_shared(server: &Server, model: &str, token: &str) {
    let give_up = Instant::now() + Duration::from_secs(20);
    while server.metric_sum("ferroserve_rate_limit_checks_total", &["store=\"redis\""]) == 0.0 {
        assert!(
            Instant::now() < give_up,
            "{} never checked a limit in Redis",
            server.base
        );
        infer_as(&server.base, model, token);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends iris with features `seed` to `base`; returns the status and the
/// `x-ferroserve-cache` header.
fn infer_cached(base: &str, seed: u32) -> (u16, String) {
    let x = 4.0 + seed as f32 / 100.0;
    let body = json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
        "data": [x, 3.0, 1.4, 0.2]}]});
    let response = client()
        .post(format!("{base}/v2/models/iris/infer"))
        .json(&body)
        .send()
        .expect("request is sent");
    let cache = response
        .headers()
        .get("x-ferroserve-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (response.status().as_u16(), cache)
}

/// Computes fresh inputs on `writer` (each a miss) until `reader` answers
/// one from Redis; returns how many inputs that took (1 unless a Redis
/// link was still connecting).
fn inputs_until_shared_hit(writer: &Server, reader: &Server) -> u32 {
    for seed in 1..=100 {
        assert_eq!(infer_cached(&writer.base, seed), (200, "miss".into()));
        std::thread::sleep(Duration::from_millis(50));
        let (status, cache) = infer_cached(&reader.base, seed);
        assert_eq!(status, 200);
        if cache == "hit-l2" {
            return seed;
        }
    }
    panic!("{} never answered from Redis", reader.base);
}

/// GETs JSON, which must answer 200.
fn get_json(url: &str) -> Value {
    let (status, body) = send(client().get(url));
    assert_eq!(status, 200, "{url}: {body}");
    body
}

/// Submits the batch job to `base`; returns its id.
fn submit_job(base: &str) -> String {
    let (status, job) = send(
        client()
            .post(format!(
                "{base}/api/v1/jobs?model=iris&chunk_rows={CHUNK_ROWS}&exclude=species"
            ))
            .header("content-type", "text/csv")
            .body(repeated_iris(JOB_ROWS)),
    );
    assert_eq!(status, 201, "{job}");
    job["id"].as_str().expect("id").to_owned()
}

/// Polls job `id` through `base` until `done` holds for it (every 20 ms,
/// at most `within`); returns the job then.
fn wait_for_job(base: &str, id: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let give_up = Instant::now() + within;
    loop {
        let job = get_json(&format!("{base}/api/v1/jobs/{id}"));
        if done(&job) {
            return job;
        }
        assert!(
            Instant::now() < give_up,
            "job not there after {within:?}: {job}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_finished(job: &Value) -> bool {
    ["succeeded", "failed", "cancelled"].contains(&job["state"].as_str().unwrap_or(""))
}

/// Reads the job's result through `base`: a header, then rows 1..=JOB_ROWS
/// once each, in order.
fn assert_every_row_once_in_order(base: &str, id: &str) {
    let response = client()
        .get(format!("{base}/api/v1/jobs/{id}/result"))
        .send()
        .expect("result");
    assert_eq!(response.status().as_u16(), 200, "result of {id}");
    let mut lines = BufReader::new(response).lines();
    let header = lines.next().expect("header").expect("line");
    assert!(header.starts_with("row,label,"), "{header}");
    let mut expected = 1;
    for line in lines {
        let line = line.expect("line");
        let row: usize = line
            .split(',')
            .next()
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("no row number in {line:?}"));
        assert_eq!(row, expected, "rows out of order or repeated at {line:?}");
        expected += 1;
    }
    assert_eq!(expected - 1, JOB_ROWS, "one result line per row");
}

/// Whether `server` holds the leader lock.
fn is_leader(server: &Server) -> bool {
    server.metrics().lines().any(|l| l == "ferroserve_leader 1")
}

/// `(leader, follower)` of two replicas, once exactly one of them leads
/// (at most 10 s: a dead leader's lock is taken over within about a second).
fn leader_and_follower<'a>(x: &'a Server, y: &'a Server) -> (&'a Server, &'a Server) {
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        match (is_leader(x), is_leader(y)) {
            (true, false) => return (x, y),
            (false, true) => return (y, x),
            _ => assert!(Instant::now() < give_up, "no single leader of the two"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_replicas_behind_haproxy_act_as_one_service() {
    let started = Instant::now();
    let shared = SharedRegistry::on_s3("fleet");
    let redis = RedisServer::start();
    let redis_url = redis.url();
    let webhook = Webhook::start();
    let lease = LEASE_MS.to_string();
    let replica = || {
        shared.replica(&[
            "--redis-url",
            &redis_url,
            // Generous for a busy 2-core machine (the default is 5 ms):
            // a timed-out call would limit and cache per replica.
            "--redis-timeout-ms",
            "200",
            "--cache",
            // Iris runs in microseconds: without this it skips Redis.
            "--cache-cost-aware",
            "false",
            "--job-lease-ms",
            &lease,
            "--webhook-allow",
            "127.0.0.1",
        ])
    };
    let (a, b, c) = (replica(), replica(), replica());
    let replicas = [&a, &b, &c];
    let mut proxy = HaProxy::start(&[("a", &a), ("b", &b), ("c", &c)]);
    eprintln!(
        "setup: PostgreSQL, Redis, moto, 3 replicas and HAProxy in {:?}",
        started.elapsed()
    );

    // 1. Iris registered and promoted through A is served by all three.
    let first = register(&a, "iris", iris_variant("fleet v1"));
    let promoted = Instant::now();
    promote(&a, "iris", first);
    for replica in replicas {
        time_until_served(replica, first, promoted);
    }
    let load = RecordingLoad::start(&proxy.base, LOAD_THREADS);
    load.wait_for_replies(50, Duration::from_secs(30));

    // 2. A promotion through A reaches B and C within a second.
    let phase = load.len();
    let second = register(&a, "iris", iris_variant("fleet v2"));
    promote(&a, "iris", second);
    let answered = Instant::now();
    let mut took = Vec::new();
    for (name, replica) in [("B", &b), ("C", &c)] {
        let after = time_until_served(replica, second, answered);
        eprintln!("promotion of v{second} through A served by {name} after {after:?}");
        took.push(after);
    }
    assert!(took.iter().all(|t| *t < PROPAGATION), "{took:?}");
    load.wait_for_replies(20, Duration::from_secs(30));
    assert_load_clean(&load, phase, "promotion");

    // 3. One client's budget across the replicas, and one cache. The
    // budget is a per-client limit in a second model's serving config
    // (stored in the registry, so every replica applies it): the
    // server-wide `--client-rate-limit` gives every client the same budget,
    // the admin key of the load and of these calls included.
    let phase = load.len();
    let metered = register(&a, "metered", iris_variant("metered"));
    promote(&a, "metered", metered);
    let limit = json!({"serve": "production", "rate_limit": {"per_client": {
        "requests_per_s": BUDGET as f64 / BUDGET_WINDOW_S, "burst": BUDGET}}});
    let (status, body) = api(
        &a,
        Method::PUT,
        "/api/v1/models/metered/serving-config",
        Some(&limit),
    );
    assert_eq!(status, 200, "{body}");
    let client_key = create_key(&a, "metered-client", "predictor");
    // Made after the metered client's key: a replica that knows it knows both.
    let warm_up = create_key(&a, "warm-up", "predictor");
    for replica in replicas {
        wait_until_limits_shared(replica, "metered", &warm_up);
    }
    let mut accepted = [0usize; 3];
    let mut refused = 0;
    for i in 0..3 * BUDGET {
        match infer_as(&replicas[i % 3].base, "metered", &client_key) {
            200 => accepted[i % 3] += 1,
            429 => refused += 1,
            status => panic!("request {i} of the metered client answered {status}"),
        }
    }
    let total: usize = accepted.iter().sum();
    eprintln!(
        "rate limit: budget {BUDGET} per {BUDGET_WINDOW_S} s, {} requests over A, B, C: \
         {total} accepted (A {}, B {}, C {}), {refused} refused",
        3 * BUDGET,
        accepted[0],
        accepted[1],
        accepted[2]
    );
    assert!(
        (BUDGET - BUDGET_SLACK..=BUDGET + BUDGET_SLACK).contains(&total),
        "{total} accepted of a budget of {BUDGET}"
    );
    let inputs = inputs_until_shared_hit(&a, &b);
    eprintln!(
        "cache: an input computed on A (miss) was a Redis hit on B ({inputs} input(s) tried)"
    );
    assert_load_clean(&load, phase, "rate limit and cache");

    // 4. A drift shift sent through all three replicas (a request to each
    // in turn) fires the alert once: the replicas pool their windows and
    // the leader closes them. A model of its own, so that the iris load
    // does not fill its windows.
    let phase = load.len();
    let watched = watched_iris(&a, "watched", &webhook.url);
    for replica in replicas {
        wait_until("every replica watches the model", || {
            is_watched(&drift(&replica.base, "watched", watched))
        });
    }
    let bases = [a.base.as_str(), b.base.as_str(), c.base.as_str()];
    send_rows(&bases, "watched", &iris_rows());
    wait_until("the service's first window closes", || {
        drift(&proxy.base, "watched", watched)["windows_closed"] == 1
    });
    for replica in replicas {
        let seen = drift(&replica.base, "watched", watched);
        assert!(
            seen["observed_requests"].as_u64() >= Some(1),
            "{} took rows in: {seen:#}",
            replica.base
        );
    }
    send_rows(&bases, "watched", &shifted_rows());
    webhook.wait_for(1);
    std::thread::sleep(Duration::from_secs(3));
    let alerts = webhook.received();
    eprintln!(
        "drift: a shift through the three replicas fired {} webhook call(s) and {} audit event(s)",
        alerts.len(),
        recorded_alerts(&proxy.base, "watched")
    );
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(recorded_alerts(&proxy.base, "watched"), 1);
    assert_load_clean(&load, phase, "drift");

    // 5. kill -9 of the replica running a batch job, under load.
    let phase = load.len();
    let id = submit_job(&proxy.base);
    let running = wait_for_job(&proxy.base, &id, Duration::from_secs(120), |job| {
        assert!(!is_finished(job), "the job ended before the kill: {job}");
        job["rows_done"].as_u64().unwrap_or(0) >= KILL_AT_ROWS
    });
    let (victim_name, victim) = [("a", &a), ("b", &b), ("c", &c)]
        .into_iter()
        .find(|(_, r)| running["owner_pid"] == json!(r.child.id()))
        .unwrap_or_else(|| panic!("no replica runs the job: {running}"));
    let survivors: Vec<&Server> = replicas
        .into_iter()
        .filter(|r| r.child.id() != victim.child.id())
        .collect();
    assert_load_clean(&load, phase, "job submitted");
    let before_kill = load.len();
    victim.signal("KILL");
    let killed = Instant::now();
    let down = proxy.wait_for_status(
        victim_name,
        |s| s.starts_with("DOWN"),
        Duration::from_secs(10),
    );
    eprintln!(
        "kill -9 of replica {victim_name} at {} rows done: HAProxy marked it down after {:?}",
        running["rows_done"],
        down - killed
    );
    let taken = wait_for_job(&proxy.base, &id, Duration::from_secs(60), |job| {
        assert_ne!(
            job["state"], "succeeded",
            "finished without a runner: {job}"
        );
        job["owner"] != running["owner"] && job["owner"].is_string()
    });
    let takeover = killed.elapsed();
    assert!(
        survivors
            .iter()
            .any(|s| taken["owner_pid"] == json!(s.child.id())),
        "taken over by no survivor: {taken}"
    );
    eprintln!("job taken over {takeover:?} after the kill (lease {LEASE_MS} ms)");
    let done = wait_for_job(&proxy.base, &id, Duration::from_secs(300), is_finished);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["rows_done"], JOB_ROWS, "{done}");
    assert_every_row_once_in_order(&proxy.base, &id);
    eprintln!(
        "job of {JOB_ROWS} rows succeeded {:?} after the kill, every row once, in order",
        killed.elapsed()
    );
    load.wait_for_replies(100, Duration::from_secs(30));
    let replies = load.stop();
    let failed: Vec<&Reply> = replies[before_kill..]
        .iter()
        .filter(|r| r.status != 200)
        .collect();
    let after_down = replies[before_kill..]
        .iter()
        .filter(|r| r.sent > down)
        .count();
    eprintln!(
        "load around the kill: {} of {} requests failed (bound {KILL_FAILURE_BOUND}): {}; \
         {after_down} sent after HAProxy marked the replica down",
        failed.len(),
        replies.len() - before_kill,
        failed
            .iter()
            .map(|r| describe_failure(r, killed))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        failed.len() <= KILL_FAILURE_BOUND,
        "{} requests failed at the kill",
        failed.len()
    );
    assert_no_failure_but(
        &replies[before_kill..],
        |r| r.sent < down, // only those sent before HAProxy took it out
    );
    assert!(after_down >= 100, "the load went on after the kill");

    // 6. A rollout with all traffic on one survivor, driven by the other.
    let (leader, follower) = leader_and_follower(survivors[0], survivors[1]);
    let load = RecordingLoad::start(&follower.base, 2);
    load.wait_for_replies(50, Duration::from_secs(30));
    let canary = register_iris_version(leader, "fleet canary");
    let rollout_started = Instant::now();
    start_rollout(leader, &stepping_rollout(canary, 1));
    let (status, _) = wait_for_rollout_state(leader, "completed", Duration::from_secs(120), |_| {});
    assert_eq!(
        decision_actions(&status),
        ["started", "stepped", "completed"],
        "{status:#}"
    );
    for decision in &status["decisions"].as_array().expect("decisions")[1..] {
        let figures = &decision["figures"];
        let replicas = figures["replicas"].as_u64().unwrap_or(0);
        let canary = figures["canary"]["requests"].as_u64().unwrap_or(0);
        eprintln!(
            "rollout {}: {replicas} replicas, {canary} canary requests",
            decision["action"]
        );
        assert!(replicas >= 2, "{decision:#}");
        assert!(canary >= STEP_MIN_REQUESTS, "{decision:#}");
    }
    eprintln!(
        "rollout completed {:?} after it started",
        rollout_started.elapsed()
    );
    load.stop_expecting_no_failure(50);
    eprintln!("whole test: {:?}", started.elapsed());
    drop((proxy, a, b, c));
    drop(shared);
}
