//! The kinds of job: what a job record's `kind` names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Scores a whole file of rows (`ferroserve batch`, `POST /api/v1/jobs`).
    Batch,
    /// One asynchronous inference request (`Prefer: respond-async`).
    Infer,
}

impl JobKind {
    /// The kind as stored in the job record and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Batch => "batch",
            JobKind::Infer => "infer",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored kind this version does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownJobKind(pub String);

impl fmt::Display for UnknownJobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown job kind '{}'", self.0)
    }
}

impl FromStr for JobKind {
    type Err = UnknownJobKind;

    fn from_str(text: &str) -> Result<Self, UnknownJobKind> {
        match text {
            "batch" => Ok(JobKind::Batch),
            "infer" => Ok(JobKind::Infer),
            other => Err(UnknownJobKind(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_as_written() {
        for kind in [JobKind::Batch, JobKind::Infer] {
            assert_eq!(kind.as_str().parse::<JobKind>(), Ok(kind));
        }
        assert_eq!(
            "nope".parse::<JobKind>().unwrap_err().to_string(),
            "unknown job kind 'nope'"
        );
    }
}
