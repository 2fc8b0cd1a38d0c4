//! Helpers shared by the end-to-end tests: start the real binary on a free
//! port with its own data dir, wait for readiness, send JSON requests, and
//! run the CLI on a data dir.

#![allow(dead_code, unreachable_pub)]

pub mod dependency;
pub mod drift;
pub mod fleet;
pub mod grpc;
pub mod iris;
pub mod load;
pub mod logged;
#[path = "../../../ferroserve-registry/tests/artifact_suite/moto.rs"]
pub mod moto;
#[path = "../../../ferroserve-registry/tests/registry_suite/common/pg.rs"]
pub mod pg;
pub mod python_check;
pub mod recording_load;
pub mod redis;
pub mod registry_api;
pub mod rollout;
pub mod webhook;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ferroserve");

/// Polls `what` every 50 ms for at most 30 s until it holds.
pub fn wait_until(what: &str, mut holds: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while !holds() {
        assert!(Instant::now() < until, "{what} within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Root of the repository (tests run from there).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `ferroserve COMMAND ARGS` from `cwd` in direct mode on `data_dir`,
/// as actor `tester`, with no registry location from the environment.
pub fn run_direct(command: &str, args: &[&str], data_dir: &Path, cwd: &Path) -> Output {
    Command::new(BIN)
        .arg(command)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--actor", "tester"])
        .env_remove("FERROSERVE_URL")
        .env_remove("FERROSERVE_REGISTRY_URL")
        .env_remove("FERROSERVE_ARTIFACT_STORE")
        .current_dir(cwd)
        .output()
        .expect("ferroserve runs")
}

/// `ferroserve serve` on `data_dir` with `args`, run from the repository
/// root: on a free loopback port unless `args` give `--http`, and without
/// gRPC unless they give `--grpc` (its default port would be shared by
/// every test server).
pub fn serve_command(data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.arg("serve").arg("--data-dir").arg(data_dir);
    if !args.contains(&"--http") {
        command.args(["--http", "127.0.0.1:0"]);
    }
    if !args.contains(&"--grpc") {
        command.args(["--grpc", "off"]);
    }
    command.args(args).current_dir(repo_root());
    command
}

/// A running `ferroserve serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// `http://HOST:PORT` of the gRPC server, when the test gave `--grpc ADDR`.
    pub grpc: Option<String>,
    /// The data dir (a fresh temporary one unless the test gave one).
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts the server on a free port with a fresh data dir and waits
    /// until it is ready.
    pub fn start(args: &[&str]) -> Server {
        let temp = tempfile::tempdir().expect("tempdir");
        let data_dir = temp.path().to_path_buf();
        let mut server = Server::start_in(&data_dir, args);
        server._temp = Some(temp);
        server.wait_ready();
        server
    }

    /// Starts the server on `data_dir` without waiting for readiness;
    /// its admin key is [`ADMIN_TOKEN`] (provisioned in `admin.key`).
    pub fn start_in(data_dir: &Path, args: &[&str]) -> Server {
        provision_admin_key(data_dir);
        Server::start_unprovisioned(data_dir, args)
    }

    /// Starts the server on `data_dir` as it is (a fresh one gets an admin
    /// key of the server's own making), without waiting for readiness.
    pub fn start_unprovisioned(data_dir: &Path, args: &[&str]) -> Server {
        let mut child = serve_command(data_dir, args)
            .args(["--log-format", "text", "--log-level", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ferroserve binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (base, grpc) = listening_lines(BufReader::new(stdout), wants_grpc(args));
        Server {
            child,
            base,
            grpc,
            data_dir: data_dir.to_path_buf(),
            _temp: None,
        }
    }

    /// Waits (at most 60 s) until `/readyz` answers 200.
    pub fn wait_ready(&self) {
        wait_ready(&self.base);
    }

    /// Polls `/metrics` until a line equal to `line` appears.
    pub fn wait_for_metric(&self, line: &str) {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if self.metrics().lines().any(|l| l == line) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "metric line {line:?} never appeared in:\n{}",
            self.metrics()
        );
    }

    /// The text of `/metrics` (empty when it cannot be read).
    pub fn metrics(&self) -> String {
        self.client()
            .get(format!("{}/metrics", self.base))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default()
    }

    /// A client that sends the server's admin key.
    pub fn client(&self) -> reqwest::blocking::Client {
        admin_client()
    }

    /// The sum of the samples of `name` whose labels include every one of
    /// `labels` (`key="value"`), from `/metrics`; 0 when there is none.
    pub fn metric_sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.metrics()
            .lines()
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let rest = series.strip_prefix(name)?;
                let matches = (rest.is_empty() || rest.starts_with('{'))
                    && labels.iter().all(|l| rest.contains(l));
                matches.then(|| value.parse::<f64>().ok()).flatten()
            })
            .sum()
    }

    /// `host:port` of the server.
    pub fn host_port(&self) -> &str {
        host_port(&self.base)
    }

    /// `HOST:PORT` of the gRPC server (the test must have given `--grpc`).
    pub fn grpc_host_port(&self) -> &str {
        host_port(
            self.grpc
                .as_deref()
                .expect("the server was started with --grpc"),
        )
    }

    /// Sends a signal (`TERM`, `KILL`...) to the server process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (at most 60 s) until `/readyz` of the server at `base` answers 200.
pub fn wait_ready(base: &str) {
    let client = reqwest::blocking::Client::new();
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        if let Ok(r) = client.get(format!("{base}/readyz")).send() {
            if r.status().is_success() {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server at {base} never became ready");
}

/// Whether a server started with `args` listens for gRPC.
pub fn wants_grpc(args: &[&str]) -> bool {
    args.windows(2)
        .any(|pair| pair[0] == "--grpc" && pair[1] != "off")
}

/// The HTTP base URL and (when `wants_grpc`) the gRPC URL from the
/// server's "listening" lines; the rest of its output is drained in the
/// background, so the server never writes to a closed pipe.
pub fn listening_lines(
    mut out: BufReader<ChildStdout>,
    wants_grpc: bool,
) -> (String, Option<String>) {
    let (mut base, mut grpc) = (None, None);
    while base.is_none() || (wants_grpc && grpc.is_none()) {
        let mut line = String::new();
        let read = out.read_line(&mut line).expect("reads the server's output");
        assert!(read > 0, "the server's output ended before it listened");
        let line = line.trim();
        if let Some(addr) = line.strip_prefix("ferroserve gRPC listening on ") {
            grpc = Some(with_scheme(addr));
        } else if let Some(addr) = line.strip_prefix("ferroserve listening on ") {
            base = Some(addr.to_string());
        } else {
            panic!("unexpected line {line:?} before the server listened");
        }
    }
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    (base.expect("the HTTP address was read"), grpc)
}

fn with_scheme(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// `HOST:PORT` of a URL (the whole text when it has no scheme).
pub fn host_port(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}

/// The admin key of every test server: provisioned in its data dir's
/// `admin.key` before its first start, which the server then registers.
pub const ADMIN_TOKEN: &str =
    "fsk_7e57ad31000000000000000000000000000000000000000000000000000000a1";

/// Writes [`ADMIN_TOKEN`] to `data_dir/admin.key` unless a key is there.
pub fn provision_admin_key(data_dir: &Path) {
    let path = data_dir.join("admin.key");
    if !path.exists() {
        std::fs::create_dir_all(data_dir).expect("data dir");
        std::fs::write(&path, ADMIN_TOKEN).expect("admin.key");
    }
}

/// A client that sends the test servers' admin key.
pub fn admin_client() -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {ADMIN_TOKEN}");
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&value).expect("token is a header value"),
    );
    reqwest::blocking::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client")
}

/// POSTs JSON and returns the status and the JSON answer.
pub fn post(url: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .post(url)
        .json(body)
        .send()
        .expect("request is sent");
    let status = r.status().as_u16();
    (status, r.json().expect("JSON body"))
}

/// The stdout of a command run with `args`, which must have succeeded
/// (else the test fails with its status and stderr).
pub fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "{args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}
