//! FP16 and BF16 end to end: the real binary on a free port serving the
//! half-precision test models, driven by the unmodified `tritonclient.http`.

mod common;

use std::process::Command;

use common::{repo_root, Server};

#[test]
fn tritonclient_http_sends_and_reads_fp16_and_bf16() {
    let python = common::dependency::require(
        Some(repo_root().join(".venv/bin/python")).filter(|p| p.exists()),
        "the repository's Python environment with tritonclient (.venv/bin/python)",
        "run scripts/python-env.sh test",
    );
    let model = |name: &str| {
        let path = repo_root().join(format!("testdata/models/{name}.onnx"));
        format!("{name}={}", path.display())
    };
    let (fp16, bf16) = (model("scale_fp16"), model("scale_bf16"));
    let server = Server::start(&["--no-example", "--model", &fp16, "--model", &bf16]);
    let out = Command::new(&python)
        .arg(repo_root().join("tests/python/triton_half_check.py"))
        .arg(server.host_port())
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "triton client FP16/BF16 check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
