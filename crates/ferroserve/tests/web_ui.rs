//! The web UI in a real browser (`tests/python/ui_check.py`: Debian's
//! chromium, headless, driven by Playwright): sign in, the overview, the
//! drift chart gaining points above the threshold under shifted traffic, a
//! promotion through its confirmation, a prediction from the try-it form,
//! a rollout started and watched in the rollout view, the live traffic
//! view and the overview's traffic, a 100,000-row file scored in the jobs
//! view, keys made and revoked, the serving config editor's refusal shown
//! in place, a rollback, and what a reader may not do.
//! Screenshots of each step are kept in `target/ui-screenshots/`.

mod common;

use std::path::PathBuf;

use common::rollout::{cli_ok, create_key};
use common::{repo_root, Server, ADMIN_TOKEN};

/// Debian's chromium, installed by `scripts/system-deps.sh`.
fn chromium() -> PathBuf {
    common::dependency::require(
        Some(PathBuf::from("/usr/bin/chromium")).filter(|p| p.exists()),
        "chromium (/usr/bin/chromium) for the browser tests",
        "run scripts/system-deps.sh as root (apt-get install chromium)",
    )
}

#[test]
fn the_ui_promotes_rolls_out_scores_files_and_manages_keys_as_each_role_may() {
    let chromium = chromium();
    let server = Server::start(&[]);
    // Versions 2 and 3 of the example model, registered but not promoted:
    // 2 is promoted in the browser, then 3 rolled out.
    for _ in 2..=3 {
        cli_ok(
            &server,
            &[
                "models",
                "register",
                "--name",
                "iris",
                "examples/iris/model.onnx",
            ],
        );
    }
    let reader = create_key(&server, "analyst", "reader");
    let shots = repo_root().join("target/ui-screenshots");
    common::python_check::run(
        "ui_check.py",
        [
            server.base.as_str(),
            ADMIN_TOKEN,
            reader.as_str(),
            chromium.to_str().expect("utf-8 path"),
            shots.to_str().expect("utf-8 path"),
        ],
    );
}
