//! One function per `models` subcommand: call the store, print the
//! answer as text or (`--json`) in the management API's shape, and warn
//! when the server does not serve what was asked.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use ferroserve_registry::{AuditFilter, AuditOrder, Stage};
use ferroserve_serving::lifecycle::{ModelServingConfig, RegisterVersion};
use serde::Serialize;
use serde_json::{json, Value};

use super::args::{FaultChange, FaultsArgs, HistoryArgs, RegisterArgs};
use super::output::{format_time, history_line, Table};
use super::serving::{self, Asked};
use super::store::ModelStore;
use super::{files, register, show};

/// Audit events asked for per request while paging through a history.
const HISTORY_PAGE: u64 = 500;

/// `models register`.
pub fn register(
    store: &dyn ModelStore,
    json: bool,
    args: &RegisterArgs,
    request: RegisterVersion,
) -> anyhow::Result<()> {
    let changed = register::register(store, args, request)?;
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
    serving::check(store, &v.model, changed.serving.as_ref(), v.version, &asked)?;
    if !json {
        if let Some(hint) = serving::unserved_hint(store, v, changed.serving.as_ref(), &asked) {
            println!("{hint}");
        }
    }
    Ok(())
}

/// `models list`; through a server, with the version each model serves.
pub fn list(store: &dyn ModelStore, json: bool) -> anyhow::Result<()> {
    let models = store.list()?;
    let serving: Vec<Option<Value>> = models.iter().map(|m| serving_of(store, &m.name)).collect();
    if json {
        let models: Vec<Value> = models
            .iter()
            .zip(&serving)
            .map(|(m, s)| {
                let mut value = json!(m);
                if let Some(s) = s {
                    value["serving"] = s.clone();
                }
                value
            })
            .collect();
        print_json(&json!({ "models": models }))
    } else {
        print!("{}", show::model_list(&models, &serving));
        Ok(())
    }
}

/// `models show NAME[/VERSION]`.
pub fn show(store: &dyn ModelStore, json: bool, what: &str) -> anyhow::Result<()> {
    match parse_show_target(what)? {
        (model, Some(version)) => {
            let v = store.version(model, version)?;
            let serving = serving_of(store, model);
            if json {
                let mut answer = json!(v);
                if let Some(serving) = serving {
                    answer["serving"] = serving;
                }
                return print_json(&answer);
            }
            print!("{}", show::version_detail(&v, serving.as_ref()));
        }
        (model, None) => {
            let detail = store.model(model)?;
            let serving = serving_of(store, model);
            if json {
                let mut answer = json!(detail);
                if let Some(serving) = serving {
                    answer["serving"] = serving;
                }
                return print_json(&answer);
            }
            print!("{}", show::model_detail(&detail, serving.as_ref()));
        }
    }
    Ok(())
}

/// What the server serves of `model`, or `{"error": ...}` when it cannot
/// say (the registry's answer is shown all the same); `None` in direct mode.
fn serving_of(store: &dyn ModelStore, model: &str) -> Option<Value> {
    store
        .serving(model)
        .unwrap_or_else(|e| Some(json!({ "error": format!("{e:#}") })))
}

/// `models promote`.
pub fn promote(
    store: &dyn ModelStore,
    json: bool,
    model: &str,
    version: i64,
    stage: Stage,
    archive_existing: bool,
    unload: bool,
) -> anyhow::Result<()> {
    let changed = store.promote(model, version, stage, archive_existing, unload)?;
    let answer = json!({"version": changed.value, "serving": changed.serving});
    emit(
        json,
        answer,
        format!("{model} version {version} is now in {stage}"),
    )?;
    let asked = Asked::Stage(stage);
    serving::check(store, model, changed.serving.as_ref(), version, &asked)
}

/// `models alias NAME ALIAS VERSION`.
pub fn set_alias(
    store: &dyn ModelStore,
    json: bool,
    model: &str,
    alias: &str,
    version: i64,
) -> anyhow::Result<()> {
    let changed = store.set_alias(model, alias, version)?;
    let answer = json!({"alias": alias, "version": version, "serving": changed.serving});
    emit(
        json,
        answer,
        format!("{model}@{alias} now points to version {version}"),
    )?;
    let asked = Asked::Alias(alias);
    serving::check(store, model, changed.serving.as_ref(), version, &asked)
}

/// `models alias NAME ALIAS --delete`.
pub fn delete_alias(
    store: &dyn ModelStore,
    json: bool,
    model: &str,
    alias: &str,
    unload: bool,
) -> anyhow::Result<()> {
    let changed = store.delete_alias(model, alias, unload)?;
    let answer = json!({ "serving": changed.serving });
    emit(json, answer, format!("removed alias {alias} of {model}"))?;
    serving::report_failures(model, changed.serving.as_ref())
}

