//! How `ferroserve rollout` prints a rollout status as text: one line after
//! a change, and for `status` the state, versions, step and weight, the
//! window's figures per version, each gate and the decisions (UTC times).

use std::fmt::Write as _;

use serde_json::Value;

use crate::models::{fields, format_time, short_number, Table};

/// One line saying what a command did and where the rollout stands, e.g.
/// `paused rollout 4 of iris: paused at step 2/3, canary 2 at 50 % (stable 1)`.
pub fn changed(done: &str, status: &Value) -> String {
    format!(
        "{done} rollout {} of {}: {} at step {}, canary {} at {} (stable {})",
        status["id"],
        text(&status["model"]),
        text(&status["state"]),
        step(status),
        status["canary_version"],
        weight(status),
        status["stable_version"],
    )
}

/// The whole status: a header of fields, then tables of the window,
/// the gates and the decisions.
pub fn status(status: &Value) -> String {
    let mut out = format!(
        "rollout {} of {}: {}\n",
        status["id"],
        text(&status["model"]),
        text(&status["state"])
    );
    let stable = status["stable_version"].to_string();
    let canary = status["canary_version"].to_string();
    out.push_str(&fields(&[
        ("versions", format!("stable {stable} → canary {canary}")),
        (
            "step",
            format!("{}, canary weight {}", step(status), weight(status)),
        ),
        ("step started", time(&status["step_started_at"])),
        ("started by", text(&status["created_by"])),
        ("next", next_move(status)),
    ]));
    write_window(&mut out, &status["window"], &stable, &canary);
    write_gates(&mut out, &status["gates"]);
    write_decisions(&mut out, &status["decisions"]);
    out
}

/// What the rollout waits for, when it waits for a person.
fn next_move(status: &Value) -> String {
    let model = text(&status["model"]);
    match status["state"].as_str() {
        Some("awaiting_approval") => {
            format!("waits for approval: ferroserve rollout promote {model}")
        }
        Some("paused") => format!("paused until: ferroserve rollout resume {model}"),
        _ => String::new(),
    }
}

/// Requests, errors, error rate, fallbacks and p99 of each version since
/// the step began.
fn write_window(out: &mut String, window: &Value, stable: &str, canary: &str) {
    if !window.is_object() {
        out.push_str("\nno window figures on this server\n");
        return;
    }
    let seconds = window["seconds"]
        .as_f64()
        .map(|s| format!(" ({} s)", short_number(s)))
        .unwrap_or_default();
    let _ = writeln!(out, "\nwindow since the step began{seconds}:");
    let mut table = Table::new(&[
        "VERSION",
        "REQUESTS",
        "ERRORS",
        "ERROR RATE",
        "FALLBACKS",
        "P99 MS",
    ]);
    for (role, version) in [("stable", stable), ("canary", canary)] {
        let figures = &window[role];
        table.row(vec![
            format!("{role} {version}"),
            number(&figures["requests"]),
            number(&figures["errors"]),
            number(&figures["error_rate"]),
            number(&figures["fallbacks"]),
            number(&figures["p99_ms"]),
        ]);
    }
    out.push_str(&table.to_string());
}

/// Each gate's verdict, value against its limit, and failures in a row.
fn write_gates(out: &mut String, gates: &Value) {
    let gates = gates.as_array().map(Vec::as_slice).unwrap_or_default();
    if gates.is_empty() {
        out.push_str("\nno gate checked yet\n");
        return;
    }
    out.push_str("\ngates:\n");
    let mut table = Table::new(&[
        "GATE", "VERDICT", "VALUE", "LIMIT", "CRITICAL", "FAILURES", "DETAIL",
    ]);
    for gate in gates {
        table.row(vec![
            text(&gate["gate"]),
            text(&gate["verdict"]),
            number(&gate["value"]),
            number(&gate["limit"]),
            match gate["critical"].as_bool() {
                Some(true) => "yes".into(),
                Some(false) => "no".into(),
                None => "-".into(),
            },
            number(&gate["consecutive_failures"]),
            text(&gate["detail"]),
        ]);
    }
    out.push_str(&table.to_string());
}

/// The decisions, oldest first: when, what, who and why.
fn write_decisions(out: &mut String, decisions: &Value) {
    let decisions = decisions.as_array().map(Vec::as_slice).unwrap_or_default();
    if decisions.is_empty() {
        out.push_str("\nno decisions\n");
        return;
    }
    out.push_str("\ndecisions:\n");
    let mut table = Table::new(&["TIME", "ACTION", "ACTOR", "REASON"]);
    for decision in decisions {
        table.row(vec![
            time(&decision["at"]),
            text(&decision["action"]),
            text(&decision["actor"]),
            text(&decision["reason"]).replace('\n', " "),
        ]);
    }
    out.push_str(&table.to_string());
}

/// `2/3`: the step (counted from 1) of how many, or `?` parts when the
/// status lacks them.
fn step(status: &Value) -> String {
    let index = status["step"]
        .as_u64()
        .map_or_else(|| "?".to_owned(), |i| (i + 1).to_string());
    let steps = status["steps"]
        .as_array()
        .map_or_else(|| "?".to_owned(), |s| s.len().to_string());
    format!("{index}/{steps}")
}

