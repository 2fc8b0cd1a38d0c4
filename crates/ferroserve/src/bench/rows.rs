//! Rows of an `--input-file`: CSV with a header line, or JSON lines holding
//! arrays (features in order) or objects (keyed by input name).

use std::path::Path;

use anyhow::{bail, Context};
use ferroserve_core::FeatureSchema;
use ferroserve_tabular::Excluded;
use serde_json::Value;

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A number (booleans read as 0/1).
    Number(f64),
    /// Text that is not a number.
    Text(String),
    /// Several numbers (a JSON array under one key).
    List(Vec<f64>),
}

/// The rows of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    /// File name, for error messages.
    pub source: String,
    /// Column names, when the file has them.
    pub columns: Option<Vec<String>>,
    /// Whether the columns are in the file's order (not so for JSON objects).
    pub ordered: bool,
    /// Cells of each row, in column order.
    pub rows: Vec<Vec<Cell>>,
}

/// Reads `path`, at most `limit` rows: `.jsonl`/`.ndjson`/`.json` as JSON
/// lines, anything else as CSV.
pub fn read(path: &Path, limit: usize) -> anyhow::Result<Rows> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --input-file {source}"))?;
    let json = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("jsonl" | "ndjson" | "json")
    );
    if json {
        json_lines(source, &text, limit)
    } else {
        csv_rows(source, &text, limit)
    }
}

/// Keeps the columns of `rows` that are features: those `schema` names,
/// in its order, else all but `exclude` (the same choice `batch` and
/// `profile` make). Without either, `rows` is returned as read.
pub fn select(
    rows: Rows,
    schema: Option<&FeatureSchema>,
    exclude: &[String],
) -> anyhow::Result<Rows> {
    if schema.is_none() && exclude.is_empty() {
        return Ok(rows);
    }
    let Some(columns) = &rows.columns else {
        bail!(
            "{}: rows are JSON arrays with no column names, so --exclude and --schema cannot pick columns",
            rows.source
        );
    };
    let excluded = Excluded {
        target: None,
        exclude,
    };
    let features = ferroserve_tabular::select(&rows.source, columns, schema, &excluded)?;
    Ok(Rows {
        columns: Some(features.iter().map(|f| f.name.clone()).collect()),
        ordered: true,
        rows: rows
            .rows
            .iter()
            .map(|row| features.iter().map(|f| row[f.index].clone()).collect())
            .collect(),
        source: rows.source,
    })
}

fn csv_rows(source: String, text: &str, limit: usize) -> anyhow::Result<Rows> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let columns: Vec<String> = reader
        .headers()
        .with_context(|| format!("{source}: cannot read the CSV header line"))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    for (i, record) in reader.records().take(limit).enumerate() {
        let record = record.with_context(|| format!("{source}: CSV row {}", i + 1))?;
        rows.push(record.iter().map(cell_of_text).collect());
    }
    Ok(Rows {
        source,
        columns: Some(columns),
        ordered: true,
        rows,
    })
}

fn cell_of_text(text: &str) -> Cell {
    let text = text.trim();
    match text.parse::<f64>() {
        Ok(n) => Cell::Number(n),
        Err(_) => match text {
            "true" | "True" => Cell::Number(1.0),
            "false" | "False" => Cell::Number(0.0),
            _ => Cell::Text(text.to_string()),
        },
    }
}

fn json_lines(source: String, text: &str, limit: usize) -> anyhow::Result<Rows> {
    let mut columns: Option<Vec<String>> = None;
    let mut arrays = false;
    let mut rows = Vec::new();
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    for (i, line) in lines.take(limit) {
        let at = || format!("{source}, line {}", i + 1);
        let value: Value = serde_json::from_str(line).with_context(at)?;
        let row = match value {
            Value::Array(items) => {
                arrays = true;
                let mut numbers = Vec::new();
                flatten(&Value::Array(items), &mut numbers).with_context(at)?;
                numbers.into_iter().map(Cell::Number).collect()
            }
            Value::Object(map) => {
                let names = columns.get_or_insert_with(|| map.keys().cloned().collect());
                names
                    .iter()
                    .map(|name| {
                        let value = map
                            .get(name)
                            .with_context(|| format!("{}: no key {name:?}", at()))?;
                        cell_of_json(value).with_context(|| format!("{}, key {name:?}", at()))
                    })
                    .collect::<anyhow::Result<Vec<Cell>>>()?
            }
            _ => bail!("{}: expected a JSON array or object", at()),
        };
        rows.push(row);
    }
    if arrays && columns.is_some() {
        bail!("{source}: mixes arrays and objects; use one form for every line");
    }
    Ok(Rows {
        source,
        ordered: columns.is_none(),
        columns,
        rows,
    })
}

