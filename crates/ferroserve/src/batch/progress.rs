//! Following a job until it ends (or Ctrl-C), with a progress bar of rows
//! handled out of the total once the job has counted them, with the job's
//! own rate (whole rows per second) and time left.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use super::interrupt::Interrupt;
use super::JobRunner;

/// How often the job is asked how far it got.
const POLL: Duration = Duration::from_millis(250);

/// How following a job ended.
pub enum Followed {
    /// The job reached a final state: its last status.
    Finished(Value),
    /// Ctrl-C was pressed while it ran.
    Interrupted,
}

/// Polls job `id` until it reaches a final state or `interrupt` is set.
pub fn follow(
    runner: &dyn JobRunner,
    id: &str,
    quiet: bool,
    interrupt: &Interrupt,
) -> anyhow::Result<Followed> {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    // Until the job has counted its input, there is no bar to fill.
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} {human_pos} rows{prefix}")
            .expect("the template is valid"),
    );
    let mut counted = false;
    loop {
        let status = runner.status(id)?;
        let count = |key: &str| status[key].as_i64().unwrap_or(0).max(0) as u64;
        let handled = count("rows_done") + count("rows_failed");
        if let Some(total) = status["rows_total"].as_i64() {
            if !counted {
                counted = true;
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg:>10} [{bar:40}] {human_pos}/{human_len} rows{prefix}",
                    )
                    .expect("the template is valid")
                    .progress_chars("=> "),
                );
            }
            // Never more done than the total.
            bar.set_length((total.max(0) as u64).max(handled));
        }
        bar.set_position(handled);
        bar.set_prefix(rate_text(&status));
        let state = status["state"].as_str().unwrap_or("unknown").to_owned();
        bar.set_message(state.clone());
        if matches!(state.as_str(), "succeeded" | "failed" | "cancelled") {
            bar.finish_and_clear();
            return Ok(Followed::Finished(status));
        }
        if interrupt.is_set() {
            bar.finish_and_clear();
            return Ok(Followed::Interrupted);
        }
        std::thread::sleep(POLL);
    }
}

/// ` (12,345 rows/s, 8s left)` from the job's rate, or nothing before it
/// has one.
fn rate_text(status: &Value) -> String {
    let Some(rate) = status["rows_per_second"].as_f64().filter(|r| *r > 0.0) else {
        return String::new();
    };
    let rate = indicatif::HumanCount(rate.round() as u64);
    match status["eta_seconds"].as_f64() {
        Some(eta) => format!(
            " ({rate} rows/s, {} left)",
            indicatif::HumanDuration(Duration::from_secs_f64(eta.max(0.0)))
        ),
        None => format!(" ({rate} rows/s)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rates_are_whole_rows_per_second() {
        assert_eq!(rate_text(&json!({})), "");
        assert_eq!(
            rate_text(&json!({"rows_per_second": 199614.1658, "eta_seconds": 3.2})),
            " (199,614 rows/s, 3 seconds left)"
        );
        assert_eq!(rate_text(&json!({"rows_per_second": 12.0})), " (12 rows/s)");
    }
}
