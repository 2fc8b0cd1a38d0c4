//! Runs one of the Python client checks in `tests/python/` (stock Triton
//! clients against a running server) with the repository's environment.

use std::ffi::OsStr;
use std::process::Command;

use super::repo_root;

/// Runs `tests/python/SCRIPT ARGS` and fails the test, with its output,
/// unless it exits 0 printing OK; a missing Python environment fails too,
/// saying how to make it.
#[track_caller]
pub fn run<A: AsRef<OsStr>>(script: &str, args: impl IntoIterator<Item = A>) {
    let python = super::dependency::require(
        Some(repo_root().join(".venv/bin/python")).filter(|p| p.exists()),
        "the repository's Python environment with tritonclient (.venv/bin/python)",
        "run scripts/python-env.sh test",
    );
    let out = Command::new(&python)
        .arg(repo_root().join("tests/python").join(script))
        .args(args)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
