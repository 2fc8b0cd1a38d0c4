//! `ferroserve rollout`: start, watch, pause, resume, abort and promote a
//! model's staged canary, through a server's rollout API
//! (`/api/v1/models/{model}/rollout`). Rollouts run in the server, so
//! there is no data-dir mode; `--json` prints the server's answer as is.

mod args;
mod output;

use reqwest::Method;
use serde_json::{json, Value};

pub use args::RolloutArgs;

use args::RolloutCommand;

use crate::api_client::{segment, ApiClient};

/// Runs one `rollout` subcommand.
pub fn run(args: RolloutArgs) -> anyhow::Result<()> {
    let api = ApiClient::new(args.server())?;
    let RolloutArgs { json, command, .. } = args;
    // The answer, and for a change the word saying what was done.
    let (answer, done): (Value, Option<&str>) = match &command {
        RolloutCommand::Start(start) => {
            let path = rollout_path(&start.model);
            let status = api.send_json(Method::POST, &path, &start.body())?;
            (status, Some("started"))
        }
        RolloutCommand::Status { model } => (api.get(&rollout_path(model))?, None),
        RolloutCommand::Pause { model } => (act(&api, model, "pause")?, Some("paused")),
        RolloutCommand::Resume { model } => (act(&api, model, "resume")?, Some("resumed")),
        RolloutCommand::Abort { model } => (act(&api, model, "abort")?, Some("aborted")),
        RolloutCommand::Promote { model } => (act(&api, model, "promote")?, Some("promoted")),
    };
    match (json, done) {
        (true, _) => println!("{}", serde_json::to_string_pretty(&answer)?),
        (false, None) => print!("{}", output::status(&answer)),
        (false, Some(done)) => println!("{}", output::changed(done, &answer)),
    }
    Ok(())
}

/// `POST /api/v1/models/{model}/rollout/{action}`, answered by the status.
fn act(api: &ApiClient, model: &str, action: &str) -> anyhow::Result<Value> {
    let path = format!("{}/{action}", rollout_path(model));
    // An empty JSON object, as other bodiless POSTs of the CLI send.
    api.send_json(Method::POST, &path, &json!({}))
}

/// `/api/v1/models/{model}/rollout`.
fn rollout_path(model: &str) -> String {
    format!("/api/v1/models/{}/rollout", segment(model))
}
