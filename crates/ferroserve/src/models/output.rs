//! Human-readable output: aligned tables, UTC times, short renderings of
//! JSON values, and one-line summaries of audit events.

use std::fmt;

use ferroserve_registry::AuditEvent;
use serde_json::Value;

/// Longest rendering of one value in a summary.
const MAX_VALUE_CHARS: usize = 40;
/// Changed fields shown per audit event.
const MAX_CHANGED_FIELDS: usize = 3;
/// Fields that say what an object is, shown when it is created or deleted.
const KEY_FIELDS: [&str; 6] = ["name", "alias", "version", "stage", "status", "revision"];

/// Columns of text, padded to the widest cell.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column titles.
    pub fn new(header: &[&'static str]) -> Self {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (one cell per column).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = width.saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `name  value` lines, names padded to the longest; empty values are left out.
pub fn fields(rows: &[(&str, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in rows.iter().filter(|(_, v)| !v.is_empty()) {
        out.push_str(&format!("{key:width$}  {value}\n"));
    }
    out
}

/// A unix-millisecond time as `YYYY-MM-DD HH:MM:SSZ` (UTC).
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Year, month and day of a count of days since 1970-01-01 (the proleptic
/// Gregorian calendar; H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A JSON value in a few characters: strings bare, a status object as
/// its state, anything else as compact JSON, cut at 40 characters.
pub fn brief_value(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Object(fields) if fields.get("state").is_some_and(Value::is_string) => {
            brief_value(&fields["state"])
        }
        other => other.to_string(),
    };
    if text.chars().count() > MAX_VALUE_CHARS {
        let cut: String = text.chars().take(MAX_VALUE_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// `key=value` pairs joined by `, `.
pub fn pairs<'a, V: fmt::Display + 'a>(items: impl IntoIterator<Item = (&'a String, V)>) -> String {
    items
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A metric for a table: at most 4 decimals, trailing zeros dropped.
pub fn short_number(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    match text {
        "-0" => "0".to_owned(),
        other => other.to_owned(),
    }
}

/// One line of `models history`: time, actor, action, version, and what
/// changed.
pub fn history_line(event: &AuditEvent) -> Vec<String> {
    vec![
        format_time(event.at),
        event.actor.clone(),
        event.action.to_string(),
        event.version.map(|v| v.to_string()).unwrap_or_default(),
        change_summary(event.before.as_ref(), event.after.as_ref()),
    ]
}

/// What an audit event changed, in one short line: `before → after`.
pub fn change_summary(before: Option<&Value>, after: Option<&Value>) -> String {
    match (before, after) {
        (None, None) => String::new(),
        (None, Some(after)) => {
            event_details(after).unwrap_or_else(|| format!("(none) → {}", identity(after)))
        }
        (Some(before), None) => format!("{} → (deleted)", identity(before)),
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            let changed: Vec<String> = keys
                .into_iter()
                .filter(|k| k.as_str() != "updated_at" && b.get(*k) != a.get(*k))
                .map(|k| {
                    let side = |v: Option<&Value>| v.map_or_else(|| "-".to_owned(), brief_value);
                    format!("{k}: {} → {}", side(b.get(k)), side(a.get(k)))
                })
                .collect();
            match changed.len() {
                0 => "no change".to_owned(),
                n if n > MAX_CHANGED_FIELDS => {
                    format!("{}, …", changed[..MAX_CHANGED_FIELDS].join(", "))
                }
                _ => changed.join(", "),
            }
        }
        (Some(before), Some(after)) => format!("{} → {}", brief_value(before), brief_value(after)),
    }
}

/// Details of an event that records no object but what happened: a swap
/// `{"from", "to"}` or a failure `{"reason"}` (shown whole).
fn event_details(value: &Value) -> Option<String> {
    let fields = value.as_object()?;
    let side = |v: &Value| match v {
        Value::Null => "(none)".to_owned(),
        other => brief_value(other),
    };
    if let (Some(from), Some(to)) = (fields.get("from"), fields.get("to")) {
        return Some(format!("{} → {}", side(from), side(to)));
    }
    let reason = fields.get("reason")?.as_str()?;
    Some(format!("failed: {}", reason.replace('\n', " ")))
}

/// The fields saying what an object is (alias, version, stage...), or a
/// brief rendering of it when it has none of them.
fn identity(value: &Value) -> String {
    let Value::Object(fields) = value else {
        return brief_value(value);
    };
    let shown: Vec<String> = KEY_FIELDS
        .iter()
        .filter_map(|k| fields.get(*k).map(|v| format!("{k}={}", brief_value(v))))
        .collect();
    if shown.is_empty() {
        brief_value(value)
    } else {
        shown.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00Z");
        assert_eq!(format_time(1_714_566_896_000), "2024-05-01 12:34:56Z");
        assert_eq!(format_time(951_827_696_999), "2000-02-29 12:34:56Z");
        assert_eq!(format_time(-86_400_000 * 365), "1969-01-01 00:00:00Z");
    }

    #[test]
    fn tables_align_columns_and_trim_line_ends() {
        let mut table = Table::new(&["A", "LONGER"]);
        table.row(vec!["wide cell".into(), "x".into()]);
        table.row(vec!["b".into(), String::new()]);
        assert_eq!(table.to_string(), "A          LONGER\nwide cell  x\nb\n");
    }

    #[test]
    fn table_numbers_are_short() {
        assert_eq!(short_number(0.9333333333333332), "0.9333");
        assert_eq!(short_number(0.97), "0.97");
        assert_eq!(short_number(10.0), "10");
        assert_eq!(short_number(-0.00001), "0");
    }

    #[test]
    fn fields_align_and_skip_empty_values() {
        let text = fields(&[
            ("a", "1".into()),
            ("long", String::new()),
            ("bb", "2".into()),
        ]);
        assert_eq!(text, "a     1\nbb    2\n");
    }

    #[test]
    fn summaries_show_what_changed() {
        let stage = |s: &str| json!({"version": 2, "stage": s, "status": {"state": "ready"}, "updated_at": 1});
        assert_eq!(
            change_summary(Some(&stage("Staging")), Some(&stage("Production"))),
            "stage: Staging → Production"
        );
        assert_eq!(
            change_summary(None, Some(&json!({"alias": "champion", "version": 2}))),
            "(none) → alias=champion version=2"
        );
        assert_eq!(
            change_summary(Some(&json!({"alias": "champion", "version": 2})), None),
            "alias=champion version=2 → (deleted)"
        );
        assert_eq!(
            change_summary(None, Some(&json!({"name": "iris", "created_at": 1}))),
            "(none) → name=iris"
        );
        assert_eq!(
            change_summary(None, Some(&stage("None"))),
            "(none) → version=2 stage=None status=ready"
        );
        assert_eq!(
            change_summary(None, Some(&json!({"from": null, "to": "1"}))),
            "(none) → 1"
        );
        let reason = "warm-up of version 2 failed: input 'x' expects FP32, got INT64";
        assert_eq!(
            change_summary(None, Some(&json!({ "reason": reason }))),
            format!("failed: {reason}")
        );
        let long = json!({"description": "x".repeat(100)});
        assert!(change_summary(Some(&json!({})), Some(&long)).ends_with("x…"));
    }
}
