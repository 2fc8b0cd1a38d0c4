//! The `ferroserve` command line: `serve` runs the server, `predict` sends
//! one request to a running server, `models` manages the model registry.

// A binary exports nothing, so `pub` here means "used by sibling modules".
#![allow(unreachable_pub)]

mod cli;
mod config;
mod example;
mod logging;
mod models;
mod predict;
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
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
