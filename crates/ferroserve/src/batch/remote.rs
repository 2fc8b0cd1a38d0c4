//! Jobs on a server: the input is streamed to `POST /api/v1/jobs`, the job
//! followed with `GET /api/v1/jobs/{id}`, and its results downloaded.

use std::fs::File;
use std::path::Path;

use anyhow::Context;
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::Value;

use super::{JobRunner, Submission};
use crate::api_client::{segment, ApiClient};

/// A server's job API.
pub struct RemoteRunner {
    client: ApiClient,
}

impl RemoteRunner {
    /// Jobs on the server at `url`, submitted as the CLI's key.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        Ok(RemoteRunner {
            client: ApiClient::new(url)?,
        })
    }

    fn download(&self, path: &str, out: &Path) -> anyhow::Result<()> {
        let mut response = self.client.send(&Method::GET, path, |r| r)?;
        let mut file =
            File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
        response
            .copy_to(&mut file)
            .with_context(|| format!("cannot write {}", out.display()))?;
        Ok(())
    }
}

impl JobRunner for RemoteRunner {
    fn submit(&self, job: &Submission) -> anyhow::Result<String> {
        let spec = &job.spec;
        let mut query: Vec<(&str, String)> = vec![
            ("model", job.model.clone()),
            ("format", spec.input_format.to_string()),
            ("output_format", spec.output_format.extension().to_owned()),
            ("chunk_rows", spec.chunk_rows.to_string()),
            ("fail_on_error", spec.fail_on_error.to_string()),
        ];
        if let Some(version) = &job.version {
            query.push(("version", version.clone()));
        }
        if !spec.outputs.is_empty() {
            query.push(("outputs", spec.outputs.join(",")));
        }
        if !spec.exclude.is_empty() {
            query.push(("exclude", spec.exclude.join(",")));
        }
        if let Some(name) = job.input.file_name() {
            query.push(("source", name.to_string_lossy().into_owned()));
        }
        let file = File::open(&job.input)
            .with_context(|| format!("cannot open {}", job.input.display()))?;
        let answer: Value = self.client.call(Method::POST, "/api/v1/jobs", |r| {
            r.query(&query)
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(file)
        })?;
        answer["id"]
            .as_str()
            .map(str::to_owned)
            .context("the server accepted the job but gave no id")
    }

    fn resume(&self, id: &str) -> anyhow::Result<()> {
        let status = self.status(id)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let held = status["state"] == "running"
            && status["lease_expires_at"]
                .as_i64()
                .is_some_and(|end| end > now);
        let finished = matches!(
            status["state"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        );
        if held || finished {
            // A live runner has it, or it is over: only follow it.
            return Ok(());
        }
        let path = format!("/api/v1/jobs/{}/resume", segment(id));
        self.client
            .call::<Value>(Method::POST, &path, |r| r)
            .map(|_| ())
    }

    fn interrupted(&self, id: &str) -> String {
        let url = self.client.base();
        format!(
            "job {id} keeps running on the server {url}.\n  \
             follow it:    ferroserve jobs show {id} --url {url}\n  \
             cancel it:    ferroserve jobs cancel {id} --url {url}\n  \
             its results:  ferroserve batch --resume {id} --url {url} -o OUTPUT"
        )
    }

    fn status(&self, id: &str) -> anyhow::Result<Value> {
        self.client.get(&format!("/api/v1/jobs/{}", segment(id)))
    }

    fn save_result(&self, id: &str, out: &Path) -> anyhow::Result<()> {
        self.download(&format!("/api/v1/jobs/{}/result", segment(id)), out)
    }

    fn save_errors(&self, id: &str, out: &Path) -> anyhow::Result<()> {
        self.download(&format!("/api/v1/jobs/{}/errors", segment(id)), out)
    }
}
