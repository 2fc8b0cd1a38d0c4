//! A server whose standard error (a pipe, not a terminal) is collected,
//! for tests that read its log lines.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A server whose standard error (a pipe, not a terminal) is collected.
pub struct Logged {
    pub child: Child,
    pub base: String,
    /// `http://HOST:PORT` of the gRPC server, when the test gave `--grpc ADDR`.
    pub grpc: Option<String>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Logged {
    /// Starts `ferroserve serve` on `data_dir` with `args` and waits until
    /// it listens.
    pub fn start(data_dir: &Path, args: &[&str]) -> Logged {
        Logged::start_with_env(data_dir, args, &[])
    }

    /// Like [`Logged::start`], with `env` set for the server.
    pub fn start_with_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Logged {
        super::provision_admin_key(data_dir);
        let mut child = super::serve_command(data_dir, args)
            .env("FERROSERVE_API_KEY", super::ADMIN_TOKEN)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .env_remove("FERROSERVE_LOG_FORMAT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ferroserve starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("lines").push(line);
            }
        });
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let (base, grpc) = super::listening_lines(stdout, super::wants_grpc(args));
        Logged {
            child,
            base,
            grpc,
            lines,
        }
    }

    /// Waits (at most 30 s) for a log line containing `needle`.
    pub fn wait_for_line(&self, needle: &str) -> String {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if let Some(line) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "no log line with {needle:?} in:\n{}",
            self.lines().join("\n")
        );
    }

    /// Sends the signal `name` (`TERM`...) and waits (at most 60 s) for
    /// the server to exit, which must be a success.
    pub fn signal_and_wait(&mut self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("the server's status") {
                assert!(status.success(), "{status}:\n{}", self.lines().join("\n"));
                return;
            }
            assert!(
                Instant::now() < until,
                "the server did not stop after {name}:\n{}",
                self.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
