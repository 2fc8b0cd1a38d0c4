//! Rows of an `--input-file`: CSV, JSON lines of objects and Parquet read
//! through ferroserve-tabular, with the feature columns picked as `batch`
//! and `profile` pick them; and JSON lines of arrays (features in order,
//! no column names), read here.

use std::io::BufRead;
use std::path::Path;

use anyhow::{bail, Context};
use ferroserve_core::{Cell, FeatureSchema};
use ferroserve_tabular::{Excluded, Format};
use serde_json::Value;

/// The rows of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    /// File name, for error messages.
    pub source: String,
    /// Column names, in cell order; `None` for rows of JSON arrays.
    pub columns: Option<Vec<String>>,
    /// Cells of each row, in column order.
    pub rows: Vec<Vec<Cell>>,
}

/// What to read from an `--input-file`.
pub struct RowsWanted<'a> {
    /// The file's format; `None` goes by its extension.
    pub format: Option<Format>,
    /// Rows read at most.
    pub limit: usize,
    /// The features, in the schema's order (`--schema`).
    pub schema: Option<&'a FeatureSchema>,
    /// Columns that are not features (`--exclude`), when there is no schema.
    pub exclude: &'a [String],
}

/// Reads up to `wanted.limit` rows of `path`: the columns `wanted.schema`
/// names, in its order, else all but `wanted.exclude`.
pub fn read(path: &Path, wanted: &RowsWanted<'_>) -> anyhow::Result<Rows> {
    let source = path.display().to_string();
    let format = match wanted.format {
        Some(format) => format,
        // `.json` has long meant JSON lines here.
        None if path.extension().is_some_and(|e| e == "json") => Format::Jsonl,
        None => Format::from_path(path)?,
    };
    if format == Format::Jsonl && holds_arrays(path)? {
        if wanted.schema.is_some() || !wanted.exclude.is_empty() {
            bail!(
                "{source}: rows are JSON arrays with no column names, so --exclude and --schema cannot pick columns"
            );
        }
        return array_lines(path, source, wanted.limit);
    }
    let mut reader = ferroserve_tabular::open(path, format)?;
    let excluded = Excluded {
        target: None,
        exclude: wanted.exclude,
    };
    let features = ferroserve_tabular::select(&source, reader.columns(), wanted.schema, &excluded)?;
    let picks: Vec<usize> = features.iter().map(|f| f.index).collect();
    let mut rows = Vec::new();
    let mut cells = Vec::with_capacity(picks.len());
    while rows.len() < wanted.limit && reader.next_row(&picks, &mut cells)? {
        rows.push(cells.clone());
    }
    Ok(Rows {
        source,
        columns: Some(features.into_iter().map(|f| f.name).collect()),
        rows,
    })
}

/// Whether the first line of a JSON-lines file holds an array.
fn holds_arrays(path: &Path) -> anyhow::Result<bool> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read --input-file {}", path.display()))?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.with_context(|| format!("cannot read --input-file {}", path.display()))?;
        if !line.trim().is_empty() {
            return Ok(line.trim_start().starts_with('['));
        }
    }
    Ok(false)
}

/// Rows of JSON arrays: each row's numbers in order (nested arrays
/// flattened).
fn array_lines(path: &Path, source: String, limit: usize) -> anyhow::Result<Rows> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --input-file {source}"))?;
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let mut rows = Vec::new();
    for (i, line) in lines.take(limit) {
        let at = || format!("{source}, line {}", i + 1);
        let value: Value = serde_json::from_str(line).with_context(at)?;
        if !value.is_array() {
            bail!(
                "{}: mixes arrays and objects; use one form for every line",
                at()
            );
        }
        let mut numbers = Vec::new();
        flatten(&value, &mut numbers).with_context(at)?;
        rows.push(numbers.into_iter().map(Cell::Number).collect());
    }
    Ok(Rows {
        source,
        columns: None,
        rows,
    })
}

fn flatten(value: &Value, out: &mut Vec<f64>) -> anyhow::Result<()> {
    match value {
        Value::Array(items) => items.iter().try_for_each(|v| flatten(v, out)),
        Value::Number(n) => {
            out.push(n.as_f64().context("number out of range")?);
            Ok(())
        }
        Value::Bool(b) => {
            out.push(f64::from(u8::from(*b)));
            Ok(())
        }
        other => bail!("expected a number, got {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    fn wanted<'a>(schema: Option<&'a FeatureSchema>, exclude: &'a [String]) -> RowsWanted<'a> {
        RowsWanted {
            format: None,
            limit: 10,
            schema,
            exclude,
        }
    }

    #[test]
    fn csv_rows_up_to_the_limit() {
        let (_dir, path) = file("r.csv", "a,b\n1,x\n2.5,true\n3,y\n");
        let rows = read(&path, &wanted(None, &[])).expect("rows");
        assert_eq!(rows.columns, Some(vec!["a".into(), "b".into()]));
        assert_eq!(
            rows.rows[1],
            vec![Cell::Text("2.5".into()), Cell::Text("true".into())]
        );
        let few = RowsWanted {
            limit: 2,
            ..wanted(None, &[])
        };
        assert_eq!(read(&path, &few).expect("rows").rows.len(), 2);
    }

    #[test]
    fn columns_are_picked_by_schema_or_left_out() {
        let (_dir, path) = file("r.csv", "a,label,b\n1,0,2\n");
        let exclude = ["label".to_owned()];
        let kept = read(&path, &wanted(None, &exclude)).expect("rows");
        assert_eq!(kept.columns, Some(vec!["a".into(), "b".into()]));
        assert_eq!(
            kept.rows[0],
            vec![Cell::Text("1".into()), Cell::Text("2".into())]
        );
        let schema =
            FeatureSchema::from_json(r#"{"features": [{"name": "b"}, {"name": "a"}]}"#).unwrap();
        let kept = read(&path, &wanted(Some(&schema), &[])).expect("rows");
        assert_eq!(
            kept.rows[0],
            vec![Cell::Text("2".into()), Cell::Text("1".into())]
        );
        let err = read(&path, &wanted(None, &["nope".to_owned()])).unwrap_err();
        assert!(format!("{err:#}").contains("no column `nope`"), "{err:#}");
    }

    #[test]
    fn json_lines_of_arrays_or_objects() {
        let (_dir, path) = file("r.jsonl", "[1, 2]\n\n[3, [4]]\n");
        let rows = read(&path, &wanted(None, &[])).expect("arrays");
        assert!(rows.columns.is_none());
        assert_eq!(rows.rows[1], vec![Cell::Number(3.0), Cell::Number(4.0)]);
        let err = read(&path, &wanted(None, &["x".to_owned()])).unwrap_err();
        assert!(err.to_string().contains("no column names"), "{err}");

        let (_dir, path) = file("r.json", "{\"y\": 1, \"s\": \"a\"}\n");
        let rows = read(&path, &wanted(None, &[])).expect("objects");
        assert_eq!(rows.columns, Some(vec!["y".into(), "s".into()]));
        assert_eq!(
            rows.rows[0],
            vec![Cell::Number(1.0), Cell::Text("a".into())]
        );

        let (_dir, path) = file("r.jsonl", "[1]\n{\"x\": 1}\n");
        let err = read(&path, &wanted(None, &[])).unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
    }
}
