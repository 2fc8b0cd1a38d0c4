//! How `ferroserve jobs` prints jobs: a table of jobs, one job's fields,
//! or JSON. A closed pipe (`| head`) ends the output quietly.

use std::io::Write;

use ferroserve_registry::JobOwner;
use serde_json::Value;

use crate::models::{fields, format_time, Table};

/// Writes `text` to stdout; a reader that went away is not an error.
fn write_out(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Prints one line.
pub fn print_line(line: &str) -> anyhow::Result<()> {
    write_out(&format!("{line}\n"))
}

/// Prints `value` as indented JSON.
pub fn print_json(value: &Value) -> anyhow::Result<()> {
    write_out(&format!("{}\n", serde_json::to_string_pretty(value)?))
}

/// Prints jobs as a table, one per line.
pub fn print_list(jobs: &[Value]) -> anyhow::Result<()> {
    if jobs.is_empty() {
        return print_line("no jobs");
    }
    let mut table = Table::new(&[
        "ID", "KIND", "MODEL", "STATE", "ROWS", "FAILED", "CREATED", "RUNNER",
    ]);
    for job in jobs {
        table.row(vec![
            text(&job["id"]),
            text(&job["kind"]),
            model(job),
            text(&job["state"]),
            rows(job),
            job["rows_failed"].as_i64().unwrap_or(0).to_string(),
            job["created_at"]
                .as_i64()
                .map(format_time)
                .unwrap_or_default(),
            if job["state"] == "running" {
                runner(job)
            } else {
                String::new()
            },
        ]);
    }
    write_out(&table.to_string())
}

/// Prints one job's fields.
pub fn print_show(job: &Value) -> anyhow::Result<()> {
    let time = |key: &str| job[key].as_i64().map(format_time).unwrap_or_default();
    let progress = job["progress"]
        .as_f64()
        .map(|p| format!("{:.1} %", p * 100.0))
        .unwrap_or_default();
    let rate = job["rows_per_second"]
        .as_f64()
        .map(|r| format!("{} rows/s", r.round()))
        .unwrap_or_default();
    let scored_by = job["scored_by"]
        .as_array()
        .map(|v| v.iter().map(text).collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    let cancel = if job["cancel_requested"] == true && job["state"] == "running" {
        "requested; the job stops at its next checkpoint".to_owned()
    } else {
        String::new()
    };
    write_out(&fields(&[
        ("id", text(&job["id"])),
        ("kind", text(&job["kind"])),
        ("model", model(job)),
        (
            "scored by",
            scored_by
                .is_empty()
                .then(String::new)
                .unwrap_or(format!("version {scored_by}")),
        ),
        ("state", text(&job["state"])),
        ("progress", progress),
        ("rows", rows(job)),
        (
            "rows failed",
            job["rows_failed"].as_i64().unwrap_or(0).to_string(),
        ),
        ("rate", rate),
        ("error", text(&job["error"])),
        ("cancel", cancel),
        ("runner", runner(job)),
        ("lease", lease(job)),
        ("input", text(&job["spec"]["input_source"])),
        ("output", text(&job["spec"]["output_path"])),
        ("submitted by", text(&job["actor"])),
        ("created", time("created_at")),
        ("started", time("started_at")),
        ("finished", time("finished_at")),
    ]))
}

/// A string field, or nothing.
fn text(value: &Value) -> String {
    value.as_str().unwrap_or("").to_owned()
}

/// `iris` or `iris/2` (the version asked for).
fn model(job: &Value) -> String {
    match job["version"].as_str() {
        Some(version) => format!("{}/{version}", text(&job["model"])),
        None => text(&job["model"]),
    }
}

/// `done/total` (or `done` before the total is known).
fn rows(job: &Value) -> String {
    let done = job["rows_done"].as_i64().unwrap_or(0);
    match job["rows_total"].as_i64() {
        Some(total) => format!("{done}/{total}"),
        None => done.to_string(),
    }
}

/// The runner that holds (or held) the job.
fn runner(job: &Value) -> String {
    match job["owner"].as_str() {
        Some(id) => JobOwner::describe(id, job["owner_host"].as_str(), job["owner_pid"].as_i64()),
        None => String::new(),
    }
}

/// What the lease says: held until when, or free to take.
fn lease(job: &Value) -> String {
    if job["state"] != "running" {
        return String::new();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    match job["lease_expires_at"].as_i64() {
        Some(end) if end > now => {
            format!("held until {} (renewed while it runs)", format_time(end))
        }
        _ => "ended: the job waits to be resumed (ferroserve jobs resume ID)".to_owned(),
    }
}
