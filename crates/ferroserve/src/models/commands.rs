//! One function per `models` subcommand: call the backend, print the
//! answer as text or (`--json`) in the management API's shape, and warn
//! when the server does not serve what was asked.

use std::path::Path;

use anyhow::Context;
use ferroserve_registry::Stage;
use ferroserve_serving::lifecycle::RegisterVersion;
use serde::Serialize;
use serde_json::{json, Value};

use super::args::{FaultChange, FaultsArgs, RegisterArgs};
use super::backend::ModelsBackend;
use super::output::{history_line, Table};
use super::serving::{self, Asked};
use super::{files, register, show};

/// `models register`.
pub fn register(
    backend: &dyn ModelsBackend,
    json: bool,
    args: &RegisterArgs,
    request: RegisterVersion,
) -> anyhow::Result<()> {
    let changed = register::register(backend, args, request)?;
    let v = &changed.value;
    let text = format!(
        "registered {} version {} (stage {}, sha256 {})",
        v.model, v.version, v.stage, v.artifact_digest
    );
    emit(
        json,
        json!({"version": v, "serving": changed.serving}),
        text,
    )?;
    let asked = Asked::Registered(args.stage);
    serving::check(
        backend,
        &v.model,
        changed.serving.as_ref(),
        v.version,
        &asked,
    )
}

/// `models list`.
pub fn list(backend: &dyn ModelsBackend, json: bool) -> anyhow::Result<()> {
    let models = backend.list()?;
    if json {
        print_json(&json!({ "models": models }))
    } else {
        print!("{}", show::model_list(&models));
        Ok(())
    }
}

/// `models show NAME[/VERSION]`.
pub fn show(backend: &dyn ModelsBackend, json: bool, what: &str) -> anyhow::Result<()> {
    match parse_show_target(what)? {
        (model, Some(version)) => {
            let v = backend.version(model, version)?;
            if json {
                return print_json(&v);
            }
            print!("{}", show::version_detail(&v));
        }
        (model, None) => {
            let detail = backend.model(model)?;
            if json {
                return print_json(&detail);
            }
            print!("{}", show::model_detail(&detail));
        }
    }
    Ok(())
}

/// `models promote`.
pub fn promote(
    backend: &dyn ModelsBackend,
    json: bool,
    model: &str,
    version: i64,
    stage: Stage,
    archive_existing: bool,
    unload: bool,
) -> anyhow::Result<()> {
    let changed = backend.promote(model, version, stage, archive_existing, unload)?;
    let answer = json!({"version": changed.value, "serving": changed.serving});
    emit(
        json,
        answer,
        format!("{model} version {version} is now in {stage}"),
    )?;
    let asked = Asked::Stage(stage);
    serving::check(backend, model, changed.serving.as_ref(), version, &asked)
}

/// `models alias NAME ALIAS VERSION`.
pub fn set_alias(
    backend: &dyn ModelsBackend,
    json: bool,
    model: &str,
    alias: &str,
    version: i64,
) -> anyhow::Result<()> {
    let changed = backend.set_alias(model, alias, version)?;
    let answer = json!({"alias": alias, "version": version, "serving": changed.serving});
    emit(
        json,
        answer,
        format!("{model}@{alias} now points to version {version}"),
    )?;
    let asked = Asked::Alias(alias);
    serving::check(backend, model, changed.serving.as_ref(), version, &asked)
}

/// `models alias NAME ALIAS --delete`.
pub fn delete_alias(
    backend: &dyn ModelsBackend,
    json: bool,
    model: &str,
    alias: &str,
    unload: bool,
) -> anyhow::Result<()> {
    let changed = backend.delete_alias(model, alias, unload)?;
    let answer = json!({ "serving": changed.serving });
    emit(json, answer, format!("removed alias {alias} of {model}"))?;
    serving::report_failures(model, changed.serving.as_ref())
}

/// `models history`: one line per audit event, newest last.
pub fn history(backend: &dyn ModelsBackend, json: bool, model: &str) -> anyhow::Result<()> {
    let events = backend.history(model)?;
    if json {
        return print_json(&json!({ "events": events }));
    }
    let mut table = Table::new(&["TIME", "ACTOR", "ACTION", "VERSION", "CHANGE"]);
    for event in &events {
        table.row(history_line(event));
    }
    print!("{table}");
    Ok(())
}

