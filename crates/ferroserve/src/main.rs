//! The `ferroserve` command line: `serve` runs the server, `predict` sends
//! one request to a running server, `models` manages the model registry,
//! `profile` builds reference profiles, `drift` reads the monitor, `bench`
//! load-tests a server, `batch` scores whole files, `jobs` manages the
//! jobs that do, `keys` manages API keys and `rollout` runs staged canaries.

// A binary exports nothing, so `pub` here means "used by sibling modules".
#![allow(unreachable_pub)]

mod api_client;
mod batch;
mod bench;
mod cli;
mod config;
mod credentials;
mod drift;
mod example;
mod jobs;
mod keys;
mod logging;
mod models;
mod otlp;
mod pipe;
mod predict;
mod profile;
mod registry;
mod rollout;
mod serve;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    quiet_library_backtraces();
    pipe::exit_quietly_on_broken_pipe();
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Serve(flags) => serve::run(&flags),
        cli::Command::Predict(args) => predict::run(args),
        cli::Command::Models(args) => models::run(args),
        cli::Command::Profile(args) => profile::run(args),
        cli::Command::Drift(args) => drift::run(args),
        cli::Command::Bench(args) => bench::run(args),
        cli::Command::Batch(args) => batch::run(args),
        cli::Command::Jobs(args) => jobs::run(args),
        cli::Command::Keys(args) => keys::run(args),
        cli::Command::Rollout(args) => rollout::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if pipe::is_broken_pipe(&e) => std::process::ExitCode::from(pipe::BROKEN_PIPE_EXIT),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Turns off backtraces of library errors unless `RUST_LIB_BACKTRACE` says
/// otherwise. In debug builds tract creates errors on its inference path,
/// and with `RUST_BACKTRACE=1` each captured a backtrace: a batch job ran
/// at 7k instead of 25k rows/s (release builds showed no difference).
/// Panics keep their backtraces (`RUST_BACKTRACE`). Runs before any thread
/// is started.
fn quiet_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
}
