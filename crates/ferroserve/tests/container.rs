//! The container image, built with podman around the binary under test
//! (`scripts/container-image.sh`), serves iris the way the Kubernetes
//! manifests run it (`scripts/container-test.sh`: read-only root, no
//! capabilities, uid 10001, health check, ONNX Runtime, clean stop).

mod common;

use std::process::{Command, Output};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use common::repo_root;

/// An image tag, removed (with any container left on it) when dropped,
/// whether the test passed or not.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rmi", "--force", "--ignore", &self.0])
            .output();
    }
}

/// Runs `scripts/SCRIPT ARGS` from the repository root, killed after
/// `limit_s` seconds.
fn script(name: &str, args: &[&str], limit_s: u32) -> (Output, String, String) {
    let out = Command::new("timeout")
        .args(["--kill-after=10", &limit_s.to_string()])
        .arg(repo_root().join("scripts").join(name))
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("scripts/{name} runs: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// The last `n` lines of `text` (a build log is long).
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn the_container_image_builds_from_the_binary_and_serves_iris() {
    if Command::new("podman").arg("--version").output().is_err() {
        let why = "podman not found: scripts/system-deps.sh installs it (as root; \
                   scripts/test.sh runs it)";
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("skipped: {why}");
        return;
    }
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let image = Image(format!(
        "localhost/ferroserve-test:{}-{nonce}",
        std::process::id()
    ));
    let binary = env!("CARGO_BIN_EXE_ferroserve");

    let started = Instant::now();
    let (out, stdout, stderr) = script("container-image.sh", &["--tag", &image.0, binary], 600);
    let build = started.elapsed();
    assert!(
        out.status.success(),
        "scripts/container-image.sh --tag {} {binary}: {}\n{}\n{}",
        image.0,
        out.status,
        tail(&stdout, 40),
        tail(&stderr, 40)
    );
    assert!(
        stderr.contains(&format!("runtime stage from {binary}")),
        "not built from the binary under test:\n{}",
        tail(&stderr, 60)
    );
    assert!(
        stdout.contains(&format!("built {}", image.0)),
        "{}\n{}",
        tail(&stdout, 40),
        tail(&stderr, 40)
    );

    let started = Instant::now();
    let (out, stdout, stderr) = script("container-test.sh", &[&image.0], 300);
    let check = started.elapsed();
    assert!(
        out.status.success(),
        "scripts/container-test.sh {}: {}\n{stdout}\n{stderr}",
        image.0,
        out.status
    );
    for line in [
        "ok: image user 10001",
        "ok: /livez answers 200",
        "ok: podman healthcheck run",
        "ok: iris inference: ",
        "ok: iris served by ONNX Runtime",
        "ok: root filesystem read-only",
        "ok: SIGTERM: stopped with status 0",
        "PASS: ",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(line)),
            "no line starting with {line:?}:\n{stdout}\n{stderr}"
        );
    }
    let iris = stdout
        .lines()
        .find(|l| l.starts_with("ok: iris inference: "))
        .unwrap_or_default();
    assert!(
        iris.contains(r#""name":"label""#) && iris.contains(r#""data":[0]"#),
        "{iris}"
    );
    eprintln!(
        "{stdout}image built in {:.1} s, checked in {:.1} s",
        build.as_secs_f64(),
        check.as_secs_f64()
    );
}