fn cell_of_json(value: &Value) -> anyhow::Result<Cell> {
    Ok(match value {
        Value::String(s) => Cell::Text(s.clone()),
        Value::Array(_) => {
            let mut numbers = Vec::new();
            flatten(value, &mut numbers)?;
            Cell::List(numbers)
        }
        other => Cell::Number(number(other)?),
    })
}

fn flatten(value: &Value, out: &mut Vec<f64>) -> anyhow::Result<()> {
    match value {
        Value::Array(items) => items.iter().try_for_each(|v| flatten(v, out)),
        other => {
            out.push(number(other)?);
            Ok(())
        }
    }
}

fn number(value: &Value) -> anyhow::Result<f64> {
    match value {
        Value::Number(n) => n.as_f64().context("number out of range"),
        Value::Bool(b) => Ok(f64::from(u8::from(*b))),
        other => bail!("expected a number, got {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_header() {
        let rows = csv_rows("r.csv".into(), "a,b\n1,x\n2.5,true\n", 10).unwrap();
        assert_eq!(rows.columns, Some(vec!["a".into(), "b".into()]));
        assert_eq!(
            rows.rows[1],
            vec![Cell::Number(2.5), Cell::Number(1.0)],
            "booleans read as numbers"
        );
        assert_eq!(rows.rows[0][1], Cell::Text("x".into()));
        assert_eq!(
            csv_rows("r.csv".into(), "a\n1\n2\n3\n", 2)
                .unwrap()
                .rows
                .len(),
            2
        );
    }

    #[test]
    fn columns_are_picked_by_schema_or_left_out() {
        let rows = csv_rows("r.csv".into(), "a,label,b\n1,0,2\n", 10).unwrap();
        let kept = select(rows.clone(), None, &["label".to_owned()]).unwrap();
        assert_eq!(kept.columns, Some(vec!["a".into(), "b".into()]));
        assert_eq!(kept.rows[0], vec![Cell::Number(1.0), Cell::Number(2.0)]);
        let schema =
            FeatureSchema::from_json(r#"{"features": [{"name": "b"}, {"name": "a"}]}"#).unwrap();
        let kept = select(rows.clone(), Some(&schema), &[]).unwrap();
        assert_eq!(kept.rows[0], vec![Cell::Number(2.0), Cell::Number(1.0)]);
        let err = select(rows, None, &["nope".to_owned()]).unwrap_err();
        assert!(format!("{err:#}").contains("no column `nope`"), "{err:#}");
    }

    #[test]
    fn json_lines_arrays_and_objects() {
        let rows = json_lines("r.jsonl".into(), "[1, 2]\n\n[3, [4]]\n", 10).unwrap();
        assert!(rows.ordered && rows.columns.is_none());
        assert_eq!(rows.rows[1], vec![Cell::Number(3.0), Cell::Number(4.0)]);
        let rows = json_lines("r.jsonl".into(), "{\"x\": [1, 2], \"s\": \"a\"}\n", 10).unwrap();
        assert!(!rows.ordered);
        let x = rows.columns.as_ref().unwrap().iter().position(|c| c == "x");
        assert_eq!(rows.rows[0][x.unwrap()], Cell::List(vec![1.0, 2.0]));
        let err = json_lines("r.jsonl".into(), "{\"x\": 1}\n{\"y\": 2}\n", 10).unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
        assert!(json_lines("r.jsonl".into(), "[1]\n{\"x\": 1}\n", 10).is_err());
    }
}