/// The canary's weight, `50 %`.
fn weight(status: &Value) -> String {
    match status["weight"].as_f64() {
        Some(percent) => format!("{} %", short_number(percent)),
        None => "? %".into(),
    }
}

/// A string field, or nothing.
fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// A number, short; `-` when there is none (no requests to measure).
fn number(value: &Value) -> String {
    value.as_f64().map_or_else(|| "-".to_owned(), short_number)
}

/// A unix-millisecond time in UTC, or nothing.
fn time(value: &Value) -> String {
    value.as_i64().map(format_time).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A canary at its second step whose error rate gate failed once.
    fn sample() -> Value {
        json!({
            "id": 4, "model": "iris", "state": "progressing",
            "stable_version": 1, "canary_version": 2,
            "step": 1, "steps": [10, 50, 100], "weight": 50,
            "step_started_at": 1_765_000_000_000_i64,
            "settings": {"step_seconds": 60},
            "created_by": "ci", "created_at": 1_764_999_880_000_i64,
            "window": {"seconds": 12.5,
                "stable": {"requests": 900, "errors": 0, "error_rate": 0.0,
                           "fallbacks": 0, "fallback_rate": 0.0, "p99_ms": 3.1},
                "canary": {"requests": 450, "errors": 9, "error_rate": 0.02,
                           "fallbacks": 1, "fallback_rate": 0.0022, "p99_ms": 3.45}},
            "gates": [
                {"gate": "error_rate", "verdict": "fail", "value": 0.02, "limit": 0.01,
                 "critical": false, "consecutive_failures": 1,
                 "detail": "canary 2.00 % against stable 0.00 %"},
                {"gate": "p99_ratio", "verdict": "pass", "value": 1.1129, "limit": 1.5,
                 "critical": false, "consecutive_failures": 0, "detail": ""},
                {"gate": "prediction_psi", "verdict": "insufficient", "value": null,
                 "limit": 0.2, "critical": false, "consecutive_failures": 0,
                 "detail": "450 canary requests of 500"}
            ],
            "decisions": [
                {"at": 1_764_999_880_000_i64, "action": "started",
                 "reason": "started by ci", "figures": {}, "actor": "ci"},
                {"at": 1_765_000_000_000_i64, "action": "stepped",
                 "reason": "every gate passed\nafter 60 s", "figures": {"step": 1},
                 "actor": "ferroserve"}
            ]
        })
    }

    #[test]
    fn status_shows_state_step_window_gates_and_decisions() {
        let expected = "\
rollout 4 of iris: progressing
versions      stable 1 → canary 2
step          2/3, canary weight 50 %
step started  2025-12-06 05:46:40Z
started by    ci

window since the step began (12.5 s):
VERSION   REQUESTS  ERRORS  ERROR RATE  FALLBACKS  P99 MS
stable 1  900       0       0           0          3.1
canary 2  450       9       0.02        1          3.45

gates:
GATE            VERDICT       VALUE   LIMIT  CRITICAL  FAILURES  DETAIL
error_rate      fail          0.02    0.01   no        1         canary 2.00 % against stable 0.00 %
p99_ratio       pass          1.1129  1.5    no        0
prediction_psi  insufficient  -       0.2    no        0         450 canary requests of 500

decisions:
TIME                  ACTION   ACTOR       REASON
2025-12-06 05:44:40Z  started  ci          started by ci
2025-12-06 05:46:40Z  stepped  ferroserve  every gate passed after 60 s
";
        assert_eq!(status(&sample()), expected);
    }

    #[test]
    fn a_rollout_waiting_for_a_person_says_what_to_run() {
        let mut waiting = sample();
        waiting["state"] = json!("awaiting_approval");
        assert!(status(&waiting)
            .contains("next          waits for approval: ferroserve rollout promote iris\n"));
        waiting["state"] = json!("paused");
        assert!(status(&waiting).contains("paused until: ferroserve rollout resume iris\n"));
    }

    #[test]
    fn a_status_without_window_gates_or_decisions_says_so() {
        let mut finished = sample();
        finished["state"] = json!("rolled_back");
        finished["window"] = Value::Null;
        finished["gates"] = json!([]);
        finished["decisions"] = json!([]);
        let text = status(&finished);
        assert!(
            text.starts_with("rollout 4 of iris: rolled_back\n"),
            "{text}"
        );
        assert!(
            text.contains("\nno window figures on this server\n"),
            "{text}"
        );
        assert!(text.contains("\nno gate checked yet\n"), "{text}");
        assert!(text.ends_with("\nno decisions\n"), "{text}");
    }

    #[test]
    fn a_change_is_one_line_with_the_step_and_weight() {
        let mut paused = sample();
        paused["state"] = json!("paused");
        assert_eq!(
            changed("paused", &paused),
            "paused rollout 4 of iris: paused at step 2/3, canary 2 at 50 % (stable 1)"
        );
    }
}
