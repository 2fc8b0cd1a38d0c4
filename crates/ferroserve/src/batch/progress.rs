//! Following a job until it ends, with a progress bar of rows handled out
//! of the total (once the job has counted them), its rate and time left.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use super::JobRunner;

/// How often the job is asked how far it got.
const POLL: Duration = Duration::from_millis(250);

/// Polls job `id` until it reaches a final state; returns its last status.
pub fn follow(runner: &dyn JobRunner, id: &str, quiet: bool) -> anyhow::Result<Value> {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:40}] {human_pos}/{human_len} rows ({per_sec}, {eta} left)",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    loop {
        let status = runner.status(id)?;
        let count = |key: &str| status[key].as_i64().unwrap_or(0).max(0) as u64;
        if let Some(total) = status["rows_total"].as_i64() {
            bar.set_length(total.max(0) as u64);
        }
        bar.set_position(count("rows_done") + count("rows_failed"));
        let state = status["state"].as_str().unwrap_or("unknown").to_owned();
        bar.set_message(state.clone());
        if matches!(state.as_str(), "succeeded" | "failed" | "cancelled") {
            bar.finish_and_clear();
            return Ok(status);
        }
        std::thread::sleep(POLL);
    }
}