/// `models history`: one line per audit event, newest first, paging
/// through the registry until `--limit` events are read; says how many
/// older ones are left out.
pub fn history(store: &dyn ModelStore, json: bool, args: &HistoryArgs) -> anyhow::Result<()> {
    let wanted = if args.all { u64::MAX } else { args.limit };
    let mut filter = AuditFilter {
        since: args.since,
        order: AuditOrder::Desc,
        ..AuditFilter::default()
    };
    let mut events = Vec::new();
    let remaining = loop {
        let left = wanted.saturating_sub(events.len() as u64);
        filter.limit = Some(left.min(HISTORY_PAGE) as i64);
        let page = store.history_page(&args.model, &filter)?;
        events.extend(page.events);
        match page.next_cursor {
            Some(cursor) if (events.len() as u64) < wanted => filter.before_id = Some(cursor),
            _ => break page.remaining,
        }
    };
    if json {
        return print_json(&json!({ "events": events, "remaining": remaining }));
    }
    if events.is_empty() {
        println!("no events of {}{}", args.model, since_text(args.since));
    } else {
        let mut table = Table::new(&["TIME", "ACTOR", "ACTION", "VERSION", "CHANGE"]);
        for event in &events {
            table.row(history_line(event));
        }
        print!("{table}");
    }
    if remaining > 0 {
        eprintln!(
            "{remaining} older event{} not shown; use --limit N, --all or --since TIME",
            if remaining == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// ` since TIME` for a `--since` given, else nothing.
fn since_text(since: Option<i64>) -> String {
    since.map_or_else(String::new, |ms| format!(" since {}", format_time(ms)))
}

/// `models delete NAME [--yes]`.
pub fn delete(store: &dyn ModelStore, json: bool, model: &str, yes: bool) -> anyhow::Result<()> {
    // Fails first for a model that does not exist, and tells what goes.
    let detail = store.model(model)?;
    if !yes {
        confirm_delete(model, detail.versions.len())?;
    }
    store.delete_model(model)?;
    emit(
        json,
        json!({ "deleted": model }),
        format!("deleted model {model}; its history stays (ferroserve models history {model})"),
    )
}

/// `models rename NAME NEW_NAME`.
pub fn rename(
    store: &dyn ModelStore,
    json: bool,
    model: &str,
    new_name: &str,
) -> anyhow::Result<()> {
    let renamed = store.rename_model(model, new_name)?;
    emit(
        json,
        json!({ "model": renamed, "renamed_from": model }),
        format!(
            "renamed model {model} to {new_name}; it serves as {new_name} now, and its history \
             before the rename stays under {model} (ferroserve models history {model})"
        ),
    )
}

/// Asks on the terminal before a model is deleted; without a terminal,
/// `--yes` must say so.
fn confirm_delete(model: &str, versions: usize) -> anyhow::Result<()> {
    let what = format!(
        "model '{model}' with its {versions} version{} and aliases",
        if versions == 1 { "" } else { "s" }
    );
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("deleting {what} needs confirmation: pass --yes");
    }
    eprint!("delete {what}? [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        anyhow::bail!("{model} was not deleted");
    }
    Ok(())
}

/// `models rollback`.
pub fn rollback(store: &dyn ModelStore, json: bool, model: &str) -> anyhow::Result<()> {
    let changed = store.rollback(model)?;
    let version = changed.value.version;
    let answer = json!({"version": changed.value, "serving": changed.serving});
    emit(
        json,
        answer,
        format!("{model}: Production rolled back to version {version}"),
    )?;
    let asked = Asked::Stage(Stage::Production);
    serving::check(store, model, changed.serving.as_ref(), version, &asked)
}

/// `models config NAME`: the stored config, and the config in effect with
/// every default filled in (`engine: null` is the server's engine).
pub fn config(store: &dyn ModelStore, json: bool, model: &str) -> anyhow::Result<()> {
    let current = store.serving_config(model)?;
    let effective = ModelServingConfig::from_value(&current.config)
        .map_err(anyhow::Error::from)
        .and_then(|c| Ok(serde_json::to_value(c)?))
        .with_context(|| format!("the stored serving config of {model}"))?;
    if json {
        return print_json(&json!({
            "revision": current.revision,
            "config": current.config,
            "effective": effective,
        }));
    }
    match current.revision {
        Some(r) => {
            println!("serving config of {model}, revision {r}, as stored:");
            print_json(&current.config)?;
            println!("in effect, with the defaults:");
        }
        None => println!("serving config of {model}: never set; the defaults are in effect:"),
    }
    print_json(&effective)
}

/// `models config NAME --set FILE_OR_JSON`.
pub fn set_config(
    store: &dyn ModelStore,
    json: bool,
    model: &str,
    text: &str,
    unload: bool,
) -> anyhow::Result<()> {
    let changed = store.set_serving_config(model, config_value(text)?, unload)?;
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
pub fn faults(store: &dyn ModelStore, json: bool, args: &FaultsArgs) -> anyhow::Result<()> {
    let change = args.change();
    let answer = store.faults(&args.model, &args.version, &change)?;
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
