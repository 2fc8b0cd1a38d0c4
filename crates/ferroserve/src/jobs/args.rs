//! Flags of `ferroserve jobs` and its subcommands; the registry flags are
//! those of `ferroserve models` (`--url` works through a server, else the
//! data dir is opened).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use ferroserve_registry::JobState;

use crate::models::RegistryArgs;

/// Flags of `ferroserve jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Where the jobs are (a server, or a data dir) and who acts.
    #[command(flatten, next_help_heading = "Registry options (any subcommand)")]
    pub registry: RegistryArgs,
    /// Print the answer as JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: JobsCommand,
}

/// `ferroserve jobs` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List {
        /// Only jobs in this state: queued, running, succeeded, failed or cancelled.
        #[arg(long, value_parser = parse_state)]
        state: Option<JobState>,
        /// Only jobs of this model.
        #[arg(long)]
        model: Option<String>,
        /// At most this many jobs (1 to 1000).
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Show one job: state, progress, rows, error, the runner holding it and the version that scored it.
    Show {
        /// Job id.
        id: String,
    },
    /// Cancel a job: a queued one at once, a running one at its next checkpoint.
    Cancel {
        /// Job id.
        id: String,
    },
    /// Take up an interrupted batch job from its last checkpoint and write its results, as `ferroserve batch --resume` does (with --url: on that server).
    Resume {
        /// Job id.
        id: String,
        /// Where to write the results [default: where the job was told to write them].
        #[arg(short, long, value_name = "OUTPUT")]
        output: Option<PathBuf>,
        /// Do not show a progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
}

fn parse_state(text: &str) -> Result<JobState, String> {
    text.parse::<JobState>().map_err(|e| e.to_string())
}