/// `models rollback`.
pub fn rollback(backend: &dyn ModelsBackend, json: bool, model: &str) -> anyhow::Result<()> {
    let changed = backend.rollback(model)?;
    let version = changed.value.version;
    let answer = json!({"version": changed.value, "serving": changed.serving});
    emit(
        json,
        answer,
        format!("{model}: Production rolled back to version {version}"),
    )?;
    let asked = Asked::Stage(Stage::Production);
    serving::check(backend, model, changed.serving.as_ref(), version, &asked)
}

/// `models config NAME`.
pub fn config(backend: &dyn ModelsBackend, json: bool, model: &str) -> anyhow::Result<()> {
    let current = backend.serving_config(model)?;
    if json {
        return print_json(&current);
    }
    match current.revision {
        Some(r) => println!("serving config of {model}, revision {r}:"),
        None => println!("serving config of {model} (never set; defaults):"),
    }
    print_json(&current.config)
}

/// `models config NAME --set FILE_OR_JSON`.
pub fn set_config(
    backend: &dyn ModelsBackend,
    json: bool,
    model: &str,
    text: &str,
    unload: bool,
) -> anyhow::Result<()> {
    let changed = backend.set_serving_config(model, config_value(text)?, unload)?;
    let stored = &changed.value;
    let revision = stored.revision.map(|r| r.to_string()).unwrap_or_default();
    let answer =
        json!({"revision": stored.revision, "config": stored.config, "serving": changed.serving});
    emit(
        json,
        answer,
        format!("stored serving config revision {revision} of {model}"),
    )?;
    serving::report_failures(model, changed.serving.as_ref())
}

/// `models faults NAME VERSION [--latency-ms MS] [--error-rate R] [--clear]`.
pub fn faults(backend: &dyn ModelsBackend, json: bool, args: &FaultsArgs) -> anyhow::Result<()> {
    let change = args.change();
    let answer = backend.faults(&args.model, &args.version, &change)?;
    let faults = &answer["faults"];
    let what = format!("{} v{}", args.model, args.version);
    let text = match (&change, faults.is_null()) {
        (FaultChange::Clear, _) => format!("cleared the faults of {what}"),
        (_, true) => format!("no faults on {what}"),
        (FaultChange::Set(_), false) => format!("faults on {what} now: {faults}"),
        (FaultChange::Show, false) => format!("faults on {what}: {faults}"),
    };
    emit(json, answer, text)
}

/// `NAME` or `NAME/VERSION`.
fn parse_show_target(text: &str) -> anyhow::Result<(&str, Option<i64>)> {
    match text.split_once('/') {
        None => Ok((text, None)),
        Some((model, version)) => {
            let number = version.parse().with_context(|| {
                format!(
                    "'{text}': version '{version}' is not a number (expected NAME or NAME/VERSION)"
                )
            })?;
            Ok((model, Some(number)))
        }
    }
}

/// `--set`: a JSON object given inline, or a file (optionally `@FILE`) holding one.
fn config_value(text: &str) -> anyhow::Result<Value> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).context("--set: the inline config is not valid JSON");
    }
    files::read_json(Path::new(text.strip_prefix('@').unwrap_or(text)), "--set")
}

/// Prints the answer to a change: `answer` with `--json`, else `text`.
fn emit(json: bool, answer: Value, text: String) -> anyhow::Result<()> {
    if json {
        print_json(&answer)
    } else {
        println!("{text}");
        Ok(())
    }
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_targets_name_a_model_or_a_version() {
        assert_eq!(parse_show_target("iris").expect("valid"), ("iris", None));
        assert_eq!(
            parse_show_target("iris/3").expect("valid"),
            ("iris", Some(3))
        );
        let err = format!("{:#}", parse_show_target("iris/latest").unwrap_err());
        assert!(err.contains("'latest' is not a number"), "{err}");
    }

    #[test]
    fn configs_are_inline_json_or_files() {
        assert_eq!(
            config_value(r#"{"serve": "latest"}"#).expect("inline"),
            json!({"serve": "latest"})
        );
        let err = format!("{:#}", config_value("{oops").unwrap_err());
        assert!(err.contains("not valid JSON"), "{err}");
        let err = format!("{:#}", config_value("/no/such/config.json").unwrap_err());
        assert!(
            err.contains("--set: cannot read /no/such/config.json"),
            "{err}"
        );
    }
}
