//! Remote mode: the server's management API (`/api/v1/...`) over HTTP,
//! with the actor in the `X-Ferroserve-Actor` header.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use ferroserve_registry::{AuditEvent, ModelVersion, RegisteredModel, Stage};
use ferroserve_serving::lifecycle::{ArtifactInfo, RegisterVersion};
use reqwest::blocking::{Body, Client, RequestBuilder};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::args::FaultChange;
use super::backend::{Changed, ConfigRevision, ModelDetail, ModelsBackend};
use super::files::{file_sha256, percent_encode};

/// Header naming who makes a change.
const ACTOR_HEADER: &str = "X-Ferroserve-Actor";

/// A server's management API.
pub struct RemoteBackend {
    client: Client,
    base: String,
    actor: String,
}

/// `{"version": ModelVersion, "serving": ServingStatus}`.
#[derive(Deserialize)]
struct VersionAnswer {
    version: ModelVersion,
    serving: Option<Value>,
}

impl RemoteBackend {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, actor: String) -> anyhow::Result<Self> {
        // No overall timeout: uploads and registrations (which load the
        // model) take as long as the artifact needs.
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(None)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(RemoteBackend {
            client,
            base: base.trim_end_matches('/').to_owned(),
            actor,
        })
    }

    /// Sends `request` to `path` and decodes the JSON answer, turning an
    /// error status into an error carrying the server's `error` text.
    fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base);
        let request = self
            .client
            .request(method.clone(), &url)
            .header(ACTOR_HEADER, &self.actor);
        let response = build(request)
            .send()
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = response.status();
        let text = response
            .text()
            .with_context(|| format!("{method} {url}: answer cut off ({status})"))?;
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.trim().chars().take(200).collect());
            bail!("{method} {url} answered {status}: {message}");
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {url} answered {status} with unexpected JSON"))
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call(Method::GET, path, |r| r)
    }

    fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<T> {
        self.call(method, path, |r| r.json(body))
    }

    fn version_change(&self, path: &str, body: &Value) -> anyhow::Result<Changed<ModelVersion>> {
        let answer: VersionAnswer = self.send_json(Method::POST, path, body)?;
        Ok(Changed {
            value: answer.version,
            serving: answer.serving,
        })
    }
}

/// Path segment of a name (names are `[A-Za-z0-9_.-]`, but a typo must
/// not turn into another route).
fn seg(name: &str) -> String {
    percent_encode(name, b"")
}

impl ModelsBackend for RemoteBackend {
    fn upload(&self, path: &Path) -> anyhow::Result<ArtifactInfo> {
        // The digest lets the server refuse bytes damaged on the way.
        let sha256 = file_sha256(path)?;
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        self.call(
            Method::POST,
            &format!("/api/v1/artifacts?sha256={sha256}"),
            |r| {
                r.header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(Body::from(file))
            },
        )
        .with_context(|| format!("cannot upload {}", path.display()))
    }

    fn register(
        &self,
        model: &str,
        request: &RegisterVersion,
    ) -> anyhow::Result<Changed<ModelVersion>> {
        let body = serde_json::to_value(request)?;
        self.version_change(&format!("/api/v1/models/{}/versions", seg(model)), &body)
    }

    fn list(&self) -> anyhow::Result<Vec<RegisteredModel>> {
        #[derive(Deserialize)]
        struct Answer {
            models: Vec<RegisteredModel>,
        }
        Ok(self.get::<Answer>("/api/v1/models")?.models)
    }

    fn model(&self, model: &str) -> anyhow::Result<ModelDetail> {
        #[derive(Deserialize)]
        struct ModelAnswer {
            #[serde(flatten)]
            model: RegisteredModel,
            #[serde(default)]
            aliases: std::collections::BTreeMap<String, i64>,
        }
        #[derive(Deserialize)]
        struct VersionsAnswer {
            versions: Vec<ModelVersion>,
        }
        let path = format!("/api/v1/models/{}", seg(model));
        let answer: ModelAnswer = self.get(&path)?;
        let versions: VersionsAnswer = self.get(&format!("{path}/versions"))?;
        Ok(ModelDetail {
            model: answer.model,
            aliases: answer.aliases,
            versions: versions.versions,
        })
    }

