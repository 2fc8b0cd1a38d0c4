//! Command-line flags. Every serve flag also reads a `FERROSERVE_*`
//! environment variable and can be set in the TOML config file (both are
//! [`crate::config::ServeConfig`]).

use clap::{Args, Parser, Subcommand};

/// Model serving and model lifecycle in one binary.
#[derive(Debug, Parser)]
#[command(name = "ferroserve", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the inference server (registers and serves the bundled iris example on first start).
    Serve(crate::config::ServeFlags),
    /// Send one inference request to a running server and print the answer.
    Predict(PredictArgs),
    /// Register, list, show, promote, alias, roll back and configure models.
    Models(crate::models::ModelsArgs),
    /// Build a model version's reference data profile from a training sample (CSV, JSON lines, Parquet) and store it for drift monitoring.
    Profile(crate::profile::ProfileArgs),
    /// Print a served model's drift per feature, data contract violations, online quality and alert rules.
    Drift(DriftArgs),
    /// Load-test a server's KServe v2 infer endpoint (closed or open loop) and report latency percentiles; `bench compare` tests two saved runs against each other.
    Bench(crate::bench::BenchArgs),
    /// Score a whole file (CSV, JSON lines, Parquet) with a model, on a server (--url) or in this process, with a progress bar; interrupted jobs resume from their last checkpoint.
    Batch(crate::batch::BatchArgs),
    /// List, show, cancel and resume batch and async inference jobs, on a server (--url) or a data dir.
    Jobs(crate::jobs::JobsArgs),
    /// Create, list and revoke API keys (roles reader, predictor, deployer, admin), on a server (--url) or a data dir.
    Keys(crate::keys::KeysArgs),
    /// Roll a new version out as a staged canary on a server (--url): start, status, pause, resume, abort, promote; gates on error rate, p99 latency, fallbacks and prediction shift roll back a bad one.
    Rollout(crate::rollout::RolloutArgs),
}

/// Flags of `ferroserve drift`.
#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Model name.
    pub model: String,
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "FERROSERVE_URL")]
    pub url: String,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also print this feature's histogram in the last window beside the
    /// reference's (shares of the reference's bins or categories).
    #[arg(long, value_name = "NAME")]
    pub feature: Option<String>,
}

/// Flags of `ferroserve predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "FERROSERVE_URL")]
    pub url: String,
    /// Model name.
    #[arg(long)]
    pub model: String,
    /// Model version (default: the one the server picks).
    #[arg(long)]
    pub version: Option<String>,
    /// Request as JSON, or @FILE: a KServe v2 request ({"inputs": ...}), a v1
    /// request ({"instances": ...}), or a bare list of rows for the model's first input.
    #[arg(long)]
    pub data: String,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
