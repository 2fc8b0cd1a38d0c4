//! `ferroserve models`: register, list, show, promote, alias, roll back and
//! configure registered models, through a server's management API
//! (`--url`) or directly on a data dir. `ferroserve profile` reaches the
//! registry the same way: it takes the same [`RegistryArgs`], talks to a
//! server through [`crate::api_client::ApiClient`] and opens a data dir with
//! [`open_lifecycle`].

mod args;
mod commands;
mod direct;
mod files;
mod output;
mod register;
mod remote;
mod serving;
mod show;
mod store;

pub use args::{ModelsArgs, RegistryArgs, TargetArgs};
// Remote batch jobs reach the client through here.
pub use direct::open_lifecycle;
pub use output::{fields, format_time, short_number, Table};

use args::ModelsCommand;
use store::ModelStore;

use crate::registry::Access;

/// Runs one `models` subcommand.
pub fn run(args: ModelsArgs) -> anyhow::Result<()> {
    let ModelsArgs { target, command } = args;
    let json = target.json;
    // Only a registration may create the data dir and its registry: any
    // other command works on models that must exist already.
    let open = || open_store(&target.registry, Access::Existing);
    match command {
        ModelsCommand::Register(args) => {
            // Every flag is checked before anything is opened or uploaded.
            let request = register::request(&args)?;
            let store = open_store(&target.registry, Access::Create)?;
            commands::register(store.as_ref(), json, &args, request)
        }
        ModelsCommand::List => commands::list(open()?.as_ref(), json),
        ModelsCommand::Show { target: what } => commands::show(open()?.as_ref(), json, &what),
        ModelsCommand::Promote {
            model,
            version,
            stage,
            no_archive_existing,
            unload,
        } => {
            let archive_existing = !no_archive_existing;
            commands::promote(
                open()?.as_ref(),
                json,
                &model,
                version,
                stage,
                archive_existing,
                unload,
            )
        }
        ModelsCommand::Alias {
            model,
            alias,
            version,
            delete,
            unload,
        } => match version.filter(|_| !delete) {
            Some(version) => commands::set_alias(open()?.as_ref(), json, &model, &alias, version),
            None => commands::delete_alias(open()?.as_ref(), json, &model, &alias, unload),
        },
        ModelsCommand::History(args) => commands::history(open()?.as_ref(), json, &args),
        ModelsCommand::Delete { model, yes } => {
            commands::delete(open()?.as_ref(), json, &model, yes)
        }
        ModelsCommand::Rename { model, new_name } => {
            commands::rename(open()?.as_ref(), json, &model, &new_name)
        }
        ModelsCommand::Rollback { model } => commands::rollback(open()?.as_ref(), json, &model),
        ModelsCommand::Config { model, set, unload } => match set {
            Some(text) => commands::set_config(open()?.as_ref(), json, &model, &text, unload),
            None => commands::config(open()?.as_ref(), json, &model),
        },
        ModelsCommand::Faults(args) => commands::faults(open()?.as_ref(), json, &args),
    }
}

/// The store `registry` names: the server at `--url`, else the data dir.
fn open_store(registry: &RegistryArgs, access: Access) -> anyhow::Result<Box<dyn ModelStore>> {
    match registry.url() {
        Some(url) => Ok(Box::new(remote::RemoteModels::new(url)?)),
        None => {
            // Shows what opening the registry warns about (interrupted
            // registrations), nothing chattier; a missing ONNX Runtime is
            // no news on every command (artifacts are checked with tract).
            crate::logging::init(
                crate::logging::LogFormat::Text,
                "warn,ferroserve_backend=error",
            );
            Ok(Box::new(direct::DirectModels::open(
                &registry.settings(),
                registry.ort_library.as_deref(),
                registry.actor(),
                access,
            )?))
        }
    }
}
