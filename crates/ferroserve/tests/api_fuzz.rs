//! Fuzzes the management API of the real binary against its own OpenAPI
//! document with schemathesis (from the repository's `.venv`), signed in
//! as admin: no answer may be a server error or contradict the document
//! (undocumented status, content type or body shape), and the server must
//! still be live and able to serve the example model afterwards.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{repo_root, Server, ADMIN_TOKEN};

/// Test cases per operation and phase: enough to reach every operation's
/// validation paths while the whole run stays well under a minute.
const MAX_EXAMPLES: &str = "25";

/// Fixed seed, so that a failure can be replayed with the same cases.
const SEED: &str = "20261206";

/// The checks that decide the verdict.
const CHECKS: &str = "not_a_server_error,status_code_conformance,\
                      content_type_conformance,response_schema_conformance";

/// The schemathesis CLI installed by `scripts/python-env.sh test`.
fn schemathesis() -> PathBuf {
    common::dependency::require(
        Some(repo_root().join(".venv/bin/schemathesis")).filter(|p| p.exists()),
        "the repository's Python environment with schemathesis (.venv/bin/schemathesis)",
        "run scripts/python-env.sh test",
    )
}

#[test]
fn management_api_conforms_to_its_openapi_document_under_fuzzing() {
    let schemathesis = schemathesis();
    let server = Server::start(&[]);
    let report_dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(&schemathesis)
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", server.base))
        .args(["--header", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
        .args(["--workers", "1", "--no-shrink", "--request-timeout", "30"])
        // Revoking keys would revoke the run's own admin key (the listing
        // hands its id to the stateful phase) and leave nothing but 401s.
        .args(["--exclude-operation-id", "revokeKey"])
        // Renaming iris would leave nothing under the name checked below
        // (the rename's refusals are tested in models_cli and the registry
        // suite).
        .args(["--exclude-operation-id", "renameModel"])
        // The live figures stream until the client leaves (tested in
        // web_ui and the server's unit tests).
        .args(["--exclude-operation-id", "liveFigures"])
        .args(["--output-sanitize", "false", "--report-dir"])
        .arg(report_dir.path())
        .env("NO_COLOR", "1")
        .current_dir(report_dir.path())
        .output()
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found answers that break the OpenAPI document ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let client = server.client();
    let live = client
        .get(format!("{}/livez", server.base))
        .send()
        .expect("livez answers after the run");
    assert_eq!(live.status(), 200, "livez after the run");
    // The run may have unloaded iris through the repository API; loading it
    // again must work and leave it ready.
    let load = client
        .post(format!("{}/v2/repository/models/iris/load", server.base))
        .send()
        .expect("load answers after the run");
    let load_status = load.status();
    assert_eq!(
        load_status,
        200,
        "iris loads after the run: {:?}",
        load.text()
    );
    let ready = client
        .get(format!("{}/v2/models/iris/ready", server.base))
        .send()
        .expect("ready answers after the run");
    assert_eq!(ready.status(), 200, "iris is ready after the run");
}