    fn version(&self, model: &str, version: i64) -> anyhow::Result<ModelVersion> {
        self.get(&format!("/api/v1/models/{}/versions/{version}", seg(model)))
    }

    fn promote(
        &self,
        model: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
    ) -> anyhow::Result<Changed<ModelVersion>> {
        self.version_change(
            &format!("/api/v1/models/{}/versions/{version}/stage", seg(model)),
            &json!({"stage": stage, "archive_existing": archive_existing}),
        )
    }

    fn set_alias(&self, model: &str, alias: &str, version: i64) -> anyhow::Result<Changed<()>> {
        let answer: Value = self.send_json(
            Method::PUT,
            &format!("/api/v1/models/{}/aliases/{}", seg(model), seg(alias)),
            &json!({ "version": version }),
        )?;
        Ok(serving_only(answer))
    }

    fn delete_alias(&self, model: &str, alias: &str) -> anyhow::Result<Changed<()>> {
        let answer: Value = self.call(
            Method::DELETE,
            &format!("/api/v1/models/{}/aliases/{}", seg(model), seg(alias)),
            |r| r,
        )?;
        Ok(serving_only(answer))
    }

    fn rollback(&self, model: &str) -> anyhow::Result<Changed<ModelVersion>> {
        self.version_change(
            &format!("/api/v1/models/{}/rollback", seg(model)),
            &json!({}),
        )
    }

    fn history(&self, model: &str) -> anyhow::Result<Vec<AuditEvent>> {
        #[derive(Deserialize)]
        struct Answer {
            events: Vec<AuditEvent>,
        }
        let answer: Answer = self.get(&format!("/api/v1/models/{}/history", seg(model)))?;
        Ok(answer.events)
    }

    fn serving_config(&self, model: &str) -> anyhow::Result<ConfigRevision> {
        self.get(&format!("/api/v1/models/{}/serving-config", seg(model)))
    }

    fn set_serving_config(
        &self,
        model: &str,
        config: Value,
    ) -> anyhow::Result<Changed<ConfigRevision>> {
        let mut answer: Value = self.send_json(
            Method::PUT,
            &format!("/api/v1/models/{}/serving-config", seg(model)),
            &config,
        )?;
        let serving = answer.get_mut("serving").map(Value::take);
        // The answer holds the stored revision (`{"revision": {...}}`),
        // or its number and config side by side.
        let stored = match answer.get_mut("revision").map(Value::take) {
            Some(Value::Object(revision)) => Value::Object(revision),
            Some(number) => json!({"revision": number, "config": answer["config"].take()}),
            None => Value::Null,
        };
        let value: ConfigRevision = serde_json::from_value(stored)
            .context("the server's answer to a serving-config change has no revision and config")?;
        Ok(Changed { value, serving })
    }

    fn faults(&self, model: &str, version: &str, change: &FaultChange) -> anyhow::Result<Value> {
        let path = format!(
            "/api/v1/models/{}/versions/{}/faults",
            seg(model),
            seg(version)
        );
        match change {
            FaultChange::Show => self.get(&path),
            FaultChange::Set(spec) => self.send_json(Method::PUT, &path, spec),
            FaultChange::Clear => self.call(Method::DELETE, &path, |r| r),
        }
    }
}

/// An answer whose only interesting part is the serving status.
fn serving_only(mut answer: Value) -> Changed<()> {
    Changed {
        value: (),
        serving: answer.get_mut("serving").map(Value::take),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_escape_everything_but_name_characters() {
        assert_eq!(seg("iris-v2_x.1"), "iris-v2_x.1");
        assert_eq!(seg("a/b c"), "a%2Fb%20c");
    }
}
