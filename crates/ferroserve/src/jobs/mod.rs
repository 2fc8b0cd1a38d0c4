//! `ferroserve jobs`: list, show, cancel and resume batch and asynchronous
//! inference jobs, through a server's job API (`--url`) or directly on a
//! data dir's registry, like `ferroserve models`.

mod args;
mod output;
mod store;

use anyhow::bail;
use ferroserve_registry::JobFilter;

pub use args::JobsArgs;

use args::JobsCommand;
use store::{DirectJobs, JobStore, RemoteJobs};

/// Runs one `jobs` subcommand.
pub fn run(args: JobsArgs) -> anyhow::Result<()> {
    let JobsArgs {
        registry,
        json,
        command,
    } = args;
    let open = || -> anyhow::Result<Box<dyn JobStore>> {
        Ok(match registry.url() {
            Some(url) => Box::new(RemoteJobs::new(url)?),
            None => Box::new(DirectJobs::open(&registry)?),
        })
    };
    match command {
        JobsCommand::List {
            state,
            model,
            limit,
        } => {
            if !(1..=1000).contains(&limit) {
                bail!("--limit must be between 1 and 1000, got {limit}");
            }
            let filter = JobFilter {
                state,
                model,
                limit,
            };
            let jobs = open()?.list(&filter)?;
            if json {
                output::print_json(&serde_json::Value::Array(jobs))
            } else {
                output::print_list(&jobs)
            }
        }
        JobsCommand::Show { id } => {
            let job = open()?.show(&id)?;
            if json {
                output::print_json(&job)
            } else {
                output::print_show(&job)
            }
        }
        JobsCommand::Cancel { id } => {
            let job = open()?.cancel(&id)?;
            if json {
                return output::print_json(&job);
            }
            let message = match job["state"].as_str() {
                Some("cancelled") => format!("job {id} cancelled"),
                _ => format!("job {id}: cancel requested; it stops at its next checkpoint"),
            };
            output::print_line(&message)
        }
        // Resuming is following the job as `batch --resume` does.
        JobsCommand::Resume { id, output, quiet } => crate::batch::run(
            crate::batch::BatchArgs::resuming(id, output, quiet, registry),
        ),
    }
}
