//! The progress bar of a phase (on stderr, only when stdout is a terminal
//! and `--quiet` is not given), fed from a shared counter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::Until;

/// Progress of one phase: requests finished so far, shown every 100 ms.
#[derive(Debug)]
pub struct PhaseProgress {
    /// Requests finished; the load tasks add to it.
    pub done: Arc<AtomicU64>,
    ticker: Option<tokio::task::JoinHandle<()>>,
    bar: ProgressBar,
}

impl PhaseProgress {
    /// Starts the bar of a phase named `label` (hidden when `visible` is false).
    pub fn start(label: &str, until: Until, visible: bool) -> PhaseProgress {
        let done = Arc::new(AtomicU64::new(0));
        let (len, template) = match until {
            Until::Elapsed(d) => (
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                "{prefix:>10} [{bar:30}] {elapsed_precise} {msg}",
            ),
            Until::Count(n) => (n, "{prefix:>10} [{bar:30}] {pos}/{len} {msg}"),
        };
        let bar = if visible {
            ProgressBar::new(len)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("a valid progress template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        let ticker = visible.then(|| {
            let (bar, done) = (bar.clone(), done.clone());
            let start = Instant::now();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tick.tick().await;
                    let n = done.load(Ordering::Relaxed);
                    let elapsed = start.elapsed();
                    bar.set_position(match until {
                        Until::Elapsed(_) => u64::try_from(elapsed.as_millis()).unwrap_or(0),
                        Until::Count(_) => n,
                    });
                    let rate = n as f64 / elapsed.as_secs_f64().max(1e-3);
                    bar.set_message(format!("{n} requests, {rate:.0}/s"));
                }
            })
        });
        PhaseProgress { done, ticker, bar }
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
        }
        self.bar.finish_and_clear();
    }
}
