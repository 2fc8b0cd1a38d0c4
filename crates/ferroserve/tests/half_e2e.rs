//! FP16 and BF16 end to end: the real binary on a free port serving the
//! half-precision test models, driven by the unmodified `tritonclient.http`.

mod common;

use common::{repo_root, Server};

#[test]
fn tritonclient_http_sends_and_reads_fp16_and_bf16() {
    let model = |name: &str| {
        let path = repo_root().join(format!("testdata/models/{name}.onnx"));
        format!("{name}={}", path.display())
    };
    let (fp16, bf16) = (model("scale_fp16"), model("scale_bf16"));
    let server = Server::start(&["--no-example", "--model", &fp16, "--model", &bf16]);
    common::python_check::run("triton_half_check.py", [server.host_port()]);
}
