//! The `ferroserve` command line: `serve` runs the server, `predict` sends
//! one request to a running server, `models` manages the model registry,
//! `profile` builds reference profiles and `drift` reads the monitor.

// A binary exports nothing, so `pub` here means "used by sibling modules".
#![allow(unreachable_pub)]

mod cli;
mod config;
mod drift;
mod example;
mod logging;
mod models;
mod predict;
mod profile;
mod registry;
mod serve;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Serve(args) => serve::run(*args),
        cli::Command::Predict(args) => predict::run(args),
        cli::Command::Models(args) => models::run(args),
        cli::Command::Profile(args) => profile::run(args),
        cli::Command::Drift(args) => drift::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
