//! Ctrl-C while a job is followed: the first one is noted, so that the
//! command stops at a safe point and says what became of the job; a second
//! one leaves at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells use.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Whether Ctrl-C was pressed since [`Interrupt::watch`].
#[derive(Clone)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Starts watching for Ctrl-C (SIGINT) on a thread of its own.
    pub fn watch() -> Self {
        let flag = Arc::new(AtomicBool::new(false));
        let seen = flag.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(runtime) = runtime {
            std::thread::spawn(move || {
                runtime.block_on(async {
                    if tokio::signal::ctrl_c().await.is_err() {
                        return;
                    }
                    seen.store(true, Ordering::Release);
                    if tokio::signal::ctrl_c().await.is_ok() {
                        eprintln!("\ninterrupted again: leaving at once");
                        std::process::exit(EXIT_INTERRUPTED);
                    }
                });
            });
        }
        Interrupt(flag)
    }

    /// Whether Ctrl-C was pressed.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}
