//! `ferroserve keys`: create, list and revoke API keys, through a server
//! (`--url`, as an admin) or directly on a data dir's registry. A new key's
//! token is printed once and stored nowhere.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use ferroserve_core::{ModelPattern, Role};
use ferroserve_registry::api_keys::{expiry_after, now_ms};
use ferroserve_registry::{NewApiKey, Registry};
use reqwest::Method;
use serde_json::{json, Value};

use crate::api_client::{segment, ApiClient};
use crate::models::{fields, format_time, Table, TargetArgs};
use crate::registry::Access;

/// Flags of `ferroserve keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// Where the registry is and how to print the answer.
    #[command(flatten)]
    pub target: TargetArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// Subcommands of `ferroserve keys`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its token (shown only this once).
    Create {
        /// A name for people and the audit log.
        #[arg(long)]
        name: String,
        /// reader, predictor, deployer or admin.
        #[arg(long)]
        role: Role,
        /// Limit the key to models matching this pattern (`fraud-*`); repeatable [default: every model].
        #[arg(long = "models", value_name = "PATTERN")]
        models: Vec<String>,
        /// Stop accepting the key after this long, e.g. 90d or 12h [default: never].
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
    },
    /// List every key (never their tokens).
    List,
    /// Revoke a key by its id.
    Revoke {
        /// The key's id (from `keys list`).
        id: String,
    },
}

/// Runs `ferroserve keys`.
pub fn run(args: KeysArgs) -> anyhow::Result<()> {
    let json = args.target.json;
    let answer = match args.target.registry.url() {
        Some(url) => remote(&ApiClient::new(url)?, args.command)?,
        None => direct(&args, args.target.registry.actor())?,
    };
    print(&answer, json);
    Ok(())
}

fn remote(api: &ApiClient, command: KeysCommand) -> anyhow::Result<Value> {
    match command {
        KeysCommand::Create {
            name,
            role,
            models,
            expires_in,
        } => {
            let mut body = json!({ "name": name, "role": role, "models": models });
            if let Some(lifetime) = expires_in {
                body["expires_in_seconds"] = json!(lifetime.as_secs().max(1));
            }
            api.send_json(Method::POST, "/api/v1/keys", &body)
        }
        KeysCommand::List => api.get("/api/v1/keys"),
        KeysCommand::Revoke { id } => api.send_json(
            Method::DELETE,
            &format!("/api/v1/keys/{}", segment(&id)),
            &json!({}),
        ),
    }
}

fn direct(args: &KeysArgs, actor: String) -> anyhow::Result<Value> {
    let settings = args.target.registry.settings();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        settings.check_exists()?;
        let registry = Registry::connect(&settings.registry_url(Access::Existing))
            .await
            .context("cannot open the model registry")?;
        match &args.command {
            KeysCommand::Create {
                name,
                role,
                models,
                expires_in,
            } => {
                let models = models
                    .iter()
                    .map(|p| ModelPattern::new(p))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(anyhow::Error::msg)?;
                let expires_at = expires_in.map(expiry_after);
                let spec = NewApiKey {
                    name: name.clone(),
                    role: *role,
                    models,
                    expires_at,
                };
                let (key, token) = registry.create_api_key(&spec, &actor).await?;
                let mut answer = serde_json::to_value(&key)?;
                answer["token"] = json!(token);
                Ok(answer)
            }
            KeysCommand::List => Ok(json!({ "keys": registry.list_api_keys().await? })),
            KeysCommand::Revoke { id } => Ok(serde_json::to_value(
                registry.revoke_api_key(id, &actor).await?,
            )?),
        }
    })
}

fn print(answer: &Value, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(answer).unwrap_or_default()
        );
        return;
    }
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    if let Some(token) = answer["token"].as_str() {
        print!(
            "{}",
            fields(&[
                ("id", text(&answer["id"])),
                ("name", text(&answer["name"])),
                ("role", text(&answer["role"])),
                ("token", token.to_owned()),
            ])
        );
        println!("The token is shown only now: store it safely.");
        return;
    }
    let keys = match answer["keys"].as_array() {
        Some(keys) => keys.clone(),
        None => vec![answer.clone()],
    };
    let mut table = Table::new(&["ID", "NAME", "ROLE", "STATE", "LAST USED", "MODELS"]);
    for key in keys {
        let state = if !key["revoked_at"].is_null() {
            "revoked"
        } else if key["expires_at"].as_i64().is_some_and(|at| at <= now_ms()) {
            "expired"
        } else {
            "active"
        };
        let models = key["models"]
            .as_array()
            .filter(|m| !m.is_empty())
            .map(|m| {
                m.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_else(|| "*".into());
        table.row(vec![
            text(&key["id"]),
            text(&key["name"]),
            text(&key["role"]),
            state.to_owned(),
            key["last_used_at"]
                .as_i64()
                .map(format_time)
                .unwrap_or_else(|| "never".into()),
            models,
        ]);
    }
    print!("{table}");
}
