//! What a batch job is asked to do: the settings a client submits, checked
//! before the job exists, and kept with the job in the registry.

use std::collections::HashSet;

use crate::error::JobError;
use ferroserve_core::ModelSignature;
use ferroserve_registry::Job;
use serde::{Deserialize, Serialize};

use ferroserve_tabular::Format;

/// Rows read, run and checkpointed together, unless the job says otherwise.
pub const DEFAULT_CHUNK_ROWS: usize = 10_000;
/// Largest chunk a job may ask for.
pub const MAX_CHUNK_ROWS: usize = 1_000_000;

/// Most names `outputs` or `exclude` may list.
pub const MAX_NAMES: usize = 4096;

/// How the results of a batch job are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Comma-separated values: a `row` column, then one column per output
    /// value (`NAME`, or `NAME_0`, `NAME_1`... for several per row).
    #[default]
    Csv,
    /// One JSON object per line: `{"row": N, "NAME": value or [values]}`.
    Jsonl,
}

impl OutputFormat {
    /// File extension of results in this format.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Csv => "csv",
            OutputFormat::Jsonl => "jsonl",
        }
    }

    /// HTTP content type of results in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Csv => "text/csv",
            OutputFormat::Jsonl => "application/x-ndjson",
        }
    }
}

impl std::str::FromStr for OutputFormat {
    type Err = JobError;

    fn from_str(text: &str) -> Result<Self, JobError> {
        match text.to_ascii_lowercase().as_str() {
            "csv" => Ok(OutputFormat::Csv),
            "jsonl" | "ndjson" => Ok(OutputFormat::Jsonl),
            _ => Err(JobError::Invalid(format!(
                "unknown output format '{text}'; expected csv or jsonl"
            ))),
        }
    }
}

/// The settings of a batch job, as stored with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchJobSpec {
    /// Format of the input file.
    pub input_format: Format,
    /// Where the input came from (`upload`, the uploaded file's name, or
    /// the URI it was read from), for people reading the job; bad-row
    /// reports name the input after it.
    #[serde(default)]
    pub input_source: String,
    /// Where the submitting client writes the results (the CLI's `-o`), so
    /// that a resumed job needs not be told again; opaque to the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_path: Option<String>,
    /// Format of the results.
    #[serde(default)]
    pub output_format: OutputFormat,
    /// Outputs to write, in this order; every output of the model when empty.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Columns of the input that are not features (an id, the label).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Rows read, run and checkpointed together.
    #[serde(default = "default_chunk_rows")]
    pub chunk_rows: usize,
    /// Stop the job at the first bad row, instead of reporting it and
    /// going on.
    #[serde(default)]
    pub fail_on_error: bool,
}

fn default_chunk_rows() -> usize {
    DEFAULT_CHUNK_ROWS
}

impl BatchJobSpec {
    /// The input as messages name it: the file name of
    /// [`BatchJobSpec::input_source`] (`rows.csv`), else `the input`.
    pub fn input_name(&self) -> String {
        let source = self.input_source.trim();
        if source.is_empty() || source == "upload" {
            return "the input".to_owned();
        }
        let name = source
            .rsplit(['/', '\\'])
            .find(|part| !part.is_empty())
            .unwrap_or(source);
        name.to_owned()
    }

    /// Checks the settings that do not depend on the model.
    pub fn validate(&self) -> Result<(), JobError> {
        if self.chunk_rows == 0 || self.chunk_rows > MAX_CHUNK_ROWS {
            return Err(JobError::Invalid(format!(
                "chunk_rows must be between 1 and {MAX_CHUNK_ROWS}, got {}",
                self.chunk_rows
            )));
        }
        for (field, list) in [("outputs", &self.outputs), ("exclude", &self.exclude)] {
            if list.len() > MAX_NAMES {
                return Err(JobError::Invalid(format!(
                    "{field} lists {} names; at most {MAX_NAMES} are accepted",
                    list.len()
                )));
            }
        }
        let mut seen = HashSet::with_capacity(self.outputs.len());
        if let Some(name) = self.outputs.iter().find(|name| !seen.insert(name.as_str())) {
            return Err(JobError::Invalid(format!(
                "output '{name}' is named twice in outputs"
            )));
        }
        Ok(())
    }

    /// The outputs the results hold, as indexes into the signature's
    /// outputs; every output when none were named.
    pub fn output_indexes(&self, signature: &ModelSignature) -> Result<Vec<usize>, JobError> {
        if self.outputs.is_empty() {
            return Ok((0..signature.outputs.len()).collect());
        }
        self.outputs
            .iter()
            .map(|name| {
                signature
                    .outputs
                    .iter()
                    .position(|o| &o.name == name)
                    .ok_or_else(|| {
                        let known: Vec<&str> =
                            signature.outputs.iter().map(|o| o.name.as_str()).collect();
                        JobError::Invalid(format!(
                            "the model has no output '{name}'; its outputs are: {}",
                            known.join(", ")
                        ))
                    })
            })
            .collect()
    }
}

/// The settings of a batch job.
pub(crate) fn batch_spec(job: &Job) -> Result<BatchJobSpec, JobError> {
    serde_json::from_value(job.spec.clone()).map_err(|e| {
        JobError::Internal(format!(
            "the settings of job {} are unreadable: {e}",
            job.id
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BatchJobSpec {
        serde_json::from_value(serde_json::json!({"input_format": "csv"})).expect("spec")
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let spec = spec();
        assert_eq!(spec.output_format, OutputFormat::Csv);
        assert_eq!(spec.chunk_rows, DEFAULT_CHUNK_ROWS);
        assert!(!spec.fail_on_error);
        spec.validate().expect("valid");
    }

    #[test]
    fn long_name_lists_are_refused_and_duplicates_found_among_many() {
        let mut many = spec();
        many.outputs = (0..MAX_NAMES).map(|i| format!("o{i}")).collect();
        many.validate().expect("distinct outputs up to the cap");
        many.outputs.push("o7".into());
        let e = many.validate().unwrap_err().to_string();
        assert!(e.contains("outputs lists 4097 names"), "{e}");
        many.outputs.pop();
        many.outputs[MAX_NAMES - 1] = "o7".into();
        assert!(many.validate().unwrap_err().to_string().contains("'o7'"));
        let mut excluded = spec();
        excluded.exclude = vec!["x".into(); MAX_NAMES + 1];
        let e = excluded.validate().unwrap_err().to_string();
        assert!(e.contains("exclude lists"), "{e}");
    }

    #[test]
    fn bad_settings_are_named() {
        let mut bad = spec();
        bad.chunk_rows = 0;
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("chunk_rows"));
        let mut twice = spec();
        twice.outputs = vec!["a".into(), "a".into()];
        assert!(twice.validate().unwrap_err().to_string().contains("'a'"));
        let unknown = serde_json::from_value::<BatchJobSpec>(
            serde_json::json!({"input_format": "csv", "chunk": 3}),
        )
        .unwrap_err()
        .to_string();
        assert!(unknown.contains("chunk"), "{unknown}");
        assert!("xml".parse::<OutputFormat>().is_err());
        let mut named = spec();
        assert_eq!(named.input_name(), "the input");
        named.input_source = "upload".into();
        assert_eq!(named.input_name(), "the input");
        named.input_source = "/home/me/rows.csv".into();
        assert_eq!(named.input_name(), "rows.csv");
        named.input_source = "artifacts:/datasets/iris.csv".into();
        assert_eq!(named.input_name(), "iris.csv");
        assert_eq!(
            "NDJSON".parse::<OutputFormat>().expect("ok"),
            OutputFormat::Jsonl
        );
    }
}
